"""Celery tasks: ids in, a service call, nothing else."""

from __future__ import annotations

from celery import shared_task
from django.db import InterfaceError, OperationalError


@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=True,
    max_retries=5,
)
def import_items_task(job_id: int) -> None:
    from annotation.services.importing import import_run

    import_run(job_id=job_id)
