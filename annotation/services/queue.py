"""Handing an expert the next item: see queue.md beside this file for the algorithm and its EXPLAIN plan."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, F, Max, Min, OuterRef, Q, QuerySet
from django.utils import timezone

from annotation.models import Annotation, Assignment, Item, Project, Skip
from annotation.models.item import QUEUE_STATUSES
from annotation.models.project import Sampling


@dataclass
class NextItem:
    item: Item
    expires_at: datetime


def _candidates(*, project: Project, user, now: datetime) -> QuerySet[Item]:
    """Items with a free slot that this user has neither annotated nor skipped.

    A slot is free while annotations + leases < k; when every lease on the item has expired
    (lease_expires_at is the latest one) all its leases count as free. These are columns of the
    item row itself, so PostgreSQL re-checks them on the locked row version (EvalPlanQual) when
    a concurrent transaction has just changed the row: two experts never share a slot.
    """
    k = project.annotations_per_item
    return (
        Item.objects.filter(project_id=project.pk, status__in=QUEUE_STATUSES)
        .filter(Q(annotation_count__lt=k - F("lease_count")) | Q(lease_expires_at__lte=now))
        .filter(~Exists(Annotation.objects.filter(item_id=OuterRef("pk"), annotator_id=user.pk)))
        .filter(~Exists(Skip.objects.filter(item_id=OuterRef("pk"), user_id=user.pk)))
        .select_for_update(skip_locked=True, of=("self",))
    )


def _pick(*, project: Project, user, now: datetime) -> Item | None:
    candidates = _candidates(project=project, user=user, now=now)
    if project.sampling == Sampling.RANDOM:
        # a uniform point in the id range, then the next open id: O(log n) on the item_queue_seq index
        bounds = Item.objects.filter(project_id=project.pk, status__in=QUEUE_STATUSES).aggregate(
            lo=Min("id"), hi=Max("id")
        )
        if bounds["lo"] is None:
            return None
        start = random.randint(bounds["lo"], bounds["hi"])  # noqa: S311 - sampling, not security
        return candidates.filter(id__gte=start).order_by("id").first() or candidates.order_by("id").first()
    if project.sampling == Sampling.SEQUENTIAL:
        return candidates.order_by("id").first()
    return candidates.order_by("-priority", "id").first()


def _release_stale(*, user, stale: list[Assignment]) -> None:
    """Drop the user's own expired leases (one per item), keeping each item's lease_count exact."""
    for assignment in stale:
        item = Item.objects.select_for_update().filter(pk=assignment.item_id).first()
        deleted, _ = Assignment.objects.filter(pk=assignment.pk).delete()
        if item is not None and deleted:
            lease_count = max(0, item.lease_count - deleted)
            Item.objects.filter(pk=item.pk).update(
                lease_count=lease_count, lease_expires_at=item.lease_expires_at if lease_count else None
            )


@transaction.atomic
def item_next_for_annotator(*, project: Project, user) -> NextItem | None:
    """The item this user should label next, leased to them for the assignment TTL; None when nothing is left.

    One short transaction. A live lease returns the same item. Otherwise the highest-priority
    candidate is locked with SELECT ... FOR UPDATE SKIP LOCKED (on SQLite the IMMEDIATE
    transaction serializes writers instead), its expired leases are reclaimed, and a new
    Assignment is written with the item's lease columns.
    """
    now = timezone.now()
    mine = list(Assignment.objects.filter(user_id=user.pk, project_id=project.pk).order_by("-expires_at"))
    live = [a for a in mine if a.expires_at > now]
    if live:
        assignment = min(live, key=lambda a: a.created_at)
        return NextItem(item=Item.objects.get(pk=assignment.item_id), expires_at=assignment.expires_at)
    if mine:
        _release_stale(user=user, stale=mine)

    item = _pick(project=project, user=user, now=now)
    if item is None:
        return None
    lease_count = item.lease_count
    if lease_count and item.lease_expires_at is not None and item.lease_expires_at <= now:
        reclaimed, _ = Assignment.objects.filter(item_id=item.pk, expires_at__lte=now).delete()
        lease_count = max(0, lease_count - reclaimed)
    expires_at = now + timedelta(seconds=settings.TANDEM_ASSIGNMENT_TTL_SECONDS)
    Assignment.objects.create(item_id=item.pk, user_id=user.pk, project_id=project.pk, expires_at=expires_at)
    lease_expires_at = expires_at
    if lease_count and item.lease_expires_at is not None and item.lease_expires_at > expires_at:
        lease_expires_at = item.lease_expires_at
    item.lease_count = lease_count + 1
    item.lease_expires_at = lease_expires_at
    Item.objects.filter(pk=item.pk).update(lease_count=item.lease_count, lease_expires_at=lease_expires_at)
    return NextItem(item=item, expires_at=expires_at)
