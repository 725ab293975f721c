"""The snapshot build end to end (synchronously, the task's work without Celery): data.jsonl read back with `json`,
the row shape, pseudonyms, suggestions, the content hash and immutability, the counts, the Job."""

from __future__ import annotations

import hashlib
import re

import krippendorff
import numpy as np
import pyarrow.parquet as pq
import pytest

from annotation.datasets.paths import canonical_path, rows_read, snapshot_dir
from annotation.models import Annotation, FinalLabel, Item, Job
from modelsvc.models import ModelVersion
from tests.conftest import add_member, make_project, make_user
from tests.datasets.helpers import build, item, label, rows

pytestmark = pytest.mark.django_db

SPORTS, POLITICS, TECH = {"label": "sports"}, {"label": "politics"}, {"label": "tech"}


@pytest.fixture
def world():
    manager = make_user("w_manager")
    project = make_project(manager, annotations_per_item=2)
    alice, bob = make_user("alice_real_name"), make_user("bob_real_name")
    for user in (alice, bob):
        add_member(project, user)
    # a metadata field named like a row column ("label") and one ("split") whose prefixed name is taken too
    a1 = item(project, "a1", "Match report", source="web", label="clash", n=1, split="x", meta_split="y")
    label(a1, SPORTS, (alice, SPORTS), (bob, SPORTS))
    Annotation.objects.filter(item=a1, annotator=alice).update(
        suggestion={"model_version": 3, "kind": "fine_tuned", "value": POLITICS, "confidence": 0.7}
    )
    Item.objects.filter(pk=a1.pk).update(prediction={"model_version": 4, "value": TECH, "confidence": 0.9})
    a2 = item(project, "a2", "Election =SUM(A1)", source="rss", n=2)
    label(a2, POLITICS, (alice, POLITICS), (bob, TECH), source="review")
    Item.objects.filter(pk=a2.pk).update(
        prediction={"model_version": 4, "value": TECH, "probabilities": {"tech": 0.6, "sports": 0.3, "politics": 0.1}}
    )
    a3 = item(project, "a3", "Not decided", status="in_progress")
    label(a3, None, (alice, TECH))
    ModelVersion.objects.create(
        project=project, version=4, kind="fine_tuned", base_model="m", labels=[], task_type="classification",
        status="active",
    )  # fmt: skip
    return {"project": project, "manager": manager, "alice": alice, "bob": bob}


def test_rows_have_the_canonical_shape(world):
    snapshot = build(world["project"], world["manager"], split={"train": 1, "validation": 0, "test": 0})
    got = rows(snapshot)
    assert [r["external_id"] for r in got] == ["a1", "a2"]  # approved only (the default), by item id
    first = got[0]
    assert list(first) == [
        "external_id", "text", "meta_label", "meta_meta_split", "meta_split", "n", "source",
        "label", "label_source", "split", "annotations", "suggestion",
    ]  # fmt: skip
    assert first["meta_label"] == "clash"
    assert (first["meta_split"], first["meta_meta_split"]) == ("y", "x")
    assert first["text"] == "Match report"
    assert (first["label"], first["label_source"], first["split"]) == ("sports", "consensus", "train")
    assert first["annotations"] == [
        {"annotator": "alice_real_name", "value": "sports"},
        {"annotator": "bob_real_name", "value": "sports"},
    ]
    # the suggestion recorded on the annotation wins over the item's current prediction
    assert first["suggestion"] == {"model_version": "3", "value": "politics", "confidence": 0.7}
    second = got[1]
    assert second["meta_label"] is None  # every row has every metadata column
    assert second["label_source"] == "review"
    # no recorded suggestion: the prediction at build time, its label's probability as the confidence
    assert second["suggestion"] == {"model_version": "4", "value": "tech", "confidence": 0.6}
    assert list(rows_read(snapshot)) == got
    meta = {m["column"]: (m["field"], m["type"]) for m in snapshot.schema["meta"]}
    assert meta == {
        "meta_label": ("label", "string"),
        "meta_meta_split": ("split", "string"),
        "meta_split": ("meta_split", "string"),
        "n": ("n", "int64"),
        "source": ("source", "string"),
    }


def test_pseudonyms_are_stable_and_hide_the_names(world):
    one = build(world["project"], world["manager"], pseudonymize=True)
    two = build(world["project"], world["manager"], pseudonymize=True)
    raw = canonical_path(one).read_bytes()
    assert b"alice_real_name" not in raw
    assert b"bob_real_name" not in raw
    names = [a["annotator"] for r in rows(one) for a in r["annotations"]]
    assert all(re.fullmatch(r"annotator-[0-9a-f]{8}", n) for n in names)
    assert names[0] == names[2] != names[1]  # alice, bob, alice
    assert raw == canonical_path(two).read_bytes()


