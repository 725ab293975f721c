"""Shared helpers for the REST API tests (no fixtures here: those live in tests/conftest.py)."""

from __future__ import annotations

import uuid
from typing import Any

from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from annotation.models import Annotation, Assignment, Item
from annotation.services.importing import import_run


def assert_error(response, status: int) -> dict[str, Any]:
    """The response has `status` and the one JSON error shape {"detail": str, "errors": list}."""
    assert response.status_code == status, (response.status_code, response.content[:2000])
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = response.json()
    assert isinstance(body, dict), body
    assert isinstance(body.get("detail"), str), body
    assert body["detail"], body
    assert isinstance(body.get("errors"), list), body
    for err in body["errors"]:
        assert isinstance(err, dict), body
        assert "message" in err, body
    return body


def error_fields(body: dict[str, Any]) -> list[str | None]:
    return [e.get("field") for e in body["errors"]]


def make_items(project, n: int, *, start: int = 0, **fields: Any) -> list[Item]:
    """n items in import (id) order, external ids e<start>..e<start+n-1>."""
    items = [
        Item(project=project, external_id=f"e{i}", data={"text": f"text number {i}", "n": i}, **fields)
        for i in range(start, start + n)
    ]
    Item.objects.bulk_create(items)
    return list(Item.objects.filter(project=project, external_id__in=[i.external_id for i in items]).order_by("id"))


def annotate(item: Item, user, value: dict[str, Any]) -> Annotation:
    """An annotation written through the ORM (bookkeeping on the item kept in step)."""
    ann = Annotation.objects.create(item=item, annotator=user, value=value)
    Item.objects.filter(pk=item.pk).update(annotation_count=item.annotation_count + 1)
    item.refresh_from_db()
    return ann


def expire_leases(item_id: int, user=None) -> None:
    """Move the leases on an item (all, or one user's) into the past."""
    past = timezone.now() - timezone.timedelta(minutes=5)
    qs = Assignment.objects.filter(item_id=item_id)
    if user is not None:
        qs = qs.filter(user=user)
    qs.update(expires_at=past)
    Item.objects.filter(pk=item_id).update(lease_expires_at=past)


def submit(client, item_id: int, value: dict[str, Any], key: str | None = "auto", **extra: Any):
    headers = {}
    if key == "auto":
        key = str(uuid.uuid4())
    if key is not None:
        headers["HTTP_IDEMPOTENCY_KEY"] = key
    return client.post(f"/api/items/{item_id}/annotations", {"value": value, **extra}, format="json", **headers)


def next_item(client, project):
    return client.get(f"/api/projects/{project.pk}/next")


def label_next(client, project, value) -> dict[str, Any]:
    """next, then submit `value` for the item served; returns the annotation's JSON."""
    r = next_item(client, project)
    assert r.status_code == 200, r.content
    r = submit(client, r.json()["id"], value)
    assert r.status_code == 201, r.content
    return r.json()


# ---------------------------------------------------------------- import


def import_post(
    client,
    project,
    *,
    rows=None,
    body: bytes | None = None,
    content_type: str = "application/json",
    file: bytes | None = None,
    name: str = "items.jsonl",
    query: str = "",
    form: dict | None = None,
):
    url = f"/api/projects/{project.pk}/import{query}"
    if file is not None:
        data = {"file": SimpleUploadedFile(name, file), **(form or {})}
        return client.post(url, data, format="multipart")
    if rows is not None:
        return client.post(url, rows, format="json")
    assert body is not None
    return client.generic("POST", url, body, content_type=content_type)


def job_json(client, job_id: int) -> dict[str, Any]:
    r = client.get(f"/api/jobs/{job_id}")
    assert r.status_code == 200, r.content
    return r.json()


def run_import(client, project, **kw) -> dict[str, Any]:
    """POST an import (expects 202), run its Job here as the worker would, and return GET /api/jobs/{id}."""
    r = import_post(client, project, **kw)
    assert r.status_code == 202, r.content
    job_id = r.json()["job"]
    assert isinstance(job_id, int)
    import_run(job_id=job_id)
    return job_json(client, job_id)


def import_rejected(client, project, **kw) -> list[dict[str, Any]]:
    """A rejected import answers 400 at once or ends its Job `failed`; either way nothing is created.

    Returns the error list (each with line, field, message)."""
    before = Item.objects.filter(project=project).count()
    r = import_post(client, project, **kw)
    if r.status_code == 400:
        errors = assert_error(r, 400)["errors"]
    else:
        assert r.status_code == 202, r.content
        job_id = r.json()["job"]
        import_run(job_id=job_id)
        job = job_json(client, job_id)
        assert job["status"] == "failed", job
        assert job["error"], job
        assert job["result"]["created"] == 0, job
        errors = job["result"]["errors"]
    assert Item.objects.filter(project=project).count() == before, "a rejected import must create nothing"
    assert errors, "a rejected import must say why"
    for err in errors:
        assert set(err) >= {"line", "field", "message"}, err
        assert isinstance(err["line"], int), err
        assert err["line"] >= 1, err
        assert isinstance(err["message"], str), err
        assert err["message"], err
    return errors


def jsonl(*rows: Any) -> bytes:
    import json

    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def member(project, name=None, role="annotator"):
    """A new user with `role` in the project, and an API client logged in as them."""
    from tests.conftest import add_member, client_for, make_user

    user = make_user(name)
    add_member(project, user, role)
    return user, client_for(user)
