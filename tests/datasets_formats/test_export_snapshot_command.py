"""manage.py export_snapshot: an existing snapshot's file, or a new snapshot built right here (the build service
synchronously, the queued task then a no-op)."""

from __future__ import annotations

import hashlib
import io
import json

import pytest
from django.core.management import CommandError, call_command

from annotation.datasets.build import snapshot_build
from annotation.datasets.paths import canonical_path
from annotation.models import Job, Snapshot
from annotation.models.snapshot import SnapshotStatus
from tests.conftest import add_member, make_project, make_user
from tests.datasets.helpers import item, label
from tests.datasets_formats.conftest import canonical_rows, snapshot_make
from tests.datasets_formats.readers import jsonl_rows

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_published_progress(monkeypatch):
    # progress goes out on a second connection, which cannot see a test's uncommitted Job
    import annotation.datasets.build as build

    monkeypatch.setattr(build, "_progress", lambda job_id, done, total: None)


def test_builds_a_new_snapshot_and_writes_parquet(tmp_path, capsys, django_capture_on_commit_callbacks):
    import pyarrow.parquet as pq

    manager = make_user("cli_manager")
    project = make_project(manager, name="Cli news")
    alice = make_user("alice")
    add_member(project, alice)
    for i, name in enumerate(["sports", "politics", "tech", "sports"]):
        it = item(project, f"e{i}", f"text {i}", source="web")
        label(it, {"label": name}, (alice, {"label": name}))
    out = tmp_path / "out.parquet"
    split = {"train": 0.5, "validation": 0.25, "test": 0.25, "seed": 3}
    with django_capture_on_commit_callbacks() as queued:
        call_command(
            "export_snapshot", "--project", str(project.pk), "--name", "From the CLI", "--split", json.dumps(split),
            "--pseudonymize", "--user", "cli_manager", "--format", "parquet", "--out", str(out),
        )  # fmt: skip
    snapshot = Snapshot.objects.get(project=project)
    assert snapshot.status == SnapshotStatus.READY
    assert (snapshot.name, snapshot.pseudonymize, snapshot.created_by) == ("From the CLI", True, manager)
    summary = json.loads(capsys.readouterr().err)
    assert summary["snapshot"] == snapshot.pk
    assert summary["rows"] == 4
    assert summary["file_sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    expected = jsonl_rows(canonical_path(snapshot).read_bytes())
    assert pq.read_table(out).column("external_id").to_pylist() == [r["external_id"] for r in expected]
    assert {r["annotations"][0]["annotator"] for r in expected} != {"alice"}  # pseudonymised

    # the command line builds it itself and queues no task; a stray delivery after the build takes nothing
    assert queued == []
    job = Job.objects.get(pk=snapshot.job_id)
    assert job.status == "succeeded"
    before = canonical_path(snapshot).read_bytes()
    assert snapshot_build(job_id=job.pk) is None
    assert canonical_path(snapshot).read_bytes() == before


def test_existing_snapshot_to_stdout(owner):
    from tests.datasets_formats.conftest import project_of

    snapshot = snapshot_make(project_of(owner, "classification"), canonical_rows("classification"))
    out, err = io.BytesIO(), io.StringIO()
    call_command("export_snapshot", str(snapshot.pk), "--format", "csv", "--out", "-", stdout=out, stderr=err)
    assert out.getvalue().startswith(b"external_id,text,")
    assert json.loads(err.getvalue())["bytes"] == len(out.getvalue())


def test_errors(owner, tmp_path):
    from tests.datasets_formats.conftest import project_of

    project = project_of(owner, "classification")
    building = snapshot_make(project, [], status=SnapshotStatus.BUILDING)
    ready = snapshot_make(project, canonical_rows("classification"))
    out = str(tmp_path / "x")
    with pytest.raises(CommandError, match="still being built"):
        call_command("export_snapshot", str(building.pk), "--out", out)
    with pytest.raises(CommandError, match="No snapshot"):
        call_command("export_snapshot", "999999999", "--out", out)
    with pytest.raises(CommandError, match="conll"):
        call_command("export_snapshot", str(ready.pk), "--format", "conll", "--out", out)
    with pytest.raises(CommandError, match="split"):
        call_command(
            "export_snapshot", "--project", str(project.pk), "--name", "bad", "--split", '{"train": 0.5}', "--out", out
        )
    with pytest.raises(CommandError, match="snapshot id"):
        call_command("export_snapshot", "--out", out)
    assert not Snapshot.objects.filter(name="bad").exists()