def test_the_hash_is_the_files_and_reproducible(world):
    one = build(world["project"], world["manager"], split={"seed": 7})
    two = build(world["project"], world["manager"], split={"seed": 7})
    assert one.sha256 == hashlib.sha256(canonical_path(one).read_bytes()).hexdigest()
    assert one.sha256 == two.sha256
    assert one.formats["jsonl"] == {"bytes": canonical_path(one).stat().st_size, "sha256": one.sha256}


def test_a_snapshot_never_changes(world):
    snapshot = build(world["project"], world["manager"])
    before = canonical_path(snapshot).read_bytes()
    FinalLabel.objects.filter(item__external_id="a1").update(value=TECH)
    snapshot.refresh_from_db()
    assert canonical_path(snapshot).read_bytes() == before
    assert hashlib.sha256(before).hexdigest() == snapshot.sha256
    assert rows(snapshot)[0]["label"] == "sports"
    later = build(world["project"], world["manager"])
    assert rows(later)[0]["label"] == "tech"
    assert later.sha256 != snapshot.sha256


def test_counts_agreement_and_model_version(world):
    snapshot = build(world["project"], world["manager"], split={"train": 0.5, "validation": 0.5, "test": 0})
    assert snapshot.rows == 2
    assert snapshot.splits == {"train": 1, "validation": 1, "test": 0}
    assert snapshot.label_distribution == {"sports": 1, "politics": 1, "tech": 0}
    assert snapshot.model_version == 4
    per_split = snapshot.schema["per_split"]
    assert sum(sum(c.values()) for c in per_split.values()) == 2
    assert set(per_split) == {"train", "validation", "test"}
    agreement = snapshot.agreement
    assert agreement["items"] == 2
    assert agreement["mean_item_agreement"] == pytest.approx((1 + 0.5) / 2)
    codes = {"sports": 0, "politics": 1, "tech": 2}
    # reliability data: annotators x units (alice, bob) x (a1, a2)
    expected = krippendorff.alpha(
        reliability_data=np.array([[codes["sports"], codes["politics"]], [codes["sports"], codes["tech"]]], float),
        level_of_measurement="nominal",
    )
    assert agreement["krippendorff_alpha"] == pytest.approx(expected)


def test_the_job_records_progress_and_result(world, monkeypatch, progress_calls):
    import annotation.datasets.build as build_module

    monkeypatch.setattr(build_module, "BATCH", 1)
    snapshot = build(world["project"], world["manager"])
    job = Job.objects.get(pk=snapshot.job_id)
    assert (job.kind, job.status) == ("snapshot", "succeeded")
    assert job.result == {"snapshot": snapshot.pk, "rows": 2}
    assert job.progress == job.total == 2
    assert progress_calls == [(job.pk, 0, 2), (job.pk, 1, 2), (job.pk, 2, 2)]  # rows written, after each batch
    assert snapshot.finished_at is not None


def test_an_empty_snapshot_is_built_and_says_so(world):
    snapshot = build(world["project"], world["manager"], filters={"labels": "tech"})
    assert snapshot.rows == 0
    assert canonical_path(snapshot).read_bytes() == b""
    assert snapshot.sha256 == hashlib.sha256(b"").hexdigest()
    assert snapshot.splits == {"train": 0, "validation": 0, "test": 0}
    assert snapshot.agreement["krippendorff_alpha"] is None


def test_eager_formats_are_written_by_the_build(world, settings):
    settings.TANDEM_SNAPSHOT_EAGER_FORMATS = ["csv", "parquet", "conll"]  # conll does not apply: skipped
    snapshot = build(world["project"], world["manager"])
    assert set(snapshot.formats) == {"jsonl", "card", "csv", "parquet"}
    table = pq.read_table(snapshot_dir(snapshot) / "data.parquet")
    assert table.column("external_id").to_pylist() == ["a1", "a2"]


