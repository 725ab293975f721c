import csv
import io
import json

import pytest

from tests.annotation.apis.helpers import assert_error, make_items, submit
from tests.conftest import add_member, client_for, make_project, make_user

pytestmark = pytest.mark.django_db


def export(client, project, query="?format=jsonl", **extra):
    return client.get(f"/api/projects/{project.pk}/export{query}", **extra)


def body_of(response) -> str:
    assert response.status_code == 200, getattr(response, "content", b"")
    return b"".join(response.streaming_content).decode("utf-8")


@pytest.fixture
def labeled(manager):
    """A k=2 project: item 0 agreed (tech), item 1 half done, item 2 untouched."""
    project = make_project(manager, name="exp", annotations_per_item=2)
    items = make_items(project, 3)
    users = []
    for name in ("alice", "bob"):
        user = make_user(name)
        add_member(project, user)
        users.append(client_for(user))
    assert submit(users[0], items[0].pk, {"label": "tech"}).status_code == 201
    assert submit(users[1], items[0].pk, {"label": "tech"}).status_code == 201
    assert submit(users[0], items[1].pk, {"label": "sports"}).status_code == 201
    return project, items


def test_export_jsonl_rows(labeled, manager):
    project, items = labeled
    r = export(client_for(manager), project)
    assert r["Content-Type"].startswith("application/x-ndjson") or r["Content-Type"].startswith("application/jsonl")
    lines = body_of(r).splitlines()
    rows = [json.loads(line) for line in lines]
    assert [row["id"] for row in rows] == [i.pk for i in items]
    for row in rows:
        assert set(row) == {"id", "external_id", "data", "annotations", "final"}, row
    first, second, third = rows
    assert first["external_id"] == "e0"
    assert first["data"] == {"text": "text number 0", "n": 0}
    assert first["final"] == {"label": "tech"}
    assert [a["annotator"] for a in first["annotations"]] == ["alice", "bob"]
    for a in first["annotations"]:
        assert set(a) == {"id", "annotator", "value", "created_at"}
        assert a["value"] == {"label": "tech"}
        assert isinstance(a["id"], int)
        assert a["created_at"]
    assert second["final"] is None
    assert [(a["annotator"], a["value"]) for a in second["annotations"]] == [("alice", {"label": "sports"})]
    assert third["annotations"] == []
    assert third["final"] is None


def test_export_csv(labeled, manager):
    project, _items = labeled
    r = export(client_for(manager), project, "?format=csv")
    assert r["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(body_of(r))))
    assert len(rows) == 3
    assert {"id", "external_id", "text", "final", "annotations"} <= set(rows[0])
    assert rows[0]["text"] == "text number 0"
    assert json.loads(rows[0]["final"]) == {"label": "tech"}
    anns = json.loads(rows[0]["annotations"])
    assert [a["annotator"] for a in anns] == ["alice", "bob"]
    assert rows[2]["final"] == ""
    assert json.loads(rows[2]["annotations"]) == []


def test_export_csv_quotes_text_with_commas_and_newlines(manager):
    project = make_project(manager)
    from annotation.models import Item

    Item.objects.create(project=project, external_id="q", data={"text": 'a, "b"\nc'})
    rows = list(csv.DictReader(io.StringIO(body_of(export(client_for(manager), project, "?format=csv")))))
    assert rows[0]["text"] == 'a, "b"\nc'


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
@pytest.mark.parametrize("accept", ["text/csv", "application/json", "application/x-ndjson", "text/html", "*/*"])
def test_export_answers_any_accept_header(labeled, manager, fmt, accept):
    project, _ = labeled
    r = export(client_for(manager), project, f"?format={fmt}", HTTP_ACCEPT=accept)
    assert r.status_code == 200, accept
    text = body_of(r)
    if fmt == "jsonl":
        assert len(text.splitlines()) == 3
    else:
        assert text.splitlines()[0].startswith("id,")


def test_export_default_format_and_trailing_slash(labeled, manager):
    project, _ = labeled
    r = client_for(manager).get(f"/api/projects/{project.pk}/export/?format=jsonl")
    assert len(body_of(r).splitlines()) == 3
    r = client_for(manager).get(f"/api/projects/{project.pk}/export")
    assert r.status_code == 200


@pytest.mark.parametrize("fmt", ["xml", "parquet", "json"])
def test_export_bad_format_is_400(project, manager_client, fmt):
    r = export(manager_client, project, f"?format={fmt}")
    body = assert_error(r, 400)
    assert "format" in [e.get("field") for e in body["errors"]]


def test_export_permissions(project, annotator_client):
    make_items(project, 2)
    assert_error(export(annotator_client, project), 403)
    assert_error(export(client_for(make_user()), project), 404)
    reviewer, engineer = make_user("rev"), make_user("eng")
    add_member(project, reviewer, "reviewer")
    add_member(project, engineer, "engineer")
    assert_error(export(client_for(reviewer), project), 403)
    assert len(body_of(export(client_for(engineer), project)).splitlines()) == 2


def test_export_staff(project, staff):
    make_items(project, 2)
    assert len(body_of(export(client_for(staff), project)).splitlines()) == 2


def test_export_empty_project(project, manager_client):
    assert body_of(export(manager_client, project)) == ""
    assert body_of(export(manager_client, project, "?format=csv")).splitlines()[0].startswith("id,")


def test_export_only_this_project(project, manager_client, manager):
    make_items(project, 2)
    other = make_project(manager, name="other")
    make_items(other, 3, start=50)
    assert len(body_of(export(manager_client, project)).splitlines()) == 2


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_export_csv_never_hands_a_spreadsheet_a_formula(manager, start):
    """A text or external id starting like a formula is written with a leading ' in CSV (read back by the csv
    module), and unchanged in JSONL."""
    from annotation.models import Item

    project = make_project(manager)
    text = f'{start}HYPERLINK("http://x.invalid","click")'
    Item.objects.create(project=project, external_id=f"{start}cmd|' /C calc'!A0", data={"text": text})
    Item.objects.create(project=project, external_id="plain", data={"text": "no formula = here"})
    rows = list(csv.DictReader(io.StringIO(body_of(export(client_for(manager), project, "?format=csv")))))
    assert rows[0]["text"] == "'" + text
    assert rows[0]["external_id"] == f"'{start}cmd|' /C calc'!A0"
    assert (rows[1]["external_id"], rows[1]["text"]) == ("plain", "no formula = here")
    jsonl = [json.loads(line) for line in body_of(export(client_for(manager), project)).splitlines()]
    assert jsonl[0]["data"]["text"] == text
    assert jsonl[0]["external_id"] == f"{start}cmd|' /C calc'!A0"
