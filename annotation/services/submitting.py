"""Submitting, editing and skipping annotations, and deciding an item once it has k of them."""

from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import dataclass
from functools import cache
from typing import Any

from django.contrib.auth import get_user_model
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from annotation.exceptions import Conflict, NotFound
from annotation.models import Annotation, FinalLabel, Item, Project, Skip
from annotation.models.item import QUEUE_STATUSES, FinalLabelSource, ItemStatus
from annotation.models.project import ReviewPolicy
from annotation.permissions import ANNOTATE, require_capability
from annotation.services.leases import leases_drop_expired, leases_drop_user, leases_save
from annotation.services.values import value_validate
from annotation.sql import columns, execute_prepared, fast_path, fetchone_prepared, load, width


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


def consensus(*, values: list[Any], project: Project) -> tuple[str, Any | None]:
    """(new status, final value or None) for an item with k annotations: the majority value is
    approved as its FinalLabel unless there is a tie or the review policy sends it to review."""
    ranked = Counter(_canonical(v) for v in values).most_common()
    top, top_n = ranked[0]
    tie = len(ranked) > 1 and ranked[1][1] == top_n
    policy = project.review_policy
    if tie or policy == ReviewPolicy.ALL:
        to_review = True
    elif policy == ReviewPolicy.DISAGREEMENTS:
        to_review = len(ranked) > 1
    elif policy == ReviewPolicy.SAMPLE:
        to_review = random.random() < project.review_sample_rate  # noqa: S311 - sampling, not security
    else:
        to_review = False
    return (ItemStatus.IN_REVIEW, None) if to_review else (ItemStatus.APPROVED, json.loads(top))


def item_decide(*, item: Item, project: Project, values: list[Any] | None = None) -> str:
    """Decide an item that has k annotations (see consensus()) and save the outcome.

    Precondition: the item row is locked (SELECT ... FOR UPDATE) by the caller's transaction.
    Returns the item's new status; also sets it on `item`.
    """
    if values is None:
        values = list(Annotation.objects.filter(item_id=item.pk).values_list("value", flat=True))
    item.status, final = consensus(values=values, project=project)
    if final is None:
        FinalLabel.objects.filter(item_id=item.pk, source=FinalLabelSource.CONSENSUS).delete()
    else:
        FinalLabel.objects.bulk_create(
            [FinalLabel(item_id=item.pk, value=final, source=FinalLabelSource.CONSENSUS)],
            update_conflicts=True,
            unique_fields=["item"],
            update_fields=["value", "source", "updated_at"],
        )
    Item.objects.filter(pk=item.pk).update(status=item.status)
    return item.status


# The columns every lock statement starts with: the item's state; the user's prior annotations of it (or
# with this Idempotency-Key); an id for the annotation (the write is sent with its COMMIT, whose round trip
# returns no rows); and, when this annotation would be the item's k-th (k > 1), the others' values (JSON
# text) for the consensus.
_LOCK_HEAD = """
SELECT i.status, i.annotation_count, i.lease_count,
       (SELECT count(*) FROM annotation_annotation a
         WHERE a.annotator_id = {user} AND (a.item_id = i.id OR a.idempotency_key = %(key)s::varchar)),
       nextval(pg_get_serial_sequence('annotation_annotation', 'id')),
       CASE WHEN p.annotations_per_item > 1 AND i.annotation_count + 1 >= p.annotations_per_item
            THEN (SELECT json_agg(a.value ORDER BY a.id)::text FROM annotation_annotation a WHERE a.item_id = i.id)
       END"""
_HEAD = 6  # the number of those columns

_PG_LOCK = (
    _LOCK_HEAD.format(user="%(user)s::integer")
    + """
FROM annotation_item i JOIN annotation_project p ON p.id = i.project_id
WHERE i.id = %(item)s::bigint FOR UPDATE OF i
"""
)

# The same lock, also reading the item's text, the user's role in its project and the project, for the API:
# access check, value validation and write then all happen under the lock, in one transaction.
_PG_LOCK_CHECKED = (
    _LOCK_HEAD.format(user="%(user)s::integer")
    + """,
       i.data ->> 'text', m.role, {project}
FROM annotation_item i JOIN annotation_project p ON p.id = i.project_id
LEFT JOIN annotation_membership m ON m.project_id = p.id AND m.user_id = %(user)s::integer
WHERE i.id = %(item)s::bigint FOR UPDATE OF i
"""
)

