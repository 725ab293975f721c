"""Reads for reviewers: the review queue's serving order, and an item in review with all its annotations.

The lease on the queue (who is handed which item) is a state change: annotation/services/reviewing.py.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any

from django.db.models import Prefetch

from annotation.access import Capability, ProjectAccess
from annotation.models import Annotation, Item, Project, Review
from annotation.models.item import ItemStatus
from annotation.models.labeling import Verdict
from annotation.models.project import Role

# the gold accuracy below which an annotator's items are reviewed early, when the project sets no gold_pause_below
LOW_GOLD_ACCURACY = 0.8


@dataclass
class ReviewTask:
    item: Item
    annotations: list[Annotation]  # all of the item's annotations, rejected ones (counts = false) included
    disagreement: bool  # the counting annotations hold more than one distinct value
    waiting: int  # items of the project in review, this one included
    expires_at: datetime | None = None  # the reviewer's lease on the item
    reviews: dict[int, Review] = field(default_factory=dict)  # annotation id -> its latest (reject, if rejected) Review


def canonical(value: Any) -> str:
    """Values are stored canonical (services/values.py), so equal values have equal JSON text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


# The items a reviewer may be handed, best first, as one query whose last clause is a locking clause ({lock}).
# Candidates: the project's items in review that no other reviewer holds a live lease on and, unless the project
# lets reviewers review their own work (%(own)s), that the reviewer (%(user)s) holds no annotation of (counting or
# rejected: services/reviewing.py's _own_check refuses a verdict on such an item);
# %(skip)s: items to leave out (their lease turned out to be taken: services/reviewing.py).
# Order (docs/review.md), each key from the item's counting annotations (counts = true): disagreements first (more
# than one distinct value), then items whose consensus is not the model's suggestion (the suggestion served with them
# does not hold a strict majority: each annotation's accepted_suggestion, decided at submit by
# services/submitting.py's suggestion_accepted, the one comparison of a value with a suggestion), then items labeled by an annotator whose gold accuracy is low (%(low)s: their
# user ids), then the oldest: the time the item entered review (its latest annotation or review).
# The keys are aggregated in one pass over the annotations of the project's items in review, then joined to the item
# rows, which are locked (correlated sub-queries per item took seconds at 20,000 items in review).
_CANDIDATES = """
SELECT i.id FROM annotation_item i
LEFT JOIN (
    SELECT a.item_id,
           count(DISTINCT a.value) FILTER (WHERE a.counts) > 1 AS disagreement,
           count(*) FILTER (WHERE a.counts) AS counting,
           count(*) FILTER (WHERE a.counts AND a.accepted_suggestion) AS for_model,
           count(*) FILTER (WHERE a.counts AND a.accepted_suggestion IS NOT NULL) AS suggested,
           bool_or(a.counts AND a.annotator_id = ANY(%(low)s::integer[])) AS low_gold,
           bool_or(a.annotator_id = %(user)s::integer) AS mine,
           max(a.created_at) AS last_annotation
    FROM annotation_annotation a JOIN annotation_item ri ON ri.id = a.item_id
    WHERE ri.project_id = %(project)s::bigint AND ri.status = 'in_review'
    GROUP BY a.item_id
) k ON k.item_id = i.id
LEFT JOIN (
    SELECT a.item_id, max(r.created_at) AS last_review
    FROM annotation_review r JOIN annotation_annotation a ON a.id = r.annotation_id
    JOIN annotation_item ri ON ri.id = a.item_id
    WHERE ri.project_id = %(project)s::bigint AND ri.status = 'in_review'
    GROUP BY a.item_id
) rv ON rv.item_id = i.id
WHERE i.project_id = %(project)s::bigint AND i.status = 'in_review'
  AND i.id <> ALL(%(skip)s::bigint[])
  AND NOT EXISTS (SELECT 1 FROM annotation_reviewlease l
                  WHERE l.item_id = i.id AND l.reviewer_id <> %(user)s::integer AND l.expires_at > %(now)s::timestamptz)
  AND (%(own)s::boolean OR NOT coalesce(k.mine, false))
ORDER BY coalesce(k.disagreement, false) DESC,
         coalesce(k.suggested > 0 AND k.for_model * 2 <= k.counting, false) DESC,
         coalesce(k.low_gold, false) DESC,
         GREATEST(k.last_annotation, rv.last_review),
         i.id
LIMIT 1
{lock}
"""


@cache
def review_candidates_sql(*, lock: str) -> str:
    """The candidate query (one row: the best item's id) with a locking clause, e.g. `FOR UPDATE OF i SKIP LOCKED`."""
    return _CANDIDATES.format(lock=lock)


def low_gold_annotators(*, project: Project) -> list[int]:
    """The user ids of the project's members whose gold accuracy (annotation/services/gold.py) is below the
    project's gold_pause_below, or LOW_GOLD_ACCURACY when it sets none: their items are reviewed early."""
    from annotation.services.gold import gold_scores

    threshold = project.gold_pause_below if project.gold_pause_below is not None else LOW_GOLD_ACCURACY
    return sorted(
        user_id
        for user_id, score in gold_scores(project=project).items()
        if score.accuracy is not None and score.accuracy < threshold
    )


def annotating_roles(*, project: Project) -> list[str]:
    """The membership roles that may annotate in the project (annotation.access decides)."""
    return [role for role in Role.values if ProjectAccess(project=project, role=role).can(Capability.ANNOTATE)]


def review_waiting(*, project: Project) -> int:
    return Item.objects.filter(project=project, status=ItemStatus.IN_REVIEW).count()


def review_task(*, item_id: int, project: Project, expires_at: datetime | None = None) -> ReviewTask:
    """An item in review with every annotation (annotator loaded) and each annotation's latest Review. Four queries."""
    item = Item.objects.get(pk=item_id)
    annotations = list(
        Annotation.objects.filter(item_id=item_id)
        .select_related("annotator")
        .prefetch_related(Prefetch("reviews", queryset=Review.objects.select_related("reviewer").order_by("id")))
        .order_by("id")
    )
    reviews = {}
    for a in annotations:
        # a rejected annotation shows its reject (why it no longer counts), as its annotator sees it (serializers)
        shown = [r for r in a.reviews.all() if a.counts or r.verdict == Verdict.REJECT]
        if shown:
            reviews[a.pk] = shown[-1]
    counting = {canonical(a.value) for a in annotations if a.counts}
    return ReviewTask(
        item=item,
        annotations=annotations,
        disagreement=len(counting) > 1,
        waiting=review_waiting(project=project),
        expires_at=expires_at,
        reviews=reviews,
    )
