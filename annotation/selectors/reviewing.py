"""Reads for reviewers: the next item awaiting review with all its annotations side by side."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, Max, QuerySet

from annotation.models import Annotation, Item, Project
from annotation.models.item import ItemStatus


@dataclass
class ReviewTask:
    item: Item
    annotations: list[Annotation]
    disagreement: bool
    waiting: int  # items of the project in review, this one included


def review_queue(*, project: Project) -> QuerySet[Item]:
    """The project's items awaiting review in serving order: disagreements first, then the oldest.

    An item's age is the time of its latest annotation (when it entered review); a disagreement is
    an item whose annotations do not all hold the same value (values are stored canonical, so equal
    labels compare equal as JSON).
    """
    return (
        Item.objects.filter(project=project, status=ItemStatus.IN_REVIEW)
        .annotate(
            distinct_values=Count("annotations__value", distinct=True),
            entered_review_at=Max("annotations__created_at"),
        )
        .order_by("-distinct_values", "entered_review_at", "id")
    )


def review_next_for_reviewer(*, project: Project) -> ReviewTask | None:
    """The item a reviewer should look at next (see review_queue), or None when nothing awaits review.

    Nothing is leased: two reviewers may be shown the same item, and the second verdict answers 409.
    """
    queue = review_queue(project=project)
    item = queue.first()
    if item is None:
        return None
    annotations = list(Annotation.objects.filter(item_id=item.pk).select_related("annotator").order_by("id"))
    return ReviewTask(
        item=item,
        annotations=annotations,
        disagreement=item.distinct_values > 1,  # type: ignore[attr-defined]  # annotated by review_queue
        waiting=Item.objects.filter(project=project, status=ItemStatus.IN_REVIEW).count(),
    )
