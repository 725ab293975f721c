"""Annotation values checked against the project's task type and labels.

classification `{"label": "sports"}`; multilabel `{"labels": ["a", "b"]}`;
spans `{"spans": [{"start": 0, "end": 5, "label": "PER"}]}` with character (code point) offsets into the text.
"""

from __future__ import annotations

from typing import Any, TypeGuard

from annotation.exceptions import InvalidInput
from annotation.models.project import TaskType

MAX_SPANS = 2000


def _int(v: Any) -> TypeGuard[int]:
    return isinstance(v, int) and not isinstance(v, bool)


def value_validate(*, task_type: str, label_names: list[str], value: Any, text: str) -> dict[str, Any]:
    """The value in its canonical form, or InvalidInput with every problem and where it is."""
    errors: list[dict[str, Any]] = []
    allowed = set(label_names)

    def err(field: str, message: str) -> None:
        errors.append({"field": field, "message": message})

    if not isinstance(value, dict):
        raise InvalidInput("The value must be a JSON object.", [{"field": "value", "message": "Expected an object."}])

    if task_type == TaskType.CLASSIFICATION:
        extra = set(value) - {"label"}
        if extra:
            err("value", f"Unknown keys: {', '.join(sorted(extra))}.")
        label = value.get("label")
        if not isinstance(label, str):
            err("value.label", "Required: one of the project's labels.")
        elif label not in allowed:
            err("value.label", f"'{label[:100]}' is not a label of this project.")
        result: dict[str, Any] = {"label": label}
    elif task_type == TaskType.MULTILABEL:
        extra = set(value) - {"labels"}
        if extra:
            err("value", f"Unknown keys: {', '.join(sorted(extra))}.")
        labels = value.get("labels")
        if not isinstance(labels, list):
            err("value.labels", "Required: a list of the project's labels (may be empty).")
            labels = []
        seen: set[str] = set()
        for i, label in enumerate(labels):
            if not isinstance(label, str):
                err(f"value.labels[{i}]", "Expected a label name.")
            elif label not in allowed:
                err(f"value.labels[{i}]", f"'{label[:100]}' is not a label of this project.")
            elif label in seen:
                err(f"value.labels[{i}]", f"'{label}' is given twice.")
            else:
                seen.add(label)
        order = {name: i for i, name in enumerate(label_names)}
        result = {"labels": sorted(seen, key=order.__getitem__)}
    elif task_type == TaskType.SPANS:
        extra = set(value) - {"spans"}
        if extra:
            err("value", f"Unknown keys: {', '.join(sorted(extra))}.")
        spans = value.get("spans")
        if not isinstance(spans, list):
            err("value.spans", "Required: a list of {start, end, label} (may be empty).")
            spans = []
        if len(spans) > MAX_SPANS:
            err("value.spans", f"At most {MAX_SPANS} spans.")
            spans = []
        clean: list[dict[str, Any]] = []
        for i, span in enumerate(spans):
            where = f"value.spans[{i}]"
            if not isinstance(span, dict):
                err(where, "Expected {start, end, label}.")
                continue
            extra = set(span) - {"start", "end", "label"}
            if extra:
                err(where, f"Unknown keys: {', '.join(sorted(extra))}.")
            start, end, label = span.get("start"), span.get("end"), span.get("label")
            ok = True
            if not _int(start) or start < 0:
                err(f"{where}.start", "A non-negative integer character offset.")
                ok = False
            if not _int(end) or end < 0:
                err(f"{where}.end", "A non-negative integer character offset.")
                ok = False
            if ok and _int(start) and _int(end) and end <= start:
                err(where, f"end ({end}) must be greater than start ({start}).")
                ok = False
            if ok and _int(end) and end > len(text):
                err(f"{where}.end", f"{end} is past the end of the text ({len(text)} characters).")
                ok = False
            if not isinstance(label, str) or label not in allowed:
                err(f"{where}.label", "One of the project's labels.")
                ok = False
            if ok:
                clean.append({"start": start, "end": end, "label": label})
        clean.sort(key=lambda s: (s["start"], s["end"], s["label"]))
        for i in range(1, len(clean)):
            if clean[i] == clean[i - 1]:
                err("value.spans", f"Span {clean[i]['start']}-{clean[i]['end']} {clean[i]['label']} is given twice.")
        result = {"spans": clean}
    else:  # pragma: no cover - task_type is a DB choice
        raise InvalidInput(f"Unknown task type {task_type}.")

    if errors:
        raise InvalidInput("The value does not fit this project's labels.", errors)
    return result
