"""Why the model suggests a label: occlusion attributions (modelsvc.explain) of a prediction's suggested
label, computed on the worker for the head of the queue after each pre-label, and on demand through
the API. Stored on the Prediction; a request queues the computation at most once per EXPLANATION_RETRY.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from annotation.exceptions import NotFound
from annotation.models import Item
from annotation.models.item import QUEUE_STATUSES
from modelsvc.contracts import ModelUnavailable
from modelsvc.models import ModelVersion, Prediction, VersionStatus
from modelsvc.services.versions import version_spec
from modelsvc.tasks import explain_task

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


def explain_prediction(*, prediction_id: int) -> dict[str, Any] | None:
    """Compute and store the occlusion attributions of one prediction (worker side); None when the
    prediction is gone or its model cannot be loaded. Idempotent: a stored explanation is returned."""
    from modelsvc.explain import occlusion
    from modelsvc.runtime import get_predictor

    prediction = Prediction.objects.select_related("model_version", "item").filter(pk=prediction_id).first()
    if prediction is None:
        return None
    if prediction.explanation is not None:
        return prediction.explanation
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
    """Explain the active version's predictions of the items at the head of the queue (what experts see
    next); the number computed."""
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
