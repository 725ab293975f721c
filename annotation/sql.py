"""Helpers for the hand-written statements of the hot paths (token auth, access checks, next, submit).

Compiling an ORM query costs more CPU than PostgreSQL spends answering these few statements, and the
labeling loop runs them for every annotation, so they are written out once each, as prepared statements;
these helpers select a model's columns and load a row back into a model instance.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cache
from typing import Any, TypeVar

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db import models as dj

M = TypeVar("M", bound=dj.Model)


@cache
def _fields(model: type[dj.Model]) -> tuple[tuple[str, ...], tuple[str, ...], tuple[bool, ...]]:
    concrete = model._meta.concrete_fields
    return (
        tuple(f.attname for f in concrete),
        tuple(str(f.column) for f in concrete),
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


_NAMED = re.compile(r"%\((\w+)\)s")


@cache
def _prepared_text(sql: str) -> tuple[str, tuple[str, ...]]:
    """The statement with %(name)s turned into $1, $2 ... and the parameter names in that order."""
    order: list[str] = []

    def number(match: re.Match[str]) -> str:
        if match.group(1) not in order:
            order.append(match.group(1))
        return f"${order.index(match.group(1)) + 1}"

    return _NAMED.sub(number, sql), tuple(order)


def fetchone_prepared(name: str, sql: str, params: dict[str, Any], *, prefix: str = "") -> tuple | None:
    """fetchone() through a server-side prepared statement, prepared once per connection.

    Planning the queue's statement costs the server more than running it (bench/README.md), so the hot
    statements are PREPAREd and then only EXECUTEd. Every parameter in `sql` carries an explicit cast,
    since PREPARE infers parameter types from context alone. Set
    TANDEM_PG_PREPARE=0 behind a pooler that does not keep sessions (PgBouncer in transaction mode).
    `prefix` is sent in the same round trip, e.g. "SET LOCAL ...;" (several statements sent at once
    run as one transaction).
    """
    with _prepared(name, sql, params, prefix=prefix, suffix="") as cursor:
        return cursor.fetchone()


def execute_prepared(name: str, sql: str, params: dict[str, Any], *, suffix: str) -> None:
    """Run a prepared statement as fetchone_prepared() does, followed by `suffix` in the same round trip
    (e.g. "; COMMIT"). The statement's rows are not read: psycopg2 keeps only the last statement's result.
    An error in the statement skips `suffix` (PostgreSQL runs no statement after a failed one in a query
    string) and is raised here."""
    with _prepared(name, sql, params, prefix="", suffix=suffix):
        pass


@contextmanager
def _prepared(name: str, sql: str, params: dict[str, Any], *, prefix: str, suffix: str) -> Iterator[Any]:
    db = connections[DEFAULT_DB_ALIAS]  # one thread-local lookup, not one per attribute via `connection`
    if not settings.TANDEM_PG_PREPARE:
        with db.cursor() as cursor:
            cursor.execute(prefix + sql + suffix, params)
            yield cursor
        return
    text, order = _prepared_text(sql)
    db.ensure_connection()
    raw = db.connection
    state = getattr(db, "_tandem_prepared", None)
    if state is None or state[0] is not raw:  # a new connection has no prepared statements yet
        state = (raw, set[str]())
        db._tandem_prepared = state  # type: ignore[attr-defined]
    with db.cursor() as cursor:
        if name not in state[1]:
            cursor.execute(f"PREPARE {name} AS {text}")
            state[1].add(name)
        cursor.execute(f"{prefix}EXECUTE {name}({', '.join(['%s'] * len(order))}){suffix}", [params[k] for k in order])
        yield cursor
