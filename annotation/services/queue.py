"""Handing an expert the next item: see queue.md beside this file for the algorithm and its EXPLAIN plan."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Max, Min, Q, QuerySet
from django.utils import timezone

from annotation.models import Annotation, Assignment, Item, Project, Skip
from annotation.models.item import QUEUE_STATUSES
from annotation.models.project import Sampling
from annotation.services.leases import leases_add, leases_drop_expired, leases_drop_user, leases_save


@dataclass
class NextItem:
    item: Item
    expires_at: datetime


def _candidates(*, project: Project, user, now: datetime) -> QuerySet[Item]:
    """Items with a free slot that this user has neither annotated nor skipped.

    A slot is free while annotations + leases < k, or when a lease has expired (lease_expires_at
    is the earliest expiry of the item's leases). These are columns of the
    item row itself, so PostgreSQL re-checks them on the locked row version (EvalPlanQual) when
    a concurrent transaction has just changed the row: two experts never share a slot.
    """
    k = project.annotations_per_item
    # OFFSET 0 keeps each NOT EXISTS a per-row probe of the (item, user) unique index on PostgreSQL;
    # pulled up into an anti join, the planner may read all of the user's annotations instead.
    fence = " OFFSET 0" if connection.vendor == "postgresql" else ""
    table = Item._meta.db_table
    return (
        Item.objects.filter(project_id=project.pk, status__in=QUEUE_STATUSES)
        .filter(Q(annotation_count__lt=k - F("lease_count")) | Q(lease_expires_at__lte=now))
        .extra(  # noqa: S610 - constant SQL, the user id is a parameter
            where=[
                f"NOT EXISTS (SELECT 1 FROM {Annotation._meta.db_table} a "  # noqa: S608 - table names only
                f"WHERE a.item_id = {table}.id AND a.annotator_id = %s{fence})",
                f"NOT EXISTS (SELECT 1 FROM {Skip._meta.db_table} s "  # noqa: S608 - table names only
                f"WHERE s.item_id = {table}.id AND s.user_id = %s{fence})",
            ],
            params=[user.pk, user.pk],
        )
        .select_for_update(skip_locked=True, of=("self",))
    )


def _pick(*, project: Project, user, now: datetime) -> Item | None:
    item = _pick_from(_candidates(project=project, user=user, now=now), project)
    if item is None and connection.vendor == "postgresql":
        # Every free candidate may be locked for a moment by someone else's next/submit: rather than
        # answer "nothing left", wait for those locks once (FOR UPDATE re-checks the row afterwards).
        waiting = _candidates(project=project, user=user, now=now).select_for_update(of=("self",))
        item = _pick_from(waiting, project)
    return item


def _pick_from(candidates: QuerySet[Item], project: Project) -> Item | None:
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
    """Drop the user's own expired leases (one per item), keeping each item's lease columns exact."""
    for assignment in stale:
        item = Item.objects.select_for_update().filter(pk=assignment.item_id).first()
        if item is not None and leases_drop_user(item=item, user_id=user.pk):
            leases_save(item)


@transaction.atomic
def item_next_for_annotator(*, project: Project, user) -> NextItem | None:
    """The item this user should label next, leased to them for the assignment TTL; None when nothing is left.

    One short transaction. A live lease returns the same item. Otherwise the highest-priority
    candidate is locked with SELECT ... FOR UPDATE SKIP LOCKED (on SQLite the IMMEDIATE
    transaction serializes writers instead), its expired leases are reclaimed, and a new
    Assignment is written together with the item's lease columns.
    """
    now = timezone.now()
    mine = list(Assignment.objects.filter(user_id=user.pk, project_id=project.pk))
    live = [a for a in mine if a.expires_at > now]
    if live:
        assignment = min(live, key=lambda a: a.created_at)
        return NextItem(item=Item.objects.get(pk=assignment.item_id), expires_at=assignment.expires_at)
    if mine:
        _release_stale(user=user, stale=mine)

    item = _pick(project=project, user=user, now=now)
    if item is None:
        return None
    leases_drop_expired(item=item, now=now)
    expires_at = now + timedelta(seconds=settings.TANDEM_ASSIGNMENT_TTL_SECONDS)
    leases_add(item=item, user_id=user.pk, project_id=project.pk, expires_at=expires_at)
    leases_save(item)
    return NextItem(item=item, expires_at=expires_at)
