"""Importing rows that bring an existing final label (issue 14 point 7): `label` / `labels` / `spans` in JSON,
JSONL and CSV become a FinalLabel (source `imported`) of an `approved` item, checked like every annotation value;
training reads them, the queue never serves them."""

from __future__ import annotations

import pytest

from annotation.models import FinalLabel, Item
from annotation.services.importing import RowError, row_label
from modelsvc.splits import training_split
from tests.annotation.apis.helpers import import_rejected, jsonl, next_item, run_import
from tests.conftest import add_member, client_for, make_project, make_user

pytestmark = pytest.mark.django_db


def items_of(project) -> list[tuple[str, str, dict | None, str | None, dict]]:
    """(external_id, status, final value, final source, data) per item in import order."""
    finals = {f.item_id: f for f in FinalLabel.objects.filter(item__project=project)}
    return [
        (
            i.external_id,
            i.status,
            finals[i.pk].value if i.pk in finals else None,
            finals[i.pk].source if i.pk in finals else None,
            i.data,
        )
        for i in Item.objects.filter(project=project).order_by("id")
    ]


@pytest.fixture
def owner(db):
    return make_user("owner")


@pytest.fixture
def client(owner):
    return client_for(owner)


# ------------------------------------------------------------------ good imports


def test_jsonl_labels_become_imported_final_labels(owner, client, settings, monkeypatch):
    import annotation.services.importing as importing

    settings.TANDEM_IMPORT_BATCH_SIZE = 2  # labeled and unlabeled rows across several batches
    monkeypatch.setattr(importing, "_progress", lambda job_id, done: None)  # published on another connection
    project = make_project(owner, labels=("ham", "spam"))
    data = jsonl(
        {"external_id": "a", "text": "win a prize", "label": "spam", "source": "sms"},
        {"external_id": "b", "text": "see you", "label": None},
        {"external_id": "c", "text": "lunch?", "label": {"label": "ham"}},  # the value object, as gold takes it
        {"external_id": "d", "text": "call now", "label": ""},  # empty: no label
        {"external_id": "e", "text": "free entry", "label": "spam"},
    )
    job = run_import(client, project, file=data, name="sms.jsonl")
    assert job["status"] == "succeeded", job
    result = job["result"]
    assert (result["created"], result["labeled"], result["gold"], result["duplicates"]) == (5, 3, 0, 0)
    assert items_of(project) == [
        ("a", "approved", {"label": "spam"}, "imported", {"text": "win a prize", "source": "sms"}),
        ("b", "open", None, None, {"text": "see you"}),
        ("c", "approved", {"label": "ham"}, "imported", {"text": "lunch?"}),
        ("d", "open", None, None, {"text": "call now"}),
        ("e", "approved", {"label": "spam"}, "imported", {"text": "free entry"}),
    ]
    assert not Item.objects.filter(project=project, is_gold=True).exists()


def test_csv_label_column_classification(owner, client):
    project = make_project(owner, labels=("ham", "spam", "[odd]"))
    data = (
        b"external_id,text,label\n"
        b"a,one, spam \n"
        b"b,two,\n"
        b'c,three,"{""label"": ""ham""}"\n'
        b"d,four,[odd]\n"  # a label's own name wins over reading it as JSON
    )
    job = run_import(client, project, file=data, name="items.csv")
    assert job["status"] == "succeeded", job
    assert job["result"]["labeled"] == 3
    assert [(ext, status, value) for ext, status, value, _, _ in items_of(project)] == [
        ("a", "approved", {"label": "spam"}),
        ("b", "open", None),
        ("c", "approved", {"label": "ham"}),
        ("d", "approved", {"label": "[odd]"}),
    ]


