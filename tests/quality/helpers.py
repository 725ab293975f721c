"""Fixed projects for the quality tests: annotations written through the ORM with chosen times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from annotation.models import Annotation, FinalLabel, Item
from annotation.models.item import FinalLabelSource, ItemStatus
from tests.conftest import add_member, make_project, make_user

DAY0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def project_with(task_type: str = "classification", labels=("sports", "politics", "tech"), **fields: Any):
    return make_project(task_type=task_type, labels=labels, **fields)


def users(project, *names: str, role: str = "annotator") -> dict[str, Any]:
    out = {}
    for name in names:
        out[name] = make_user(name)
        add_member(project, out[name], role)
    return out


def items(project, texts: list[str], *, gold: bool = False, prefix: str = "e") -> list[Item]:
    made = Item.objects.bulk_create(
        [
            Item(project=project, external_id=f"{prefix}{i}", data={"text": text}, is_gold=gold)
            for i, text in enumerate(texts)
        ]
    )
    return list(Item.objects.filter(pk__in=[i.pk for i in made]).order_by("id"))


def annotate(item: Item, user, value: dict[str, Any], *, at: datetime | None = None, **fields: Any) -> Annotation:
    """An annotation created `at` (default DAY0); `fields`: counts, lead_time_ms, suggestion, accepted_suggestion."""
    ann = Annotation.objects.create(item=item, annotator=user, value=value, **fields)
    Annotation.objects.filter(pk=ann.pk).update(created_at=at or DAY0)
    ann.refresh_from_db()
    return ann


def final(item: Item, value: dict[str, Any], source: str = FinalLabelSource.CONSENSUS) -> FinalLabel:
    if source == FinalLabelSource.GOLD:
        Item.objects.filter(pk=item.pk).update(is_gold=True, status=ItemStatus.APPROVED)
    return FinalLabel.objects.create(item=item, value=value, source=source)


def table(project, rows: list[list[Any]], names: list[str], *, at: datetime | None = None, wrap=None) -> list[Item]:
    """One item per row; row[j] is names[j]'s value (None: not rated). wrap turns a raw value into the
    annotation value (default {"label": v})."""
    wrap = wrap or (lambda v: {"label": v})
    people = users(project, *names)
    made = items(project, [f"text {i}" for i in range(len(rows))])
    for item, row in zip(made, rows, strict=True):
        for name, v in zip(names, row, strict=True):
            if v is not None:
                annotate(item, people[name], wrap(v), at=at)
    return made


def days(n: int) -> timedelta:
    return timedelta(days=n)
