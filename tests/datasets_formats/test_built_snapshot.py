"""A snapshot built by the real build (eager CSV and Parquet) and downloaded in every format: the formats agree
with the canonical JSONL, and the card embedded in the Parquet file during the build is the card served later."""

from __future__ import annotations

import io

import pyarrow.parquet as pq
import pytest

from annotation.datasets.formats import download_slug
from annotation.datasets.paths import canonical_path
from tests.conftest import add_member, client_for, make_project, make_user
from tests.datasets.helpers import build, item, label
from tests.datasets_formats.readers import conll_documents, hf_load, jsonl_rows, untar

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_published_progress(monkeypatch):
    import annotation.datasets.build as build_module

    monkeypatch.setattr(build_module, "_progress", lambda job_id, done, total: None)


def test_built_spans_snapshot_downloads(tmp_path):
    manager = make_user("b_manager")
    project = make_project(manager, name="Ner", task_type="spans", labels=("PER", "LOC"))
    alice = make_user("b_alice")
    add_member(project, alice)
    texts = ["Ada Lovelace met Babbage", "in London today", "nothing here", "Paris and Rome"]
    spans = [
        [{"start": 0, "end": 12, "label": "PER"}, {"start": 17, "end": 24, "label": "PER"}],
        [{"start": 3, "end": 9, "label": "LOC"}],
        [],
        [{"start": 0, "end": 5, "label": "LOC"}, {"start": 10, "end": 14, "label": "LOC"}],
    ]
    for i, (text, value) in enumerate(zip(texts, spans, strict=True)):
        it = item(project, f"n{i}", text, lang="en")
        label(it, {"spans": value}, (alice, {"spans": value}))
    snapshot = build(project, manager, split={"train": 0.5, "validation": 0.25, "test": 0.25, "seed": 1})
    assert {"jsonl", "csv", "parquet"} <= set(snapshot.formats)  # the eager formats

    client = client_for(manager)
    expected = jsonl_rows(canonical_path(snapshot).read_bytes())

    def download(fmt: str) -> bytes:
        response = client.get(f"/api/snapshots/{snapshot.pk}/download?format={fmt}")
        assert response.status_code == 200, fmt
        return b"".join(response.streaming_content)

    card = download("card").decode()
    table = pq.read_table(io.BytesIO(download("parquet")))
    assert table.schema.metadata[b"tandem.card"].decode() == card  # written during the build, still the card
    assert table.column("label").to_pylist() == [r["label"] for r in expected]

    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "d.conll").write_bytes(download("conll"))
    docs = {d[0]: d[2] for d in conll_documents(tmp_path / "c" / "d.conll")}
    assert docs["n0"] == [("Ada", "B-PER"), ("Lovelace", "I-PER"), ("met", "O"), ("Babbage", "B-PER")]
    assert docs["n3"] == [("Paris", "B-LOC"), ("and", "O"), ("Rome", "B-LOC")]

    untar(download("hf"), tmp_path / "hf")
    dd = hf_load(tmp_path / "hf" / download_slug(snapshot))
    assert sum(ds.num_rows for ds in dd.values()) == len(expected) == 4
    assert dd[next(iter(dd))].features["label"].feature["label"].names == ["PER", "LOC"]
