"""Every 4xx answer has the one JSON error shape {"detail": str, "errors": list}."""

import pytest
from rest_framework.test import APIClient

from tests.annotation.apis.helpers import assert_error, make_items
from tests.conftest import client_for, make_user

pytestmark = pytest.mark.django_db


def test_malformed_json_body_is_400_json(project, manager_client):
    r = manager_client.generic("POST", "/api/projects/", b'{"name": ', content_type="application/json")
    assert_error(r, 400)
    r = manager_client.generic("PATCH", f"/api/projects/{project.pk}", b"{nope", content_type="application/json")
    assert_error(r, 400)


def test_method_not_allowed_is_405_json(project, manager_client):
    assert_error(manager_client.delete("/api/projects/"), 405)
    assert_error(manager_client.post(f"/api/projects/{project.pk}/next"), 405)
    assert_error(manager_client.put(f"/api/projects/{project.pk}", {"name": "x"}, format="json"), 405)


def test_unsupported_media_type_is_415_json(project, manager_client):
    r = manager_client.generic("POST", "/api/projects/", b"name=x", content_type="text/plain")
    assert_error(r, 415)


def test_unknown_api_path_is_404_json(manager_client):
    assert_error(manager_client.get("/api/nothing-here/"), 404)
    assert_error(manager_client.get("/api/projects/abc"), 404)


def test_validation_error_detail_names_the_field(manager_client):
    body = assert_error(manager_client.post("/api/projects/", {"labels": ["a"]}, format="json"), 400)
    assert "name" in [e["field"] for e in body["errors"]]
    assert "name" in body["detail"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/projects/{p}"),
        ("patch", "/api/projects/{p}"),
        ("delete", "/api/projects/{p}"),
        ("get", "/api/projects/{p}/members"),
        ("post", "/api/projects/{p}/members"),
        ("get", "/api/projects/{p}/items"),
        ("get", "/api/projects/{p}/next"),
        ("post", "/api/projects/{p}/import"),
        ("get", "/api/projects/{p}/export"),
        ("get", "/api/projects/{p}/jobs"),
        ("get", "/api/items/{i}"),
        ("post", "/api/items/{i}/annotations"),
        ("get", "/api/items/{i}/annotations"),
        ("post", "/api/items/{i}/skip"),
    ],
)
def test_outsider_gets_404_json_everywhere(project, method, path):
    [item] = make_items(project, 1)
    url = path.format(p=project.pk, i=item.pk)
    kwargs = {"format": "json"} if method in ("post", "patch") else {}
    data = ({"value": {"label": "sports"}} if "annotations" in url else {"name": "x"}) if kwargs else None
    client = client_for(make_user())
    r = getattr(client, method)(url, data, **kwargs) if kwargs else getattr(client, method)(url)
    assert_error(r, 404)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("patch", "/api/projects/{p}"),
        ("delete", "/api/projects/{p}"),
        ("get", "/api/projects/{p}/members"),
        ("post", "/api/projects/{p}/import"),
        ("get", "/api/projects/{p}/export"),
    ],
)
def test_weaker_role_gets_403_json(project, annotator_client, method, path):
    url = path.format(p=project.pk)
    kwargs = {"format": "json"} if method in ("post", "patch") else {}
    r = (
        getattr(annotator_client, method)(url, {"name": "x"}, **kwargs)
        if kwargs
        else getattr(annotator_client, method)(url)
    )
    assert_error(r, 403)


def test_unauthenticated_session_client_gets_json(project):
    client = APIClient(enforce_csrf_checks=True)
    r = client.get(f"/api/projects/{project.pk}")
    assert r.status_code in (401, 403)
    assert_error(r, r.status_code)
