"""The review loop: leasing the review queue to reviewers, and a reviewer's verdict on an annotation (docs/review.md).

approve -> FinalLabel(the annotation's value, source `review`), item `approved`
correct -> FinalLabel(the corrected value, source `adjudication`), item `approved`
reject  -> the annotation is kept (with its Review) but stops counting (counts = false): the item loses that slot
           and its consensus FinalLabel and goes back to the labeling queue (`in_progress`, or `open` with no counting
           annotation left), where the queue never serves it to the rejected annotator again (they hold an
           annotation of it). At the project's max_rejections, or when no member who may annotate it is left, it
           stays `in_review` with adjudication = true instead: only `correct` decides it then.

Every verdict writes one Review row and releases the item's ReviewLease. Only items in `in_review` can be reviewed;
once decided, the same verdict again (a client retry) returns the first Review, anything else answers 409.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from annotation.exceptions import Conflict, Forbidden, InvalidInput
from annotation.models import Annotation, FinalLabel, Item, Membership, Project, Review, ReviewLease, Skip
from annotation.models.item import FinalLabelSource, ItemStatus
from annotation.models.labeling import Verdict
from annotation.selectors.reviewing import (
    ReviewTask,
    annotating_roles,
    low_gold_annotators,
    review_candidates_sql,
    review_task,
)
from annotation.services.values import value_validate
from annotation.sql import fetchone

MAX_COMMENT = 5000


@dataclass
class ReviewResult:
    review: Review
    created: bool
    item: Item
    final: Any | None  # the item's final value after the verdict (None when rejected)


def _same(review: Review, *, verdict: str, value: Any | None, comment: str) -> bool:
    return review.verdict == verdict and review.corrected_value == value and review.comment == comment


# ---------------------------------------------------------------------------------------------- the queue's lease

# Take (or renew, or take over once expired) the item's ReviewLease for this reviewer; returns no row when another
# reviewer holds a live one. ON CONFLICT locks the existing lease row and checks its newest version, so two reviewers
# can never both hold the item, whatever their snapshots saw.
_LEASE = """
INSERT INTO annotation_reviewlease (item_id, reviewer_id, project_id, created_at, expires_at)
VALUES (%(item)s, %(user)s, %(project)s, %(now)s, %(expires)s)
ON CONFLICT (item_id) DO UPDATE SET reviewer_id = EXCLUDED.reviewer_id, created_at = EXCLUDED.created_at,
                                    expires_at = EXCLUDED.expires_at
