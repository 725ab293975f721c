"""format_ensure writes each format once from the canonical JSONL; each file is read back with its reference
reader (csv, pyarrow, datasets.load_from_disk offline, nltk's CoNLL reader) and compared with the JSONL."""

from __future__ import annotations

import hashlib
import json

import pytest
import yaml

from annotation.datasets.card import card_markdown
from annotation.datasets.formats import FILES, download_slug, format_applicable, format_ensure
from annotation.datasets.paths import canonical_path, snapshot_dir
from annotation.exceptions import InvalidInput
from annotation.models import Snapshot
from tests.datasets_formats.conftest import canonical_rows, project_of, snapshot_make
from tests.datasets_formats.readers import conll_documents, csv_rows, hf_load, jsonl_rows, untar

pytestmark = pytest.mark.django_db

TASKS = ["classification_snapshot", "multilabel_snapshot", "spans_snapshot"]


def _canonical(snapshot) -> list[dict]:
    return jsonl_rows(canonical_path(snapshot).read_bytes())


def _json_meta_as_text(snapshot, rows):
    json_columns = [m["column"] for m in snapshot.schema["meta"] if m["type"] == "json"]
    return [
        {
            k: (json.dumps(v, ensure_ascii=False, separators=(",", ":")) if k in json_columns and v is not None else v)
            for k, v in row.items()
        }
        for row in rows
    ]


@pytest.mark.parametrize("fixture", TASKS)
def test_csv_reads_back_as_the_jsonl(fixture, request):
    snapshot = request.getfixturevalue(fixture)
    path = format_ensure(snapshot, "csv")
    header, rows = csv_rows(path.read_bytes(), snapshot.schema)
    expected = _canonical(snapshot)
    assert header == list(expected[0])
    # CSV has one empty cell for null and for "": the only loss
    assert rows == [{k: (None if v == "" else v) for k, v in row.items()} for row in expected]


def test_csv_neutralises_every_formula_cell(classification_snapshot):
    import csv
    import io

    data = format_ensure(classification_snapshot, "csv").read_text(encoding="utf-8")
    cells = [cell for row in csv.reader(io.StringIO(data, newline="")) for cell in row]
    assert "'=1+1 sum trick" in cells  # text
    assert "'+45 tab\tinside" in cells
    assert "'=HYPERLINK(x)" in cells  # string metadata
    assert "'@mention" in cells
    assert "'-7" in cells  # a number too: every cell, as the issue and the card say
    assert "'-1.25" in cells
    assert '"-dash"' in cells  # a json-typed value: JSON text, which starts with a quote
    assert not [c for c in cells if c.startswith(("=", "+", "-", "@", "\t", "\r"))]


def test_csv_header_names_are_neutralised_too(owner):
    # metadata field names come from imported data: a formula there would run in the header row
    project = project_of(owner, "classification")
    rows = [{**r, "=HYPERLINK(1)": "x"} for r in canonical_rows("classification", meta=False)]
    meta = [{"field": "=HYPERLINK(1)", "column": "=HYPERLINK(1)", "type": "string"}]
    snapshot = snapshot_make(project, rows, meta=meta)
    import csv
    import io

    header = next(csv.reader(io.StringIO(format_ensure(snapshot, "csv").read_text(encoding="utf-8"), newline="")))
    assert "'=HYPERLINK(1)" in header
    assert not [c for c in header if c.startswith(("=", "+", "-", "@", "\t", "\r"))]


