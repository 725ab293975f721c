"""The plain export's filters (issue 14 point 5): ?status=, ?source=, ?label=, each repeatable (any of), combined
with AND; unknown values 400 with the field; CSV cells never start a formula; format=labelstudio honours the same
filters (one selector, export_items)."""

from __future__ import annotations

import csv
import io
import json

import pytest

from annotation.models import FinalLabel, Item
from annotation.selectors.exporting import export_items
from tests.annotation.apis.helpers import annotate, assert_error
from tests.conftest import add_member, client_for, make_project, make_user

pytestmark = pytest.mark.django_db


def export(client, project, query: str = ""):
    return client.get(f"/api/projects/{project.pk}/export{query}")


def jsonl_ids(response) -> list[str]:
    assert response.status_code == 200, getattr(response, "content", b"")
    body = b"".join(response.streaming_content).decode()
    return [json.loads(line)["external_id"] for line in body.splitlines()]


def item(project, ext: str, *, status: str = "open", final=None, source: str = "consensus", **data) -> Item:
    it = Item.objects.create(project=project, external_id=ext, data={"text": f"text {ext}", **data}, status=status)
    if final is not None:
        FinalLabel.objects.create(item=it, value=final, source=source)
    return it


@pytest.fixture
def owner(db):
    return make_user("owner")


@pytest.fixture
def client(owner):
    return client_for(owner)


@pytest.fixture
def news(owner):
    """Classification: c1 consensus tech, c2 review sports, c3 gold tech, c4 imported politics, o1 open, r1 in
    review (no final label)."""
    project = make_project(owner)
    item(project, "c1", status="approved", final={"label": "tech"})
    item(project, "c2", status="approved", final={"label": "sports"}, source="review")
    item(project, "c3", status="approved", final={"label": "tech"}, source="gold")
    item(project, "c4", status="approved", final={"label": "politics"}, source="imported")
    item(project, "o1")
    item(project, "r1", status="in_review")
    return project


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ["c1", "c2", "c3", "c4", "o1", "r1"]),
        ("?status=approved", ["c1", "c2", "c3", "c4"]),
        ("?status=open&status=in_review", ["o1", "r1"]),
        ("?source=imported", ["c4"]),
        ("?source=review&source=gold", ["c2", "c3"]),
        ("?label=tech", ["c1", "c3"]),
        ("?label=tech&label=politics", ["c1", "c3", "c4"]),
        ("?label=tech&source=consensus", ["c1"]),  # filters combine with AND
        ("?status=open&source=consensus", []),  # an item without a final label matches no source
        ("?status=", ["c1", "c2", "c3", "c4", "o1", "r1"]),  # an empty value is no filter
        ("?page=2&page_size=1&_=123&status=in_review", ["r1"]),  # other query keys are ignored
    ],
)
def test_filters(news, client, query, expected):
    fmt = "&format=jsonl" if query else "?format=jsonl"
    assert jsonl_ids(export(client, news, query + fmt)) == expected


def test_multilabel_label_filter_is_any_of(owner, client):
    project = make_project(owner, task_type="multilabel", labels=("a", "b", "c"))
    item(project, "ab", status="approved", final={"labels": ["a", "b"]})
    item(project, "c", status="approved", final={"labels": ["c"]})
    item(project, "none", status="approved", final={"labels": []})
    item(project, "open")
    assert jsonl_ids(export(client, project, "?label=b")) == ["ab"]
    assert jsonl_ids(export(client, project, "?label=b&label=c")) == ["ab", "c"]
    assert jsonl_ids(export(client, project, "?label=a&label=c&status=approved")) == ["ab", "c"]


def test_span_label_filter_is_any_span(owner, client):
    project = make_project(owner, task_type="spans", labels=("PER", "LOC", "ORG"))
    span = {"start": 0, "end": 3}
    item(project, "per", status="approved", final={"spans": [{**span, "label": "PER"}]})
    item(project, "both", status="approved", final={"spans": [{**span, "label": "LOC"}, {**span, "label": "PER"}]})
    item(project, "empty", status="approved", final={"spans": []})
    assert jsonl_ids(export(client, project, "?label=PER")) == ["per", "both"]
    assert jsonl_ids(export(client, project, "?label=LOC")) == ["both"]
    assert jsonl_ids(export(client, project, "?label=ORG")) == []
    assert jsonl_ids(export(client, project, "?label=ORG&label=LOC")) == ["both"]


