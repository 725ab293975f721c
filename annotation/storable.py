"""Values JSON can carry but PostgreSQL cannot store: NUL characters, unpaired surrogates, NaN/Infinity."""

from __future__ import annotations

import math
from typing import Any

from rest_framework import parsers
from rest_framework.exceptions import ValidationError


def string_problem(s: str) -> str | None:
    if "\x00" in s:
        return "contains a NUL character"
    if not s.isascii():
        try:
            s.encode("utf-8")
        except UnicodeEncodeError:
            return "contains an unpaired surrogate (not valid Unicode)"
    return None


def find_unstorable(value: Any, path: str = "") -> tuple[str, str] | None:
    """(path, reason) of the first value that cannot be stored, or None."""
    if isinstance(value, str):
        problem = string_problem(value)
        return (path, problem) if problem else None
    if isinstance(value, float):
        return None if math.isfinite(value) else (path, "is not a finite number")
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            problem = string_problem(key) if isinstance(key, str) else None
            if problem:
                return (where, f"field name {problem}")
            found = find_unstorable(item, where)
            if found:
                return found
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found = find_unstorable(item, f"{path}[{i}]")
            if found:
                return found
    return None


class JSONParser(parsers.JSONParser):
    """DRF's strict JSON parser, plus a 400 naming the field for values PostgreSQL cannot store."""

    def parse(self, stream, media_type=None, parser_context=None):
        data = super().parse(stream, media_type, parser_context)
        found = find_unstorable(data)
        if found:
            path, reason = found
            raise ValidationError({path or "body": [f"The value {reason}."]})
        return data
