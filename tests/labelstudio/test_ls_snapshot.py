"""A built snapshot's labelstudio file (formats.format_ensure -> ls_write_snapshot over the canonical data.jsonl),
read back with `json` and imported into a new project: texts, spans, annotators and suggestions survive."""

from __future__ import annotations

import json
from typing import Any

import pytest

from annotation.datasets.formats import format_ensure
from annotation.models import Annotation, FinalLabel, Item
from tests.conftest import make_project, make_user
from tests.datasets.helpers import build, rows
from tests.labelstudio.conftest import ls_run, res
from tests.labelstudio.test_ls_export import check_ls_shape

pytestmark = pytest.mark.django_db

LABELS = ("PER", "LOC", "ORG", "DATE")


@pytest.fixture(autouse=True)
def _snapshot_dir(settings, tmp_path):
    settings.TANDEM_SNAPSHOT_DIR = tmp_path / "snapshots"
    settings.TANDEM_SNAPSHOT_EAGER_FORMATS = []


@pytest.fixture(autouse=True)
def _progress(monkeypatch):
    """The build publishes progress on a second connection, which a test's transaction keeps out (as in
    tests/datasets/conftest.py)."""
    import annotation.datasets.build as building

    monkeypatch.setattr(building, "_progress", lambda job_id, done, total: None)


def spans_by_item(project) -> dict[str, dict[str, Any]]:
    out = {}
    for item in Item.objects.filter(project=project):
        final = FinalLabel.objects.filter(item=item).first()
        out[item.external_id] = {
            "text": item.text,
            "annotations": {
                a.annotator.username: a.value for a in Annotation.objects.filter(item=item).select_related("annotator")
            },
            "final": final.value if final else None,
        }
    return out


def test_snapshot_labelstudio_file_round_trips_a_span_project():
    owner = make_user("owner")
    carol = make_user("carol")
    carol.email = "carol@example.org"
    carol.save(update_fields=["email"])
    project = make_project(owner, name="ner", labels=LABELS, task_type="spans")
    assert ls_run(project, owner, "ner.json").status == "succeeded"
    snapshot = build(project, owner, split={"train": 1.0, "validation": 0.0, "test": 0.0, "seed": 0})
    canonical = rows(snapshot)
    assert len(canonical) == 4  # every imported item is approved

    path = format_ensure(snapshot, "labelstudio")
    tasks = json.loads(path.read_bytes())
    check_ls_shape(tasks, "spans")
    assert [t["data"]["external_id"] for t in tasks] == [r["external_id"] for r in canonical]
    assert [t["data"]["split"] for t in tasks] == ["train"] * 4
    first = tasks[0]
    assert first["data"]["doc"] == "news-17"
    assert len({a["completed_by"]["id"] for a in first["annotations"]}) == 2
    who = sorted((a["completed_by"]["email"], a["completed_by"]["id"]) for a in first["annotations"])
    assert who[0] == ("", 5)  # the placeholder ls-5 goes back out under its Label Studio id
    assert who[1][0] == "carol@example.org"
    assert first["predictions"][0]["model_version"] == "spacy-en-core-web-sm"
    assert first["predictions"][0]["score"] == 0.78
    # the emoji task: code-point offsets, and the quoted text they select
    emoji = next(t for t in tasks if t["data"]["external_id"] == "ls-203")
    region = emoji["annotations"][0]["result"][0]["value"]
    assert (region["start"], region["end"], region["text"]) == (2, 7, "Guido")

    target = make_project(owner, name="copy", labels=LABELS, task_type="spans")
    job = ls_run(target, owner, path.read_bytes())
    assert job.status == "succeeded", job.result
    assert res(job)["users_created"] == 0
    got, want = spans_by_item(target), spans_by_item(project)
    assert got == want
    assert set(got["ls-201"]["annotations"]) == {"carol", "ls-5"}
