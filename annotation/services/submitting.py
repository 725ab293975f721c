"""Submitting, editing and skipping annotations, and deciding an item once it has k of them."""

from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from annotation.exceptions import Conflict, NotFound
from annotation.models import Annotation, FinalLabel, Item, Project, Skip
from annotation.models.item import QUEUE_STATUSES, FinalLabelSource, ItemStatus
from annotation.models.project import ReviewPolicy
from annotation.services.leases import leases_drop_expired, leases_drop_user, leases_save


@dataclass
class SubmitResult:
    annotation: Annotation
    created: bool


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _lock_item(item_id: int) -> Item:
    item = Item.objects.select_for_update().filter(pk=item_id).first()
    if item is None:
        raise NotFound("No such item.")
    return item


def item_decide(*, item: Item, project: Project, values: list[Any] | None = None) -> str:
    """Decide an item that has k annotations: majority consensus -> FinalLabel, or review.

    Precondition: the item row is locked (SELECT ... FOR UPDATE) by the caller's transaction.
    Returns the item's new status; also sets it on `item` and saves it.
    """
    if values is None:
        values = list(Annotation.objects.filter(item_id=item.pk).values_list("value", flat=True))
    counts = Counter(_canonical(v) for v in values)
    ranked = counts.most_common()
    top, top_n = ranked[0]
    tie = len(ranked) > 1 and ranked[1][1] == top_n
    unanimous = len(ranked) == 1
    policy = project.review_policy
    if tie or policy == ReviewPolicy.ALL:
        to_review = True
    elif policy == ReviewPolicy.DISAGREEMENTS:
        to_review = not unanimous
    elif policy == ReviewPolicy.SAMPLE:
        to_review = random.random() < project.review_sample_rate  # noqa: S311 - sampling, not security
    else:
        to_review = False

    if to_review:
        FinalLabel.objects.filter(item_id=item.pk, source=FinalLabelSource.CONSENSUS).delete()
        item.status = ItemStatus.IN_REVIEW
    else:
        FinalLabel.objects.bulk_create(
            [FinalLabel(item_id=item.pk, value=json.loads(top), source=FinalLabelSource.CONSENSUS)],
            update_conflicts=True,
            unique_fields=["item"],
            update_fields=["value", "source", "updated_at"],
        )
        item.status = ItemStatus.APPROVED
    Item.objects.filter(pk=item.pk).update(status=item.status)
    return item.status


@transaction.atomic
def annotation_submit(
    *,
    item_id: int,
    project: Project,
    user,
    value: dict[str, Any],
    lead_time_ms: int | None = None,
    accepted_suggestion: bool | None = None,
    idempotency_key: str | None = None,
) -> SubmitResult:
    """Record the user's annotation of an item (value already validated).

    Locks the item row. Idempotent by `idempotency_key`: a repeat returns the first annotation
    with created=False. The user's live or stale lease on the item is consumed; without one the
    annotation is accepted only while a slot is free (annotations + live leases < k), else 409.
    """
    now = timezone.now()
    item = _lock_item(item_id)
    mine = Q(item_id=item.pk) | Q(idempotency_key=idempotency_key) if idempotency_key else Q(item_id=item.pk)
    existing = list(Annotation.objects.filter(mine, annotator=user)[:2])
    repeat = next((a for a in existing if idempotency_key and a.idempotency_key == idempotency_key), None)
    if repeat is not None:
        if repeat.item_id != item.pk:
            raise Conflict(
                "This Idempotency-Key was already used for another item.",
                [{"field": "Idempotency-Key", "message": f"Used for item {repeat.item_id}."}],
            )
        return SubmitResult(repeat, created=False)
    if existing:
        raise Conflict(
            "You have already annotated this item; edit your annotation instead.",
            [{"field": "item", "message": f"PATCH /api/annotations/{existing[0].pk}"}],
        )

    k = project.annotations_per_item
    if not leases_drop_user(item=item, user_id=user.pk):
        # no lease of ours: a slot must be free (expired leases of others count as free)
        leases_drop_expired(item=item, now=now)
        if item.status not in QUEUE_STATUSES or item.annotation_count + item.lease_count >= k:
            raise Conflict(
                "Every slot of this item is taken (your assignment expired and others took it).",
                [
                    {
                        "field": "item",
                        "message": f"{item.annotation_count} of {k} annotations, {item.lease_count} in progress.",
                    }
                ],
            )

    try:
        with transaction.atomic():
            annotation = Annotation.objects.create(
                item_id=item.pk,
                annotator=user,
                value=value,
                lead_time_ms=lead_time_ms,
                accepted_suggestion=accepted_suggestion,
                idempotency_key=idempotency_key or None,
            )
    except IntegrityError as exc:  # the same key raced on another item
        raise Conflict(
            "This Idempotency-Key was already used.", [{"field": "Idempotency-Key", "message": str(exc)[:200]}]
        ) from exc

    item.annotation_count += 1
    item.status = ItemStatus.IN_PROGRESS
    leases_save(item, annotation_count=item.annotation_count, status=item.status)
    if item.annotation_count >= k:
        item_decide(item=item, project=project, values=[value] if k == 1 else None)
    return SubmitResult(annotation, created=True)


@transaction.atomic
def annotation_update(
    *, annotation_id: int, project: Project, user, value: dict[str, Any], lead_time_ms: int | None = None
) -> Annotation:
    """Edit the user's own annotation, keeping the old value in its history; re-decides the item if it was decided by consensus."""
    annotation = Annotation.objects.filter(pk=annotation_id, annotator=user).first()
    if annotation is None:
        raise NotFound("No such annotation.")
    item = _lock_item(annotation.item_id)
    annotation = Annotation.objects.select_for_update().get(pk=annotation_id)
    final = FinalLabel.objects.filter(item_id=item.pk).first()
    if final is not None and final.source != FinalLabelSource.CONSENSUS:
        raise Conflict("A reviewer has already decided this item; it can no longer be edited.")
    annotation.history = [
        *annotation.history,
        {"value": annotation.value, "lead_time_ms": annotation.lead_time_ms, "replaced_at": timezone.now().isoformat()},
    ]
    annotation.value = value
    if lead_time_ms is not None:
        annotation.lead_time_ms = lead_time_ms
    annotation.save(update_fields=["value", "history", "lead_time_ms", "updated_at"])
    if item.annotation_count >= project.annotations_per_item and item.status != ItemStatus.REJECTED:
        item_decide(item=item, project=project)
    return annotation


@transaction.atomic
def item_skip(*, item_id: int, user) -> None:
    """Release the user's lease on the item and do not serve it to them again (idempotent)."""
    item = _lock_item(item_id)
    if leases_drop_user(item=item, user_id=user.pk):
        leases_save(item)
    Skip.objects.bulk_create([Skip(item_id=item.pk, user=user)], ignore_conflicts=True)
