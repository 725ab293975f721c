"""The canonical row of a snapshot (docs/datasets.md): plain label forms, annotator pseudonyms, metadata columns and
the one serialisation of a row as a line of data.jsonl. Everything here is pure: the build (build.py) reads the
database and hands the values in, so that the same values always give the same bytes."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Sequence
from typing import Any

from annotation.models.project import TaskType

# the columns of a row besides the metadata ones, in order (the metadata columns go between text and label)
HEAD_COLUMNS = ("external_id", "text")
TAIL_COLUMNS = ("label", "label_source", "split", "annotations", "suggestion")
ROW_COLUMNS = frozenset(HEAD_COLUMNS + TAIL_COLUMNS)
SPLITS = ("train", "validation", "test")


def value_plain(task_type: str, value: Any, labels: Sequence[str] | None = None) -> Any:
    """An annotation, final-label or suggestion value in plain form: classification the label name, multilabel
    the list of names (in `labels`' order where given, else as stored: values_validate already stores them in
    the project's order), spans a list of {"start", "end", "label"} sorted by (start, end, label), other keys
    (scores) dropped. None (or a value of another shape) gives None."""
    if not isinstance(value, dict):
        return None
    if task_type == TaskType.CLASSIFICATION:
        label = value.get("label")
        return label if isinstance(label, str) else None
    if task_type == TaskType.MULTILABEL:
        names = value.get("labels")
        if not isinstance(names, list):
            return None
        names = [n for n in names if isinstance(n, str)]
        if labels is not None:
            order = {name: i for i, name in enumerate(labels)}
            names = sorted(names, key=lambda n: (order.get(n, len(order)), n))
        return names
    if task_type == TaskType.SPANS:
        spans = value.get("spans")
        if not isinstance(spans, list):
            return None
        plain = [
            {"start": s["start"], "end": s["end"], "label": s["label"]}
            for s in spans
            if isinstance(s, dict) and {"start", "end", "label"} <= s.keys()
        ]
        plain.sort(key=lambda s: (s["start"], s["end"], s["label"]))
        return plain
    return None


def stratum_names(task_type: str, plain: Any) -> list[str]:
    """The label names a plain value counts for in a label distribution: the label; each label of a multilabel
    value; the label of each span (one per span)."""
    if plain is None:
        return []
    if task_type == TaskType.CLASSIFICATION:
        return [plain]
    if task_type == TaskType.MULTILABEL:
        return list(plain)
    return [span["label"] for span in plain]


def pseudonym(*, secret: str, project_id: int, user_id: int) -> str:
    """A stable stand-in for an annotator's name: the same user in the same project always gets the same one, and
    it cannot be turned back into the user without the SECRET_KEY."""
    digest = hmac.new(secret.encode(), f"{project_id}:{user_id}".encode(), hashlib.sha256).hexdigest()
    return f"annotator-{digest[:8]}"


def meta_columns(fields: Sequence[str]) -> list[tuple[str, str]]:
    """(field, column) of each metadata field, sorted by column: a field named like a row column is written as
    `meta_<name>` (again prefixed while that is taken too, so that no two columns share a name)."""
    taken = set(ROW_COLUMNS) | {f for f in fields if f not in ROW_COLUMNS}
    out = []
    for field in fields:
        column = field
        if column in ROW_COLUMNS:
            column = f"meta_{field}"
            while column in taken:
                column = f"meta_{column}"
            taken.add(column)
        out.append((field, column))
    return sorted(out, key=lambda fc: fc[1])


def row_make(
    *,
    external_id: str,
    data: dict[str, Any],
    meta: Sequence[tuple[str, str]],
    label: Any,
    label_source: str | None,
    split: str,
    annotations: list[dict[str, Any]],
    suggestion: dict[str, Any] | None,
) -> dict[str, Any]:
    """The canonical row, keys in the spec's order (`meta` from meta_columns)."""
    text = data.get("text", "")
    row: dict[str, Any] = {"external_id": external_id, "text": text if isinstance(text, str) else str(text)}
    for field, column in meta:
        row[column] = data.get(field)
    row["label"] = label
    row["label_source"] = label_source
    row["split"] = split
    row["annotations"] = annotations
    row["suggestion"] = suggestion
    return row


def row_line(row: dict[str, Any]) -> bytes:
    """The one serialisation of a canonical row: compact JSON, UTF-8, one line."""
    return (json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")
