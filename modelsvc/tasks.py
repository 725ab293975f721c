"""Celery tasks of the model loop (routed to queue `model`): ids in, one service call, nothing else.
Each imports its service inside its body, so the services can import the tasks they queue.

acks_late + reject_on_worker_lost: a task whose worker dies is redelivered; the services are idempotent.
Every task has a soft and a hard time limit (settings TANDEM_*_TASK_TIME_LIMIT, the hard one
TANDEM_TASK_KILL_GRACE seconds later), so a hung model load or ONNX export cannot hold the `model`
worker until the broker's visibility timeout. At the soft limit the service's own handler fails its Job
with the reason; code stuck outside Python (inside a C extension) does not see the soft limit, so at the
hard limit Celery kills the child process and `JobTask.on_failure` fails the Job from the worker's main
process.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task
from celery.contrib.django.task import DjangoTask
from celery.exceptions import TimeLimitExceeded
from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)


class JobTask(DjangoTask):
    """A task whose first argument is a Job id. When the task fails for good (killed at its hard time limit, or
    an error left after its retries, e.g. the database unreachable five times), the Job is failed by
    `job_fail_path` (a function taking job_id and error), so it never stays `running`. A Job the service
    already ended is left as it is (job_fail moves only an open Job)."""

    job_fail_path = "annotation.services.jobs.job_fail"

    def on_failure(self, exc: Exception, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        job_id = args[0] if args else kwargs.get("job_id")
        if job_id is None:
            return
        if isinstance(exc, TimeLimitExceeded):
            error = (
                f"{self.name} was killed at its hard time limit of {self.time_limit} s "
                "(the TANDEM_*_TASK_TIME_LIMIT settings)."
            )
        else:
            error = f"{self.name} failed after its retries: {type(exc).__name__}: {exc}"
        try:
            import_string(self.job_fail_path)(job_id=job_id, error=error)
        except Exception:  # the database may be what failed: the beat sweep or a later trigger ends the Job
            logger.exception("could not fail Job %s after %s", job_id, self.name)


def _limits(soft: int) -> dict[str, Any]:
    return {"soft_time_limit": soft, "time_limit": soft + settings.TANDEM_TASK_KILL_GRACE}


_RETRY = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    "ignore_result": True,
    "autoretry_for": (OperationalError, InterfaceError),
    "retry_backoff": True,
    "max_retries": 5,
}


@shared_task(base=JobTask, **_RETRY, **_limits(settings.TANDEM_PRELABEL_TASK_TIME_LIMIT))
def prelabel_plan_task(job_id: int) -> None:
    from modelsvc.services.prelabel import prelabel_plan

    prelabel_plan(job_id=job_id)


@shared_task(base=JobTask, **_RETRY, **_limits(settings.TANDEM_PRELABEL_TASK_TIME_LIMIT))
def prelabel_chunk_task(job_id: int, index: int, lo: int, hi: int, size: int) -> None:
    from modelsvc.services.prelabel import prelabel_chunk

    prelabel_chunk(job_id=job_id, index=index, lo=lo, hi=hi, size=size)


# on-demand explanations have no Job (they are recorded on the Prediction, and a later request queues them again)
@shared_task(**_RETRY, **_limits(settings.TANDEM_EXPLAIN_TASK_TIME_LIMIT))
def explain_task(prediction_id: int) -> None:
    from modelsvc.services.explanations import explain_prediction

    explain_prediction(prediction_id=prediction_id)


@shared_task(base=JobTask, **_RETRY, **_limits(settings.TANDEM_EXPLAIN_TASK_TIME_LIMIT))
def explain_head_task(job_id: int) -> None:
    from modelsvc.services.explanations import explain_head

    explain_head(job_id=job_id)


@shared_task(
    base=JobTask,
    job_fail_path="modelsvc.services.training.train_fail",  # also releases the project's training lock
    acks_late=True,
    reject_on_worker_lost=True,  # redelivered after a crash: train_run then fails the run (never half-registers)
    ignore_result=True,
    **_limits(settings.TANDEM_TRAIN_TASK_TIME_LIMIT),
)
def train_task(job_id: int) -> None:
    from modelsvc.services.training import train_run

    train_run(job_id=job_id)


@shared_task(ignore_result=True, **_limits(settings.TANDEM_BEAT_TASK_TIME_LIMIT))
def train_scheduled_task(project_id: int) -> None:
    from modelsvc.services.training import train_scheduled

    train_scheduled(project_id=project_id)


@shared_task(ignore_result=True, **_limits(settings.TANDEM_BEAT_TASK_TIME_LIMIT))
def training_check_task() -> None:
    from modelsvc.services.training import training_check

    training_check()