WHERE annotation_reviewlease.expires_at <= %(now)s OR annotation_reviewlease.reviewer_id = %(user)s
RETURNING expires_at
"""


def review_next_for_reviewer(*, project: Project, reviewer: Any) -> ReviewTask | None:
    """The item in review this reviewer should decide next, leased to them for the assignment TTL
    (settings.TANDEM_ASSIGNMENT_TTL_SECONDS); None when nothing is left for them.

    A live lease of theirs on an item still in review returns that item (same expires_at). Otherwise the best
    candidate in serving order (selectors/reviewing.py: _CANDIDATES; items another reviewer holds, and unless the
    project allows it items the reviewer labeled, left out) is locked with SELECT ... FOR UPDATE OF item SKIP LOCKED
    and its lease written by a conditional upsert (_LEASE) that refuses while another reviewer's live lease exists:
    a lease committed after the candidate query's snapshot is caught there, and that item is skipped. When every
    candidate is locked at that instant, the query runs once more waiting for the locks (as the labeling queue does),
    so a brief lock never looks like "nothing left". One transaction; the caller has checked the reviewer's access.
    """
    now = timezone.now()
    expires = now + timedelta(seconds=settings.TANDEM_ASSIGNMENT_TTL_SECONDS)
    with transaction.atomic():
        mine = (
            ReviewLease.objects.filter(
                reviewer_id=reviewer.pk, project=project, expires_at__gt=now, item__status=ItemStatus.IN_REVIEW
            )
            .order_by("created_at", "id")
            .first()
        )
        if mine is not None:
            return review_task(item_id=mine.item_id, project=project, expires_at=mine.expires_at)
        params: dict[str, Any] = {
            "project": project.pk,
            "user": reviewer.pk,
            "now": now,
            "own": project.reviewers_may_review_own,
            "low": low_gold_annotators(project=project),
            "skip": [],
        }
        for lock in ("FOR UPDATE OF i SKIP LOCKED", "FOR UPDATE OF i"):
            while True:
                row = fetchone(review_candidates_sql(lock=lock), params)
                if row is None:
                    break
                leased = fetchone(
                    _LEASE,
                    {"item": row[0], "user": reviewer.pk, "project": project.pk, "now": now, "expires": expires},
                )
                if leased is not None:
                    return review_task(item_id=row[0], project=project, expires_at=leased[0])
                params["skip"] = [*params["skip"], row[0]]  # another reviewer's lease, committed meanwhile
    return None


def _lease_check(*, item: Item, reviewer: Any) -> None:
    """409 while another reviewer holds a live lease on the item (the caller holds the item's row lock)."""
    lease = ReviewLease.objects.filter(item_id=item.pk).select_related("reviewer").first()
    if lease is None or lease.reviewer_id == reviewer.pk or lease.expires_at <= timezone.now():
        return
    until = lease.expires_at.isoformat().replace("+00:00", "Z")
    raise Conflict(
        f"Another reviewer ({lease.reviewer.get_username()}) is reviewing this item until {until}.",
        [
            {
                "field": "item",
                "message": f"Held by {lease.reviewer.get_username()} until {until}.",
                "reviewer": lease.reviewer.get_username(),
                "expires_at": until,
            }
        ],
    )


# ---------------------------------------------------------------------------------------------- verdicts


def _own_check(*, item: Item, annotation: Annotation, project: Project, reviewer: Any) -> None:
    """403 for a verdict on an item you labeled (any annotation of yours, counting or rejected: the review queue
    leaves out exactly these items), unless the project lets reviewers review their own work
    (reviewers_may_review_own)."""
    if project.reviewers_may_review_own:
        return
    if (
        annotation.annotator_id == reviewer.pk
        or Annotation.objects.filter(item_id=item.pk, annotator_id=reviewer.pk).exists()
    ):
        raise Forbidden(
            "You labeled this item yourself: another reviewer decides it "
            "(the project's reviewers_may_review_own setting is off)."
        )


def review_eligible_annotator_exists(*, item: Item, project: Project) -> bool:
    """Whether a member who may annotate is left for the item: not paused, with no annotation (counting or
    rejected) and no skip of it, so the labeling queue could serve it to them. An inactive account (a Label Studio
    import's placeholder annotator) never labels again, so it is no one left."""
    return (
        Membership.objects.filter(
            project_id=project.pk, paused=False, user__is_active=True, role__in=annotating_roles(project=project)
        )
        .exclude(user_id__in=Annotation.objects.filter(item_id=item.pk).values("annotator_id"))
        .exclude(user_id__in=Skip.objects.filter(item_id=item.pk).values("user_id"))
        .exists()
    )


def _reject(*, item: Item, annotation: Annotation, project: Project) -> None:
    """The annotation stops counting; the item goes back to the queue or, at max_rejections or with nobody left
    to label it, waits in review for a correction. Item fields set, not saved. The caller holds the item's lock."""
    Annotation.objects.filter(pk=annotation.pk).update(counts=False)
    annotation.counts = False
    item.annotation_count = max(item.annotation_count - 1, 0)
    item.rejections += 1
    FinalLabel.objects.filter(item_id=item.pk).exclude(source=FinalLabelSource.GOLD).delete()
    if item.rejections >= project.max_rejections or not review_eligible_annotator_exists(item=item, project=project):
        item.status, item.adjudication = ItemStatus.IN_REVIEW, True
    else:
        item.status = ItemStatus.IN_PROGRESS if item.annotation_count else ItemStatus.OPEN
        item.adjudication = False


def review_submit(
    *,
    annotation: Annotation,
    project: Project,
    reviewer: Any,
    verdict: str,
    value: Any | None = None,
    comment: str = "",
) -> ReviewResult:
    """Record `reviewer`'s verdict on `annotation` and decide its item (see the module docstring).

    Locks the item row (SELECT ... FOR UPDATE) for the whole check-and-write, so two reviewers deciding the same
    item at once get one 201 and one 409. Raises InvalidInput (400) for a bad verdict, a value that is missing,
    superfluous or does not fit the project, or a long comment; Forbidden (403) for a verdict on an item the
    reviewer labeled (unless reviewers_may_review_own); Conflict (409) when the item is not awaiting review,
    another reviewer holds a live lease on it (their expiry in the error), it awaits adjudication and the verdict
    is not `correct`, or the annotation was already rejected and the verdict is not `correct`. Idempotent: the
    same reviewer sending the same verdict again after it was recorded gets that Review back with created=False.
    Releases the item's ReviewLease.
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
        annotation.refresh_from_db(fields=["value", "counts"])
        _own_check(item=item, annotation=annotation, project=project, reviewer=reviewer)
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

        # a retry of a verdict already recorded: the item has left review, or (a reject that sent it to
        # adjudication) the annotation no longer counts
        mine = Review.objects.filter(annotation=annotation, reviewer=reviewer).order_by("-id").first()
        if (
            mine is not None
            and _same(mine, verdict=verdict, value=value, comment=comment)
            and (item.status != ItemStatus.IN_REVIEW or not annotation.counts)
        ):
            final = FinalLabel.objects.filter(item_id=item.pk).values_list("value", flat=True).first()
            return ReviewResult(review=mine, created=False, item=item, final=final)
        if item.status != ItemStatus.IN_REVIEW:
            raise Conflict(
                "This item is not awaiting review.",
                [{"field": "item", "message": f"Item {item.pk} is {item.status}."}],
            )
        _lease_check(item=item, reviewer=reviewer)
        if item.adjudication and verdict != Verdict.CORRECT:
            raise Conflict(
                f"This item awaits adjudication ({item.rejections} rejection{'s' if item.rejections != 1 else ''}"
                f"{'' if item.rejections >= project.max_rejections else ', nobody left to label it'}): "
                "only a correction decides it.",
                [{"field": "verdict", "message": "Must be correct: the item awaits adjudication."}],
            )
        if not annotation.counts and verdict != Verdict.CORRECT:
            raise Conflict(
                "This annotation was rejected already; approve or reject one that counts, or correct the item.",
                [{"field": "annotation", "message": f"Annotation {annotation.pk} no longer counts."}],
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
            _reject(item=item, annotation=annotation, project=project)
        else:
            final = annotation.value if verdict == Verdict.APPROVE else value
            source = FinalLabelSource.REVIEW if verdict == Verdict.APPROVE else FinalLabelSource.ADJUDICATION
            FinalLabel.objects.bulk_create(
                [FinalLabel(item_id=item.pk, value=final, source=source)],
                update_conflicts=True,
                unique_fields=["item"],
                update_fields=["value", "source", "updated_at"],
            )
            item.status, item.adjudication = ItemStatus.APPROVED, False
        item.save(update_fields=["status", "adjudication", "rejections", "annotation_count"])
        ReviewLease.objects.filter(item_id=item.pk).delete()
    return ReviewResult(review=review, created=True, item=item, final=final)