def test_multilabel_forms(owner, client):
    project = make_project(owner, task_type="multilabel", labels=("a", "b", "c"))
    data = jsonl(
        {"external_id": "j1", "text": "t1", "labels": ["c", "a"]},
        {"external_id": "j2", "text": "t2", "label": ["b"]},  # the snapshot row's plain form
        {"external_id": "j3", "text": "t3", "labels": []},  # labeled: none of them applies
        {"external_id": "j4", "text": "t4", "label": {"labels": ["b", "a"]}},
        {"external_id": "j5", "text": "t5", "labels": None},
    )
    assert run_import(client, project, file=data, name="m.jsonl")["result"]["labeled"] == 4
    csv_data = b'external_id,text,label\nc1,t6,c | a\nc2,t7,"[""b""]"\nc3,t8,[]\nc4,t9,\nc5,t10,b\n'
    assert run_import(client, project, file=csv_data, name="m.csv")["result"]["labeled"] == 4
    finals = {ext: value for ext, _, value, _, _ in items_of(project)}
    assert finals == {
        "j1": {"labels": ["a", "c"]},  # canonical (project) order
        "j2": {"labels": ["b"]},
        "j3": {"labels": []},
        "j4": {"labels": ["a", "b"]},
        "j5": None,
        "c1": {"labels": ["a", "c"]},
        "c2": {"labels": ["b"]},
        "c3": {"labels": []},
        "c4": None,
        "c5": {"labels": ["b"]},
    }


def test_span_forms_checked_against_the_text(owner, client):
    project = make_project(owner, task_type="spans", labels=("PER", "LOC"))
    data = jsonl(
        {"external_id": "s1", "text": "Ada in Paris", "spans": [{"start": 7, "end": 12, "label": "LOC"}]},
        {"external_id": "s2", "text": "Bob", "label": [{"start": 0, "end": 3, "label": "PER"}]},
        {"external_id": "s3", "text": "nothing here", "spans": []},
        {"external_id": "s4", "text": "Eve", "label": {"spans": [{"start": 0, "end": 3, "label": "PER"}]}},
    )
    assert run_import(client, project, file=data, name="s.jsonl")["result"]["labeled"] == 4
    csv_data = b'text,spans\nCarl,"[{""start"": 0, ""end"": 4, ""label"": ""PER""}]"\nno one,\n'
    assert run_import(client, project, file=csv_data, name="s.csv")["result"]["labeled"] == 1
    finals = [value for _, _, value, _, _ in items_of(project)]
    assert finals == [
        {"spans": [{"start": 7, "end": 12, "label": "LOC"}]},
        {"spans": [{"start": 0, "end": 3, "label": "PER"}]},
        {"spans": []},
        {"spans": [{"start": 0, "end": 3, "label": "PER"}]},
        {"spans": [{"start": 0, "end": 4, "label": "PER"}]},
        None,
    ]


def test_a_snapshot_row_re_imports_with_its_label(owner, client):
    """The canonical snapshot row carries `label` in plain form; its other columns are kept as metadata."""
    project = make_project(owner, task_type="multilabel", labels=("a", "b"))
    row = {
        "external_id": "x1",
        "text": "some text",
        "lang": "en",
        "label": ["a", "b"],
        "label_source": "consensus",
        "split": "train",
        "annotations": [{"annotator": "alice", "value": ["a", "b"]}],
        "suggestion": None,
    }
    job = run_import(client, project, file=jsonl(row), name="snapshot.jsonl")
    assert job["status"] == "succeeded", job
    [(ext, status, value, source, data)] = items_of(project)
    assert (ext, status, value, source) == ("x1", "approved", {"labels": ["a", "b"]}, "imported")
    assert "label" not in data
    assert data["lang"] == "en"


def test_an_existing_item_is_left_alone(owner, client):
    project = make_project(owner, labels=("ham", "spam"))
    run_import(client, project, rows=[{"external_id": "k", "text": "t"}])
    job = run_import(client, project, rows=[{"external_id": "k", "text": "t", "label": "spam"}])
    assert (job["result"]["created"], job["result"]["duplicates"], job["result"]["labeled"]) == (0, 1, 0)
    assert items_of(project) == [("k", "open", None, None, {"text": "t"})]
    # the same text without an external_id: the derived id ignores the label, so it is the same row
    run_import(client, project, rows=[{"text": "u"}])
    job = run_import(client, project, rows=[{"text": "u", "label": "ham"}])
    assert (job["result"]["created"], job["result"]["duplicates"]) == (0, 1)


