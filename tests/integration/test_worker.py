"""Imports run as Jobs on a real Celery worker process, over Redis, against the test PostgreSQL database."""

from __future__ import annotations

import time

import pytest
from django.conf import settings

from annotation.models import Item, Job
from tests.conftest import client_for, make_project, make_user

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def celery_worker(start_worker):
    return start_worker("worker", TANDEM_PRELABEL_ON_IMPORT="false")


def _wait(job_id: int, proc, timeout: float = 60) -> Job:
    deadline = time.time() + timeout
    while time.time() < deadline:
        job = Job.objects.get(pk=job_id)
        if job.is_finished:
            return job
        assert proc.poll() is None, "the worker died"
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} still {Job.objects.get(pk=job_id).status}")


def test_import_job_runs_on_the_worker(celery_worker):
    assert settings.CELERY_BROKER_URL.startswith("redis://")
    manager = make_user("w_manager")
    project = make_project(manager, labels=("a", "b"))
    client = client_for(manager)
    rows = [{"external_id": f"w{i}", "text": f"worker row {i}", "lang": "en"} for i in range(250)]

    r = client.post(f"/api/projects/{project.pk}/import", rows, format="json")
    assert r.status_code == 202, r.content
    job = _wait(r.json()["job"], celery_worker)
    assert job.status == "succeeded", (job.error, job.result)
    assert job.result["created"] == 250
    assert Item.objects.filter(project=project).count() == 250
    assert Item.objects.get(project=project, external_id="w7").data == {"text": "worker row 7", "lang": "en"}

    # the same rows again: nothing new, all reported as duplicates
    r = client.post(f"/api/projects/{project.pk}/import", rows, format="json")
    job = _wait(r.json()["job"], celery_worker)
    assert job.status == "succeeded"
    assert (job.result["created"], job.result["duplicates"]) == (0, 250)

    # a bad row rejects the whole file on the worker: the Job fails with the line and reason, nothing is created
    bad = [*({"external_id": f"n{i}", "text": "fine"} for i in range(5)), {"external_id": "n5"}]
    r = client.post(f"/api/projects/{project.pk}/import", bad, format="json")
    job = _wait(r.json()["job"], celery_worker)
    assert job.status == "failed"
    assert job.result["errors"] == [{"line": 1, "row": 6, "field": "text", "message": "missing"}]
    assert Item.objects.filter(project=project).count() == 250
