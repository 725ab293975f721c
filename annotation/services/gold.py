"""Gold items: setting and clearing them, scoring annotators' answers, and the auto-pause.

A gold item has `is_gold` and a FinalLabel with source `gold` holding its gold value; it keeps status `approved`
and is served at the project's gold_rate to every annotator once, outside the overlap (services/queue.py). An
answer scores 1 or 0 for single- and multi-label (exact match), and the share of whitespace tokens labeled alike
(`O` outside spans) for spans. A member's accuracy is the mean score of their gold answers since
Membership.gold_since (an un-pause restarts the count).

Every annotation of a gold item is a gold answer, whoever wrote it and whatever their role, including one written
before the item became gold (the item's truth is known now, so it measures its author like any other answer), and
one a reviewer rejected (a gold item is never reviewed, so in practice there is none).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import Count, F, OuterRef, Q, Subquery
from django.utils import timezone

from annotation.exceptions import InvalidInput, NotFound
from annotation.models import Annotation, Assignment, FinalLabel, Item, Membership, Project, ReviewLease
from annotation.models.item import FinalLabelSource, ItemStatus
from annotation.models.project import TaskType
from annotation.services.leases import leases_drop_user, leases_save
from annotation.services.values import value_validate

OUTSIDE = "O"  # the label of a token outside every span
_TOKEN = re.compile(r"\S+")


@dataclass(frozen=True)
class GoldScore:
    answers: int
    correct: float  # the sum of the answers' scores
    accuracy: float | None  # correct / answers, None without answers


def span_tokens(text: str) -> list[tuple[int, int]]:
    """The whitespace tokens of a text as [start, end) character ranges."""
    return [(m.start(), m.end()) for m in _TOKEN.finditer(text)]


def span_token_labels(text: str | list[tuple[int, int]], spans: list[dict[str, Any]]) -> list[str]:
    """The label of each whitespace token of `text` (or of the token ranges given): the label of the first span
    (by start, then end, then label) whose character range overlaps the token's, `O` when none does. The one
    token rule of gold scoring, span agreement (annotation/quality/agreement.py) and the stopping signal."""
    ranges = span_tokens(text) if isinstance(text, str) else text
    out = [OUTSIDE] * len(ranges)
    for span in sorted(spans, key=lambda s: (s["start"], s["end"], s["label"])):
        for t, (ts, te) in enumerate(ranges):
            if out[t] == OUTSIDE and ts < span["end"] and span["start"] < te:
                out[t] = span["label"]
    return out


def gold_answer_score(*, task_type: str, text: str, answer: Any, gold: Any) -> float:
    """One answer's score in [0, 1] against the gold value (see the module docstring)."""
    if task_type == TaskType.SPANS:
        got = span_token_labels(text, (answer or {}).get("spans", []))
        want = span_token_labels(text, (gold or {}).get("spans", []))
        if not want:  # a text without tokens: only the exact same spans agree
            return 1.0 if _span_set(answer) == _span_set(gold) else 0.0
        return sum(a == b for a, b in zip(got, want, strict=True)) / len(want)
    if task_type == TaskType.MULTILABEL:
        return 1.0 if set((answer or {}).get("labels", [])) == set((gold or {}).get("labels", [])) else 0.0
    return 1.0 if (answer or {}).get("label") == (gold or {}).get("label") else 0.0


def _span_set(value: Any) -> set[tuple[Any, Any, Any]]:
    return {(s.get("start"), s.get("end"), s.get("label")) for s in (value or {}).get("spans", [])}


def gold_answers(project: Project, user_ids: list[int] | None) -> Any:
    """Annotations of the project's gold items written at or after their author's gold_since (any time when it
    is not set, or when the author is no member)."""
    since = Membership.objects.filter(project_id=project.pk, user_id=OuterRef("annotator_id")).values("gold_since")
    qs = (
        Annotation.objects.filter(
            item__project_id=project.pk, item__is_gold=True, item__final_label__source=FinalLabelSource.GOLD
        )
        .annotate(since=Subquery(since[:1]))
        .filter(Q(since__isnull=True) | Q(created_at__gte=F("since")))
    )
    if user_ids is not None:
        qs = qs.filter(annotator_id__in=user_ids)
    return qs


def gold_scores(*, project: Project, user_ids: list[int] | None = None) -> dict[int, GoldScore]:
    """Per member (user id) who answered gold items since their gold_since: their GoldScore.

    Single- and multi-label answers are scored in the database (the two values contain each other: exact
    match whatever the order of a multilabel list, which is gold_answer_score's rule); spans need the text and
    are scored here by gold_answer_score. One query either way."""
    answers = gold_answers(project, user_ids)
    if project.task_type == TaskType.SPANS:
        sums: dict[int, list[float]] = {}
        rows = answers.values_list("annotator_id", "value", "item__data__text", "item__final_label__value")
        for user_id, value, text, gold in rows.iterator(chunk_size=2000):
            score = gold_answer_score(task_type=project.task_type, text=text or "", answer=value, gold=gold)
            acc = sums.setdefault(user_id, [0, 0.0])
            acc[0] += 1
            acc[1] += score
        return {uid: GoldScore(int(n), c, c / n if n else None) for uid, (n, c) in sums.items()}
    same = Q(value__contains=F("item__final_label__value")) & Q(value__contained_by=F("item__final_label__value"))
    counted = answers.values("annotator_id").annotate(n=Count("id"), right=Count("id", filter=same)).order_by()
    return {
        row["annotator_id"]: GoldScore(row["n"], float(row["right"]), row["right"] / row["n"] if row["n"] else None)
        for row in counted
    }