def test_a_failed_build_fails_the_snapshot_and_its_job(world, settings, tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("x")
    settings.TANDEM_SNAPSHOT_DIR = blocker
    from annotation.datasets.build import snapshot_build, snapshot_create

    _, job = snapshot_create(project=world["project"], user=world["manager"], body={"name": "broken"})
    built = snapshot_build(job_id=job.pk)
    assert built is not None
    assert built.status == "failed"
    assert "Building the snapshot failed" in built.error
    job.refresh_from_db()
    assert job.status == "failed"
    assert job.error == built.error
    assert snapshot_build(job_id=job.pk) is None  # an ended Job is not built again


def test_spans_and_multilabel_rows(settings):
    manager, ann = make_user(), make_user()
    spans = make_project(manager, task_type="spans", labels=["PER", "ORG"])
    it = item(spans, "s1", "Ada works at ACME", score=0.5, tags=["a"])
    value = {"spans": [{"start": 13, "end": 17, "label": "ORG"}, {"start": 0, "end": 3, "label": "PER"}]}
    label(it, value, (ann, value))
    snapshot = build(spans, manager)
    (row,) = rows(snapshot)
    assert row["label"] == [{"start": 0, "end": 3, "label": "PER"}, {"start": 13, "end": 17, "label": "ORG"}]
    assert row["annotations"][0]["value"] == row["label"]
    assert (row["score"], row["tags"]) == (0.5, ["a"])
    assert {m["field"]: m["type"] for m in snapshot.schema["meta"]} == {"score": "float64", "tags": "json"}
    assert snapshot.label_distribution == {"PER": 1, "ORG": 1}

    multi = make_project(manager, task_type="multilabel", labels=["a", "b", "c"])
    it = item(multi, "m1", flag=True)
    label(it, {"labels": ["a", "c"]}, (ann, {"labels": ["a", "c"]}))
    snapshot = build(multi, manager)
    (row,) = rows(snapshot)
    assert row["label"] == ["a", "c"]
    assert row["flag"] is True
    assert snapshot.schema["meta"] == [{"field": "flag", "column": "flag", "type": "bool"}]
    assert snapshot.label_distribution == {"a": 1, "b": 0, "c": 1}


def test_a_redelivered_build_leaves_the_snapshot_to_the_worker_building_it(world):
    import fcntl

    from annotation.datasets.build import BUILD_LOCK, snapshot_build, snapshot_create

    snapshot, job = snapshot_create(project=world["project"], user=world["manager"], body={"name": "busy"})
    folder = snapshot_dir(snapshot)
    folder.mkdir(parents=True)
    with (folder / BUILD_LOCK).open("a") as held:  # another worker's build
        fcntl.flock(held, fcntl.LOCK_EX)
        assert snapshot_build(job_id=job.pk) is None
    assert not canonical_path(snapshot).exists()
    job.refresh_from_db()
    assert job.status == "running"
    snapshot.refresh_from_db()
    assert snapshot.status == "building"
    assert snapshot_build(job_id=job.pk).status == "ready"  # reclaimed once the lock is free


def test_a_reclaimed_build_starts_from_scratch(world):
    from annotation.datasets.build import snapshot_build

    done = build(world["project"], world["manager"])
    stale = snapshot_dir(done) / "data.csv"
    stale.write_text("from an earlier attempt")
    Job.objects.filter(pk=done.job_id).update(status="running")  # its worker was lost before ending the Job
    again = snapshot_build(job_id=done.job_id)
    assert again.status == "ready"
    assert stale.exists()  # a ready snapshot is not rebuilt: its Job only succeeds
    assert Job.objects.get(pk=done.job_id).status == "succeeded"

    Job.objects.filter(pk=done.job_id).update(status="running")
    type(done).objects.filter(pk=done.pk).update(status="building")  # lost mid-build this time
    rebuilt = snapshot_build(job_id=done.job_id)
    assert rebuilt.status == "ready"
    assert not stale.exists()
    assert rebuilt.sha256 == done.sha256


@pytest.mark.parametrize("seed", range(4))
def test_the_sparse_alpha_is_the_packages(seed):
    """Large snapshots compute the nominal alpha from sparse counts (the package's arrays would not fit): the same
    number as the `krippendorff` package on random ratings, 2 to 5 per unit."""
    from annotation.datasets.build import alpha_nominal_sparse

    rng = np.random.default_rng(seed)
    n_units, n_values = 60, 4
    per_unit = rng.integers(2, 6, size=n_units)
    unit = np.repeat(np.arange(n_units), per_unit)
    code = np.where(rng.random(len(unit)) < 0.6, unit % n_values, rng.integers(0, n_values, size=len(unit)))
    counts = np.zeros((n_units, n_values), dtype=np.int64)
    np.add.at(counts, (unit, code), 1)
    expected = krippendorff.alpha(value_counts=counts, level_of_measurement="nominal")
    assert alpha_nominal_sparse(unit=unit, code=code, n_values=n_values) == pytest.approx(expected, abs=1e-12)
    assert alpha_nominal_sparse(unit=unit, code=np.zeros_like(code), n_values=n_values) == 1.0


def test_a_large_snapshot_takes_the_sparse_alpha(world, monkeypatch):
    import annotation.datasets.build as build_module

    small = build(world["project"], world["manager"])
    monkeypatch.setattr(build_module, "ALPHA_PACKAGE_MAX_CELLS", 0)
    large = build(world["project"], world["manager"])
    assert small.agreement["krippendorff_alpha"] is not None
    assert large.agreement == pytest.approx(small.agreement)


def test_a_format_that_cannot_be_written_never_fails_the_snapshot(settings):
    # CoNLL cannot hold overlapping spans: the eager write fails, the snapshot is ready all the same, the Job says
    # which format was not written, and its download answers with the reason
    from tests.conftest import client_for

    settings.TANDEM_SNAPSHOT_EAGER_FORMATS = ["conll", "csv"]
    manager, ann = make_user(), make_user()
    spans = make_project(manager, task_type="spans", labels=["PER", "ORG"])
    it = item(spans, "s1", "Ada Lovelace works")
    value = {"spans": [{"start": 0, "end": 12, "label": "PER"}, {"start": 4, "end": 12, "label": "ORG"}]}
    label(it, value, (ann, value))
    snapshot = build(spans, manager)
    assert "conll" not in snapshot.formats
    assert "csv" in snapshot.formats
    job = Job.objects.get(pk=snapshot.job_id)
    assert job.status == "succeeded"
    assert set(job.result["formats_not_written"]) == {"conll"}
    r = client_for(manager).get(f"/api/snapshots/{snapshot.pk}/download?format=conll")
    assert r.status_code == 400
    assert r.json()["errors"][0]["field"] == "format"


def test_integers_past_int64_are_kept_as_json_text(world, settings):
    settings.TANDEM_SNAPSHOT_EAGER_FORMATS = ["parquet"]
    big = "12345678901234567890123"
    it = item(world["project"], "b1", "a tweet", tweet_id=int(big), small=-(2**63))
    label(it, SPORTS, (world["alice"], SPORTS))
    snapshot = build(world["project"], world["manager"], filters={"labels": "sports"})
    types = {m["field"]: m["type"] for m in snapshot.schema["meta"]}
    assert (types["tweet_id"], types["small"]) == ("json", "int64")
    table = pq.read_table(snapshot_dir(snapshot) / "data.parquet")
    by_id = dict(zip(table.column("external_id").to_pylist(), table.column("tweet_id").to_pylist(), strict=True))
    assert by_id["b1"] == big
    assert [r["tweet_id"] for r in rows(snapshot) if r["external_id"] == "b1"] == [int(big)]


def test_a_delivery_that_waited_for_the_lock_does_not_rebuild_a_ready_snapshot(world, monkeypatch):
    # delivery B read `building`, then A finished and let go of the lock: B must not rebuild (the data changed since)
    import annotation.datasets.build as build_module
    from annotation.models import Snapshot

    _, job = build_module.snapshot_create(project=world["project"], user=world["manager"], body={"name": "r"})
    first = build_module.snapshot_build(job_id=job.pk)
    assert first is not None
    assert first.status == "ready"
    before = canonical_path(first).read_bytes()
    FinalLabel.objects.filter(item__external_id="a1").update(value=TECH)
    Job.objects.filter(pk=job.pk).update(status="running")  # B reclaims the redelivered message...
    Snapshot.objects.filter(pk=first.pk).update(status="building")  # ...having read `building`

    real_flock = build_module.fcntl.flock

    def a_finishes_first(fd, op):  # A ends while B waits for the lock
        Snapshot.objects.filter(pk=first.pk).update(status="ready")
        return real_flock(fd, op)

    monkeypatch.setattr(build_module.fcntl, "flock", a_finishes_first)
    again = build_module.snapshot_build(job_id=job.pk)
    assert again is not None
    assert again.status == "ready"
    assert canonical_path(first).read_bytes() == before
    assert Job.objects.get(pk=job.pk).status == "succeeded"


def test_deleting_the_project_removes_its_snapshot_files(world, django_capture_on_commit_callbacks):
    snapshot = build(world["project"], world["manager"])
    folder = snapshot_dir(snapshot)
    assert canonical_path(snapshot).exists()
    with django_capture_on_commit_callbacks(execute=True):
        world["project"].delete()
    assert not folder.exists()
