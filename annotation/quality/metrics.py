"""The quality metrics of a project, assembled from the section modules and cached (issue 13, "## Contract").

`project_metrics(project, window)` answers `GET /api/projects/{id}/metrics`. Every answer is a MetricsCache row's
payload, keyed by `window.key`, and says when it was computed (`computed_at`):

- The whole project ("all") is kept fresh by a worker: `metrics_check` (beat, every TANDEM_METRICS_REFRESH_SECONDS)
  queues a METRICS Job for each project whose data changed since its cached `computed_at`, unless one is already
  queued or running; `metrics_refresh` (the Job's task) recomputes and stores it. A request reads the row as it is;
  only a project never computed is computed on the request itself.
- A day range is computed on its first request, then cached. Asked for again after the project changed (as the
  beat's check last saw it), the cached answer is served at once, with its `computed_at`, and a METRICS Job
  recomputes that range in the background (stale-while-revalidate): only a range never asked for waits for a
  computation. Rows of ranges nobody asked for in TANDEM_METRICS_MAX_AGE_SECONDS are dropped.

A computation runs in one REPEATABLE READ transaction when it is the outermost one, so all sections read the same
snapshot of the data, and `computed_at` is the database clock when that snapshot was taken.

Change detection is cheap by design: one statement takes, per project, the newest timestamp among the rows written
since the beat last looked (annotations written or edited, reviews, final labels, memberships and un-pauses,
project settings, model versions, and every other Job's end, which covers imports and pre-labels that commit a long
transaction at once). migration 0010 indexes the three large tables' timestamps, so it reads the recent rows only.
Deleted rows leave no timestamp (a gold value cleared, items deleted): the next other change, or at the latest
TANDEM_METRICS_MAX_AGE_SECONDS, refreshes them.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import Q

from annotation.models import Job, MetricsCache, Project
from annotation.models.job import JobKind, JobStatus
from annotation.models.quality import MetricsState
from annotation.quality.window import ALL, Window
from annotation.services.jobs import job_claim, job_fail, job_failure_text, job_succeed

logger = logging.getLogger(__name__)

# A row is written with a timestamp taken a little before its transaction commits (Python's clock before the
# INSERT, or SQL's now() at the transaction's start). A snapshot taken in between misses the row although its
# timestamp is older than `computed_at`; any change stamped within this margin before a computation therefore
# counts as possibly missed and triggers one more refresh. Long transactions (imports) are caught by their Job.
CHANGE_MARGIN = timedelta(seconds=2)

LOST = "The metrics refresh was never run or its worker was lost; a new one is queued."

# the newest change per project among rows stamped after %(since)s; each branch is a range scan over recent rows
_CHANGES_SQL = """
SELECT project_id, max(at) FROM (
    SELECT i.project_id, a.updated_at AS at FROM annotation_annotation a
        JOIN annotation_item i ON i.id = a.item_id WHERE a.updated_at > %(since)s
    UNION ALL
    SELECT i.project_id, r.created_at FROM annotation_review r JOIN annotation_annotation a ON a.id = r.annotation_id
        JOIN annotation_item i ON i.id = a.item_id WHERE r.created_at > %(since)s
    UNION ALL
    SELECT i.project_id, f.updated_at FROM annotation_finallabel f
        JOIN annotation_item i ON i.id = f.item_id WHERE f.updated_at > %(since)s
    UNION ALL
    SELECT project_id, greatest(created_at, gold_since) FROM annotation_membership
        WHERE greatest(created_at, gold_since) > %(since)s
    UNION ALL
    SELECT id, updated_at FROM annotation_project WHERE updated_at > %(since)s
    UNION ALL
    SELECT project_id, greatest(created_at, activated_at) FROM modelsvc_modelversion
        WHERE greatest(created_at, activated_at) > %(since)s
    UNION ALL
    SELECT project_id, finished_at FROM annotation_job WHERE kind <> 'metrics' AND finished_at > %(since)s
) changes GROUP BY project_id
"""

# a later computation never loses to an earlier one that happens to finish after it
_STORE_SQL = """
INSERT INTO annotation_metricscache (project_id, key, payload, computed_at) VALUES (%s, %s, %s::jsonb, %s)
ON CONFLICT (project_id, key) DO UPDATE SET payload = EXCLUDED.payload, computed_at = EXCLUDED.computed_at
WHERE annotation_metricscache.computed_at <= EXCLUDED.computed_at
"""


# --- computing -----------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """The payload as plain JSON: numpy scalars as Python numbers, NaN and infinities as null (undefined, and
    PostgreSQL's jsonb refuses them), dates as ISO strings, tuples as lists."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    item = getattr(value, "item", None)  # a numpy scalar
    if callable(item):
        return _plain(item())
    raise TypeError(f"metrics payload: {type(value).__name__} is not JSON")


# the sections that cover the whole project whatever the window (their functions take no window)
WHOLE_PROJECT = ("model", "learning_curve", "stopping")

# the MetricsCache key of the slices' project-wide part (`slices.slice_structure`), stored beside the answers (no
# window's key: those are "all" or contain ".."; never served): computed with each whole-project computation (and by
# a day range that found none fresh), reused by day ranges while fresh, so that a range reads only its own items
SLICE_STRUCTURE = "slice-structure"


def _sections(
    project: Project, window: Window, whole: dict[str, Any] | None = None, structure: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Every section over `window`; `whole`: the WHOLE_PROJECT sections already at hand (not computed again);
    `structure`: the slices' project-wide part (`slices.slice_structure`)."""
    # the section modules import their libraries (scikit-learn, statsmodels, krippendorff) inside their functions;
    # they are imported here, not at module level, so the web process loads none of them at start
    from annotation.quality.agreement import agreement_section
    from annotation.quality.annotators import annotators_section, throughput_section
    from annotation.quality.model import learning_curve_section, live_section, model_section
    from annotation.quality.slices import slices_section
    from annotation.quality.stopping import stopping_section

    whole = whole or {}
    return {
        "agreement": agreement_section(project, window),
        "annotators": annotators_section(project, window),
        "throughput": throughput_section(project, window),
        "model": whole["model"] if "model" in whole else model_section(project),
        "live": live_section(project, window),
        "learning_curve": whole["learning_curve"] if "learning_curve" in whole else learning_curve_section(project),
        "slices": slices_section(project, window, structure=structure),
        "stopping": whole["stopping"] if "stopping" in whole else stopping_section(project),
    }


def _whole_project_parts(project: Project) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """For a day range, from the cache while fresh (`_fresh`): the WHOLE_PROJECT sections of the whole-project
    metrics (the stopping signal alone sorts every item of the project by a hash: seconds at 1M items), and the
    slices' project-wide part (two scans of every item: seconds at 1M items). One statement for both rows."""
    whole: dict[str, Any] | None = None
    structure: dict[str, Any] | None = None
    rows = MetricsCache.objects.filter(project_id=project.pk, key__in=(ALL.key, SLICE_STRUCTURE)).only(
        "key", "payload", "computed_at"
    )
    for row in rows:
        if not _fresh(project=project, computed_at=row.computed_at):
            continue
        if row.key == ALL.key:
            whole = {name: row.payload[name] for name in WHOLE_PROJECT if name in row.payload}
        else:
            structure = row.payload
    return whole, structure


def metrics_compute(*, project: Project, window: Window = ALL) -> dict[str, Any]:
    """Compute the metrics of `window` from the data (no cache; a day range takes the whole project's sections
    and the slices' project-wide part from the cache while those are fresh), store them in the cache and return
    them. The slices' project-wide part, when computed here, is stored too (key SLICE_STRUCTURE)."""
    from annotation.quality.slices import slice_structure

    outermost = not connection.in_atomic_block
    with transaction.atomic(), connection.cursor() as cursor:
        if outermost:  # one snapshot for every section (inside a caller's transaction, the caller's own)
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        # statement_timestamp(), not now(): inside a caller's transaction now() is that transaction's start
        cursor.execute("SELECT statement_timestamp()")
        computed_at = cursor.fetchone()[0]
        whole, structure = (None, None) if window.key == ALL.key else _whole_project_parts(project)
        new_structure = structure is None
        if structure is None:
            structure = slice_structure(project)
        payload = _plain({"computed_at": computed_at, **_sections(project, window, whole, structure)})
    if new_structure:
        _store(project_id=project.pk, key=SLICE_STRUCTURE, payload=_plain(structure), computed_at=computed_at)
    _store(project_id=project.pk, key=window.key, payload=payload, computed_at=computed_at)
    return payload


def _store(*, project_id: int, key: str, payload: dict[str, Any], computed_at: datetime) -> None:
    with connection.cursor() as cursor:
        cursor.execute(_STORE_SQL, [project_id, key, json.dumps(payload), computed_at])


# --- serving -------------------------------------------------------------------------------------


def _fresh(*, project: Project, computed_at: datetime) -> bool:
    """Whether cached metrics computed at `computed_at` still hold: no change seen by the beat's check since it was computed, and younger
    than TANDEM_METRICS_MAX_AGE_SECONDS. Without the check's state (no beat ran yet), for one refresh period."""
    from django.utils import timezone

    now = timezone.now()
    state = MetricsState.objects.filter(project_id=project.pk).only("changed_at", "checked_at").first()
    if state is None:
        return computed_at > now - timedelta(seconds=settings.TANDEM_METRICS_REFRESH_SECONDS)
    if computed_at < now - timedelta(seconds=settings.TANDEM_METRICS_MAX_AGE_SECONDS):
        return False
    return state.changed_at is None or state.changed_at <= computed_at - CHANGE_MARGIN


def _cached_json(project: Project, window: Window) -> str | None:
    """The cached answer's JSON text, if any. The whole project's is kept fresh by the beat's refresh Jobs. A day
    range's is served even when the project changed since (its `computed_at` says when it holds), and a METRICS Job
    recomputes it in the background (stale-while-revalidate), so a range asked for again never waits for a
    recompute; only the first request of a range computes on the request."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT payload::text, computed_at FROM annotation_metricscache WHERE project_id = %s AND key = %s",
            [project.pk, window.key],
        )
        cached = cursor.fetchone()
    if cached is None:
        return None
    if window.key != ALL.key and not _fresh(project=project, computed_at=cached[1]):
        _revalidate(project_id=project.pk, window=window)
    return cached[0]


def _revalidate(*, project_id: int, window: Window) -> None:
    """Queue a METRICS Job recomputing this range, unless one is open for it."""
    open_jobs = Job.objects.filter(
        project_id=project_id,
        kind=JobKind.METRICS,
        status__in=(JobStatus.QUEUED, JobStatus.RUNNING),
        params__window=window.key,
    )
    if not open_jobs.exists():
        metrics_refresh_start(project_id=project_id, window=window)


@contextmanager
def _computing(project_id: int, key: str) -> Iterator[None]:
    """One computation of a project's window at a time, across processes (a session-level advisory lock): requests
    for a range nobody has computed yet wait for the first one and read what it stored, instead of each computing
    it (seconds of CPU each at 1M items)."""
    name = f"tandem-metrics:{project_id}:{key}"
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", [name])
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", [name])


def project_metrics_json(project: Project, window: Window = ALL) -> str:
    """The metrics of `project` over `window` as JSON text, in the contract's shape (module docstring: where they
    come from). A cached answer is sent as PostgreSQL prints it: decoding and re-encoding a payload of ~100 kB
    (1,225 annotator pairs at 50 annotators) cost more than the rest of the request."""
    text = _cached_json(project, window)
    if text is not None:
        return text
    with _computing(project.pk, window.key):
        text = _cached_json(project, window)  # another request may have computed it while this one waited
        if text is not None:
            return text
        return json.dumps(metrics_compute(project=project, window=window))


def project_metrics(project: Project, window: Window = ALL) -> dict[str, Any]:
    """`project_metrics_json`, decoded."""
    return json.loads(project_metrics_json(project, window))


# --- the refresh Job -----------------------------------------------------------------------------


def metrics_refresh_start(*, project_id: int, window: Window = ALL) -> Job:
    """Queue a METRICS Job for the project's window (the caller has checked that none is open for it)."""
    from annotation.tasks import metrics_refresh_task

    job = Job.objects.create(project_id=project_id, kind=JobKind.METRICS, params={"window": window.key})
    metrics_refresh_task.delay_on_commit(job.pk)
    return job


def metrics_refresh(*, job_id: int) -> None:
    """A METRICS Job's work: recompute the metrics of its window (the whole project, or a day range served stale)
    and store them. Reading and storing can be repeated safely, so a retried task (database unreachable) reclaims
    its Job left running."""
    job = job_claim(job_id=job_id, kind=JobKind.METRICS, reclaim=True)
    if job is None:
        return
    started = time.perf_counter()
    try:
        window = Window.from_key(str((job.params or {}).get("window", ALL.key)))
        payload = metrics_compute(project=job.project, window=window)
    except (OperationalError, InterfaceError):
        raise  # the task retries
    except Exception as exc:
        logger.exception("metrics job %s failed", job_id)
        job_fail(job_id=job_id, error=job_failure_text(exc, doing="Computing the quality metrics"))
        return
    job_succeed(
        job_id=job_id,
        result={"computed_at": payload["computed_at"], "seconds": round(time.perf_counter() - started, 3)},
    )


def _changes(since: datetime) -> dict[int, datetime]:
    with connection.cursor() as cursor:
        cursor.execute(_CHANGES_SQL, {"since": since})
        return dict(cursor.fetchall())


@transaction.atomic
def metrics_check() -> dict[str, list[int]]:
    """Beat, every TANDEM_METRICS_REFRESH_SECONDS: queue a refresh Job for each project whose data changed since its
    cached metrics (or that has none, or whose are older than TANDEM_METRICS_MAX_AGE_SECONDS), unless one is open.
    An open Job older than the task's limits twice over was lost (a message dropped, a worker gone): it is failed.
    A fixed number of queries whatever the number of projects, plus one Job per project queued."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement_timestamp()")
        now: datetime = cursor.fetchone()[0]
    lost_before = now - 2 * timedelta(seconds=settings.TANDEM_METRICS_TASK_TIME_LIMIT + settings.TANDEM_TASK_KILL_GRACE)
    lost = list(
        Job.objects.filter(
            kind=JobKind.METRICS, status__in=(JobStatus.QUEUED, JobStatus.RUNNING), created_at__lt=lost_before
        ).values_list("pk", "project_id")
    )
    for job_id, _ in lost:
        job_fail(job_id=job_id, error=LOST)
    open_jobs = set(  # open whole-project refreshes (a day range's own Job does not hold this one back)
        Job.objects.filter(kind=JobKind.METRICS, status__in=(JobStatus.QUEUED, JobStatus.RUNNING))
        .filter(Q(params__window=ALL.key) | ~Q(params__has_key="window"))
        .values_list("project_id", flat=True)
    )
    states = {s.project_id: s for s in MetricsState.objects.all()}
    computed = dict(MetricsCache.objects.filter(key=ALL.key).values_list("project_id", "computed_at"))
    # what changed since the check last looked at every project (a project new to the check is refreshed anyway)
    seen = _changes(min(s.checked_at for s in states.values()) - CHANGE_MARGIN) if states else {}
    max_age = timedelta(seconds=settings.TANDEM_METRICS_MAX_AGE_SECONDS)
    queued: list[int] = []
    memory: list[MetricsState] = []
    for project_id in Project.objects.order_by("pk").values_list("pk", flat=True):
        state = states.get(project_id)
        changes = [at for at in (state.changed_at if state else None, seen.get(project_id)) if at is not None]
        changed_at = max(changes, default=None)
        at = computed.get(project_id)
        due = (
            state is None
            or at is None
            or at < now - max_age
            or (changed_at is not None and changed_at > at - CHANGE_MARGIN)
        )
        memory.append(MetricsState(project_id=project_id, checked_at=now, changed_at=changed_at))
        if due and project_id not in open_jobs:
            metrics_refresh_start(project_id=project_id)
            queued.append(project_id)
    MetricsState.objects.bulk_create(
        memory, update_conflicts=True, unique_fields=["project"], update_fields=["checked_at", "changed_at"]
    )
    MetricsCache.objects.exclude(key=ALL.key).filter(computed_at__lt=now - max_age).delete()
    return {"queued": queued, "lost": [job_id for job_id, _ in lost]}