@pytest.mark.parametrize("fixture", TASKS)
def test_parquet_has_real_types_and_the_jsonl_rows(fixture, request):
    import pyarrow as pa
    import pyarrow.parquet as pq

    snapshot = request.getfixturevalue(fixture)
    table = pq.read_table(format_ensure(snapshot, "parquet"))
    expected = _canonical(snapshot)
    assert table.column_names == list(expected[0])
    assert table.to_pylist() == _json_meta_as_text(snapshot, expected)
    types = {f.name: f.type for f in table.schema}
    assert types["annotations"].value_type.field("annotator").type == pa.string()
    assert types["suggestion"].field("confidence").type == pa.float64()
    if snapshot.schema["meta"]:
        assert (types["n"], types["score"], types["flag"], types["extra"]) == (
            pa.int64(),
            pa.float64(),
            pa.bool_(),
            pa.string(),
        )
    label = {"classification": pa.string(), "multilabel": pa.list_(pa.string())}.get(snapshot.project.task_type)
    if label is None:
        assert types["label"].value_type.field("start").type == pa.int64()
    else:
        assert types["label"] == label
    meta = table.schema.metadata
    assert meta[b"tandem.card"].decode() == card_markdown(snapshot)
    assert json.loads(meta[b"tandem.snapshot"]) == {"id": snapshot.pk, "name": "Release 1", "sha256": snapshot.sha256}


def _decoded(features, task_type, value):
    if value is None:
        return None
    if task_type == "classification":
        return features.int2str(value)
    if task_type == "multilabel":
        return [features.feature.int2str(v) for v in value]
    return [{**s, "label": features.feature["label"].int2str(s["label"])} for s in value]


@pytest.mark.parametrize("fixture", TASKS)
def test_hf_loads_offline_with_class_labels_and_one_directory_per_split(fixture, request, tmp_path):
    snapshot = request.getfixturevalue(fixture)
    task_type = snapshot.project.task_type
    names = untar(format_ensure(snapshot, "hf").read_bytes(), tmp_path)
    top = download_slug(snapshot)
    assert names[0] == top
    assert all(n == top or n.startswith(top + "/") for n in names)
    assert f"{top}/README.md" in names
    dd = hf_load(tmp_path / top)
    expected = _json_meta_as_text(snapshot, _canonical(snapshot))
    assert sorted(dd) == sorted({r["split"] for r in expected})
    label = dd["train"].features["label"]
    label_names = {
        "classification": lambda f: f.names,
        "multilabel": lambda f: f.feature.names,
        "spans": lambda f: f.feature["label"].names,
    }[task_type](label)
    assert label_names == snapshot.schema["labels"]
    for split, ds in dd.items():
        got = []
        for row in ds:
            row["label"] = _decoded(label, task_type, row["label"])
            row["annotations"] = [{**a, "value": _decoded(label, task_type, a["value"])} for a in row["annotations"]]
            if row["suggestion"] is not None:
                row["suggestion"]["value"] = _decoded(label, task_type, row["suggestion"]["value"])
            got.append(row)
        assert got == [r for r in expected if r["split"] == split]
    assert (tmp_path / top / "README.md").read_text() == card_markdown(snapshot)
    assert not (snapshot_dir(snapshot) / "hf.work").exists()


def test_hf_tar_is_deterministic(classification_snapshot):
    import io
    import tarfile

    data = format_ensure(classification_snapshot, "hf").read_bytes()
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = tar.getmembers()
    stamp = int(classification_snapshot.finished_at.timestamp())
    assert {m.mtime for m in members} == {stamp}
    assert [m.name for m in members] == sorted(m.name for m in members)


def test_conll_is_bio_read_by_nltk(spans_snapshot):
    path = format_ensure(spans_snapshot, "conll")
    docs = conll_documents(path)
    assert [(d[0], d[1]) for d in docs] == [(r["external_id"], r["split"]) for r in _canonical(spans_snapshot)]
    assert [d[2] for d in docs] == [
        [("EU", "B-ORG"), ("rejects", "O"), ("German", "B-MISC"), ("call", "O")],
        [("Peter", "B-PER"), ("Blackburn", "I-PER"), ("lives", "O"), ("in", "O"), ("New", "B-LOC"), ("York", "I-LOC")],
        [("no", "O"), ("entities", "O"), ("here", "O")],
        [],  # a text without tokens is still its own document
        [("New", "B-LOC"), ("York", "I-LOC"), ("New", "B-LOC"), ("York", "I-LOC")],  # adjacent spans stay two
    ]


