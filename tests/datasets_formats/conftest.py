"""Snapshots made by hand for the format tests: a Snapshot row and a data.jsonl in the canonical shape
(docs/datasets.md), so these tests do not depend on the build."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from typing import Any

import pytest
from django.utils import timezone

from annotation.datasets.paths import canonical_path
from annotation.models import Snapshot
from annotation.models.snapshot import SnapshotStatus
from tests.conftest import add_member, client_for, make_project, make_user

META = [
    {"field": "n", "column": "n", "type": "int64"},
    {"field": "score", "column": "score", "type": "float64"},
    {"field": "flag", "column": "flag", "type": "bool"},
    {"field": "extra", "column": "extra", "type": "json"},
    {"field": "text", "column": "meta_text", "type": "string"},
    {"field": "source", "column": "source", "type": "string"},
]
META_VALUES = [
    {"n": 3, "score": 0.5, "flag": True, "extra": {"a": [1, 2]}, "meta_text": "orig", "source": "=HYPERLINK(x)"},
    {"n": -7, "score": 2.0, "flag": False, "extra": "-dash", "meta_text": None, "source": "web"},
    {"n": None, "score": None, "flag": None, "extra": None, "meta_text": "x", "source": None},
    {"n": 0, "score": -1.25, "flag": True, "extra": [True, None], "meta_text": "", "source": "@mention"},
]

CLASSIFICATION = [
    ("c1", "=1+1 sum trick", "sports", "consensus", "train"),
    ("c2", 'Plain text, with "quotes" and a\nnewline', "politics", "review", "validation"),
    ("c3", "ünïcode ✓ text", None, None, "test"),
    ("c4", "+45 tab\tinside", "tech", "gold", "train"),
]
MULTILABEL = [
    ("m1", "-minus first", ["sports", "tech"], "consensus", "train"),
    ("m2", "second", [], "adjudication", "validation"),
    ("m3", "third", None, None, "test"),
    ("m4", "fourth", ["politics"], "imported", "train"),
]
SPANS = [
    (
        "s1",
        "EU rejects German call",
        [{"start": 0, "end": 2, "label": "ORG"}, {"start": 11, "end": 17, "label": "MISC"}],
        "consensus",
        "train",
    ),
    (
        "s2",
        "Peter Blackburn lives in New York",
        [{"start": 0, "end": 15, "label": "PER"}, {"start": 25, "end": 33, "label": "LOC"}],
        "review",
        "validation",
    ),
    ("s3", "no entities here", None, None, "test"),
    ("s4", "  ", [], "gold", "train"),
    (
        "s5",
        "New York New York",
        [{"start": 0, "end": 8, "label": "LOC"}, {"start": 9, "end": 17, "label": "LOC"}],
        "consensus",
        "test",
    ),
]
LABELS = {
    "classification": ["sports", "politics", "tech"],
    "multilabel": ["sports", "politics", "tech"],
    "spans": ["PER", "ORG", "LOC", "MISC"],
}


def canonical_rows(task_type: str, *, meta: bool = True, specs=None) -> list[dict[str, Any]]:
    specs = (
        specs
        if specs is not None
        else {"classification": CLASSIFICATION, "multilabel": MULTILABEL, "spans": SPANS}[task_type]
    )
    rows = []
    for i, (ext, text, label, source, split) in enumerate(specs):
        row: dict[str, Any] = {"external_id": ext, "text": text}
        if meta:
            row |= META_VALUES[i % len(META_VALUES)]
        annotations = (
            [] if label is None else [{"annotator": "ann", "value": label}, {"annotator": "=bob", "value": label}]
        )
        suggestion = None if i % 2 else {"model_version": "3", "value": label, "confidence": 0.75 if i else None}
        if label is None:
            suggestion = None
        row |= {
            "label": label,
            "label_source": source,
            "split": split,
            "annotations": annotations,
            "suggestion": suggestion,
        }
        rows.append(row)
    return rows


def _names(task_type: str, label: Any) -> list[str]:
    if label is None:
        return []
    if task_type == "classification":
        return [label]
    if task_type == "multilabel":
        return list(label)
    return [s["label"] for s in label]


def snapshot_make(project, rows: list[dict[str, Any]], *, meta=META, status=SnapshotStatus.READY, **fields) -> Snapshot:
    """A Snapshot of `project` holding `rows` (written to its data.jsonl the way the build serialises them)."""
    task_type = project.task_type
    per_split: dict[str, Counter] = {}
    for row in rows:
        per_split.setdefault(row["split"], Counter()).update(_names(task_type, row["label"]))
    overall = sum(per_split.values(), Counter())
    snapshot = Snapshot.objects.create(
        project=project,
        name=fields.pop("name", "Release 1"),
        status=status,
        filters={"status": ["approved"], "gold": "include"},
        split={"train": 0.5, "validation": 0.25, "test": 0.25, "seed": 7, "stratify": True},
        rows=len(rows),
        splits=dict(Counter(r["split"] for r in rows)),
        label_distribution=dict(overall),
        agreement={"mean": 0.8, "rows": len(rows)},
        model_version=3,
        schema={
            "task_type": task_type,
            "labels": list(project.label_names),
            "meta": list(meta),
            "per_split": {s: dict(c) for s, c in per_split.items()},
        },
        finished_at=timezone.now() if status == SnapshotStatus.READY else None,
        created_by=project.created_by,
        **fields,
    )
    path = canonical_path(snapshot)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = b"".join(json.dumps(row, ensure_ascii=False, separators=(",", ":")).encode() + b"\n" for row in rows)
    path.write_bytes(data)
    snapshot.sha256 = hashlib.sha256(data).hexdigest()
    snapshot.save(update_fields=["sha256"])
    return snapshot


@pytest.fixture(autouse=True)
def _snapshot_dir(settings, tmp_path):
    settings.TANDEM_SNAPSHOT_DIR = tmp_path / "snapshots"


@pytest.fixture
def owner(db):
    return make_user()


def project_of(owner, task_type: str, *, license: str = "", **fields):
    project = make_project(
        owner,
        name=fields.pop("name", f"News {task_type}"),
        task_type=task_type,
        labels=[{"name": n} for n in LABELS[task_type]],
        guidelines=fields.pop("guidelines", "Label the topic."),
        **fields,
    )
    project.license = license
    project.save(update_fields=["license"])
    return project


@pytest.fixture
def classification_snapshot(owner):
    project = project_of(owner, "classification", license="cc-by-4.0")
    return snapshot_make(project, canonical_rows("classification"))


@pytest.fixture
def multilabel_snapshot(owner):
    project = project_of(owner, "multilabel")
    return snapshot_make(project, canonical_rows("multilabel"))


@pytest.fixture
def spans_snapshot(owner):
    project = project_of(owner, "spans")
    return snapshot_make(project, canonical_rows("spans", meta=False), meta=[])


@pytest.fixture
def empty_snapshot(owner):
    project = project_of(owner, "classification", name="Empty one")
    return snapshot_make(project, [])


@pytest.fixture
def owner_client(owner):
    return client_for(owner)


@pytest.fixture
def member_client():
    def make(project, role: str):
        user = make_user()
        add_member(project, user, role)
        return client_for(user)

    return make
