import re

import pytest
from django.test import Client


@pytest.mark.django_db
def test_schema_lists_the_contract_paths():
    r = Client().get("/api/schema/", HTTP_ACCEPT="application/json")
    assert r.status_code == 200
    paths = r.json()["paths"]
    for path in (
        "/api/projects/{id}/next/",
        "/api/items/{id}/annotations/",
        "/api/projects/{id}/import/",
        "/api/projects/{id}/export/",
        "/api/jobs/{id}/",
        "/api/auth/token/",
        "/api/users/",
    ):
        assert path in paths, path


@pytest.mark.django_db
def test_docs_page_is_served_without_a_cdn():
    r = Client().get("/api/docs/")
    assert r.status_code == 200
    html = r.content.decode()
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert any("swagger-ui" in a for a in assets), assets
    assert all(not a.startswith(("http://", "https://", "//")) for a in assets), assets