# ------------------------------------------------------------------ errors


def test_bad_labels_are_row_errors_naming_the_field(owner, client):
    project = make_project(owner, labels=("ham", "spam"))
    data = jsonl(
        {"text": "ok", "label": "ham"},
        {"text": "unknown", "label": "eggs"},
        {"text": "an index", "label": 1},
        {"text": "both", "label": "ham", "gold": {"label": "ham"}},
        {"text": "two fields", "label": "ham", "labels": ["ham"]},
        {"text": "wrong field", "labels": ["ham"]},
        {"text": "bad object", "label": {"label": "eggs"}},
        {"text": "extra key", "label": {"label": "ham", "score": 0.9}},
    )
    errors = import_rejected(client, project, file=data, name="bad.jsonl")
    assert [(e["line"], e["field"]) for e in errors] == [
        (2, "label"),
        (3, "label"),
        (4, "label"),
        (5, "labels"),
        (6, "labels"),
        (7, "label.label"),
        (8, "label"),
    ]
    by_line = {e["line"]: e["message"] for e in errors}
    assert "eggs" in by_line[2]
    assert "found int" in by_line[3]
    assert by_line[4] == "a gold item's value is its gold; send one of them"
    assert "classification" in by_line[6]
    job = run_import(client, project, file=data, name="bad.jsonl", query="?on_error=skip")
    assert (job["result"]["created"], job["result"]["labeled"], job["result"]["error_count"]) == (1, 1, 7)
    assert [(status, value) for _, status, value, _, _ in items_of(project)] == [("approved", {"label": "ham"})]


def test_bad_span_and_multilabel_values(owner, client):
    spans = make_project(owner, task_type="spans", labels=("PER",))
    data = jsonl(
        {"text": "Ada", "spans": [{"start": 0, "end": 9, "label": "PER"}]},
        {"text": "Bob", "label": [{"start": 0, "end": 3, "label": "PER"}, {"start": 2, "end": 1, "label": "X"}]},
        {"text": "Cy", "spans": "PER"},
        {"text": "Di", "labels": ["PER"]},
    )
    errors = import_rejected(client, spans, file=data, name="s.jsonl")
    assert [(e["line"], e["field"]) for e in errors] == [
        (1, "spans[0].end"),
        (2, "label[1]"),
        (2, "label[1].label"),
        (3, "spans"),
        (4, "labels"),
    ]
    csv_errors = import_rejected(client, spans, file=b"text,label\nAda,PER\nBob,[oops\n", name="s.csv")
    assert [(e["line"], e["field"]) for e in csv_errors] == [(2, "label"), (3, "label")]

    multi = make_project(owner, task_type="multilabel", labels=("a", "b"))
    errors = import_rejected(
        client, multi, file=jsonl({"text": "t", "labels": ["a", "a", "z"]}, {"text": "u", "label": "a"}), name="m.jsonl"
    )
    assert [(e["line"], e["field"]) for e in errors] == [(1, "labels[1]"), (1, "labels[2]"), (2, "label")]
    errors = import_rejected(client, multi, file=b"text,label\nt,a|z\n", name="m.csv")
    assert [(e["line"], e["field"]) for e in errors] == [(2, "label[1]")]


@pytest.mark.parametrize(
    ("row", "fmt", "expected"),
    [
        ({"text": "t"}, "jsonl", None),
        ({"text": "t", "label": None, "labels": None, "spans": None}, "json", None),
        ({"text": "t", "label": "b"}, "jsonl", {"label": "b"}),
        ({"text": "t", "label": "  "}, "csv", None),
        ({"text": "t", "label": " b "}, "csv", {"label": "b"}),
        ({"text": "t", "label": '{"label": "a"}'}, "csv", {"label": "a"}),
        ({"text": "t", "label": "b", "gold": ""}, "csv", {"label": "b"}),  # an empty gold cell is no gold
    ],
)
def test_row_label_classification(owner, row, fmt, expected):
    project = make_project(owner, labels=("a", "b"))
    assert row_label(3, row, row["text"], project, fmt) == expected


