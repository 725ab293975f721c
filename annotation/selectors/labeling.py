"""Reads of annotations for the labeling loop."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from annotation.access import Capability, ProjectAccess
from annotation.models import Annotation, Item, Project


def annotation_list_for_item(*, item: Item, access: ProjectAccess, user: Any) -> QuerySet[Annotation]:
    """The item's annotations the user may see: all of them for those who may inspect the project (reviewers,
    managers, engineers, staff), else their own (blind labeling)."""
    # reviews with their reviewer prefetched: AnnotationOutput shows each annotation's latest verdict
    qs = Annotation.objects.filter(item=item).select_related("annotator").prefetch_related("reviews__reviewer")
    qs = qs.order_by("id")
    return qs if access.can(Capability.INSPECT) else qs.filter(annotator=user)


def annotation_history(*, project: Project, user: Any, verdict: str | None = None) -> QuerySet[Annotation]:
    """The user's own annotations in the project, newest first, with each one's reviews (the verdict and comment
    a reviewer left, and whether it still counts): what an annotator reads in their history. `verdict`
    ("approve", "reject", "correct") keeps the annotations that received such a verdict."""
    qs = Annotation.objects.filter(item__project=project, annotator=user)
    if verdict is not None:
        qs = qs.filter(reviews__verdict=verdict).distinct()
    return qs.select_related("annotator", "item").prefetch_related("reviews__reviewer").order_by("-id")
