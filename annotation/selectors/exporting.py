"""Export rows, read in keyset batches so memory stays flat whatever the project size."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from annotation.models import Annotation, FinalLabel, Item, Project

EXPORT_FORMATS = ("jsonl", "csv")
CSV_COLUMNS = ["id", "external_id", "text", "data", "final", "annotations"]


def _iso(dt: datetime) -> str:
    return dt.isoformat().replace("+00:00", "Z")


def export_batches(*, project: Project, batch_size: int = 2000) -> Iterator[list[dict[str, Any]]]:
    """Every item of the project in id order, with its annotations (annotator = username) and final value."""
    last = 0
    while True:
        items = list(
            Item.objects.filter(project_id=project.pk, id__gt=last)
            .order_by("id")
            .values_list("id", "external_id", "data")[:batch_size]
        )
        if not items:
            return
        lo, hi = items[0][0], items[-1][0]
        annotations: dict[int, list[dict[str, Any]]] = {}
        for ann_id, item_id, username, value, created in (
            Annotation.objects.filter(item__project_id=project.pk, item_id__gte=lo, item_id__lte=hi)
            .order_by("item_id", "id")
            .values_list("id", "item_id", "annotator__username", "value", "created_at")
        ):
            annotations.setdefault(item_id, []).append(
                {"id": ann_id, "annotator": username, "value": value, "created_at": _iso(created)}
            )
        finals = dict(
            FinalLabel.objects.filter(item__project_id=project.pk, item_id__gte=lo, item_id__lte=hi).values_list(
                "item_id", "value"
            )
        )
        yield [
            {
                "id": item_id,
                "external_id": ext,
                "data": data,
                "annotations": annotations.get(item_id, []),
                "final": finals.get(item_id),
            }
            for item_id, ext, data in items
        ]
        last = hi


# a spreadsheet reads a cell starting with one of these as a formula (OWASP "CSV injection")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(cell: str) -> str:
    """A text cell as a spreadsheet will show it, never run it: a leading ' before a formula character (the
    apostrophe is what spreadsheets themselves use to mark text). JSON and JSONL exports keep the text as is."""
    return "'" + cell if cell.startswith(_FORMULA_START) else cell


def export_stream(*, project: Project, fmt: str) -> Iterator[bytes]:
    """The export as a stream of byte chunks (one per batch)."""
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(CSV_COLUMNS)
        yield buf.getvalue().encode()
    for rows in export_batches(project=project):
        if fmt == "jsonl":
            yield "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode()
        else:
            buf = io.StringIO()
            writer = csv.writer(buf)
            for row in rows:
                meta = {k: v for k, v in row["data"].items() if k != "text"}
                writer.writerow(
                    [
                        row["id"],
                        csv_safe(row["external_id"]),
                        csv_safe(str(row["data"].get("text", ""))),
                        json.dumps(meta, ensure_ascii=False),
                        "" if row["final"] is None else json.dumps(row["final"], ensure_ascii=False),
                        json.dumps(row["annotations"], ensure_ascii=False),
                    ]
                )
            yield buf.getvalue().encode()
