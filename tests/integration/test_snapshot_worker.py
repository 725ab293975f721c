"""Issue 14 end to end on a real Celery worker (Redis, the test PostgreSQL): a hand-written Label Studio export
imported through the REST API, a snapshot of it built by the worker, and its downloads read back by the reference
readers (json, pyarrow, `datasets.load_from_disk` offline) with the sha256 the snapshot reports."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from annotation.models import FinalLabel, Item
from tests.conftest import client_for, make_project, make_user
from tests.integration.test_worker import _wait

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

LS_EXPORT = Path(__file__).resolve().parent.parent / "labelstudio" / "data" / "classification.json"


def test_label_studio_import_then_snapshot_on_the_worker(start_worker, settings, tmp_path):
    settings.TANDEM_SNAPSHOT_DIR = tmp_path / "snapshots"
    worker = start_worker(
        "worker",
        TANDEM_PRELABEL_ON_IMPORT="false",
        TANDEM_SNAPSHOT_DIR=str(settings.TANDEM_SNAPSHOT_DIR),
        TANDEM_SNAPSHOT_EAGER_FORMATS="parquet",
    )
    manager = make_user("snap_manager")
    project = make_project(manager, name="LS sentiment", labels=("positive", "negative", "neutral"))
    client = client_for(manager)

    body = LS_EXPORT.read_bytes()
    r = client.generic(
        "POST",
        f"/api/projects/{project.pk}/import?format=labelstudio",
        body,
        content_type="application/json",
    )
    assert r.status_code == 202, r.content
    job = _wait(r.json()["job"], worker)
    assert job.status == "succeeded", (job.error, job.result)
    tasks = json.loads(body)
    assert Item.objects.filter(project=project).count() == len(tasks)
    decided = FinalLabel.objects.filter(item__project=project).count()
    assert decided > 0

    r = client.post(
        f"/api/projects/{project.pk}/snapshots",
        {
            "name": "from LS",
            "filters": {"status": "approved"},
            "split": {"train": 0.5, "validation": 0.25, "test": 0.25, "seed": 1},
        },
        format="json",
    )
    assert r.status_code == 202, r.content
    job = _wait(r.json()["job"], worker)
    assert job.status == "succeeded", (job.error, job.result)
    detail = client.get(f"/api/snapshots/{r.json()['snapshot']}").json()
    assert detail["status"] == "ready"
    assert detail["rows"] == decided == sum(detail["splits"].values())
    assert "parquet" in detail["formats"]  # written eagerly by the worker

    def download(fmt: str) -> bytes:
        resp = client.get(f"/api/snapshots/{detail['id']}/download?format={fmt}")
        assert resp.status_code == 200, fmt
        data = b"".join(resp.streaming_content) if resp.streaming else resp.content
        assert resp["ETag"].strip('"') == hashlib.sha256(data).hexdigest()
        return data

    jsonl = download("jsonl")
    assert hashlib.sha256(jsonl).hexdigest() == detail["sha256"]
    rows = [json.loads(line) for line in jsonl.decode().splitlines()]
    assert len(rows) == detail["rows"]
    assert {row["label"] for row in rows} <= {"positive", "negative", "neutral"}
    # the Label Studio annotators and the imported predictions travel into the rows
    assert all(row["annotations"] for row in rows)
    assert any(row["suggestion"] and row["suggestion"]["model_version"] == "sentiment-v1" for row in rows)

    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(pa.BufferReader(download("parquet")))
    assert table.column("external_id").to_pylist() == [row["external_id"] for row in rows]
    assert table.column("label").to_pylist() == [row["label"] for row in rows]

    from datasets import load_from_disk

    with tarfile.open(fileobj=io.BytesIO(download("hf"))) as tar:
        tar.extractall(tmp_path / "hf", filter="data")
    [root] = [p for p in (tmp_path / "hf").iterdir() if p.is_dir()]
    assert (root / "README.md").read_text().startswith("---")
    dataset = load_from_disk(str(root))
    names = dataset[next(iter(dataset))].features["label"].names
    assert names == ["positive", "negative", "neutral"]
    by_split = {name: [names[i] for i in dataset[name]["label"]] for name in dataset}
    expected = {
        name: [row["label"] for row in rows if row["split"] == name] for name in ("train", "validation", "test")
    }
    assert by_split == {name: labels for name, labels in expected.items() if labels}
