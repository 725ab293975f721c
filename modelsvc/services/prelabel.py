"""Pre-label: suggestions and queue priorities for a project's open items (torch-free; the runtimes
are loaded on the worker).

`prelabel_start` (web, after an import, after an activation) creates a Job and queues `prelabel_plan`
on the `model` queue. The plan claims the Job, makes sure the project has an active ModelVersion (on
cold start a zero-shot one), picks a diverse first batch on cold start, splits the open items into id
ranges and queues one `prelabel_chunk` task per range. Each chunk predicts its items and, in ONE
transaction, records the chunk (PrelabelChunk, unique per job and index), upserts the Predictions on
(item, model_version), writes the items' suggestion / uncertainty / priority and adds its size to the
Job's progress; the chunk that brings progress to the total marks the Job succeeded. A chunk
redelivered after a worker was killed either finds its PrelabelChunk (nothing to do) or finds nothing
written (does it all), so every item gets exactly one prediction per version and progress counts each
chunk once. Any other failure, a time limit included, fails the Job with its reason.
"""

from __future__ import annotations

import logging
import random
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from annotation.models import Annotation, Item, Job, Project
from annotation.models.item import QUEUE_STATUSES
from annotation.models.job import JobKind, JobStatus
from annotation.services.jobs import job_claim, job_fail, job_failure_text, job_progress, job_succeed
from modelsvc.contracts import ModelUnavailable, Predictor
from modelsvc.models import ModelVersion, Prediction, PrelabelChunk, VersionKind, VersionStatus
from modelsvc.scoring import Scored, priorities, score
from modelsvc.services.explanations import explain_head_queue
from modelsvc.services.versions import version_activate, version_ensure_active, version_predictor
from modelsvc.tasks import prelabel_chunk_task, prelabel_plan_task

logger = logging.getLogger(__name__)


def prelabel_start(*, project: Project, user: Any = None) -> Job:
    """Queue a pre-label Job for the project's open items; a Job already queued or running is returned
    instead (one at a time per project). Locks the project row."""
    with transaction.atomic():
        Project.objects.select_for_update().filter(pk=project.pk).first()
        job = Job.objects.filter(
            project=project, kind=JobKind.PRELABEL, status__in=(JobStatus.QUEUED, JobStatus.RUNNING)
        ).first()
        if job is not None and not _stale(job):
            return job
        if job is not None:  # its messages were lost (e.g. the broker was wiped): make way for a new one
            job_fail(
                job_id=job.pk,
                error="The pre-label job made no progress for too long (its task was lost); a new one replaced it.",
            )
        job = Job.objects.create(project=project, kind=JobKind.PRELABEL, created_by=user, params={})
        prelabel_plan_task.delay_on_commit(job.pk)
    return job


@transaction.atomic
def prelabel_rescore(*, version: ModelVersion, user: Any = None) -> Job:
    """Activate `version` (see `version_activate`, which may refuse with 409) and re-score the project's
    open items with it: the pre-label Job that does so. Used for rollbacks and promotions."""
    version_activate(version=version)
    return prelabel_start(project=version.project, user=user)


def _stale(job: Job) -> bool:
    """A queued or running pre-label Job that has not started or finished within TANDEM_PRELABEL_STALE_SECONDS."""
    since = job.started_at or job.created_at
    return timezone.now() - since > timedelta(seconds=settings.TANDEM_PRELABEL_STALE_SECONDS)


def _predictor(job: Job, version: ModelVersion) -> Predictor | None:
    try:
        return version_predictor(version)
    except ModelUnavailable as exc:
        job_fail(
            job_id=job.pk,
            error=f"The model could not be loaded, so there are no suggestions (labeling goes on): {exc}",
        )
        return None


def _is_cold_start(project: Project, version: ModelVersion) -> bool:
    return version.kind == VersionKind.ZERO_SHOT and not Annotation.objects.filter(item__project=project).exists()


def _diversity_pick(predictor: Predictor, ids: list[int], seed: int) -> list[int]:
    """Cold start: the items nearest the k-means centres of a sample of the pool, served first."""
    from modelsvc.zeroshot import diversity_pick

    k = min(settings.TANDEM_COLD_START_PICKS, len(ids))
    if k <= 1:
        return []
    sample = (
        ids
        if len(ids) <= settings.TANDEM_COLD_START_SAMPLE
        else random.Random(seed).sample(ids, settings.TANDEM_COLD_START_SAMPLE)  # noqa: S311 - sampling, not security
    )
    texts = dict(Item.objects.filter(pk__in=sample).values_list("id", "data__text"))
    sample = [i for i in sample if isinstance(texts.get(i), str)]
    embeddings = predictor.embed([texts[i] for i in sample])
    return [sample[i] for i in diversity_pick(embeddings, k, seed=seed)]


# the items a pre-label predicts: those still in the queue, and the gold items (served like any item, with a
# suggestion, so that nothing in `next` tells them apart; their served suggestion also measures the model)
_PRELABELED = Q(status__in=QUEUE_STATUSES) | Q(is_gold=True)


def _chunks(ids: list[int], size: int) -> list[list[int]]:
    """[lo, hi, count] id ranges of at most `size` open items each."""
    return [[ids[i], ids[min(i + size, len(ids)) - 1], len(ids[i : i + size])] for i in range(0, len(ids), size)]