# One statement: consume the user's lease (or, without one, take a free slot), reclaim expired
# leases, insert the annotation (with the id the lock allocated), update the item and its final label.
# The lock statement holds the item's row lock, so this statement's snapshot sees every lease and
# annotation committed before it. When it inserts nothing it fails (tandem_slot_taken, migration 0005,
# SQLSTATE T0409), undoing its deletes and stopping the COMMIT sent with it.
_PG_WRITE = """
WITH mine AS (
    DELETE FROM annotation_assignment WHERE item_id = %(item)s::bigint AND user_id = %(user)s::integer RETURNING 1
),
expired AS (
    DELETE FROM annotation_assignment
    WHERE item_id = %(item)s::bigint AND user_id <> %(user)s::integer AND expires_at <= %(now)s::timestamptz
    RETURNING 1
),
ins AS (
    INSERT INTO annotation_annotation (id, item_id, annotator_id, value, lead_time_ms, accepted_suggestion,
                                       idempotency_key, history, created_at, updated_at)
    SELECT %(id)s::bigint, %(item)s::bigint, %(user)s::integer, %(value)s::jsonb, %(lead_time_ms)s::integer,
           %(accepted)s::boolean, %(key)s::varchar, '[]'::jsonb, %(now)s::timestamptz, %(now)s::timestamptz
    WHERE (SELECT count(*) FROM mine) > 0
       OR %(annotations)s::integer + %(leases)s::integer - (SELECT count(*) FROM expired) < %(k)s::integer
    RETURNING 1
),
item AS (
    UPDATE annotation_item SET
        annotation_count = annotation_count + 1,
        status = %(status)s::varchar,
        lease_count = lease_count - (SELECT count(*) FROM mine) - (SELECT count(*) FROM expired),
        lease_expires_at = (SELECT min(a.expires_at) FROM annotation_assignment a
                            WHERE a.item_id = %(item)s::bigint AND a.user_id <> %(user)s::integer
                              AND a.expires_at > %(now)s::timestamptz)
    WHERE id = %(item)s::bigint AND EXISTS (SELECT 1 FROM ins)
),
final AS (
    INSERT INTO annotation_finallabel (item_id, value, source, created_at, updated_at)
    SELECT %(item)s::bigint, %(final)s::jsonb, 'consensus', %(now)s::timestamptz, %(now)s::timestamptz
    WHERE %(final)s::jsonb IS NOT NULL AND EXISTS (SELECT 1 FROM ins)
    ON CONFLICT (item_id) DO UPDATE SET value = EXCLUDED.value, source = EXCLUDED.source,
                                        updated_at = EXCLUDED.updated_at
),
unfinal AS (
    DELETE FROM annotation_finallabel WHERE item_id = %(item)s::bigint AND source = 'consensus'
      AND %(status)s::varchar = 'in_review' AND EXISTS (SELECT 1 FROM ins)
)
SELECT CASE WHEN EXISTS (SELECT 1 FROM ins) THEN 1 ELSE tandem_slot_taken(%(item)s::bigint) END
"""

SLOT_TAKEN = "T0409"  # the SQLSTATE of tandem_slot_taken()


class _Raced(Exception):
    """A unique constraint caught a concurrent duplicate: answer from what the database now holds."""

    def __init__(self, user) -> None:
        super().__init__("raced")
        self.user = user


class TokenRefused(Exception):
    """annotation_submit_checked(token=...): no active user has this token. Nothing was written; the caller
    answers as its general authentication does (DRF: 401)."""


# _PG_LOCK_CHECKED with the token lookup folded in (the API's submit with `Authorization: Token`): one row
# when the token is an active user's, with the lock's columns NULL when there is no such item.
_PG_LOCK_AUTHENTICATING = """
WITH tu AS (
    SELECT {user} FROM authtoken_token t JOIN {user_table} u ON u."{user_pk}" = t.user_id
    WHERE t.key = %(token)s::varchar AND u.is_active
),
locked AS (
    {head},
           i.data ->> 'text', m.role, {project}
    FROM annotation_item i JOIN annotation_project p ON p.id = i.project_id
    LEFT JOIN annotation_membership m ON m.project_id = p.id AND m.user_id = (SELECT "{user_pk}" FROM tu)
    WHERE i.id = %(item)s::bigint AND EXISTS (SELECT 1 FROM tu)
    FOR UPDATE OF i
)
SELECT tu.*, locked.* FROM tu LEFT JOIN locked ON true
"""


@cache
def _pg_lock_token_sql() -> str:
    User = get_user_model()
    return _PG_LOCK_AUTHENTICATING.format(
        head=_LOCK_HEAD.strip().format(user=f'(SELECT "{User._meta.pk.column}" FROM tu)'),  # noqa: S608 - a column name
        user=columns(User, "u"),
        user_table=User._meta.db_table,
        user_pk=User._meta.pk.column,
        project=columns(Project, "p"),
    )


