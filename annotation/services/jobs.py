"""The Job lifecycle: claim, progress, succeed, fail. Every long action (import, pre-label, training, and
the snapshot and metrics Jobs to come) moves its Job through these four functions and nothing else.

queued --job_claim--> running --job_succeed--> succeeded
   \\                     \\--job_fail-----> failed
    \\--job_fail------------------------------^

Each transition is one conditional UPDATE on the status it leaves, so a message delivered twice, or a
worker and the beat sweeper racing, move a Job at most once; the functions say whether they did.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import F
from django.db.models.expressions import Combinable
from django.db.models.functions import Coalesce
from django.utils import timezone

from annotation.models import Job
from annotation.models.job import JobStatus

logger = logging.getLogger(__name__)

ERROR_MAX_CHARS = 2000  # Job.error is shown in the UI and the API: long tracebacks are cut here
PROGRESS_ALIAS = "jobs"  # a second connection (config/settings.py), outside the worker's transaction

_OPEN = (JobStatus.QUEUED, JobStatus.RUNNING)


def job_error_text(message: str) -> str:
    """The one truncation rule for Job.error: at most ERROR_MAX_CHARS characters, an ellipsis when cut."""
    return message if len(message) <= ERROR_MAX_CHARS else message[: ERROR_MAX_CHARS - 1] + "…"


def job_failure_text(exc: BaseException, *, doing: str) -> str:
    """What a Job's error says when `doing` (e.g. "Training") raised `exc`: a Celery time limit is named
    as such, so an operator knows which setting to raise; anything else gives its type and message."""
    from celery import current_task
    from celery.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded

    if isinstance(exc, SoftTimeLimitExceeded | TimeLimitExceeded):
        limit = getattr(current_task, "soft_time_limit", None) if isinstance(exc, SoftTimeLimitExceeded) else None
        within = f" of {limit} s" if limit else ""
        return f"{doing} ran past its time limit{within} and was stopped (the TANDEM_*_TASK_TIME_LIMIT settings)."
    return f"{doing} failed: {type(exc).__name__}: {exc}"


def job_claim(*, job_id: int, kind: str, reclaim: bool = False) -> Job | None:
    """Move a queued Job to running and return it (with its project); None when it was not queued: another
    delivery of the same message claimed it, or it has ended. `reclaim=True` also takes a Job left running,
    for work done in one transaction (an import), where a lost worker left nothing behind to undo. Only a Job
    of `kind` is claimed: a task handed another kind's Job id (a message queued before a deploy changed the
    task's arguments, say) takes nothing."""
    statuses = _OPEN if reclaim else (JobStatus.QUEUED,)
    claimed = Job.objects.filter(pk=job_id, kind=kind, status__in=statuses).update(
        status=JobStatus.RUNNING, started_at=timezone.now(), progress=0
    )
    if not claimed:
        return None
    return Job.objects.select_related("project").get(pk=job_id)


def job_progress(*, job_id: int, progress: int | Combinable, total: int | None = None, publish: bool = False) -> None:
    """Record a running Job's progress (an int, or an expression such as F("progress") + n).

    `publish=True` writes it on the "jobs" connection, so pollers see it while the caller's own
    transaction is still open (and a failed import still rolls back everything else it wrote)."""
    using = PROGRESS_ALIAS if publish and PROGRESS_ALIAS in connections.databases else DEFAULT_DB_ALIAS
    fields: dict[str, Any] = {"progress": progress}
    if total is not None:
        fields["total"] = total
    Job.objects.using(using).filter(pk=job_id, status=JobStatus.RUNNING).update(**fields)


def job_succeed(*, job_id: int, result: dict[str, Any], when_complete: bool = False) -> bool:
    """running -> succeeded with `result`, its progress set to its total. `when_complete=True` succeeds
    only once progress has reached the total (the last of several chunks to finish does it). False when
    the Job was not moved (not running, or not complete)."""
    jobs = Job.objects.filter(pk=job_id, status=JobStatus.RUNNING)
    if when_complete:
        jobs = jobs.filter(progress__gte=F("total"))
    return bool(
        jobs.update(
            status=JobStatus.SUCCEEDED,
            result=result,
            error="",
            finished_at=timezone.now(),
            progress=Coalesce(F("total"), F("progress")),
        )
    )


def job_fail(*, job_id: int, error: str, result: dict[str, Any] | None = None) -> bool:
    """queued or running -> failed with `error` (cut by `job_error_text`) and, when given, a `result` (e.g.
    an import's bad rows). False when the Job had already ended."""
    fields: dict[str, Any] = {"status": JobStatus.FAILED, "error": job_error_text(error), "finished_at": timezone.now()}
    if result is not None:
        fields["result"] = result
    failed = Job.objects.filter(pk=job_id, status__in=_OPEN).update(**fields)
    if failed:
        logger.error("job %s failed: %s", job_id, error)
    return bool(failed)