def prelabel_plan(*, job_id: int) -> None:
    """Claim the Job, resolve the version, plan the chunks and queue them. Redelivered: re-queues the
    chunks not yet done (plans first if the lost delivery had not)."""
    claimed = job_claim(job_id=job_id, kind=JobKind.PRELABEL)
    job = claimed or Job.objects.select_related("project").filter(pk=job_id).first()
    if job is None or job.status != JobStatus.RUNNING:
        return
    try:
        if not job.params.get("chunks") and not _plan(job):
            return
    except (OperationalError, InterfaceError):
        raise  # the task retries
    except Exception as exc:
        logger.exception("pre-label job %s failed while planning", job_id)
        job_fail(job_id=job_id, error=job_failure_text(exc, doing="Planning the pre-label"))
        return
    done = set(PrelabelChunk.objects.filter(job=job).values_list("index", flat=True))
    for index, (lo, hi, size) in enumerate(job.params["chunks"]):
        if index not in done:
            prelabel_chunk_task.delay(job.pk, index, lo, hi, size)


def _plan(job: Job) -> bool:
    """Write the plan into the Job's params; False when there is nothing to queue (the Job has ended)."""
    project = job.project
    version = version_ensure_active(project)
    predictor = _predictor(job, version)
    if predictor is None:
        return False
    ids = list(Item.objects.filter(_PRELABELED, project=project).order_by("id").values_list("id", flat=True))
    first = _diversity_pick(predictor, ids, seed=job.pk) if _is_cold_start(project, version) else []
    chunks = _chunks(ids, settings.TANDEM_PRELABEL_CHUNK_SIZE)
    job.params = {"version": version.pk, "model_version": version.version, "first": first, "chunks": chunks}
    job.total = len(ids)
    job.save(update_fields=["params", "total"])
    if not ids:
        job_succeed(job_id=job.pk, result={"predicted": 0, "model_version": version.version})
        return False
    return True


def _claim_chunk(job_id: int, index: int, size: int) -> bool:
    """Record the chunk inside the caller's transaction; False when it was already written."""
    with connection.cursor() as cursor:
        cursor.execute(
            'INSERT INTO modelsvc_prelabelchunk (job_id, "index", size, created_at) VALUES (%s, %s, %s, %s) '
            'ON CONFLICT (job_id, "index") DO NOTHING RETURNING id',
            [job_id, index, size, timezone.now()],
        )
        return cursor.fetchone() is not None


def prelabel_chunk(*, job_id: int, index: int, lo: int, hi: int, size: int) -> None:
    """Predict one id range and write it all in one transaction (see the module docstring)."""
    job = Job.objects.select_related("project").filter(pk=job_id).first()
    if job is None or job.status != JobStatus.RUNNING:
        return
    if PrelabelChunk.objects.filter(job_id=job_id, index=index).exists():
        return
    try:
        _predict_chunk(job, index, lo, hi, size)
    except (OperationalError, InterfaceError):
        raise  # the task retries
    except Exception as exc:
        logger.exception("pre-label job %s failed in chunk %s", job_id, index)
        job_fail(job_id=job_id, error=job_failure_text(exc, doing="Pre-labeling"))


def _predict_chunk(job: Job, index: int, lo: int, hi: int, size: int) -> None:
    project = job.project
    version = ModelVersion.objects.get(pk=job.params["version"])
    rows = list(
        Item.objects.filter(_PRELABELED, project=project, id__gte=lo, id__lte=hi)
        .order_by("id")
        .values_list("id", "data__text")
    )
    rows = [(i, t) for i, t in rows if isinstance(t, str)]
    scored: list[Scored] = []
    if rows:
        predictor = _predictor(job, version)
        if predictor is None:
            return
        raws = predictor.predict([t for _, t in rows])
        labels = version.label_names
        scored = [
            score(
                raw,
                task_type=version.task_type,
                labels=labels,
                measure=project.uncertainty_measure,
                model_version=version.version,
                kind=version.kind,
            )
            for raw in raws
        ]
    ids = [i for i, _ in rows]
    prio = priorities(
        ids,
        [s.uncertainty for s in scored],
        exploration_rate=project.exploration_rate,
        seed=job.pk,
        first=job.params.get("first", []),
    )
    with transaction.atomic():
        if not _claim_chunk(job.pk, index, size):
            return
        Prediction.objects.bulk_create(
            [
                Prediction(
                    item_id=item_id,
                    model_version=version,
                    value=s.contract["value"],
                    probabilities=s.contract["probabilities"],
                    least_confidence=s.scores["least_confidence"],
                    margin=s.scores["margin"],
                    entropy=s.scores["entropy"],
                    uncertainty=s.uncertainty,
                )
                for item_id, s in zip(ids, scored, strict=True)
            ],
            update_conflicts=True,
            unique_fields=["item", "model_version"],
            update_fields=["value", "probabilities", "least_confidence", "margin", "entropy", "uncertainty"],
        )
        if ModelVersion.objects.filter(pk=version.pk, status=VersionStatus.ACTIVE).exists():
            items = [
                Item(pk=item_id, prediction=s.contract, uncertainty=s.uncertainty, priority=q)
                for item_id, s, q in zip(ids, scored, prio, strict=True)
            ]
            Item.objects.bulk_update(items, ["prediction", "uncertainty", "priority"])
        job_progress(job_id=job.pk, progress=F("progress") + size)
        finished = job_succeed(
            job_id=job.pk, result={"predicted": job.total, "model_version": version.version}, when_complete=True
        )
        if finished:
            explain_head_queue(
                project_id=project.pk,
                user_id=job.created_by_id,
                params={"prelabel_job": job.pk, "model_version": version.version},
            )
