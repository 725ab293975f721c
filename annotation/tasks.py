"""Celery tasks: ids in, a service call, nothing else."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError

from modelsvc.tasks import JobTask  # fails the Job when the task dies at its hard limit or runs out of retries


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


@shared_task(
    base=JobTask,
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=True,
    max_retries=5,
    soft_time_limit=settings.TANDEM_METRICS_TASK_TIME_LIMIT,
    time_limit=settings.TANDEM_METRICS_TASK_TIME_LIMIT + settings.TANDEM_TASK_KILL_GRACE,
)
def metrics_refresh_task(job_id: int) -> None:
    from annotation.quality.metrics import metrics_refresh

    metrics_refresh(job_id=job_id)


@shared_task(ignore_result=True, soft_time_limit=settings.TANDEM_BEAT_TASK_TIME_LIMIT)
def metrics_check_task() -> None:
    from annotation.quality.metrics import metrics_check

    metrics_check()


class SnapshotJobTask(JobTask):
    # a build that dies for good fails its Snapshot with its Job, so the snapshot never stays `building`
    job_fail_path = "annotation.datasets.build.snapshot_job_fail"


@shared_task(
    base=SnapshotJobTask,
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=True,
    max_retries=5,
    soft_time_limit=settings.TANDEM_SNAPSHOT_TASK_TIME_LIMIT,
    time_limit=settings.TANDEM_SNAPSHOT_TASK_TIME_LIMIT + settings.TANDEM_TASK_KILL_GRACE,
)
def snapshot_build_task(job_id: int) -> None:
    from annotation.datasets.build import snapshot_build

    snapshot_build(job_id=job_id)
