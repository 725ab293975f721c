"""A reviewer's verdict on an annotation of an item awaiting review (see docs/review.md).

approve -> FinalLabel(the annotation's value, source `review`), item `approved`
correct -> FinalLabel(the corrected value, source `adjudication`), item `approved`
reject  -> no FinalLabel, item `rejected` (a terminal state: the queue never serves it again)

Every verdict writes one Review row. Only items in `in_review` can be reviewed; once decided, the
same verdict again (a client retry) returns the first Review, anything else answers 409.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import transaction

from annotation.exceptions import Conflict, InvalidInput
from annotation.models import Annotation, FinalLabel, Item, Project, Review
from annotation.models.item import FinalLabelSource, ItemStatus
from annotation.models.labeling import Verdict
from annotation.services.values import value_validate

MAX_COMMENT = 5000


@dataclass
class ReviewResult:
    review: Review
    created: bool
    item: Item
    final: Any | None  # the item's final value after the verdict (None when rejected)


def _same(review: Review, *, verdict: str, value: Any | None, comment: str) -> bool:
    return review.verdict == verdict and review.corrected_value == value and review.comment == comment


def review_submit(
    *,
    annotation: Annotation,
    project: Project,
    reviewer,
    verdict: str,
    value: Any | None = None,
    comment: str = "",
) -> ReviewResult:
    """Record `reviewer`'s verdict on `annotation` and decide its item (see the module docstring).

    Locks the item row (SELECT ... FOR UPDATE) for the whole check-and-write, so two reviewers
    deciding the same item at once get one 201 and one 409. Raises InvalidInput (400) for a bad
    verdict, a value that is missing, superfluous or does not fit the project, or a long comment;
    Conflict (409) when the item is not awaiting review. Idempotent: the same reviewer sending the
    same verdict again after it was recorded gets that Review back with created=False.
    """
    if verdict not in Verdict.values:
        raise InvalidInput(
            "Unknown verdict.", [{"field": "verdict", "message": f"One of {', '.join(Verdict.values)}."}]
        )
    if len(comment) > MAX_COMMENT:
        raise InvalidInput("Comment too long.", [{"field": "comment", "message": f"At most {MAX_COMMENT} characters."}])
    with transaction.atomic():
        item = Item.objects.select_for_update().get(pk=annotation.item_id)
        # the annotator may have edited it since it was read (annotation_update takes the same lock)
        annotation.refresh_from_db(fields=["value"])
        if verdict == Verdict.CORRECT:
            if value is None:
                raise InvalidInput(
                    "A correction needs the corrected value.",
                    [{"field": "value", "message": "Required when verdict is correct."}],
                )
            value = value_validate(
                task_type=project.task_type, label_names=project.label_names, value=value, text=item.text
            )
        elif value is not None:
            raise InvalidInput(
                f"Only a correction carries a value; {verdict} uses the annotation's own.",
                [{"field": "value", "message": "Only allowed when verdict is correct."}],
            )

        if item.status != ItemStatus.IN_REVIEW:
            mine = Review.objects.filter(annotation=annotation, reviewer=reviewer).order_by("-id").first()
            if mine is not None and _same(mine, verdict=verdict, value=value, comment=comment):
                final = FinalLabel.objects.filter(item_id=item.pk).values_list("value", flat=True).first()
                return ReviewResult(review=mine, created=False, item=item, final=final)
            raise Conflict(
                "This item is not awaiting review.",
                [{"field": "item", "message": f"Item {item.pk} is {item.status}."}],
            )

        review = Review(
            annotation=annotation,
            reviewer=reviewer,
            verdict=verdict,
            corrected_value=value,
            comment=comment,
        )
        review.full_clean(exclude=["annotation", "reviewer"])
        review.save()

        if verdict == Verdict.REJECT:
            final = None
            item.status = ItemStatus.REJECTED
            FinalLabel.objects.filter(item_id=item.pk).delete()
        else:
            final = annotation.value if verdict == Verdict.APPROVE else value
            source = FinalLabelSource.REVIEW if verdict == Verdict.APPROVE else FinalLabelSource.ADJUDICATION
            FinalLabel.objects.bulk_create(
                [FinalLabel(item_id=item.pk, value=final, source=source)],
                update_conflicts=True,
                unique_fields=["item"],
                update_fields=["value", "source", "updated_at"],
            )
            item.status = ItemStatus.APPROVED
        item.save(update_fields=["status"])
    return ReviewResult(review=review, created=True, item=item, final=final)
