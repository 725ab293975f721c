"""Handing an expert the next item: see queue.md beside this file for the algorithm and its EXPLAIN plan."""

from __future__ import annotations

import json
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
    # the suggestion recorded on the lease (Assignment.suggestion): {"model_version", "kind", "value",
    # "confidence"}, None without a prediction
    suggestion: dict[str, Any] | None = None


_PG_NEXT = """
WITH mine AS (
    -- the user's live lease on an item still in the queue (an item decided while leased is not served), or
    -- on a gold item (approved, and served all the same)
    SELECT a.item_id, a.expires_at, a.suggestion FROM annotation_assignment a JOIN annotation_item li ON li.id = a.item_id
    WHERE a.user_id = %(user)s::integer AND a.project_id = %(project)s::bigint AND a.expires_at > %(now)s::timestamptz
      AND a.item_id <> ALL (%(exclude)s::bigint[]) AND (li.status IN ('open', 'in_progress') OR li.is_gold)
    ORDER BY a.created_at LIMIT 1
),
pick AS (
    SELECT i.id, i.prediction FROM annotation_item i
    WHERE NOT EXISTS (SELECT 1 FROM mine)
      AND i.project_id = %(project)s::bigint AND {candidates}
      AND i.id <> ALL (%(exclude)s::bigint[])
      AND NOT EXISTS (SELECT 1 FROM annotation_annotation a
                      WHERE a.item_id = i.id AND a.annotator_id = %(user)s::integer OFFSET 0)
      AND NOT EXISTS (SELECT 1 FROM annotation_skip s
                      WHERE s.item_id = i.id AND s.user_id = %(user)s::integer OFFSET 0)
      {where}{guard}
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
    -- the lease records the suggestion served with the item (the submit copies it onto the annotation)
    INSERT INTO annotation_assignment (item_id, user_id, project_id, created_at, expires_at, suggestion)
    SELECT pick.id, %(user)s::integer, %(project)s::bigint, %(now)s::timestamptz, %(expires)s::timestamptz,
           {suggestion}
    FROM pick
    ON CONFLICT (item_id, user_id) DO UPDATE SET created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at,
                                                suggestion = EXCLUDED.suggestion
    RETURNING (xmax = 0) AS inserted, suggestion
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
RETURNING {columns}, %(expires)s::timestamptz, (SELECT suggestion FROM lease)
)
{final}
"""

# the rows of _PG_NEXT: the live lease's item, else the item just leased (each with the lease's expiry and
# recorded suggestion)
_NEXT_ROWS = """SELECT {columns}, mine.expires_at, mine.suggestion FROM mine JOIN annotation_item i ON i.id = mine.item_id
UNION ALL
SELECT * FROM taken"""

# The suggestion a lease records, from the picked item's prediction (modelsvc/scoring.py's contract):
# {"model_version", "kind", "value", "confidence"}. Items pre-labeled before the contract carried "kind" and
# "confidence" count as zero-shot (never pre-selected); their confidence is the predicted label's
# probability for a classification, else unknown (null).
_SUGGESTION = """CASE WHEN jsonb_typeof(pick.prediction -> 'value') = 'object' THEN jsonb_build_object(
    'model_version', pick.prediction -> 'model_version',
    'kind', COALESCE(pick.prediction -> 'kind', '"zero_shot"'::jsonb),
    'value', pick.prediction -> 'value',
    'confidence', COALESCE(pick.prediction -> 'confidence',
                           pick.prediction -> 'probabilities' -> (pick.prediction -> 'value' ->> 'label'),
                           'null'::jsonb)) END"""

# the candidates of a normal pick: items still needing annotations with a free slot
_QUEUE_CANDIDATES = """i.status IN ('open', 'in_progress')
      AND (i.annotation_count + i.lease_count < %(k)s::integer OR i.lease_expires_at <= %(now)s::timestamptz)"""
# the candidates of a gold pick: gold items, outside the overlap (every annotator may answer each once)
_GOLD_CANDIDATES = "i.is_gold AND i.status = 'approved'"
# ... served only while the normal queue still has an item for this user (a pick the normal statement could
# make): a gold item served after "nothing left" would stand out. Evaluated once per statement (an InitPlan).
_GOLD_GUARD = """
      AND EXISTS (SELECT 1 FROM annotation_item q
                  WHERE q.project_id = %(project)s::bigint AND q.status IN ('open', 'in_progress')
                    AND q.id <> ALL (%(exclude)s::bigint[])
                    AND (q.annotation_count + q.lease_count < %(k)s::integer OR q.lease_expires_at <= %(now)s::timestamptz)
                    AND NOT EXISTS (SELECT 1 FROM annotation_annotation qa
                                    WHERE qa.item_id = q.id AND qa.annotator_id = %(user)s::integer OFFSET 0)
                    AND NOT EXISTS (SELECT 1 FROM annotation_skip qs
                                    WHERE qs.item_id = q.id AND qs.user_id = %(user)s::integer OFFSET 0))"""