def gold_answer_check(*, project: Project, user_id: int) -> bool:
    """After a gold answer was committed: pause the member when the project's gold_pause_below is set, they have
    at least gold_pause_min answers and their accuracy is below it. Returns whether they are paused now."""
    if project.gold_pause_below is not None:
        score = gold_scores(project=project, user_ids=[user_id]).get(user_id)
        if (
            score is not None
            and score.accuracy is not None
            and score.answers >= project.gold_pause_min
            and score.accuracy < project.gold_pause_below
        ):
            Membership.objects.filter(project_id=project.pk, user_id=user_id, paused=False).update(paused=True)
            return True
    paused = Membership.objects.filter(project_id=project.pk, user_id=user_id).values_list("paused", flat=True)
    return bool(paused.first())


def annotator_unpause(*, project: Project, user_id: int) -> Membership:
    """Let a paused member label again: paused off, and their gold answers count from now (gold_since)."""
    member = Membership.objects.filter(project_id=project.pk, user_id=user_id).select_related("user").first()
    if member is None:
        raise NotFound("No such member.")
    member.paused, member.gold_since = False, timezone.now()
    member.save(update_fields=["paused", "gold_since"])
    return member


def gold_validate(*, project: Project, text: str, value: Any, field: str = "gold") -> dict[str, Any]:
    """A gold value in its canonical form, checked like an annotation value; the errors name `field`
    (`gold`, `gold.label`, ...) instead of `value`."""
    try:
        return value_validate(task_type=project.task_type, label_names=project.label_names, value=value, text=text)
    except InvalidInput as exc:
        errors = [{**e, "field": _rename(e.get("field"), field)} for e in exc.errors]
        raise InvalidInput("The gold value does not fit this project's labels.", errors) from exc


def _rename(where: str | None, field: str) -> str:
    if not where:
        return field
    return field + where[len("value") :] if where.startswith("value") else f"{field}.{where}"


def _lock(item: Item) -> tuple[Item, Project]:
    locked = Item.objects.select_for_update().select_related("project").filter(pk=item.pk).first()
    if locked is None:
        raise NotFound("No such item.")
    return locked, locked.project


@transaction.atomic
def gold_set(*, item: Item, value: Any) -> Item:
    """Make the item gold with this value (validated against the project, 400) or change its gold value.

    Under the item's row lock: the FinalLabel becomes the gold value (source `gold`), the item `approved`, its
    labeling leases and any review lease are dropped. Its annotations stay, but no longer decide it (they are
    gold answers now, so annotation_count is 0)."""
    item, project = _lock(item)
    gold = gold_validate(project=project, text=item.text, value=value)
    FinalLabel.objects.bulk_create(
        [FinalLabel(item_id=item.pk, value=gold, source=FinalLabelSource.GOLD)],
        update_conflicts=True,
        unique_fields=["item"],
        update_fields=["value", "source", "updated_at"],
    )
    for user_id in Assignment.objects.filter(item_id=item.pk).values_list("user_id", flat=True):
        leases_drop_user(item=item, user_id=user_id)
    ReviewLease.objects.filter(item_id=item.pk).delete()
    # annotation_count never counts gold answers (gold items stand outside the overlap); gold_clear recounts
    item.is_gold, item.status, item.adjudication, item.annotation_count = True, ItemStatus.APPROVED, False, 0
    leases_save(item, is_gold=True, status=item.status, adjudication=False, annotation_count=0)
    return item


@transaction.atomic
def gold_clear(*, item: Item) -> Item:
    """Remove the gold value: the gold FinalLabel goes and the item returns to the queue.

    Under the item's row lock. Its counting annotations (the answers given while it was gold among them: their
    authors cannot be served it again) decide its state as a submit would: none -> `open`, fewer than the
    overlap k -> `in_progress`, k or more -> decided by consensus (submitting.item_decide). Not gold: nothing
    changes."""
    # submitting calls gold_answer_check after a gold answer: imported here, so neither module needs the other
    # at import time
    from annotation.services.submitting import item_decide

    item, project = _lock(item)
    if not item.is_gold:
        return item
    FinalLabel.objects.filter(item_id=item.pk, source=FinalLabelSource.GOLD).delete()
    values = list(
        Annotation.objects.filter(item_id=item.pk, counts=True).order_by("id").values_list("value", flat=True)
    )
    item.is_gold, item.annotation_count, item.adjudication = False, len(values), False
    Item.objects.filter(pk=item.pk).update(is_gold=False, annotation_count=len(values), adjudication=False)
    if len(values) >= project.annotations_per_item:
        item_decide(item=item, project=project, values=values)
    else:
        item.status = ItemStatus.IN_PROGRESS if values else ItemStatus.OPEN
        Item.objects.filter(pk=item.pk).update(status=item.status)
    return item