def _repeat_or_conflict(*, item_id: int, user, idempotency_key: str | None) -> SubmitResult:
    """A repeat of an earlier submit (same Idempotency-Key, same item) returns it; anything else is 409."""
    mine = Q(item_id=item_id) | Q(idempotency_key=idempotency_key) if idempotency_key else Q(item_id=item_id)
    existing = list(Annotation.objects.filter(mine, annotator=user)[:2])
    repeat = next((a for a in existing if idempotency_key and a.idempotency_key == idempotency_key), None)
    if repeat is not None:
        if repeat.item_id != item_id:
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
    raise Conflict("A concurrent request changed this item; try again.")


def _pg_submit(
    *,
    item_id: int,
    project: Project | None,
    user,
    value: Any,
    lead_time_ms: int | None,
    accepted_suggestion: bool | None,
    idempotency_key: str | None,
    token: str | None = None,
) -> SubmitResult:
    """Submit under the item's row lock. Without `project`, also check access and validate `value`; with
    `token` (and user=None), the user is the token's, looked up by the lock's statement."""
    kwargs = {
        "item_id": item_id,
        "project": project,
        "user": user,
        "value": value,
        "lead_time_ms": lead_time_ms,
        "accepted_suggestion": accepted_suggestion,
        "idempotency_key": idempotency_key,
        "token": token,
    }
    if connection.in_atomic_block or not connection.get_autocommit():
        with transaction.atomic():
            return _pg_submit_locked(**kwargs, own=False)
    # Our own transaction, two round trips: "BEGIN; EXECUTE lock" and "EXECUTE write; COMMIT" (Django's
    # atomic() would send BEGIN and COMMIT on their own). Every way out short of that COMMIT rolls it back.
    try:
        return _pg_submit_locked(**kwargs, own=True)
    except BaseException:
        _rollback_quietly()
        raise


def _rollback_quietly() -> None:
    """End the transaction _pg_submit opened by hand (a ROLLBACK outside one only warns)."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("ROLLBACK")
    except Exception:  # a broken connection: Django drops it at the end of the request
        connection.close_if_unusable_or_obsolete()


def _pg_submit_locked(
    *,
    item_id: int,
    project: Project | None,
    user,
    value: Any,
    lead_time_ms: int | None,
    accepted_suggestion: bool | None,
    idempotency_key: str | None,
    token: str | None,
    own: bool,
) -> SubmitResult:
    """The body of _pg_submit. `own`: the transaction is ours, begun with the lock statement and committed
    with the write (a repeat, which writes nothing, is rolled back)."""
    now = timezone.now()
    begin = "BEGIN; " if own else ""
    if token is not None:
        User = get_user_model()
        found = fetchone_prepared(
            "tandem_submit_lock_token",
            _pg_lock_token_sql(),
            {"token": token, "key": idempotency_key, "item": item_id},
            prefix=begin,
        )
        if found is None:
            raise TokenRefused()
        user = load(User, found[: width(User)])
        row = found[width(User) :]
        role = None if row[0] is None else ("staff" if user.is_staff else row[_HEAD + 1])
        require_capability(role, ANNOTATE, what="item")
        project = load(Project, row[_HEAD + 2 :])
        value = value_validate(
            task_type=project.task_type, label_names=project.label_names, value=value, text=row[_HEAD] or ""
        )
    elif project is not None:
        params = {"user": user.pk, "key": idempotency_key, "item": item_id}
        row = fetchone_prepared("tandem_submit_lock", _PG_LOCK, params, prefix=begin)
        if row is None:
            raise NotFound("No such item.")
    else:
        row = fetchone_prepared(
            "tandem_submit_lock_checked",
            _PG_LOCK_CHECKED.format(project=columns(Project, "p")),
            {"user": user.pk, "key": idempotency_key, "item": item_id},
            prefix=begin,
        )
        role = None if row is None else ("staff" if user.is_staff else row[_HEAD + 1])
        require_capability(role, ANNOTATE, what="item")
        assert row is not None
        project = load(Project, row[_HEAD + 2 :])
        value = value_validate(
            task_type=project.task_type, label_names=project.label_names, value=value, text=row[_HEAD] or ""
        )
    status, annotations, leases, prior, ann_id, others = row[:_HEAD]
    k = project.annotations_per_item
    if prior:
        repeat = _repeat_or_conflict(item_id=item_id, user=user, idempotency_key=idempotency_key)
        if own:
            _rollback_quietly()  # it wrote nothing
        return repeat
    if status not in QUEUE_STATUSES:
        raise Conflict(
            "Every slot of this item is taken: it already has its annotations.",
            [{"field": "item", "message": f"{annotations} of {k} annotations."}],
        )
    new_status, final = ItemStatus.IN_PROGRESS, None
    if annotations + 1 >= k:
        new_status, final = consensus(values=[value, *json.loads(others or "[]")], project=project)
    params = {
        "id": ann_id,
        "item": item_id,
        "user": user.pk,
        "now": now,
        "value": json.dumps(value),
        "lead_time_ms": lead_time_ms,
        "accepted": accepted_suggestion,
        "key": idempotency_key,
        "annotations": annotations,
        "leases": leases,
        "k": k,
        "status": new_status,
        "final": None if final is None else json.dumps(final),
    }
    try:
        execute_prepared("tandem_submit_write", _PG_WRITE, params, suffix="; COMMIT" if own else "")
    except IntegrityError as exc:  # the caller rolls the transaction back
        raise _Raced(user) from exc
    except DatabaseError as exc:
        if getattr(exc.__cause__, "pgcode", None) != SLOT_TAKEN:
            raise
        raise Conflict(
            "Every slot of this item is taken (your assignment expired and others took it).",
            [{"field": "item", "message": f"{annotations} of {k} annotations, {leases} in progress."}],
        ) from None
    annotation = Annotation(
        id=ann_id,
        item_id=item_id,
        annotator=user,
        value=value,
        lead_time_ms=lead_time_ms,
        accepted_suggestion=accepted_suggestion,
        idempotency_key=idempotency_key,
        history=[],
        created_at=now,
        updated_at=now,
    )
    return SubmitResult(annotation, created=True)


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
    On PostgreSQL this is two round trips (BEGIN and the lock, then the write and COMMIT); elsewhere ORM queries.
    """
    kwargs = {
        "item_id": item_id,
        "project": project,
        "user": user,
        "value": value,
        "lead_time_ms": lead_time_ms,
        "accepted_suggestion": accepted_suggestion,
        "idempotency_key": idempotency_key,
    }
    if fast_path():
        try:
            return _pg_submit(**kwargs)
        except _Raced as raced:
            return _repeat_or_conflict(item_id=item_id, user=raced.user, idempotency_key=idempotency_key)
    return _orm_submit(**kwargs)