def test_conll_only_for_span_projects(classification_snapshot):
    assert not format_applicable(classification_snapshot, "conll")
    with pytest.raises(InvalidInput) as exc:
        format_ensure(classification_snapshot, "conll")
    assert exc.value.errors[0]["field"] == "format"


def test_conll_refuses_overlapping_spans_and_leaves_no_file(owner):
    project = project_of(owner, "spans")
    rows = canonical_rows(
        "spans",
        meta=False,
        specs=[
            ("ok", "a b", [{"start": 0, "end": 1, "label": "PER"}], "consensus", "train"),
            (
                "bad one",
                "New York City",
                [{"start": 0, "end": 8, "label": "LOC"}, {"start": 4, "end": 13, "label": "ORG"}],
                "consensus",
                "test",
            ),
        ],
    )
    snapshot = snapshot_make(project, rows, meta=[])
    with pytest.raises(InvalidInput) as exc:
        format_ensure(snapshot, "conll")
    assert exc.value.errors[0]["field"] == "format"
    assert "bad one" in exc.value.errors[0]["message"]
    assert sorted(p.name for p in snapshot_dir(snapshot).iterdir()) == ["data.conll.lock", "data.jsonl"]
    assert "conll" not in Snapshot.objects.get(pk=snapshot.pk).formats


def test_unknown_format(classification_snapshot):
    with pytest.raises(InvalidInput) as exc:
        format_ensure(classification_snapshot, "xlsx")
    assert exc.value.errors[0]["field"] == "format"
    assert "parquet" in exc.value.errors[0]["message"]


