"""Reads the pages need beyond the API's selectors."""

from __future__ import annotations

from django.db.models import Count, Exists, OuterRef

from annotation.models import Annotation, Item
from annotation.models.item import QUEUE_STATUSES, Skip


def items_left_by_project(*, user, project_ids: list[int]) -> dict[int, int]:
    """Per project: queue items (open / in progress) the user has neither annotated nor skipped. One query.

    An upper bound of what ``next`` will still serve them (slots leased to others are counted).
    """
    if not project_ids:
        return {}
    rows = (
        Item.objects.filter(project_id__in=project_ids, status__in=QUEUE_STATUSES)
        .exclude(Exists(Annotation.objects.filter(item=OuterRef("pk"), annotator=user)))
        .exclude(Exists(Skip.objects.filter(item=OuterRef("pk"), user=user)))
        .values("project_id")
        .annotate(n=Count("id"))
    )
    return {row["project_id"]: row["n"] for row in rows}