def test_row_label_errors_carry_the_line(owner):
    project = make_project(owner, labels=("a", "b"))
    errors = row_label(7, {"text": "t", "spans": []}, "t", project, "jsonl")
    assert isinstance(errors, list)
    assert [(e.line, e.field) for e in errors if isinstance(e, RowError)] == [(7, "spans")]


# ------------------------------------------------------------------ what reads them


def test_imported_labels_are_trained_on_and_never_served(owner, client, settings):
    settings.TANDEM_VALIDATION_FRACTION = 0.25
    project = make_project(owner, labels=("ham", "spam"))
    rows = [{"external_id": f"l{i}", "text": f"labeled {i}", "label": ("ham", "spam")[i % 2]} for i in range(8)]
    rows.append({"external_id": "open", "text": "not labeled yet"})
    assert run_import(client, project, rows=rows)["result"]["labeled"] == 8
    labeled_ids = set(Item.objects.filter(project=project, external_id__startswith="l").values_list("id", flat=True))

    train, validation = training_split(project)
    assert {i for i, _, _ in train} | {i for i, _, _ in validation} == labeled_ids
    targets = {i: target for i, _, target in train + validation}
    ham = Item.objects.get(project=project, external_id="l0").pk
    assert targets[ham] == 0  # the label's index, as for a consensus label
    assert validation
    assert train

    annotator = make_user("ann")
    add_member(project, annotator)
    annotator_client = client_for(annotator)
    served = next_item(annotator_client, project)
    assert served.status_code == 200
    assert served.json()["external_id"] == "open"
    assert annotator_client.post(f"/api/items/{served.json()['id']}/skip").status_code == 204
    assert next_item(annotator_client, project).status_code == 204  # imported-label items are never served


def test_a_snapshot_holds_imported_labels_with_their_source(owner, client, settings, monkeypatch, tmp_path):
    import annotation.datasets.build as build
    from tests.datasets.helpers import build as snapshot_build
    from tests.datasets.helpers import rows

    settings.TANDEM_SNAPSHOT_DIR = tmp_path / "snapshots"
    settings.TANDEM_SNAPSHOT_EAGER_FORMATS = []
    monkeypatch.setattr(build, "_progress", lambda job_id, done, total: None)  # published on another connection
    project = make_project(owner, task_type="multilabel", labels=("a", "b"))
    data = [{"external_id": "x", "text": "one", "labels": ["b", "a"]}, {"external_id": "y", "text": "two"}]
    assert run_import(client, project, rows=data)["result"]["labeled"] == 1
    snapshot = snapshot_build(project, owner)  # default filters: approved items
    assert [(r["external_id"], r["label"], r["label_source"], r["annotations"]) for r in rows(snapshot)] == [
        ("x", ["a", "b"], "imported", [])
    ]


def test_a_label_that_imported_labels_use_cannot_be_removed(owner, client):
    # no annotation holds it, but a final label does: removing or renaming it would orphan that label (and fail
    # the snapshot formats that map names to ClassLabel ids)
    project = make_project(owner, labels=("ham", "spam"))
    job = run_import(client, project, file=jsonl({"external_id": "a", "text": "win", "label": "spam"}), name="a.jsonl")
    assert job["status"] == "succeeded", job
    labels = [{"name": "ham", "hotkey": "1", "color": "#1f77b4"}]
    r = client.patch(f"/api/projects/{project.pk}", {"labels": labels}, format="json")
    assert r.status_code == 409, r.content
    assert r.json()["errors"][0]["field"] == "labels"
    r = client.patch(f"/api/projects/{project.pk}", {"task_type": "multilabel"}, format="json")
    assert r.status_code == 409
    assert FinalLabel.objects.get(item__project=project).value == {"label": "spam"}
