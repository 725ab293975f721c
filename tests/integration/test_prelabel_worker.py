"""The model loop on a real Celery worker process with the real all-MiniLM-L6-v2, over Redis, against
the test PostgreSQL database: import -> pre-label Job -> predictions -> `next` in uncertainty order ->
explanations; and a worker SIGKILLed in the middle of a pre-label Job."""

from __future__ import annotations

import json
import os
import signal

import pytest
from django.db.models import Count

from annotation.models import Item, Job
from modelsvc.models import ModelVersion, Prediction, PrelabelChunk
from tests.conftest import add_member, client_for, make_project, make_user
from tests.integration.conftest import ROOT, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.ml, pytest.mark.django_db(transaction=True)]

DEMO = ROOT / "annotation" / "demo" / "sms_spam_demo.jsonl"


def demo_rows(n: int) -> list[dict]:
    with open(DEMO, encoding="utf-8") as f:
        return [
            {"external_id": f"sms{i}", "text": json.loads(line)["text"]} for i, line in zip(range(n), f, strict=False)
        ]


def import_rows(project, manager, rows) -> None:
    r = client_for(manager).post(f"/api/projects/{project.pk}/import", rows, format="json")
    assert r.status_code == 202, r.content


def prelabel_job(project) -> Job | None:
    return Job.objects.filter(project=project, kind="prelabel").first()


def test_import_prelabel_and_next_in_uncertainty_order(start_worker):
    worker = start_worker("worker", TANDEM_PRELABEL_CHUNK_SIZE="50")
    manager = make_user("pl_manager")
    project = make_project(manager, labels=("ham", "spam"), exploration_rate=0.0, uncertainty_measure="entropy")
    import_rows(project, manager, demo_rows(200))
    job = wait_for(lambda: prelabel_job(project), "the pre-label job", 120, [worker])
    job = wait_for(
        lambda: Job.objects.filter(pk=job.pk, status__in=("succeeded", "failed")).first(), "pre-label", 240, [worker]
    )
    assert job.status == "succeeded", job.error
    assert job.progress == job.total == 200

    version = ModelVersion.objects.get(project=project)
    assert version.kind == "zero_shot"
    assert version.status == "active"
    predictions = Prediction.objects.filter(model_version=version)
    assert predictions.count() == 200
    assert not predictions.values("item").annotate(n=Count("id")).filter(n__gt=1).exists()
    for item in Item.objects.filter(project=project):
        p = item.prediction
        assert p is not None
        assert p["model_version"] == version.version
        assert sum(p["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
        assert p["value"]["label"] in ("ham", "spam")
        assert p["uncertainty"] == p["scores"]["entropy"] == round(item.uncertainty, 6)
        assert item.uncertainty == item.priority
    uncertainties = sorted(Item.objects.filter(project=project).values_list("uncertainty", flat=True))
    assert uncertainties[0] < uncertainties[-1]  # the real model is surer of some items than others

    annotator = make_user("pl_ann")
    add_member(project, annotator, "annotator")
    client = client_for(annotator)
    served = []
    for n in range(15):
        body = client.get(f"/api/projects/{project.pk}/next").json()
        served.append(body["prediction"]["uncertainty"])
        r = client.post(
            f"/api/items/{body['id']}/annotations",
            {"value": {"label": "ham"}},
            format="json",
            HTTP_IDEMPOTENCY_KEY=f"pl{n}",
        )
        assert r.status_code == 201
    assert served == sorted(served, reverse=True)
    assert served[0] == round(uncertainties[-1], 6)

    # the head of the queue was explained on the worker after the pre-label; any other item on demand (asked by a
    # reviewer: an annotator sees an explanation only on the item served to them)
    reviewer = make_user("pl_rev")
    add_member(project, reviewer, "reviewer")
    client = client_for(reviewer)
    head = Item.objects.filter(project=project, status="open").order_by("-priority", "id").first()
    wait_for(
        lambda: client.get(f"/api/items/{head.pk}/explanation").status_code == 200, "head explanation", 120, [worker]
    )
    other = Item.objects.filter(project=project, status="open").order_by("priority", "id").first()
    assert client.get(f"/api/items/{other.pk}/explanation").status_code == 202
    wait_for(lambda: client.get(f"/api/items/{other.pk}/explanation").status_code == 200, "explanation", 120, [worker])
    body = client.get(f"/api/items/{other.pk}/explanation").json()
    assert body["label"] == other.prediction["value"]["label"]
    assert body["tokens"]
    assert all(other.data["text"][t["start"] : t["end"]] == t["text"] for t in body["tokens"])


def test_a_worker_killed_mid_prelabel_loses_and_duplicates_nothing(start_worker):
    first = start_worker("worker1", TANDEM_PRELABEL_CHUNK_SIZE="5")
    manager = make_user("kill_manager")
    project = make_project(manager, labels=("ham", "spam"))
    import_rows(project, manager, demo_rows(200))
    job = wait_for(lambda: prelabel_job(project), "the pre-label job", 120, [first])
    wait_for(lambda: Job.objects.filter(pk=job.pk, progress__gt=0).exists(), "the first pre-label chunk", 240, [first])
    os.killpg(first.pid, signal.SIGKILL)  # the worker and its pool child, mid-job
    first.wait(timeout=10)
    job.refresh_from_db()
    assert job.status == "running", job.status
    assert 0 < job.progress < 200, job.progress

    second = start_worker("worker2", TANDEM_PRELABEL_CHUNK_SIZE="5")
    job = wait_for(
        lambda: Job.objects.filter(pk=job.pk, status__in=("succeeded", "failed")).first(),
        "the pre-label job to finish on the new worker",
        280,
        [second],
    )
    assert job.status == "succeeded", job.error
    assert job.progress == job.total == 200
    assert PrelabelChunk.objects.filter(job=job).count() == 40
    predictions = Prediction.objects.filter(item__project=project)
    assert predictions.count() == 200
    assert predictions.values("item_id", "model_version_id").distinct().count() == 200
    assert Item.objects.filter(project=project, prediction__isnull=True).count() == 0
