"""Reads of the model registry for the API: a project's versions and its learning curve."""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from annotation.exceptions import NotFound
from annotation.models import Assignment, Item, Project
from modelsvc.models import ModelVersion


def version_get(*, project: Project, number: int) -> ModelVersion:
    """The project's version with this number; NotFound (404) when there is none."""
    version = ModelVersion.objects.filter(project=project, version=number).first()
    if version is None:
        raise NotFound("No such model version.")
    return version


def version_list(*, project: Project) -> list[ModelVersion]:
    """The project's versions, newest first."""
    return list(ModelVersion.objects.filter(project=project).order_by("-version"))


def learning_curve(versions: list[ModelVersion]) -> list[dict[str, Any]]:
    """Validation accuracy and macro-F1 against the number of training labels, one point per evaluated
    version, oldest first (a zero-shot version is the curve's start, at 0 training labels)."""
    return [
        {
            "version": v.version,
            "n_train": v.metrics.get("n_train", 0),
            "accuracy": v.metrics.get("accuracy"),
            "macro_f1": v.metrics.get("macro_f1"),
        }
        for v in sorted(versions, key=lambda v: v.version)
        if v.metrics and "accuracy" in v.metrics
    ]


def lease_held(*, item: Item, user: Any) -> bool:
    """Whether the user holds a live lease (an unexpired Assignment) on the item: the item served to them."""
    return Assignment.objects.filter(item_id=item.pk, user_id=user.pk, expires_at__gt=timezone.now()).exists()
