"""Celery tasks of the model loop (routed to queue `model`): ids in, one service call, nothing else.

acks_late + reject_on_worker_lost: a task whose worker dies is redelivered; the services are
idempotent (see modelsvc.services).
"""

from __future__ import annotations

from celery import shared_task
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
