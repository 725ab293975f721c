"""Many annotators loop next -> submit on one project with real threads and real database connections."""

from __future__ import annotations

import json
import threading
import uuid
from collections import Counter

import pytest
from django.db import connection, connections
from django.db.models import Count
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from annotation.models import Annotation, Assignment, FinalLabel, Item
from annotation.models.item import FinalLabelSource, ItemStatus
from annotation.services.importing import import_file
from tests.conftest import add_member, make_project, make_user


def _seed(project, n: int, tmp_path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps({"external_id": f"x{i}", "text": f"item number {i}"}) + "\n" for i in range(n)))
    assert import_file(project=project, user=None, path=path).status == "succeeded"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("k", "annotators", "items"), [(1, 8, 120), (2, 6, 60)])
@pytest.mark.parametrize("auth", ["session", "token"])
def test_concurrent_annotators_never_exceed_overlap(k, annotators, items, auth, tmp_path):
    """`auth`: "session" authenticates with force_authenticate; "token" sends `Authorization: Token`, which DRF's
    pipeline checks with annotation.auth.TokenAuthentication (one prepared statement) before next (access, then
    the queue statement) and submit (the lock, then the write with its COMMIT)."""
    assert connection.vendor == "postgresql"
    manager = make_user("boss")
    project = make_project(manager, labels=("a", "b"), annotations_per_item=k)
    _seed(project, items, tmp_path)
    users = [make_user(f"u{i}") for i in range(annotators)]
    for user in users:
        add_member(project, user)

    created: list[int] = []
    statuses: Counter[int] = Counter()
    lock = threading.Lock()
    errors: list[str] = []

    tokens = {user.pk: Token.objects.create(user=user).key for user in users}

    def work(user) -> None:
        client = APIClient()
        if auth == "token":
            client.credentials(HTTP_AUTHORIZATION=f"Token {tokens[user.pk]}")
        else:
            client.force_authenticate(user)
        try:
            for _ in range(items * k + 5):
                r = client.get(f"/api/projects/{project.pk}/next")
                with lock:
                    statuses[r.status_code] += 1
                if r.status_code == 204:
                    return
                if r.status_code != 200:
                    errors.append(f"next {r.status_code} {r.content[:200]!r}")
                    return
                item = r.json()
                r = client.post(
                    f"/api/items/{item['id']}/annotations",
                    {"value": {"label": "a"}},
                    format="json",
                    HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()),
                )
                with lock:
                    statuses[r.status_code] += 1
                    if r.status_code == 201:
                        created.append(r.json()["id"])
                if r.status_code != 201:
                    errors.append(f"submit {r.status_code} {r.content[:200]!r}")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work, args=(u,)) for u in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=240)
    assert not any(t.is_alive() for t in threads)
    assert not errors, errors[:5]

    # every item got exactly k annotations, none more, from k distinct annotators
    per_item = dict(Annotation.objects.filter(item__project=project).values_list("item").annotate(n=Count("id")))
    assert len(per_item) == items
    assert set(per_item.values()) == {k}
    pairs = Annotation.objects.filter(item__project=project).values_list("item_id", "annotator_id")
    assert len(set(pairs)) == len(pairs) == items * k
    assert len(created) == items * k
    # the counters the queue relies on agree with the rows
    assert not Item.objects.filter(project=project).exclude(annotation_count=k).exists()
    assert not Item.objects.filter(project=project, lease_count__gt=0).exists()
    assert not Assignment.objects.filter(project=project).exists()

    # every 201 appears in the export
    client = APIClient()
    client.force_authenticate(manager)
    r = client.get(f"/api/projects/{project.pk}/export?format=jsonl")
    rows = [json.loads(line) for line in b"".join(r.streaming_content).decode().splitlines()]
    exported = {a["id"] for row in rows for a in row["annotations"]}
    assert exported == set(created)
    assert all(row["final"] == {"label": "a"} for row in rows)


@pytest.mark.django_db(transaction=True)
def test_concurrent_annotators_with_gold_items(tmp_path):
    """gold_rate 1: every `next` tries a gold item first (FOR UPDATE SKIP LOCKED over the gold items this user has
    not answered), so annotators contend for the same few gold rows while the queue runs. Each annotator answers
    each gold item at most once; gold answers change no count, status or final label; the normal items still get
    exactly k annotations; the lease counters agree with the rows."""
    manager = make_user("boss")
    project = make_project(manager, labels=("a", "b"), annotations_per_item=1, gold_rate=1.0)
    _seed(project, 40, tmp_path)
    gold = list(Item.objects.filter(project=project).order_by("-id")[:4])
    Item.objects.filter(pk__in=[g.pk for g in gold]).update(is_gold=True, status=ItemStatus.APPROVED)
    FinalLabel.objects.bulk_create(
        [FinalLabel(item=g, value={"label": "b"}, source=FinalLabelSource.GOLD) for g in gold]
    )
    users = [make_user(f"g{i}") for i in range(6)]
    for user in users:
        add_member(project, user)
    errors: list[str] = []

    def work(user) -> None:
        client = APIClient()
        client.force_authenticate(user)
        try:
            for _ in range(60):
                r = client.get(f"/api/projects/{project.pk}/next")
                if r.status_code == 204:
                    return
                if r.status_code != 200:
                    errors.append(f"next {r.status_code} {r.content[:200]!r}")
                    return
                r = client.post(
                    f"/api/items/{r.json()['id']}/annotations",
                    {"value": {"label": "a"}},
                    format="json",
                    HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()),
                )
                if r.status_code != 201:
                    errors.append(f"submit {r.status_code} {r.content[:200]!r}")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work, args=(u,)) for u in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=240)
    assert not any(t.is_alive() for t in threads)
    assert not errors, errors[:5]

    gold_ids = {g.pk for g in gold}
    answers = list(Annotation.objects.filter(item_id__in=gold_ids).values_list("item_id", "annotator_id"))
    assert answers  # gold was served
    assert len(set(answers)) == len(answers)  # each annotator answered each gold item at most once
    assert set(Item.objects.filter(pk__in=gold_ids).values_list("status", "annotation_count", "lease_count")) == {
        (ItemStatus.APPROVED, 0, 0)
    }
    finals = [(f.source, f.value) for f in FinalLabel.objects.filter(item_id__in=gold_ids)]
    assert finals == [(FinalLabelSource.GOLD, {"label": "b"})] * len(gold)
    per_item = dict(
        Annotation.objects.filter(item__project=project)
        .exclude(item_id__in=gold_ids)
        .values_list("item")
        .annotate(n=Count("id"))
    )
    assert len(per_item) == 36
    assert set(per_item.values()) == {1}
    assert not Item.objects.filter(project=project, lease_count__gt=0).exists()
    assert not Assignment.objects.filter(project=project).exists()