def test_each_format_is_recorded_once_and_merged(classification_snapshot):
    stale = Snapshot.objects.get(pk=classification_snapshot.pk)  # a second process's copy, formats {}
    csv_path = format_ensure(classification_snapshot, "csv")
    format_ensure(stale, "parquet")  # must not drop csv's entry
    jsonl_path = format_ensure(stale, "jsonl")
    stored = Snapshot.objects.get(pk=classification_snapshot.pk).formats
    assert set(stored) == {"csv", "parquet", "card", "jsonl"}  # parquet carries the card: written first
    for fmt, path in (("csv", csv_path), ("jsonl", jsonl_path), ("parquet", snapshot_dir(stale) / FILES["parquet"])):
        data = path.read_bytes()
        assert stored[fmt] == {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    assert stored["jsonl"]["sha256"] == classification_snapshot.sha256
    before = csv_path.stat().st_mtime_ns
    csv_path.write_text("changed")  # already written: never written again, even by a fresh copy of the row
    assert format_ensure(Snapshot.objects.get(pk=classification_snapshot.pk), "csv") == csv_path
    assert csv_path.read_text() == "changed"
    assert csv_path.stat().st_mtime_ns >= before
    assert not [p for p in snapshot_dir(stale).iterdir() if p.name.endswith(".tmp")]


def test_card_header_is_hf_yaml(classification_snapshot):
    text = format_ensure(classification_snapshot, "card").read_text(encoding="utf-8")
    assert text == card_markdown(classification_snapshot)
    _, header, body = text.split("---\n", 2)
    meta = yaml.safe_load(header)
    assert meta["license"] == "cc-by-4.0"
    assert meta["task_categories"] == ["text-classification"]
    info = meta["dataset_info"]
    assert info["splits"] == [
        {"name": "train", "num_examples": 2},
        {"name": "validation", "num_examples": 1},
        {"name": "test", "num_examples": 1},
    ]
    features = {f["name"]: f for f in info["features"]}
    assert list(features) == list(_canonical(classification_snapshot)[0])
    assert features["label"]["dtype"]["class_label"]["names"] == {"0": "sports", "1": "politics", "2": "tech"}
    assert features["n"]["dtype"] == "int64"
    for needle in ("Label the topic.", classification_snapshot.sha256, "leading `'`", "load_from_disk", "seed"):
        assert needle in body


def test_card_without_license_and_pseudonymised(owner):
    project = project_of(owner, "multilabel")
    snapshot = snapshot_make(project, canonical_rows("multilabel"), pseudonymize=True)
    _, header, body = card_markdown(snapshot).split("---\n", 2)
    meta = yaml.safe_load(header)
    assert "license" not in meta
    assert "pseudonyms" in body


def test_empty_snapshot_every_format(empty_snapshot, tmp_path):
    import pyarrow.parquet as pq

    header, rows = csv_rows(format_ensure(empty_snapshot, "csv").read_bytes(), empty_snapshot.schema)
    assert rows == []
    assert header[:2] == ["external_id", "text"]
    assert header[-1] == "suggestion"
    table = pq.read_table(format_ensure(empty_snapshot, "parquet"))
    assert table.num_rows == 0
    assert table.column_names == header
    untar(format_ensure(empty_snapshot, "hf").read_bytes(), tmp_path)
    dd = hf_load(tmp_path / download_slug(empty_snapshot))
    assert dict(dd) == {}
    _, _card_header, body = card_markdown(empty_snapshot).split("---\n", 2)
    assert "empty" in body
    assert format_ensure(empty_snapshot, "jsonl").read_bytes() == b""


def test_bio_tags_follow_the_span_token_rule():
    from annotation.datasets.writers import bio_tags

    # a token two spans touch belongs to the first one (services/gold.py's rule); adjacent spans stay apart
    assert bio_tags(
        "New-York is big", [{"start": 4, "end": 8, "label": "ORG"}, {"start": 0, "end": 3, "label": "LOC"}]
    ) == [
        ("New-York", "B-LOC"),
        ("is", "O"),
        ("big", "O"),
    ]
    assert bio_tags("a b c", [{"start": 0, "end": 3, "label": "X"}, {"start": 4, "end": 5, "label": "X"}]) == [
        ("a", "B-X"),
        ("b", "I-X"),
        ("c", "B-X"),
    ]


def test_hf_refuses_a_label_the_snapshot_does_not_have(owner):
    project = project_of(owner, "classification")
    rows = canonical_rows("classification", specs=[("x", "t", "cooking", "consensus", "train")])
    snapshot = snapshot_make(project, rows)
    with pytest.raises(ValueError, match="cooking"):
        format_ensure(snapshot, "hf")
    assert not [p.name for p in snapshot_dir(snapshot).iterdir() if p.name.startswith("hf.") and p.suffix != ".lock"]


def test_concurrent_callers_write_a_format_once(classification_snapshot, monkeypatch):
    import threading
    import time

    from django.db import connection

    from annotation.datasets import writers

    calls = []
    real = writers.csv_write

    def slow_csv_write(**kwargs):
        calls.append(threading.get_ident())
        time.sleep(0.2)  # long enough for the other caller to reach the lock
        real(**kwargs)

    monkeypatch.setattr(writers, "csv_write", slow_csv_write)
    results, errors = [], []

    def call(copy):
        # a thread has its own connection, which cannot see this test's uncommitted Snapshot row: the write and
        # the lock are what is tested here (the one-UPDATE merge is tested above)
        try:
            results.append(format_ensure(copy, "csv"))
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    copies = [Snapshot.objects.get(pk=classification_snapshot.pk) for _ in range(2)]
    threads = [threading.Thread(target=call, args=(copy,)) for copy in copies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(calls) == 1
    assert len(set(results)) == 1


def test_files_gone_is_409(classification_snapshot):
    from annotation.exceptions import Conflict

    canonical_path(classification_snapshot).unlink()
    with pytest.raises(Conflict):
        format_ensure(classification_snapshot, "csv")