# the gold statement's serving order: import order among the gold items this user has not answered
_GOLD_ORDER = ("gold", "", "i.id")

# sampling -> [(name, extra WHERE, ORDER BY)], tried in turn
_PG_ORDERS = {
    Sampling.RANDOM: [("rand_from", "AND i.id >= %(start)s::bigint", "i.id"), ("rand", "", "i.id")],
    Sampling.SEQUENTIAL: [("seq", "", "i.id")],
    Sampling.UNCERTAINTY: [("prio", "", "i.priority DESC, i.id")],
}


def _next_statement(*, orders: Sequence[tuple[str, str, str]], wait: bool, params: dict[str, Any]) -> NextItem | None:
    """One statement per serving order (so one implicit transaction each): the user's oldest live lease
    outside `exclude` if any; else lock the best candidate outside `exclude`, reclaim its expired leases,
    upsert this user's lease (with the suggestion served) and set the item's lease columns."""
    for name, where, order in orders:
        row = fetchone_prepared(
            f"tandem_next_{name}_{'wait' if wait else 'skip'}",
            _next_sql(gold=name == _GOLD_ORDER[0], where=where, order=order, wait=wait),
            params,
            prefix=_lease_commit_prefix(),
        )
        if row is not None:
            suggestion = row[-1]
            return NextItem(
                item=load(Item, row[:-2]),
                expires_at=row[-2],
                suggestion=json.loads(suggestion) if isinstance(suggestion, str) else suggestion,
            )
    return None


def _lease_commit_prefix() -> str:
    """Sent before a statement that leases an item. A lease is cheap to lose: if the database crashes before
    it is on disk, the item is simply served again. So its commit does not wait for the WAL flush
    (annotations still do). Only when the statement is its own transaction: inside a caller's transaction
    SET LOCAL would also relax the commit of everything else that transaction writes."""
    return "" if connection.in_atomic_block else "SET LOCAL synchronous_commit = off; "


@cache
def _next_sql(*, gold: bool, where: str, order: str, wait: bool) -> str:
    return _PG_NEXT.format(
        candidates=_GOLD_CANDIDATES if gold else _QUEUE_CANDIDATES,
        guard=_GOLD_GUARD if gold else "",
        suggestion=_SUGGESTION,
        where=where,
        order=order,
        wait="" if wait else "SKIP LOCKED",
        columns=columns(Item, "i"),
        final=_NEXT_ROWS.format(columns=columns(Item, "i")),
    )


def suggestion_preselect(*, suggestion: dict[str, Any] | None, min_confidence: float) -> bool:
    """Whether a served suggestion may be pre-selected on the labeling page (issue 13 point 5, the one rule):
    never a zero-shot model's (its confidence is uncalibrated), a trained version's only when its confidence
    is at least the project's preselect_min_confidence. Otherwise it is shown and nothing is chosen."""
    if not suggestion or suggestion.get("kind") != "fine_tuned":
        return False
    confidence = suggestion.get("confidence")
    return isinstance(confidence, int | float) and confidence >= min_confidence


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

    Gold: with probability project.gold_rate (drawn here, so a rate of 0 costs nothing), a gold item this user
    has neither answered nor skipped is tried first (the same statement over the gold items; the lease is an
    ordinary Assignment). When none is left, the normal queue serves. While the normal queue has nothing for
    this user, no gold item is served either (the gold statement checks it), so None: a gold item served after
    "nothing left" would stand out.
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
    if project.gold_rate > 0 and random.random() < project.gold_rate:  # noqa: S311 - sampling, not security
        found = _next_statement(orders=[_GOLD_ORDER], wait=False, params=params)
        if found is not None:
            return found
    if project.sampling == Sampling.RANDOM:
        # a uniform point in the open id range; the statement takes the next open id from there
        bounds = fetchone(
            "SELECT min(id), max(id) FROM annotation_item WHERE project_id = %s AND status IN ('open', 'in_progress')",
            [project.pk],
        )
        params["start"] = random.randint(bounds[0], bounds[1]) if bounds and bounds[0] is not None else 0  # noqa: S311
    for wait in (False, True):
        found = _next_statement(orders=_PG_ORDERS[Sampling(project.sampling)], wait=wait, params=params)
        if found is not None:
            return found
    return None
