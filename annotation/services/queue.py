"""Handing an expert the next item: see queue.md beside this file for the algorithm and its EXPLAIN plan."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import Exists, F, Max, Min, OuterRef, Q, QuerySet
from django.utils import timezone

from annotation.access import ProjectAccess, bigint_or_zero, project_access
from annotation.models import Annotation, Assignment, Item, Project, Skip
from annotation.models.item import QUEUE_STATUSES
from annotation.models.project import Sampling
from annotation.services.leases import leases_add, leases_drop_expired, leases_drop_user, leases_save
from annotation.sql import columns, fast_path, fetchone, fetchone_prepared, load, width

# the most item ids one call of next may exclude (the items a client holds while it prefetches)
MAX_EXCLUDE = 5


@dataclass
class NextItem:
    item: Item
    expires_at: datetime


def _candidates(*, project: Project, user, now: datetime, exclude: Sequence[int] = ()) -> QuerySet[Item]:
    """Items with a free slot that this user has neither annotated nor skipped, minus `exclude` (the ORM
    path, for SQLite; _PG_NEXT is the same query for PostgreSQL). A slot is free while annotations +
    leases < k, or when a lease has expired (lease_expires_at is the earliest expiry of the item's leases)."""
    k = project.annotations_per_item
    qs = (
        Item.objects.filter(project_id=project.pk, status__in=QUEUE_STATUSES)
        .filter(Q(annotation_count__lt=k - F("lease_count")) | Q(lease_expires_at__lte=now))
        .filter(~Exists(Annotation.objects.filter(item_id=OuterRef("pk"), annotator_id=user.pk)))
        .filter(~Exists(Skip.objects.filter(item_id=OuterRef("pk"), user_id=user.pk)))
    )
    return qs.exclude(pk__in=list(exclude)) if exclude else qs


def _pick(*, project: Project, user, now: datetime, exclude: Sequence[int] = ()) -> Item | None:
    return _pick_from(_candidates(project=project, user=user, now=now, exclude=exclude), project)


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


_PG_NEXT = """
WITH {access}mine AS (
    SELECT a.item_id, a.expires_at FROM annotation_assignment a
    WHERE a.user_id = {user} AND a.project_id = %(project)s::bigint AND a.expires_at > %(now)s::timestamptz
      AND a.item_id <> ALL (%(exclude)s::bigint[])
    ORDER BY a.created_at LIMIT 1
),
pick AS (
    SELECT i.id FROM annotation_item i
    WHERE {gate}NOT EXISTS (SELECT 1 FROM mine)
      AND i.project_id = %(project)s::bigint AND i.status IN ('open', 'in_progress')
      AND i.id <> ALL (%(exclude)s::bigint[])
      AND (i.annotation_count + i.lease_count < {k} OR i.lease_expires_at <= %(now)s::timestamptz)
      AND NOT EXISTS (SELECT 1 FROM annotation_annotation a
                      WHERE a.item_id = i.id AND a.annotator_id = {user} OFFSET 0)
      AND NOT EXISTS (SELECT 1 FROM annotation_skip s
                      WHERE s.item_id = i.id AND s.user_id = {user} OFFSET 0)
      {where}
    ORDER BY {order}
    LIMIT 1
    FOR UPDATE OF i {wait}
),
reclaimed AS (
    DELETE FROM annotation_assignment a USING pick
    WHERE a.item_id = pick.id AND a.expires_at <= %(now)s::timestamptz AND a.user_id <> {user}
    RETURNING 1
),
lease AS (
    INSERT INTO annotation_assignment (item_id, user_id, project_id, created_at, expires_at)
    SELECT pick.id, {user}, %(project)s::bigint, %(now)s::timestamptz, %(expires)s::timestamptz FROM pick
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
                    WHERE a.item_id = i.id AND a.expires_at > %(now)s::timestamptz AND a.user_id <> {user}))
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

# _PG_NEXT with the token lookup and the access check in front (annotation.auth.token_user_and_project in the
# same statement): one row when the token is known, with the user, the project (NULLs: no such project), the
# user's role in it, whether the lease was tried (`go`: an active user with access, uncertainty sampling), and
# the item's columns (NULLs: no item). Without `go` the user id is NULL and `pick` is off, so nothing is leased.
_PG_NEXT_ACCESS = """acc AS (
    SELECT {user_columns}, {project_columns}, m.role,
           (u.is_active AND (u.is_staff OR m.role IS NOT NULL) AND p.sampling = 'uncertainty') AS go,
           u."{user_pk}" AS uid, p.annotations_per_item AS k
    FROM authtoken_token t JOIN {user_table} u ON u."{user_pk}" = t.user_id
    LEFT JOIN annotation_project p ON p.id = %(project)s::bigint
    LEFT JOIN annotation_membership m ON m.project_id = p.id AND m.user_id = t.user_id
    WHERE t.key = %(token)s::varchar
),
"""

# sampling -> [(name, extra WHERE, ORDER BY)], tried in turn
_PG_ORDERS = {
    Sampling.RANDOM: [("rand_from", "AND i.id >= %(start)s::bigint", "i.id"), ("rand", "", "i.id")],
    Sampling.SEQUENTIAL: [("seq", "", "i.id")],
    Sampling.UNCERTAINTY: [("prio", "", "i.priority DESC, i.id")],
}


def _pg_next_statement(
    *, project: Project, user, now: datetime, expires_at: datetime, wait: bool, exclude: list[int]
) -> NextItem | None:
    """One statement (so one implicit transaction): the user's oldest live lease outside `exclude` if any;
    else lock the best candidate outside `exclude`, reclaim its expired leases, upsert this user's lease
    and set the item's lease columns."""
    params = {
        "project": project.pk,
        "k": project.annotations_per_item,
        "user": user.pk,
        "now": now,
        "expires": expires_at,
        "exclude": exclude,
    }
    if project.sampling == Sampling.RANDOM:
        bounds = fetchone(
            "SELECT min(id), max(id) FROM annotation_item WHERE project_id = %s AND status IN ('open', 'in_progress')",
            [project.pk],
        )
        params["start"] = random.randint(bounds[0], bounds[1]) if bounds and bounds[0] is not None else 0  # noqa: S311
    for name, where, order in _PG_ORDERS[Sampling(project.sampling)]:
        sql = _PG_NEXT.format(
            access="",
            user="%(user)s::integer",
            k="%(k)s::integer",
            gate="",
            where=where,
            order=order,
            wait="" if wait else "SKIP LOCKED",
            columns=columns(Item, "i"),
            final=_NEXT_ROWS.format(columns=columns(Item, "i")),
        )
        row = fetchone_prepared(
            f"tandem_next_{name}_{'wait' if wait else 'skip'}", sql, params, prefix=_lease_commit_prefix()
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


def _pg_next(*, project: Project, user, exclude: list[int], skip_locked_tried: bool) -> NextItem | None:
    now = timezone.now()
    expires_at = now + timedelta(seconds=settings.TANDEM_ASSIGNMENT_TTL_SECONDS)
    found = None
    if not skip_locked_tried:
        found = _pg_next_statement(
            project=project, user=user, now=now, expires_at=expires_at, wait=False, exclude=exclude
        )
    if found is None:
        # Every free candidate may be locked for a moment by someone else's next/submit: rather than
        # answer "nothing left", wait for those locks once (FOR UPDATE re-checks the row afterwards).
        found = _pg_next_statement(
            project=project, user=user, now=now, expires_at=expires_at, wait=True, exclude=exclude
        )
    return found


def item_next_for_annotator(
    *, project: Project, user, exclude: Sequence[int] = (), skip_locked_tried: bool = False
) -> NextItem | None:
    """The item this user should label next, leased to them for the assignment TTL; None when nothing is left.

    A live lease returns the same item. Otherwise the best candidate is locked with
    SELECT ... FOR UPDATE SKIP LOCKED, its expired leases are reclaimed, and the user's
    Assignment is written together with the item's lease columns. On PostgreSQL that is one
    statement; on SQLite one IMMEDIATE transaction (which serializes writers) of ORM queries.

    `exclude` (at most MAX_EXCLUDE item ids, e.g. the item on the expert's screen while the client
    prefetches the next one): those items are neither returned from the user's live leases nor leased
    anew, and their leases are left as they are. A user so holds at most 1 + len(exclude) leases.

    `skip_locked_tried`: item_next_for_token already ran the SKIP LOCKED statement and found nothing (so
    only the waiting one is left to try).
    """
    ids = _exclude_list(exclude)
    if fast_path():
        return _pg_next(project=project, user=user, exclude=ids, skip_locked_tried=skip_locked_tried)
    return _orm_next(project=project, user=user, exclude=ids)


def _exclude_list(exclude: Sequence[int]) -> list[int]:
    ids = sorted({int(i) for i in exclude})
    if len(ids) > MAX_EXCLUDE:
        raise ValueError(f"at most {MAX_EXCLUDE} excluded items")
    return ids


@dataclass
class TokenNext:
    """item_next_for_token's answer: the token's user; their access to the project (role None: no access);
    the item leased (None: none was, or none was tried); `tried`: whether the statement looked for one."""

    user: Any
    access: ProjectAccess
    found: NextItem | None
    tried: bool


@cache
def _pg_next_token_sql() -> str:
    User = get_user_model()
    return _PG_NEXT.format(
        access=_PG_NEXT_ACCESS.format(
            user_columns=columns(User, "u"),
            project_columns=columns(Project, "p"),
            user_pk=User._meta.pk.column,
            user_table=User._meta.db_table,
        ),
        user="(SELECT uid FROM acc WHERE go)",
        k="(SELECT k FROM acc)",
        gate="(SELECT go FROM acc) AND ",
        where="",
        order=_PG_ORDERS[Sampling.UNCERTAINTY][0][2],
        wait="SKIP LOCKED",
        columns=columns(Item, "i"),
        final="SELECT acc.*, x.* FROM acc LEFT JOIN ("  # noqa: S608 - column names only
        + _NEXT_ROWS.format(columns=columns(Item, "i"))
        + ") x ON true",
    )


def item_next_for_token(*, token: str, project_id: int | str, exclude: Sequence[int] = ()) -> TokenNext | None:
    """The labeling loop's `next` for an API token, on PostgreSQL, in one statement: the token's user, their
    access to the project (as annotation.auth.token_user_and_project) and, where they may annotate in a
    project with uncertainty sampling (the default), item_next_for_annotator's SKIP LOCKED statement.

    None when no user has the token or the user is inactive (nothing was leased; the caller lets its
    general authentication answer). Otherwise the caller checks `access`, and where nothing was found
    (`found` None) calls item_next_for_annotator(skip_locked_tried=tried) for the other samplings and
    for the wait on locked candidates.
    """
    ids = _exclude_list(exclude)
    now = timezone.now()
    params = {
        "token": token,
        "project": bigint_or_zero(project_id),
        "now": now,
        "expires": now + timedelta(seconds=settings.TANDEM_ASSIGNMENT_TTL_SECONDS),
        "exclude": ids,
    }
    row = fetchone_prepared("tandem_next_token", _pg_next_token_sql(), params, prefix=_lease_commit_prefix())
    if row is None:
        return None
    User = get_user_model()
    nu, np = width(User), width(Project)
    user = load(User, row[:nu])
    if not user.is_active:
        return None
    access = project_access(user, row[nu : nu + np], row[nu + np])
    go = bool(row[nu + np + 1])
    item_row = row[nu + np + 4 :]
    found = None if item_row[0] is None else NextItem(item=load(Item, item_row[:-1]), expires_at=item_row[-1])
    return TokenNext(user=user, access=access, found=found, tried=go)


@transaction.atomic
def _orm_next(*, project: Project, user, exclude: list[int]) -> NextItem | None:
    now = timezone.now()
    mine = list(Assignment.objects.filter(user_id=user.pk, project_id=project.pk))
    live = [a for a in mine if a.expires_at > now and a.item_id not in exclude]
    if live:
        assignment = min(live, key=lambda a: a.created_at)
        return NextItem(item=Item.objects.get(pk=assignment.item_id), expires_at=assignment.expires_at)
    stale = [a for a in mine if a.expires_at <= now]
    if stale:
        _release_stale(user=user, stale=stale)

    item = _pick(project=project, user=user, now=now, exclude=exclude)
    if item is None:
        return None
    leases_drop_expired(item=item, now=now)
    expires_at = now + timedelta(seconds=settings.TANDEM_ASSIGNMENT_TTL_SECONDS)
    leases_add(item=item, user_id=user.pk, project_id=project.pk, expires_at=expires_at)
    leases_save(item)
    return NextItem(item=item, expires_at=expires_at)
