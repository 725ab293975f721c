"""Hand-written SQL for the hot paths (auth, next, submit) on PostgreSQL.

The ORM spends about half a millisecond of CPU compiling each query; the labeling loop runs a
handful of them per annotation, so on PostgreSQL those few statements are written out here
(one round trip each, parameters bound by the driver). SQLite, the embedded default, keeps the
ORM code paths: it serializes writers anyway and is not where throughput matters.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cache
from typing import Any, TypeVar

from django.db import DEFAULT_DB_ALIAS, connection
from django.db import models as dj

M = TypeVar("M", bound=dj.Model)


def fast_path() -> bool:
    """True where the hand-written PostgreSQL statements are used."""
    return connection.vendor == "postgresql"


@cache
def _fields(model: type[dj.Model]) -> tuple[tuple[str, ...], tuple[str, ...], tuple[bool, ...]]:
    concrete = model._meta.concrete_fields
    return (
        tuple(f.attname for f in concrete),
        tuple(f.column for f in concrete),
        tuple(isinstance(f, dj.JSONField) for f in concrete),
    )


def columns(model: type[dj.Model], alias: str) -> str:
    """`alias."col", ...` for every concrete field, in the order load() expects."""
    return ", ".join(f'{alias}."{col}"' for col in _fields(model)[1])


def width(model: type[dj.Model]) -> int:
    return len(_fields(model)[0])


def load(model: type[M], values: Sequence[Any]) -> M:
    """A model instance from a row selected with columns() (JSON columns arrive as text)."""
    names, _, is_json = _fields(model)
    converted = [json.loads(v) if j and isinstance(v, str) else v for v, j in zip(values, is_json, strict=True)]
    return model.from_db(DEFAULT_DB_ALIAS, names, converted)


def fetchone(sql: str, params: Sequence[Any] | dict[str, Any]) -> tuple | None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()
