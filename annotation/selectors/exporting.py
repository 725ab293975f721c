"""The plain export's rows, read in keyset batches so memory stays flat whatever the project size, and the
items it holds (`export_items`: the filters ?status=, ?source=, ?label=)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from django.db.models import Q, QuerySet

from annotation.exceptions import InvalidInput
from annotation.models import Annotation, FinalLabel, Item, Project
from annotation.models.item import FinalLabelSource, ItemStatus
from annotation.models.project import TaskType

EXPORT_FORMATS = ("jsonl", "csv", "labelstudio")
EXPORT_FILTERS = ("status", "source", "label")
CSV_COLUMNS = ["id", "external_id", "text", "data", "final", "annotations"]


def _iso(dt: datetime) -> str:
    return dt.isoformat().replace("+00:00", "Z")


def export_items(*, project: Project, filters: Mapping[str, Sequence[str]]) -> QuerySet[Item]:
    """The project's items that the export holds: each filter (`status`, `source`, `label`: lists of values) keeps
    the items that match any of its values, and every filter given must match. `source` is the final label's
    source (an item without one matches no source); `label` is in the final label (classification: its label;
    multilabel: any of its labels; spans: any span's label). Empty values are ignored (no filter), other keys are
    not read. An unknown value: InvalidInput (400) naming the filter and what it allows."""
    allowed = {
        "status": list(ItemStatus.values),
        "source": list(FinalLabelSource.values),
        "label": project.label_names,
    }
    chosen: dict[str, list[str]] = {}
    errors = []
    for name in EXPORT_FILTERS:
        values = list(dict.fromkeys(v for v in filters.get(name, ()) if v))
        bad = [v for v in values if v not in allowed[name]]
        if bad:
            errors.append(
                {
                    "field": name,
                    "message": f"Unknown: {', '.join(repr(v) for v in bad)}. Any of {', '.join(allowed[name])} "
                    f"(repeat the parameter for several: ?{name}=a&{name}=b).",
                }
            )
        chosen[name] = values
    if errors:
        raise InvalidInput("Unknown export filter value.", errors)
    items = Item.objects.filter(project_id=project.pk)
    if chosen["status"]:
        items = items.filter(status__in=chosen["status"])
    if chosen["source"]:
        items = items.filter(final_label__source__in=chosen["source"])
    if labels := chosen["label"]:
        if project.task_type == TaskType.CLASSIFICATION:
            items = items.filter(final_label__value__label__in=labels)
        elif project.task_type == TaskType.MULTILABEL:
            items = items.filter(final_label__value__labels__has_any_keys=labels)  # jsonb ?| : any array element
        else:
            any_span = Q()
            for label in labels:
                any_span |= Q(final_label__value__spans__contains=[{"label": label}])
            items = items.filter(any_span)
    return items


def export_batches(
    *, project: Project, items: QuerySet[Item] | None = None, batch_size: int = 2000
) -> Iterator[list[dict[str, Any]]]:
    """The items (default: every item of the project) in id order, with their annotations (annotator = username)
    and final value."""
    base = Item.objects.filter(project_id=project.pk) if items is None else items
    last = 0
    while True:
        batch = list(base.filter(id__gt=last).order_by("id").values_list("id", "external_id", "data")[:batch_size])
        if not batch:
            return
        lo, hi = batch[0][0], batch[-1][0]
        # the id range reads one index range; a batch with gaps (a filter, deleted items) also names its ids, so
        # that the annotations of the items it skipped are not read
        in_batch = {} if hi - lo + 1 == len(batch) else {"item_id__in": [row[0] for row in batch]}
        annotations: dict[int, list[dict[str, Any]]] = {}
        for ann_id, item_id, username, value, created in (
            Annotation.objects.filter(item__project_id=project.pk, item_id__gte=lo, item_id__lte=hi, **in_batch)
            .order_by("item_id", "id")
            .values_list("id", "item_id", "annotator__username", "value", "created_at")
        ):
            annotations.setdefault(item_id, []).append(
                {"id": ann_id, "annotator": username, "value": value, "created_at": _iso(created)}
            )
        finals = dict(
            FinalLabel.objects.filter(
                item__project_id=project.pk, item_id__gte=lo, item_id__lte=hi, **in_batch
            ).values_list("item_id", "value")
        )
        yield [
            {
                "id": item_id,
                "external_id": ext,
                "data": data,
                "annotations": annotations.get(item_id, []),
                "final": finals.get(item_id),
            }
            for item_id, ext, data in batch
        ]
        last = hi


# a spreadsheet reads a cell starting with one of these as a formula (OWASP "CSV injection")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(cell: str) -> str:
    """A text cell as a spreadsheet will show it, never run it: a leading ' before a formula character (the
    apostrophe is what spreadsheets themselves use to mark text). JSON and JSONL exports keep the text as is."""
    return "'" + cell if cell.startswith(_FORMULA_START) else cell


def export_stream(*, project: Project, fmt: str, items: QuerySet[Item] | None = None) -> Iterator[bytes]:
    """The export of `items` (default: the whole project; see export_items) as a stream of byte chunks (one per
    batch): JSONL or CSV rows, or a Label Studio JSON list of tasks."""
    if fmt == "labelstudio":
        from annotation.datasets.labelstudio import ls_project_export_stream

        yield from ls_project_export_stream(
            project=project, items=Item.objects.filter(project_id=project.pk) if items is None else items
        )
        return
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(CSV_COLUMNS)
        yield buf.getvalue().encode()
    for rows in export_batches(project=project, items=items):
        if fmt == "jsonl":
            yield "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode()
        else:
            buf = io.StringIO()
            writer = csv.writer(buf)
            for row in rows:
                meta = {k: v for k, v in row["data"].items() if k != "text"}
                # every text cell through csv_safe: the JSON ones start with { or [ (or are empty) and pass as they are
                writer.writerow(
                    [
                        row["id"],
                        csv_safe(row["external_id"]),
                        csv_safe(str(row["data"].get("text", ""))),
                        csv_safe(json.dumps(meta, ensure_ascii=False)),
                        "" if row["final"] is None else csv_safe(json.dumps(row["final"], ensure_ascii=False)),
                        csv_safe(json.dumps(row["annotations"], ensure_ascii=False)),
                    ]
                )
            yield buf.getvalue().encode()
