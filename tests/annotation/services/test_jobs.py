"""The Job lifecycle service: each transition happens at most once, and one error-text rule."""

from __future__ import annotations

import pytest
from celery.exceptions import SoftTimeLimitExceeded

from annotation.models import Job
from annotation.models.job import JobKind, JobStatus
from annotation.services.jobs import (
    ERROR_MAX_CHARS,
    job_claim,
    job_error_text,
    job_fail,
    job_failure_text,
    job_progress,
    job_succeed,
)
from tests.conftest import make_project

pytestmark = pytest.mark.django_db


@pytest.fixture
def job(manager):
    return Job.objects.create(project=make_project(manager), kind=JobKind.PRELABEL, created_by=manager)


def test_a_job_is_claimed_once(job):
    claimed = job_claim(job_id=job.pk, kind=JobKind.PRELABEL)
    assert claimed is not None
    assert (claimed.status, claimed.project.pk) == (JobStatus.RUNNING, job.project_id)
    assert claimed.started_at is not None
    assert job_claim(job_id=job.pk, kind=JobKind.PRELABEL) is None  # the same message delivered again does nothing
    assert (
        job_claim(job_id=job.pk, kind=JobKind.PRELABEL, reclaim=True) is not None
    )  # one-transaction work may run it again
    assert job_claim(job_id=10**12, kind=JobKind.PRELABEL) is None


def test_a_claim_for_another_kind_takes_nothing(job):
    assert job_claim(job_id=job.pk, reclaim=True, kind=JobKind.EXPLAIN) is None  # job is a pre-label
    job.refresh_from_db()
    assert (job.status, job.started_at) == (JobStatus.QUEUED, None)
    job_claim(job_id=job.pk, kind=JobKind.PRELABEL)
    assert job_claim(job_id=job.pk, reclaim=True, kind=JobKind.EXPLAIN) is None  # nor takes it over running
    assert job_claim(job_id=job.pk, reclaim=True, kind=JobKind.PRELABEL) is not None


def test_progress_and_success_when_complete(job):
    job_claim(job_id=job.pk, kind=JobKind.PRELABEL)
    job_progress(job_id=job.pk, progress=3, total=10)
    assert not job_succeed(job_id=job.pk, result={"n": 1}, when_complete=True)  # 3 of 10
    job_progress(job_id=job.pk, progress=10)
    assert job_succeed(job_id=job.pk, result={"n": 1}, when_complete=True)
    assert not job_succeed(job_id=job.pk, result={"n": 2})  # already ended
    job.refresh_from_db()
    assert (job.status, job.progress, job.total, job.result) == (JobStatus.SUCCEEDED, 10, 10, {"n": 1})
    assert not job_fail(job_id=job.pk, error="too late")
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED
    assert job.error == ""


def test_failure_keeps_a_result_and_cuts_the_error_text(job):
    assert job_fail(job_id=job.pk, error="x" * 5000, result={"errors": [1]})  # a queued Job can fail too
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert len(job.error) == ERROR_MAX_CHARS
    assert job.error.endswith("…")
    assert job.result == {"errors": [1]}
    assert job.finished_at is not None
    assert job_error_text("short") == "short"


def test_failure_text_names_a_time_limit():
    assert "time limit" in job_failure_text(SoftTimeLimitExceeded(), doing="Training")
    assert job_failure_text(ValueError("bad"), doing="Training") == "Training failed: ValueError: bad"