def annotation_submit_checked(
    *,
    item_id: int,
    user,
    value: Any,
    lead_time_ms: int | None = None,
    accepted_suggestion: bool | None = None,
    idempotency_key: str | None = None,
    token: str | None = None,
) -> SubmitResult:
    """The API's submit: access check (404 / 403), value validation (400), then annotation_submit.
    On PostgreSQL all three happen in one transaction under the item's row lock (two round trips).

    `token` (PostgreSQL only, with user=None): the submitting user is this API token's, looked up by the
    lock's statement (saving the request a round trip); the result's annotation.annotator is that user.
    Raises TokenRefused, having written nothing, when no active user has the token."""
    extra = {
        "lead_time_ms": lead_time_ms,
        "accepted_suggestion": accepted_suggestion,
        "idempotency_key": idempotency_key,
    }
    if token is not None and (user is not None or not fast_path()):
        raise ValueError("token is for the PostgreSQL path, instead of user")
    if fast_path():
        try:
            return _pg_submit(item_id=item_id, project=None, user=user, value=value, token=token, **extra)
        except _Raced as raced:
            return _repeat_or_conflict(item_id=item_id, user=raced.user, idempotency_key=idempotency_key)
    from annotation.selectors.items import item_for_user

    item = item_for_user(user=user, item_id=item_id, capability=ANNOTATE)
    project = item.project
    value = value_validate(task_type=project.task_type, label_names=project.label_names, value=value, text=item.text)
    return _orm_submit(item_id=item.pk, project=project, user=user, value=value, **extra)


@transaction.atomic
def _orm_submit(
    *,
    item_id: int,
    project: Project,
    user,
    value: dict[str, Any],
    lead_time_ms: int | None = None,
    accepted_suggestion: bool | None = None,
    idempotency_key: str | None = None,
) -> SubmitResult:
    now = timezone.now()
    item = _lock_item(item_id)
    mine = Q(item_id=item.pk) | Q(idempotency_key=idempotency_key) if idempotency_key else Q(item_id=item.pk)
    if Annotation.objects.filter(mine, annotator=user).exists():
        return _repeat_or_conflict(item_id=item.pk, user=user, idempotency_key=idempotency_key)

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
