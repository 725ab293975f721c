"""Handing an expert the next item: see queue.md beside this file for the algorithm and its EXPLAIN plan."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from django.conf import settings
from django.db import connection
from django.utils import timezone

from annotation.models import Item, Project
from annotation.models.project import Sampling
from annotation.sql import columns, fetchone, fetchone_prepared, load

# the most item ids one call of next may exclude (the items a client holds while it prefetches)
MAX_EXCLUDE = 5


@dataclass
class NextItem:
    item: Item
    expires_at: datetime


_PG_NEXT = """
WITH mine AS (
    -- the user's live lease on an item still in the queue (an item decided while leased is not served)
    SELECT a.item_id, a.expires_at FROM annotation_assignment a JOIN annotation_item li ON li.id = a.item_id
    WHERE a.user_id = %(user)s::integer AND a.project_id = %(project)s::bigint AND a.expires_at > %(now)s::timestamptz
      AND a.item_id <> ALL (%(exclude)s::bigint[]) AND li.status IN ('open', 'in_progress')
    ORDER BY a.created_at LIMIT 1
),
pick AS (
    SELECT i.id FROM annotation_item i
    WHERE NOT EXISTS (SELECT 1 FROM mine)
      AND i.project_id = %(project)s::bigint AND i.status IN ('open', 'in_progress')
      AND i.id <> ALL (%(exclude)s::bigint[])
      AND (i.annotation_count + i.lease_count < %(k)s::integer OR i.lease_expires_at <= %(now)s::timestamptz)
      AND NOT EXISTS (SELECT 1 FROM annotation_annotation a
                      WHERE a.item_id = i.id AND a.annotator_id = %(user)s::integer OFFSET 0)
      AND NOT EXISTS (SELECT 1 FROM annotation_skip s
                      WHERE s.item_id = i.id AND s.user_id = %(user)s::integer OFFSET 0)
      {where}
    ORDER BY {order}
    LIMIT 1
    FOR UPDATE OF i {wait}
),
reclaimed AS (
    DELETE FROM annotation_assignment a USING pick
    WHERE a.item_id = pick.id AND a.expires_at <= %(now)s::timestamptz AND a.user_id <> %(user)s::integer
    RETURNING 1
),
lease AS (
    INSERT INTO annotation_assignment (item_id, user_id, project_id, created_at, expires_at)
    SELECT pick.id, %(user)s::integer, %(project)s::bigint, %(now)s::timestamptz, %(expires)s::timestamptz FROM pick
    ON CONFLICT (item_id, user_id) DO UPDATE SET created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at
    RETURNING (xmax = 0) AS inserted
),
taken AS (
UPDATE annotation_item i SET
    -- arithmetic on the row's newest version (the UPDATE re-reads a row changed since our snapshot);
    -- a COUNT(*) over annotation_assignment would see the snapshot and miss a lease committed meanwhile
    lease_count = i.lease_count - (SELECT count(*) FROM reclaimed) + (SELECT count(*) FROM lease WHERE inserted),
    lease_expires_at = CASE
        WHEN i.lease_expires_at > %(now)s::timestamptz THEN LEAST(i.lease_expires_at, %(expires)s::timestamptz)
        -- some lease expired and was reclaimed: the earliest of the rest (a lease missing from our
        -- snapshot only makes this later than the truth, which never frees a slot too early)
        ELSE LEAST(%(expires)s::timestamptz,
                   (SELECT min(a.expires_at) FROM annotation_assignment a
                    WHERE a.item_id = i.id AND a.expires_at > %(now)s::timestamptz AND a.user_id <> %(user)s::integer))
    END
FROM pick WHERE i.id = pick.id
RETURNING {columns}, %(expires)s::timestamptz
)
{final}
"""

# the rows of _PG_NEXT: the live lease's item, else the item just leased (each with the lease's expiry)
_NEXT_ROWS = """SELECT {columns}, mine.expires_at FROM mine JOIN annotation_item i ON i.id = mine.item_id
UNION ALL
SELECT * FROM taken"""

# sampling -> [(name, extra WHERE, ORDER BY)], tried in turn
_PG_ORDERS = {
    Sampling.RANDOM: [("rand_from", "AND i.id >= %(start)s::bigint", "i.id"), ("rand", "", "i.id")],
    Sampling.SEQUENTIAL: [("seq", "", "i.id")],
    Sampling.UNCERTAINTY: [("prio", "", "i.priority DESC, i.id")],
}


def _next_statement(*, sampling: str, wait: bool, params: dict[str, Any]) -> NextItem | None:
    """One statement per serving order of the sampling (so one implicit transaction each): the user's oldest
    live lease outside `exclude` if any; else lock the best candidate outside `exclude`, reclaim its expired
    leases, upsert this user's lease and set the item's lease columns."""
    for name, where, order in _PG_ORDERS[Sampling(sampling)]:
        row = fetchone_prepared(
            f"tandem_next_{name}_{'wait' if wait else 'skip'}",
            _next_sql(where=where, order=order, wait=wait),
            params,
            prefix=_lease_commit_prefix(),
        )
        if row is not None:
            return NextItem(item=load(Item, row[:-1]), expires_at=row[-1])
    return None


def _lease_commit_prefix() -> str:
    """Sent before a statement that leases an item. A lease is cheap to lose: if the database crashes before
    it is on disk, the item is simply served again. So its commit does not wait for the WAL flush
    (annotations still do). Only when the statement is its own transaction: inside a caller's transaction
    SET LOCAL would also relax the commit of everything else that transaction writes."""
    return "" if connection.in_atomic_block else "SET LOCAL synchronous_commit = off; "


@cache
def _next_sql(*, where: str, order: str, wait: bool) -> str:
    return _PG_NEXT.format(
        where=where,
        order=order,
        wait="" if wait else "SKIP LOCKED",
        columns=columns(Item, "i"),
        final=_NEXT_ROWS.format(columns=columns(Item, "i")),
    )


def item_next_for_annotator(*, project: Project, user: Any, exclude: Sequence[int] = ()) -> NextItem | None:
    """The item this user should label next, leased to them for the assignment TTL; None when nothing is left.

    A live lease returns the same item. Otherwise the best candidate is locked with
    SELECT ... FOR UPDATE SKIP LOCKED, its expired leases are reclaimed, and the user's Assignment is
    written together with the item's lease columns: one statement (_PG_NEXT, see queue.md). Where every
    candidate is locked at that instant, the statement runs once more waiting for those locks (FOR UPDATE
    re-checks the row afterwards), so a brief lock never looks like "nothing left".

    `exclude` (at most MAX_EXCLUDE item ids, e.g. the item on the expert's screen while the client
    prefetches the next one): those items are neither returned from the user's live leases nor leased
    anew, and their leases are left as they are. A user so holds at most 1 + len(exclude) leases.
    The caller has checked the user's access (annotation.access).
    """
    ids = sorted({int(i) for i in exclude})
    if len(ids) > MAX_EXCLUDE:
        raise ValueError(f"at most {MAX_EXCLUDE} excluded items")
    now = timezone.now()
    params: dict[str, Any] = {
        "project": project.pk,
        "k": project.annotations_per_item,
        "user": user.pk,
        "now": now,
        "expires": now + timedelta(seconds=settings.TANDEM_ASSIGNMENT_TTL_SECONDS),
        "exclude": ids,
    }
    if project.sampling == Sampling.RANDOM:
        # a uniform point in the open id range; the statement takes the next open id from there
        bounds = fetchone(
            "SELECT min(id), max(id) FROM annotation_item WHERE project_id = %s AND status IN ('open', 'in_progress')",
            [project.pk],
        )
        params["start"] = random.randint(bounds[0], bounds[1]) if bounds and bounds[0] is not None else 0  # noqa: S311
    for wait in (False, True):
        found = _next_statement(sampling=project.sampling, wait=wait, params=params)
        if found is not None:
            return found
    return None
