"""The labeling loop's view shortcuts answer exactly as DRF's general machinery does.

next / submit / skip skip DRF's Accept parsing when the client takes JSON (JsonFirstNegotiation), and submit
takes a plain JSON body without building the AnnotationInput serializer. These tests pin that the answers,
including the 406 and the 400s, are the ones the general code gives."""

from __future__ import annotations

import pytest

from annotation.models import Annotation
from tests.annotation.apis.helpers import assert_error, error_fields, make_items, member

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("accept", [None, "*/*", "application/json", " application/json ", "application/*"])
def test_json_accepting_clients_get_json(project, accept):
    [item] = make_items(project, 1)
    _, client = member(project)
    extra = {} if accept is None else {"HTTP_ACCEPT": accept}
    r = client.get(f"/api/projects/{project.pk}/next", **extra)
    assert r.status_code == 200
    assert r["Content-Type"] == "application/json"
    assert r.json()["id"] == item.pk
    r = client.post(f"/api/items/{item.pk}/annotations", {"value": {"label": "sports"}}, format="json", **extra)
    assert r.status_code == 201
    assert r["Content-Type"] == "application/json"


@pytest.mark.parametrize("accept", ["text/html", "application/xml"])
def test_other_accepts_still_get_406(project, accept):
    [item] = make_items(project, 1)
    _, client = member(project)
    assert_error(client.get(f"/api/projects/{project.pk}/next", HTTP_ACCEPT=accept), 406)
    r = client.post(
        f"/api/items/{item.pk}/annotations", {"value": {"label": "sports"}}, format="json", HTTP_ACCEPT=accept
    )
    assert_error(r, 406)
    assert_error(client.post(f"/api/items/{item.pk}/skip", HTTP_ACCEPT=accept), 406)
    assert not Annotation.objects.exists()


def test_json_with_indent_parameter_still_goes_through_drf(project):
    make_items(project, 1)
    _, client = member(project)
    r = client.get(f"/api/projects/{project.pk}/next", HTTP_ACCEPT="application/json; indent=2")
    assert r.status_code == 200
    assert b'\n  "id"' in r.content


@pytest.mark.parametrize(
    ("body", "lead_time_ms"),
    [
        ({"value": {"label": "sports"}}, None),
        ({"value": {"label": "sports"}, "lead_time_ms": 0, "accepted_suggestion": False}, 0),
        ({"value": {"label": "sports"}, "lead_time_ms": None, "accepted_suggestion": None}, None),
        ({"value": {"label": "sports"}, "lead_time_ms": 1500, "accepted_suggestion": True, "extra": 1}, 1500),
        # not the plain case: DRF's fields coerce these
        ({"value": {"label": "sports"}, "lead_time_ms": "1500"}, 1500),
        ({"value": {"label": "sports"}, "lead_time_ms": 12.0}, 12),
        ({"value": {"label": "sports"}, "accepted_suggestion": "true"}, None),
    ],
)
def test_submit_bodies_accepted(project, body, lead_time_ms):
    """Every body shape is taken; the client's accepted_suggestion is accepted and ignored: the server decides
    it (None here: no suggestion was served with the item)."""
    [item] = make_items(project, 1)
    _, client = member(project)
    r = client.post(f"/api/items/{item.pk}/annotations", body, format="json")
    assert r.status_code == 201, r.content
    ann = Annotation.objects.get()
    assert (ann.lead_time_ms, ann.accepted_suggestion) == (lead_time_ms, None)
    assert r.json()["lead_time_ms"] == lead_time_ms
    assert r.json()["accepted_suggestion"] is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "value"),
        ({"value": None}, "value"),
        ({"value": {"label": "sports"}, "lead_time_ms": -1}, "lead_time_ms"),
        ({"value": {"label": "sports"}, "lead_time_ms": 7 * 24 * 3600 * 1000 + 1}, "lead_time_ms"),
        ({"value": {"label": "sports"}, "lead_time_ms": True}, "lead_time_ms"),
        ({"value": {"label": "sports"}, "lead_time_ms": 1.5}, "lead_time_ms"),
        ({"value": {"label": "sports"}, "accepted_suggestion": "maybe"}, "accepted_suggestion"),
        (["value"], None),
    ],
)
def test_submit_bodies_refused(project, body, field):
    [item] = make_items(project, 1)
    _, client = member(project)
    body = assert_error(client.post(f"/api/items/{item.pk}/annotations", body, format="json"), 400)
    assert field in error_fields(body), body
    assert not Annotation.objects.exists()
