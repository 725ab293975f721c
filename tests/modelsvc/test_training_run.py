"""A training run's steps and failures without torch: the fine-tuning is replaced by a stub that stages
an artifact, and the fake runtime evaluates it (the real model: test_training.py)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from celery.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded

from annotation.models import FinalLabel, Item, Job
from annotation.models.job import JobStatus
from modelsvc.models import ModelVersion, TrainingState
from modelsvc.services import training
from modelsvc.services.prelabel import prelabel_plan, prelabel_start
from modelsvc.services.training import train_run, train_start
from modelsvc.tasks import prelabel_plan_task, train_task
from tests.conftest import make_project, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def run(settings, eager_tasks, tmp_path, monkeypatch):
    """A project with 40 approved labels and a stubbed fine-tuning that stages an artifact."""
    settings.MODEL_DIR = tmp_path / "models"
    settings.TANDEM_COLD_START_PICKS = 0
    settings.TANDEM_EXPLAIN_HEAD = 0
    manager = make_user("run")
    project = make_project(manager, labels=("fruit", "cars"), exploration_rate=0.0)
    for i in range(40):
        label = ("fruit", "cars")[i % 2]
        item = Item.objects.create(
            project=project, external_id=f"t{i}", data={"text": f"{label} {i}"}, status="approved"
        )
        FinalLabel.objects.create(item=item, value={"label": label}, source="consensus")
    Item.objects.create(project=project, external_id="open", data={"text": "an open fruit"})
    staged = []

    def fine_tune(job, project, warm, train_rows, validation, staging):
        staging.mkdir(parents=True)
        (staging / "model.safetensors").write_bytes(b"weights")
        staged.append(staging)
        return SimpleNamespace(
            epochs=1, steps=3, best_epoch=1, stopped="max_epochs", temperature=1.0, sha256="0" * 64, history=[]
        )

    monkeypatch.setattr(training, "_fine_tune", fine_tune)
    return SimpleNamespace(project=project, manager=manager, staged=staged, settings=settings)


def start(run, callbacks) -> Job:
    with callbacks(execute=False):  # the worker's part is called directly below
        job = train_start(project=run.project, user=run.manager)
    return job


def assert_failed_cleanly(run, job, words: str) -> None:
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert words in job.error
    assert TrainingState.objects.get(project=run.project).running_job_id is None
    assert not ModelVersion.objects.filter(project=run.project, kind="fine_tuned").exists()
    assert not any(p.exists() for p in run.staged)


def test_an_evaluated_candidate_is_registered_and_promoted(run, django_capture_on_commit_callbacks):
    run.settings.TANDEM_PROMOTION_MARGIN = -1.0
    job = start(run, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        train_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert job.result["promoted"] is True
    candidate = ModelVersion.objects.get(project=run.project, kind="fine_tuned")
    assert candidate.status == "active"
    assert {"accuracy", "n_train", "n_validation", "compared_with"} <= set(candidate.metrics)
    assert (run.settings.MODEL_DIR / str(run.project.pk) / str(candidate.version) / "model.safetensors").is_file()
    assert Job.objects.filter(project=run.project, kind="prelabel").exists()  # promotion re-scores


def test_a_failure_after_training_registers_nothing(run, django_capture_on_commit_callbacks, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("evaluation broke")

    monkeypatch.setattr("modelsvc.evaluation.evaluate_predictor", broken)
    job = start(run, django_capture_on_commit_callbacks)
    train_run(job_id=job.pk)
    assert_failed_cleanly(run, job, "evaluation broke")


def test_a_failure_while_registering_leaves_no_version_and_no_artifact(
    run, django_capture_on_commit_callbacks, monkeypatch
):
    def broken(**kwargs):
        raise RuntimeError("promotion broke")

    run.settings.TANDEM_PROMOTION_MARGIN = -1.0
    monkeypatch.setattr(training, "prelabel_rescore", broken)
    job = start(run, django_capture_on_commit_callbacks)
    train_run(job_id=job.pk)
    assert_failed_cleanly(run, job, "promotion broke")
    project_dir = run.settings.MODEL_DIR / str(run.project.pk)
    assert not [p for p in project_dir.iterdir() if p.name.isdigit()]


def test_the_soft_time_limit_fails_the_run_with_its_reason(run, django_capture_on_commit_callbacks, monkeypatch):
    def too_slow(*args, **kwargs):
        raise SoftTimeLimitExceeded()

    monkeypatch.setattr(training, "_fine_tune", too_slow)
    job = start(run, django_capture_on_commit_callbacks)
    train_run(job_id=job.pk)
    assert_failed_cleanly(run, job, "time limit")


def test_the_hard_time_limit_fails_the_run_and_releases_the_lock(run, django_capture_on_commit_callbacks):
    job = start(run, django_capture_on_commit_callbacks)
    Job.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING)  # the killed child had claimed it
    train_task.on_failure(TimeLimitExceeded(3660), "task-id", (job.pk,), {}, None)
    assert_failed_cleanly(run, job, "hard time limit")


def test_a_redelivered_run_is_failed_not_repeated(run, django_capture_on_commit_callbacks):
    job = start(run, django_capture_on_commit_callbacks)
    Job.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING)
    train_run(job_id=job.pk)
    assert_failed_cleanly(run, job, "lost")


def test_time_limits_fail_a_prelabel_job(run, django_capture_on_commit_callbacks, monkeypatch):
    from modelsvc.services import prelabel

    def hung(*args, **kwargs):
        raise SoftTimeLimitExceeded()

    monkeypatch.setattr(prelabel, "version_ensure_active", hung)
    with django_capture_on_commit_callbacks(execute=False):
        job = prelabel_start(project=run.project, user=run.manager)
    prelabel_plan(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert "time limit" in job.error

    Job.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING, error="")
    prelabel_plan_task.on_failure(TimeLimitExceeded(1860), "task-id", (job.pk,), {}, None)
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert "hard time limit" in job.error


def test_a_task_out_of_retries_fails_its_job_once(run, django_capture_on_commit_callbacks):
    """The database unreachable past the task's retries: the Job is failed, not left running; a Job that had
    already ended keeps its outcome."""
    from django.db import OperationalError

    with django_capture_on_commit_callbacks(execute=False):
        job = prelabel_start(project=run.project, user=run.manager)
    Job.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING)
    prelabel_plan_task.on_failure(OperationalError("server closed the connection"), "task-id", (job.pk,), {}, None)
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert "failed after its retries: OperationalError: server closed the connection" in job.error

    Job.objects.filter(pk=job.pk).update(status=JobStatus.SUCCEEDED, error="")
    prelabel_plan_task.on_failure(OperationalError("late"), "task-id", (job.pk,), {}, None)
    job.refresh_from_db()
    assert (job.status, job.error) == (JobStatus.SUCCEEDED, "")


def test_a_run_failed_meanwhile_registers_nothing(run, django_capture_on_commit_callbacks, monkeypatch):
    """The beat check failed the Job (a stale heartbeat) while it evaluated: nothing is registered or promoted."""
    real = training._evaluate

    def evaluate_then_lost(job_id, *args, **kwargs):
        evaluated = real(job_id, *args, **kwargs)
        training.train_fail(job_id=job_id, error="lost (stale heartbeat)")
        return evaluated

    monkeypatch.setattr(training, "_evaluate", evaluate_then_lost)
    job = start(run, django_capture_on_commit_callbacks)
    train_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert "stale heartbeat" in job.error
    assert not ModelVersion.objects.filter(project=run.project, kind="fine_tuned").exists()
    project_dir = run.settings.MODEL_DIR / str(run.project.pk)
    assert not [p for p in project_dir.iterdir() if p.name.isdigit()]


def test_every_model_task_has_a_soft_and_a_hard_limit():
    from celery import Task

    from modelsvc import tasks

    found = [getattr(tasks, n) for n in dir(tasks) if n.endswith("_task") and isinstance(getattr(tasks, n), Task)]
    assert len(found) == 7
    for task in found:
        assert task.soft_time_limit, task.name
        assert task.time_limit > task.soft_time_limit, task.name
