"""Submitting, editing and skipping annotations, and deciding an item once it has k of them."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass
from functools import cache
from typing import Any

from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from annotation.access import Capability, access_decide
from annotation.exceptions import Conflict, NotFound
from annotation.models import Annotation, FinalLabel, Item, Project, Skip
from annotation.models.item import QUEUE_STATUSES, FinalLabelSource, ItemStatus
from annotation.models.project import ReviewPolicy
from annotation.services.leases import leases_drop_user, leases_save
from annotation.services.values import value_validate
from annotation.sql import columns, execute_prepared, fetchone_prepared, load


@dataclass
class SubmitResult:
    annotation: Annotation
    created: bool


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def suggestion_accepted(*, value: Any, suggestion: dict[str, Any] | None) -> bool | None:
    """Whether the annotation's value (canonical, from value_validate) is the served suggestion's value, decided
    by the server (the client's flag is not trusted); None when no suggestion was served. A suggested span's
    own `score` is not part of its value, and the model's order of spans or labels does not matter."""
    if not suggestion or not isinstance(suggestion.get("value"), dict):
        return None
    suggested = suggestion["value"]
    if isinstance(suggested.get("spans"), list):
        keys = ("start", "end", "label")
        spans = [{k: s.get(k) for k in keys} for s in suggested["spans"] if isinstance(s, dict)]
        suggested = {"spans": sorted(spans, key=lambda s: tuple(str(s[k]) for k in keys))}
        spans = [{k: s.get(k) for k in keys} for s in value.get("spans", [])]
        value = {"spans": sorted(spans, key=lambda s: tuple(str(s[k]) for k in keys))}
    elif isinstance(suggested.get("labels"), list):
        suggested = {"labels": sorted(map(str, suggested["labels"]))}
        value = {"labels": sorted(value.get("labels", []))}
    return _canonical(value) == _canonical(suggested)


def _lock_item(item_id: int) -> Item:
    item = Item.objects.select_for_update().filter(pk=item_id).first()
    if item is None:
        raise NotFound("No such item.")
    return item


def sampled_for_review(*, item_id: int, rate: float) -> bool:
    """Whether the `sample` review policy sends this item to review. Drawn from the item's id, not at random,
    so the draw is made once per item: re-deciding the item (an annotator's edit) gives the same answer."""
    digest = hashlib.sha256(f"tandem-review-sample:{item_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < rate


def consensus(*, values: list[Any], project: Project, item_id: int) -> tuple[str, Any | None]:
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
        to_review = sampled_for_review(item_id=item_id, rate=project.review_sample_rate)
    else:
        to_review = False
    return (ItemStatus.IN_REVIEW, None) if to_review else (ItemStatus.APPROVED, json.loads(top))


def item_decide(*, item: Item, project: Project, values: list[Any] | None = None) -> str:
    """Decide an item that has k counting annotations (see consensus()) and save the outcome.

    Precondition: the item row is locked (SELECT ... FOR UPDATE) by the caller's transaction.
    Returns the item's new status; also sets it on `item`.
    """
    if values is None:
        values = list(Annotation.objects.filter(item_id=item.pk, counts=True).values_list("value", flat=True))
    item.status, final = consensus(values=values, project=project, item_id=item.pk)
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


# The lock: the item row FOR UPDATE, with what the submit decides on, read under that lock: the item's state
# (and whether it is gold); the user's prior annotations of it (or with this Idempotency-Key); an id for the
# annotation (the write is sent with its COMMIT, whose round trip returns no rows); when this annotation would
# be the item's k-th counting one (k > 1), the other counting annotations' values (JSON text) for the
# consensus; the suggestion recorded on the user's lease; the item's text (value validation), the user's
# membership role and the project (the access decision, annotation.access).
_LOCK = """
SELECT i.status, i.annotation_count, i.lease_count, i.is_gold,
       (SELECT count(*) FROM annotation_annotation a
         WHERE a.annotator_id = %(user)s::integer AND (a.item_id = i.id OR a.idempotency_key = %(key)s::varchar)),
       nextval(pg_get_serial_sequence('annotation_annotation', 'id')),
       CASE WHEN p.annotations_per_item > 1 AND i.annotation_count + 1 >= p.annotations_per_item AND NOT i.is_gold
            THEN (SELECT json_agg(a.value ORDER BY a.id)::text FROM annotation_annotation a
                  WHERE a.item_id = i.id AND a.counts)
       END,
       (SELECT l.suggestion::text FROM annotation_assignment l WHERE l.item_id = i.id AND l.user_id = %(user)s::integer),
       i.data ->> 'text', m.role, {project}
FROM annotation_item i JOIN annotation_project p ON p.id = i.project_id
LEFT JOIN annotation_membership m ON m.project_id = p.id AND m.user_id = %(user)s::integer
WHERE i.id = %(item)s::bigint FOR UPDATE OF i
"""
_HEAD = 10  # the columns before the project's


@cache
def _lock_sql() -> str:
    return _LOCK.format(project=columns(Project, "p"))


# One statement: consume the user's lease (or, without one, take a free slot), reclaim expired
# leases, insert the annotation (with the id the lock allocated, the suggestion served on the lease and whether
# it was accepted), update the item and its final label.
# The lock statement holds the item's row lock, so this statement's snapshot sees every lease and
# annotation committed before it. When it inserts nothing it fails (tandem_slot_taken, migration 0005,
# SQLSTATE T0409), undoing its deletes and stopping the COMMIT sent with it.
# A gold item's answer (%(gold)s) stands outside the overlap: always inserted (no slot to take), and the item's
# annotation_count, status and final label (its gold value) stay as they are (%(counted)s = 0, %(status)s its
# own status, %(final)s null).
_WRITE = """
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
                                       suggestion, idempotency_key, history, created_at, updated_at)
    SELECT %(id)s::bigint, %(item)s::bigint, %(user)s::integer, %(value)s::jsonb, %(lead_time_ms)s::integer,
           %(accepted)s::boolean, %(suggestion)s::jsonb, %(key)s::varchar, '[]'::jsonb, %(now)s::timestamptz,
           %(now)s::timestamptz
    WHERE (SELECT count(*) FROM mine) > 0 OR %(gold)s::boolean
       OR %(annotations)s::integer + %(leases)s::integer - (SELECT count(*) FROM expired) < %(k)s::integer
    RETURNING 1
),
item AS (
    UPDATE annotation_item SET
        annotation_count = annotation_count + %(counted)s::integer,
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


def annotation_submit(
    *,
    item_id: int,
    user: Any,
    value: Any,
    lead_time_ms: int | None = None,
    accepted_suggestion: bool | None = None,
    idempotency_key: str | None = None,
) -> SubmitResult:
    """Record the user's annotation of an item: access check (404 / 403, annotation.access), value validation
    (400), then the write, all under the item's row lock in one transaction.

    The suggestion served with the item (recorded on the user's lease by `next`) is copied onto the annotation,
    and whether the value is that suggestion's (accepted_suggestion) is decided here; the caller's
    `accepted_suggestion` (older clients still send it) is ignored.

    A gold item (is_gold, approved) takes each annotator's answer once, outside the overlap: the answer is
    stored but changes neither the item's count and status nor its final label (the gold value). After it
    commits, annotation.services.gold.gold_answer_check may pause the annotator.

    Idempotent by `idempotency_key`: a repeat returns the first annotation with created=False. The user's live
    or stale lease on the item is consumed; without one the annotation is accepted only while a slot is free
    (annotations + live leases < k), else 409. When the item then has k annotations it is decided (consensus).

    Two round trips when the transaction is ours: "BEGIN; EXECUTE lock", then "EXECUTE write; COMMIT" (Django's
    atomic() would send BEGIN and COMMIT on their own). Inside a caller's transaction, a savepoint instead.
    """
    kwargs = {
        "item_id": item_id,
        "user": user,
        "value": value,
        "lead_time_ms": lead_time_ms,
        "accepted_suggestion": accepted_suggestion,
        "idempotency_key": idempotency_key,
    }
    try:
        if connection.in_atomic_block or not connection.get_autocommit():
            with transaction.atomic():
                return _submit_locked(**kwargs, own=False)
        try:
            return _submit_locked(**kwargs, own=True)
        except BaseException:  # every way out short of the write's COMMIT rolls our transaction back
            _rollback_quietly()
            raise
    except _Raced:
        return _repeat_or_conflict(item_id=item_id, user=user, idempotency_key=idempotency_key)


def _rollback_quietly() -> None:
    """End the transaction annotation_submit opened by hand (a ROLLBACK outside one only warns)."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("ROLLBACK")
    except Exception:  # a broken connection: Django drops it at the end of the request
        connection.close_if_unusable_or_obsolete()


def _submit_locked(
    *,
    item_id: int,
    user: Any,
    value: Any,
    lead_time_ms: int | None,
    accepted_suggestion: bool | None,
    idempotency_key: str | None,
    own: bool,
) -> SubmitResult:
    """The body of annotation_submit. `own`: the transaction is ours, begun with the lock statement and
    committed with the write (a repeat, which writes nothing, is rolled back)."""
    now = timezone.now()
    item_id = int(item_id)
    row = fetchone_prepared(
        "tandem_submit_lock",
        _lock_sql(),
        {"user": user.pk, "key": idempotency_key, "item": item_id},
        prefix="BEGIN; " if own else "",
    )
    project = None if row is None else load(Project, row[_HEAD:])
    access_decide(
        user=user,
        project=project,
        member_role=None if row is None else row[_HEAD - 1],
        capability=Capability.ANNOTATE,
        what="item",
    )
    assert row is not None
    assert project is not None
    status, annotations, leases, is_gold, prior, ann_id, others, served, text = row[: _HEAD - 1]
    value = value_validate(task_type=project.task_type, label_names=project.label_names, value=value, text=text or "")
    k = project.annotations_per_item
    if prior:
        repeat = _repeat_or_conflict(item_id=item_id, user=user, idempotency_key=idempotency_key)
        if own:
            _rollback_quietly()  # it wrote nothing
        return repeat
    gold = bool(is_gold) and status == ItemStatus.APPROVED
    if status not in QUEUE_STATUSES and not gold:
        raise Conflict(
            "Every slot of this item is taken: it already has its annotations.",
            [{"field": "item", "message": f"{annotations} of {k} annotations."}],
        )
    suggestion = json.loads(served) if isinstance(served, str) else served
    new_status: str = status if gold else ItemStatus.IN_PROGRESS
    final: Any | None = None
    if not gold and annotations + 1 >= k:
        values = json.loads(others or "[]")
        if len(values) != annotations:
            # The lock waited for a concurrent submit of this item. PostgreSQL re-read the item row once that
            # committed (so `annotations` counts it), but the statement's subquery kept its older snapshot and
            # missed that annotation. A new statement sees it: we hold the row lock, so nothing else changes.
            values = list(
                Annotation.objects.filter(item_id=item_id, counts=True).order_by("id").values_list("value", flat=True)
            )
        new_status, final = consensus(values=[value, *values], project=project, item_id=item_id)
    accepted = suggestion_accepted(value=value, suggestion=suggestion)
    params = {
        "id": ann_id,
        "item": item_id,
        "user": user.pk,
        "now": now,
        "value": json.dumps(value),
        "lead_time_ms": lead_time_ms,
        "accepted": accepted,
        "suggestion": served,
        "gold": gold,
        "counted": 0 if gold else 1,
        "key": idempotency_key,
        "annotations": annotations,
        "leases": leases,
        "k": k,
        "status": new_status,
        "final": None if final is None else json.dumps(final),
    }
    try:
        execute_prepared("tandem_submit_write", _WRITE, params, suffix="; COMMIT" if own else "")
    except IntegrityError as exc:  # a concurrent duplicate; the caller rolls the transaction back
        raise _Raced() from exc
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
        accepted_suggestion=accepted,
        suggestion=suggestion,
        idempotency_key=idempotency_key,
        history=[],
        created_at=now,
        updated_at=now,
    )
    if gold:
        _after_gold_answer(project=project, user_id=user.pk)
    return SubmitResult(annotation, created=True)


def _after_gold_answer(*, project: Project, user_id: int) -> None:
    """Once the gold answer is committed: the auto-pause check (services.gold). With our own transaction the
    write's COMMIT has run and on_commit calls it at once; inside a caller's, at its commit."""
    from annotation.services.gold import gold_answer_check  # here: gold's services use item_decide (a cycle)

    transaction.on_commit(lambda: gold_answer_check(project=project, user_id=user_id))


@transaction.atomic
def annotation_update(*, annotation_id: int, user: Any, value: Any, lead_time_ms: int | None = None) -> Annotation:
    """Edit the user's own annotation (the value is validated against the project, 400), keeping the old value
    in its history; re-decides the item if it was decided by consensus. 404 unless it is the user's own.
    accepted_suggestion is decided again against the suggestion stored with the annotation. An answer on a gold
    item is edited like any other (nothing tells the annotator it is gold) but decides nothing: the gold value
    stays, and the auto-pause check runs again once committed."""
    annotation = Annotation.objects.filter(pk=annotation_id, annotator_id=user.pk).first()
    if annotation is None:
        raise NotFound("No such annotation.")
    item = _lock_item(annotation.item_id)
    project = Project.objects.get(pk=item.project_id)
    value = value_validate(task_type=project.task_type, label_names=project.label_names, value=value, text=item.text)
    annotation = Annotation.objects.select_for_update().get(pk=annotation_id)
    if not annotation.counts:
        raise Conflict(
            "A reviewer rejected this annotation: it no longer counts and can no longer be edited.",
            [{"field": "annotation", "message": "Rejected annotations are kept as they were reviewed."}],
        )
    if item.adjudication:
        raise Conflict("This item awaits a reviewer's correction; its annotations can no longer be edited.")
    final = FinalLabel.objects.filter(item_id=item.pk).first()
    gold = item.is_gold and item.status == ItemStatus.APPROVED
    if final is not None and final.source != FinalLabelSource.CONSENSUS and not gold:
        raise Conflict("A reviewer has already decided this item; it can no longer be edited.")
    annotation.history = [
        *annotation.history,
        {"value": annotation.value, "lead_time_ms": annotation.lead_time_ms, "replaced_at": timezone.now().isoformat()},
    ]
    annotation.value = value
    annotation.accepted_suggestion = suggestion_accepted(value=value, suggestion=annotation.suggestion)
    if lead_time_ms is not None:
        annotation.lead_time_ms = lead_time_ms
    annotation.save(update_fields=["value", "history", "lead_time_ms", "accepted_suggestion", "updated_at"])
    if gold:
        _after_gold_answer(project=project, user_id=user.pk)
    elif item.annotation_count >= project.annotations_per_item:
        item_decide(item=item, project=project)
    return annotation


@transaction.atomic
def item_skip(*, item_id: int, user) -> None:
    """Release the user's lease on the item and do not serve it to them again (idempotent)."""
    item = _lock_item(item_id)
    if leases_drop_user(item=item, user_id=user.pk):
        leases_save(item)
    Skip.objects.bulk_create([Skip(item_id=item.pk, user=user)], ignore_conflicts=True)
