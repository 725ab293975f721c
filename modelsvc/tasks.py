"""Celery tasks of the model loop (routed to queue `model`): ids in, one service call, nothing else.

acks_late + reject_on_worker_lost: a task whose worker dies is redelivered; the services are
idempotent (see modelsvc.services).
"""

from __future__ import annotations

from celery import shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError

_RETRY = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    "ignore_result": True,
    "autoretry_for": (OperationalError, InterfaceError),
    "retry_backoff": True,
    "max_retries": 5,
}


@shared_task(**_RETRY)
def prelabel_plan_task(job_id: int) -> None:
    from modelsvc.services import prelabel_plan

    prelabel_plan(job_id=job_id)


@shared_task(**_RETRY)
def prelabel_chunk_task(job_id: int, index: int, lo: int, hi: int, size: int) -> None:
    from modelsvc.services import prelabel_chunk

    prelabel_chunk(job_id=job_id, index=index, lo=lo, hi=hi, size=size)


@shared_task(**_RETRY)
def explain_task(prediction_id: int) -> None:
    from modelsvc.services import explain_prediction

    explain_prediction(prediction_id=prediction_id)


@shared_task(**_RETRY)
def explain_head_task(project_id: int) -> None:
    from modelsvc.services import explain_head

    explain_head(project_id=project_id)


@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,  # redelivered after a crash: train_run then fails the run (never half-registers)
    ignore_result=True,
    soft_time_limit=settings.TANDEM_TRAIN_TASK_TIME_LIMIT,
    time_limit=settings.TANDEM_TRAIN_TASK_TIME_LIMIT + 60,
)
def train_task(job_id: int) -> None:
    from modelsvc.registry import train_run

    train_run(job_id=job_id)


@shared_task(ignore_result=True)
def train_scheduled_task(project_id: int) -> None:
    from annotation.models import Project
    from modelsvc.registry import train_start

    project = Project.objects.filter(pk=project_id).first()
    if project is not None:
        train_start(project=project, reason="schedule")


@shared_task(ignore_result=True)
def training_check_task() -> None:
    from modelsvc.registry import training_check

    training_check()
