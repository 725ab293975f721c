"""Why the model suggests a label: occlusion attributions (modelsvc.explain) of a prediction's suggested
label, computed on the worker for the head of the queue after each pre-label (an `explain` Job, with
progress), and on demand through the API. Stored on the Prediction; a request queues the computation at
most once per EXPLANATION_RETRY (no Job: the Prediction records it).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.db.models import Q
from django.utils import timezone

from annotation.exceptions import NotFound
from annotation.models import Item, Job
from annotation.models.item import QUEUE_STATUSES
from annotation.models.job import JobKind
from annotation.services.jobs import job_claim, job_fail, job_failure_text, job_progress, job_succeed
from modelsvc.contracts import ModelUnavailable, Predictor
from modelsvc.models import ModelVersion, Prediction, VersionStatus
from modelsvc.services.versions import version_predictor
from modelsvc.tasks import explain_head_task, explain_task

logger = logging.getLogger(__name__)

# a request for an explanation not computed by then queues it again (its task may have been lost)
EXPLANATION_RETRY = timedelta(seconds=60)


def _target_label(prediction: Prediction) -> str:
    """The label the explanation is for: the suggested one (classification), else the most probable."""
    value = prediction.value or {}
    if isinstance(value.get("label"), str):
        return value["label"]
    spans = value.get("spans") or []
    if spans:
        return max(spans, key=lambda s: s.get("score", 0))["label"]
    probabilities = prediction.probabilities or {}
    return max(probabilities, key=lambda name: probabilities[name])


def _explain(prediction: Prediction, predictor: Predictor) -> dict[str, Any]:
    """Compute and store one prediction's occlusion attributions with `predictor` (its version's)."""
    from modelsvc.explain import occlusion

    label = _target_label(prediction)
    text = prediction.item.data.get("text", "")
    tokens = occlusion(
        text, lambda texts: predictor.score(texts, label), max_variants=settings.TANDEM_EXPLAIN_MAX_VARIANTS
    )
    explanation = {"label": label, "tokens": tokens}
    Prediction.objects.filter(pk=prediction.pk).update(explanation=explanation)
    return explanation


def explain_prediction(*, prediction_id: int) -> dict[str, Any] | None:
    """Compute and store the occlusion attributions of one prediction (worker side, on demand); None when
    the prediction is gone or its model cannot be loaded. Idempotent: a stored explanation is returned."""
    prediction = Prediction.objects.select_related("model_version", "item").filter(pk=prediction_id).first()
    if prediction is None:
        return None
    if prediction.explanation is not None:
        return prediction.explanation
    try:
        predictor = version_predictor(prediction.model_version)
    except ModelUnavailable as exc:
        logger.error("no explanation for prediction %s: %s", prediction_id, exc)
        return None
    return _explain(prediction, predictor)


def explain_head_queue(*, project_id: int, user_id: int | None, params: dict[str, Any]) -> Job | None:
    """Create the Job that explains the head of the project's queue and queue it on commit (the pre-label
    that just finished calls this inside its transaction); None when TANDEM_EXPLAIN_HEAD is 0."""
    if settings.TANDEM_EXPLAIN_HEAD <= 0:
        return None
    job = Job.objects.create(project_id=project_id, kind=JobKind.EXPLAIN, created_by_id=user_id, params=params)
    explain_head_task.delay_on_commit(job.pk)
    return job


def _head(project_id: int) -> list[Prediction]:
    """The active version's unexplained predictions of the TANDEM_EXPLAIN_HEAD items at the head of the
    queue (what experts see next)."""
    version = ModelVersion.objects.filter(project_id=project_id, status=VersionStatus.ACTIVE).first()
    if version is None:
        return []
    head = list(
        Item.objects.filter(project_id=project_id, status__in=QUEUE_STATUSES, prediction__isnull=False)
        .order_by("-priority", "id")
        .values_list("id", flat=True)[: settings.TANDEM_EXPLAIN_HEAD]
    )
    return list(
        Prediction.objects.select_related("model_version", "item")
        .filter(item_id__in=head, model_version=version, explanation__isnull=True)
        .order_by("id")
    )


def explain_head(*, job_id: int) -> None:
    """Run an explain Job (worker side): claim it, explain the head of the queue with progress per
    explanation, and succeed with {"explained": n}; a model that cannot be loaded or any other error
    (a time limit included) fails it with the reason. A message redelivered after the Job ended does
    nothing; one redelivered while it is running (its worker was lost) takes it over and explains what is
    still unexplained (each explanation is stored on its own, so nothing is half-written or done twice)."""
    job = job_claim(job_id=job_id, kind=JobKind.EXPLAIN, reclaim=True)
    if job is None:
        return
    try:
        explained = _explain_head(job)
    except (OperationalError, InterfaceError):
        raise  # the task retries, and its retry takes the running Job over
    except ModelUnavailable as exc:
        job_fail(
            job_id=job_id,
            error=f"The model could not be loaded, so the head of the queue was not explained "
            f"(suggestions and labeling go on): {exc}",
        )
        return
    except Exception as exc:
        logger.exception("explain job %s failed", job_id)
        job_fail(job_id=job_id, error=job_failure_text(exc, doing="Explaining the head of the queue"))
        return
    job_succeed(job_id=job_id, result={"explained": explained})


def _explain_head(job: Job) -> int:
    predictions = _head(job.project_id)
    job_progress(job_id=job.pk, progress=0, total=len(predictions))
    if not predictions:
        return 0
    predictor = version_predictor(predictions[0].model_version)
    for done, prediction in enumerate(predictions, start=1):
        _explain(prediction, predictor)
        job_progress(job_id=job.pk, progress=done)
    return len(predictions)


def explanation_for_item(*, item: Item) -> tuple[bool, dict[str, Any]]:
    """(True, explanation) when computed; else queue it (at most once per EXPLANATION_RETRY) and
    (False, {"status": "computing", ...}). NotFound when the item has no suggestion or its prediction is gone."""
    if not item.prediction:
        raise NotFound("This item has no model suggestion yet (pre-label the project first).")
    number = item.prediction.get("model_version")
    prediction = (
        Prediction.objects.filter(item=item, model_version__project_id=item.project_id, model_version__version=number)
        .only("id", "explanation", "explanation_requested_at")
        .first()
    )
    if prediction is None:
        raise NotFound("The suggestion's prediction is gone (its model version was removed).")
    if prediction.explanation is not None:
        return True, {**prediction.explanation, "model_version": number}
    now = timezone.now()
    queued = (
        Prediction.objects.filter(pk=prediction.pk, explanation__isnull=True)
        .filter(Q(explanation_requested_at__isnull=True) | Q(explanation_requested_at__lt=now - EXPLANATION_RETRY))
        .update(explanation_requested_at=now)
    )
    if queued:
        explain_task.delay_on_commit(prediction.pk)
    return False, {"status": "computing", "model_version": number}