@pytest.mark.parametrize(
    ("query", "field", "words"),
    [
        ("?status=done", "status", "in_review"),
        ("?status=approved,open", "status", "repeat the parameter"),  # repeatable only: no comma lists
        ("?source=model", "source", "imported"),
        ("?label=cooking", "label", "sports"),
        ("?label=Tech", "label", "tech"),  # exact names
    ],
)
def test_unknown_values_are_400_with_the_field(news, client, query, field, words):
    body = assert_error(export(client, news, query), 400)
    assert [e["field"] for e in body["errors"]] == [field]
    assert words in body["errors"][0]["message"]


def test_every_bad_filter_is_reported(news, client):
    body = assert_error(export(client, news, "?status=x&source=y&label=z&format=csv"), 400)
    assert [e["field"] for e in body["errors"]] == ["status", "source", "label"]


def test_export_items_selector(news):
    assert sorted(export_items(project=news, filters={}).values_list("external_id", flat=True)) == [
        "c1",
        "c2",
        "c3",
        "c4",
        "o1",
        "r1",
    ]
    chosen = export_items(project=news, filters={"source": ["gold", "gold"], "label": ["tech"]})
    assert list(chosen.values_list("external_id", flat=True)) == ["c3"]


def test_csv_filtered_with_annotations_of_the_chosen_items_only(news, client):
    annotator = make_user("alice")
    add_member(news, annotator)
    for ext in ("c1", "c2", "c3"):
        annotate(Item.objects.get(project=news, external_id=ext), annotator, {"label": "tech"})
    r = export(client, news, "?format=csv&label=tech&source=consensus")
    assert r.status_code == 200
    rows = list(csv.DictReader(io.StringIO(b"".join(r.streaming_content).decode())))
    assert [(row["external_id"], json.loads(row["final"])) for row in rows] == [("c1", {"label": "tech"})]
    assert [a["annotator"] for a in json.loads(rows[0]["annotations"])] == ["alice"]
    assert json.loads(rows[0]["data"]) == {}


FORMULAS = ["=1+1", "+SUM(A1)", "-2+3", "@cmd", "\tx", "\ry"]


@pytest.mark.parametrize("start", FORMULAS)
def test_csv_cells_never_start_a_formula(owner, client, start):
    """Texts and external ids that look like formulas get a leading '; metadata, final labels and annotations are
    JSON text that starts with { or [ whatever they hold, so no cell of the file starts a formula."""
    label = "=HYPERLINK()"  # a label name may look like a formula too
    project = make_project(owner, labels=(label, "plain"))
    it = item(project, start + "id", status="approved", final={"label": label}, **{start: start, "note": start})
    it.data["text"] = start + " text"
    it.save(update_fields=["data"])
    annotator = make_user(start.strip() + "user")
    add_member(project, annotator)
    annotate(it, annotator, {"label": label})
    r = export(client, project, "?format=csv&label=%3DHYPERLINK()")
    assert r.status_code == 200
    body = b"".join(r.streaming_content).decode()
    header, row = list(csv.reader(io.StringIO(body)))
    for cell in row:
        assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), row
    cells = dict(zip(header, row, strict=True))
    assert cells["text"] == "'" + start + " text"
    assert cells["external_id"] == "'" + start + "id"
    assert json.loads(cells["data"]) == {start: start, "note": start}
    assert json.loads(cells["final"]) == {"label": label}
    assert json.loads(cells["annotations"])[0]["value"] == {"label": label}


def test_labelstudio_format_honours_the_filters(news, client):
    r = export(client, news, "?format=labelstudio&source=imported&source=review")
    assert r.status_code == 200
    assert r["Content-Type"].startswith("application/json")
    assert r["Content-Disposition"] == f'attachment; filename="tandem-project-{news.pk}.json"'
    tasks = json.loads(b"".join(r.streaming_content))
    assert [t["data"]["external_id"] for t in tasks] == ["c2", "c4"]
    everything = json.loads(b"".join(export(client, news, "?format=labelstudio").streaming_content))
    assert len(everything) == 6
    body = assert_error(export(client, news, "?format=labelstudio&label=nope"), 400)
    assert [e["field"] for e in body["errors"]] == ["label"]
