"""The lease columns of an item (lease_count, lease_expires_at) kept equal to its Assignment rows.

lease_count is the number of Assignment rows of the item; lease_expires_at the EARLIEST of their
expiries (None without leases). So `lease_expires_at <= now` says "at least one lease has expired,
so at least one slot is free", a test on the item row alone (see queue.md).
Every function here expects the item row to be locked by the caller's transaction.
"""

from __future__ import annotations

from django.db.models import Count, Min

from annotation.models import Assignment, Item


def _resync(item: Item, removed: int) -> None:
    remaining = item.lease_count - removed
    if remaining <= 0:
        item.lease_count, item.lease_expires_at = 0, None
        return
    agg = Assignment.objects.filter(item_id=item.pk).aggregate(n=Count("id"), first=Min("expires_at"))
    item.lease_count, item.lease_expires_at = agg["n"], agg["first"]


def leases_drop_user(*, item: Item, user_id: int) -> int:
    """Delete the user's lease on the item; returns how many were deleted (0 or 1). Item not saved."""
    removed, _ = Assignment.objects.filter(item_id=item.pk, user_id=user_id).delete()
    if removed:
        _resync(item, removed)
    return removed


def leases_save(item: Item, **extra: object) -> None:
    Item.objects.filter(pk=item.pk).update(
        lease_count=item.lease_count, lease_expires_at=item.lease_expires_at, **extra
    )
