"""Importing items from JSON (a list), JSONL and CSV.

The web process only stores the upload (size and row limits -> 413) and queues a Job; the worker
stream-parses the file (memory flat in file size), validates every row, and inserts in batches
inside one transaction, so an import either lands whole or not at all. Re-importing the same
rows adds nothing: inserts are `ON CONFLICT (project, external_id) DO NOTHING`, and rows without
an external_id get one derived from their content.

A row may bring its item's final label along (`row_label`: `label`, `labels` or `spans`) or make it a gold item
(`row_gold`: `gold`); such a new item is inserted `approved` with its FinalLabel (source `imported` / `gold`) in
the same batch.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import json
import logging
import queue
import threading
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, transaction
from django.utils import timezone

from annotation.exceptions import InvalidInput, PayloadTooLarge
from annotation.models import FinalLabel, Item, Job, Project
from annotation.models.item import FinalLabelSource
from annotation.models.job import JobKind
from annotation.models.project import TaskType
from annotation.services.gold import gold_validate
from annotation.services.jobs import job_claim, job_fail, job_failure_text, job_progress, job_succeed
from annotation.services.values import value_validate
from annotation.storable import find_unstorable, string_problem
from modelsvc.services.prelabel import prelabel_start

logger = logging.getLogger(__name__)

FORMATS = ("json", "jsonl", "csv")
# formats taken only when asked for by name (?format=): a Label Studio export is a JSON list like ours
NAMED_FORMATS = ("labelstudio",)
ON_ERROR = ("reject", "skip")
CHUNK = 1 << 20
# a row's fields that are not metadata: the item's own, its gold value, and an existing final label (row_label)
LABEL_FIELDS = ("label", "labels", "spans")
RESERVED = {"external_id", "text", "gold", *LABEL_FIELDS}


class FatalImportError(Exception):
    """The file cannot be read on from here (bad JSON list syntax, missing CSV column...)."""

    def __init__(self, line: int, message: str, field: str | None = None):
        super().__init__(message)
        self.line, self.message, self.field = line, message, field


@dataclass
class RowError:
    line: int
    field: str | None
    message: str
    row: int | None = None  # 1-based position among the file's rows (a JSON list may sit on one line)

    def as_dict(self) -> dict[str, Any]:
        return {"line": self.line, "row": self.row, "field": self.field, "message": self.message}


# ------------------------------------------------------------------ web side: store + queue


def format_detect(*, filename: str | None, requested: str | None, head: bytes) -> str:
    """The import format from ?format=, the file name, or the first non-blank byte of a body."""
    if requested:
        fmt = requested.lower()
        if fmt == "ndjson":
            fmt = "jsonl"
        if fmt not in FORMATS + NAMED_FORMATS:
            raise InvalidInput(
                "Unknown format.", [{"field": "format", "message": "One of json, jsonl, csv, labelstudio."}]
            )
        return fmt
    if filename:
        ext = Path(filename).suffix.lower().lstrip(".")
        if ext == "ndjson":
            return "jsonl"
        if ext in FORMATS:
            return ext
        raise InvalidInput(
            "Unknown file type.",
            [{"field": "file", "message": f"'{Path(filename).suffix}': use .json, .jsonl or .csv."}],
        )
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if stripped.startswith(b"["):
        return "json"
    if stripped.startswith(b"{"):
        return "jsonl"
    raise InvalidInput("The body is not a JSON list of items.", [{"field": None, "message": "Expected a JSON list."}])


def import_store(*, chunks: Iterable[bytes], declared_size: int | None) -> tuple[Path, int, int, bytes]:
    """Stream an upload to the import directory. Returns (path, bytes, newline count, first bytes).

    Raises PayloadTooLarge past TANDEM_IMPORT_MAX_BYTES (checked against the declared size first,
    then while reading, so nothing over the limit is written).
    """
    limit = settings.TANDEM_IMPORT_MAX_BYTES
    if declared_size is not None and declared_size > limit:
        raise PayloadTooLarge(f"The upload is {declared_size} bytes; the limit is {limit} (TANDEM_IMPORT_MAX_BYTES).")
    directory = Path(settings.TANDEM_IMPORT_DIR)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{uuid.uuid4().hex}.upload"
    size = newlines = 0
    head = b""
    last = b""
    try:
        with open(path, "wb") as out:
            for chunk in chunks:
                if not chunk:
                    continue
                size += len(chunk)
                if size > limit:
                    raise PayloadTooLarge(f"The upload is over the limit of {limit} bytes (TANDEM_IMPORT_MAX_BYTES).")
                if len(head) < 4096:
                    head += chunk[: 4096 - len(head)]
                newlines += chunk.count(b"\n")
                last = chunk[-1:]
                out.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    if size and last != b"\n":
        newlines += 1  # a last line without its newline
    return path, size, newlines, head


def import_job_create(
    *,
    project: Project,
    user,
    chunks: Iterable[bytes],
    declared_size: int | None,
    filename: str | None,
    requested_format: str | None,
    on_error: str | None,
    text_field: str | None = None,
) -> Job:
    """Store the upload and create its queued import Job (size and row limits -> 413). `text_field`: the
    Label Studio import's `data` field that holds the text (None: `text`, else the only string field)."""
    policy = (on_error or "reject").lower()
    if policy not in ON_ERROR:
        raise InvalidInput("Unknown on_error policy.", [{"field": "on_error", "message": "One of reject, skip."}])
    if filename:
        format_detect(filename=filename, requested=requested_format, head=b"")  # reject .txt etc. before reading
    path, size, lines, head = import_store(chunks=chunks, declared_size=declared_size)
    try:
        if size == 0:
            raise InvalidInput("The upload is empty.", [{"field": "file", "message": "No rows."}])
        fmt = format_detect(filename=filename, requested=requested_format, head=head)
        max_rows = settings.TANDEM_IMPORT_MAX_ROWS
        # JSONL has one row per line; CSV at most one per line after its header. A JSON list is
        # counted by the worker, which fails the Job past the limit.
        rows_upper_bound = lines - 1 if fmt == "csv" else lines
        if fmt in ("jsonl", "csv") and rows_upper_bound > max_rows:
            raise PayloadTooLarge(
                f"The file has up to {rows_upper_bound} rows; the limit is {max_rows} (TANDEM_IMPORT_MAX_ROWS)."
            )
        return Job.objects.create(
            kind=JobKind.IMPORT,
            project=project,
            created_by=user,
            total=size,
            params={
                "path": str(path),
                "format": fmt,
                "on_error": policy,
                "filename": filename or "",
                "bytes": size,
                "text_field": text_field or "",
            },
        )
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def import_create(**kwargs: Any) -> Job:
    """Store the upload and queue its import Job on the worker (after commit)."""
    from annotation.tasks import import_items_task

    job = import_job_create(**kwargs)
    import_items_task.delay_on_commit(job.pk)
    return job


def import_file(*, project: Project, user, path: Path, on_error: str | None = None) -> Job:
    """Import a local file right here, without the worker (CLI, demo data, tests): an import Job,
    created and run to its end. The file itself is left in place (the Job works on a stored copy)."""
    job = import_job_create(
        project=project,
        user=user,
        chunks=file_chunks(path),
        declared_size=path.stat().st_size,
        filename=path.name,
        requested_format=None,
        on_error=on_error,
    )
    finished = import_run(job_id=job.pk)
    assert finished is not None  # a Job just created is queued, so import_run claims it
    return finished


def file_chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            yield chunk


# ------------------------------------------------------------------ parsing


def _decode_lines(f: BinaryIO) -> Iterator[tuple[int, str | None, str]]:
    """(line number, text or None when not UTF-8, error message) per physical line."""
    for n, raw in enumerate(f, 1):
        if n == 1 and raw.startswith(codecs.BOM_UTF8):
            raw = raw[3:]
        try:
            yield n, raw.decode("utf-8"), ""
        except UnicodeDecodeError as exc:
            yield n, None, f"invalid UTF-8 at byte {exc.start} of the line"


def _iter_jsonl(f: BinaryIO) -> Iterator[tuple[int, Any, str]]:
    for n, text, problem in _decode_lines(f):
        if text is None:
            yield n, None, problem
            continue
        if not text.strip():
            continue
        try:
            yield n, json.loads(text), ""
        except ValueError as exc:
            yield n, None, f"invalid JSON: {exc}"


def _iter_json_list(f: BinaryIO, max_row_bytes: int) -> Iterator[tuple[int, Any, str]]:
    """Elements of a top-level JSON list, read incrementally with their starting line numbers."""
    decoder = json.JSONDecoder()
    utf8 = codecs.getincrementaldecoder("utf-8")("strict")
    buf, pos, line, eof = "", 0, 1, False

    def more() -> bool:
        nonlocal buf, pos, eof
        if eof:
            return False
        raw = f.read(CHUNK)
        try:
            text = utf8.decode(raw, final=not raw)
        except UnicodeDecodeError as exc:
            raise FatalImportError(line + buf[pos:].count("\n"), f"invalid UTF-8: {exc.reason}") from exc
        if not raw:
            eof = True
        buf = buf[pos:] + text
        pos = 0
        return bool(raw) or bool(text)

    def skip_ws() -> bool:
        nonlocal pos, line
        while True:
            while pos < len(buf) and buf[pos] in " \t\r\n\ufeff":
                if buf[pos] == "\n":
                    line += 1
                pos += 1
            if pos < len(buf):
                return True
            if not more():
                return False

    if not skip_ws() or buf[pos] != "[":
        raise FatalImportError(line, "expected a JSON list ([...])")
    pos += 1
    first = True
    while True:
        if not skip_ws():
            raise FatalImportError(line, "invalid JSON: the list is not closed with ]")
        if buf[pos] == "]":
            pos += 1
            if skip_ws():
                raise FatalImportError(line, "invalid JSON: extra data after the list")
            return
        if not first:
            if buf[pos] != ",":
                raise FatalImportError(line, f"invalid JSON: expected ',' or ']' but found {buf[pos]!r}")
            pos += 1
            if not skip_ws():
                raise FatalImportError(line, "invalid JSON: the list is not closed with ]")
        first = False
        while True:
            try:
                value, end = decoder.raw_decode(buf, pos)
                if end == len(buf) and not eof and buf[pos] not in '{["':
                    # a bare number/literal could continue in the next chunk
                    raise ValueError("need more")
                break
            except ValueError as exc:
                if len(buf) - pos > max_row_bytes:
                    raise FatalImportError(line, f"a row is longer than {max_row_bytes} characters") from exc
                if not more():
                    raise FatalImportError(line, f"invalid JSON: {exc}") from exc
        start_line = line
        line += buf.count("\n", pos, end)
        pos = end
        yield start_line, value, ""


def _iter_csv(f: BinaryIO, max_field: int) -> Iterator[tuple[int, Any, str]]:
    bad_lines: dict[int, str] = {}

    def lines() -> Iterator[str]:
        for n, text, problem in _decode_lines(f):
            if text is None:
                bad_lines[n] = problem
                yield "\n"
            else:
                yield text

    csv.field_size_limit(max_field + 1)
    reader = csv.reader(lines(), strict=True)
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as exc:
        raise FatalImportError(1, f"invalid CSV header: {exc}") from exc
    if 1 in bad_lines:
        raise FatalImportError(1, f"the header has {bad_lines[1]}")
    header = [h.strip() for h in header]
    if "text" not in header:
        raise FatalImportError(1, "the CSV header has no 'text' column", field="text")
    dupes = {h for h in header if header.count(h) > 1}
    if dupes or "" in header:
        raise FatalImportError(1, f"the CSV header has empty or repeated column names: {sorted(dupes) or ['']}")
    prev_end = reader.line_num
    while True:
        start = prev_end + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            # a quoting error: report and resynchronise on the next physical line
            yield start, None, f"invalid CSV: {exc}"
            prev_end = reader.line_num
            continue
        end = prev_end = reader.line_num
        broken = [bad_lines.pop(n) for n in range(start, end + 1) if n in bad_lines]
        if broken:
            yield start, None, broken[0]
            continue
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        if len(row) != len(header):
            yield start, None, f"expected {len(header)} fields, found {len(row)}"
            continue
        yield start, dict(zip(header, row, strict=True)), ""


@dataclass
class Limits:
    text_chars: int = field(default_factory=lambda: settings.TANDEM_MAX_TEXT_CHARS)
    field_chars: int = field(default_factory=lambda: settings.TANDEM_MAX_FIELD_CHARS)


def row_validate(line: int, row: Any, limits: Limits) -> tuple[str, dict[str, Any]] | list[RowError]:
    """(external_id, data) for a good row, else every problem in it."""
    if not isinstance(row, dict):
        return [RowError(line, None, f"wrong type: expected an object, found {type(row).__name__}")]
    errors: list[RowError] = []
    text = row.get("text")
    if "text" not in row or text is None:
        errors.append(RowError(line, "text", "missing"))
    elif not isinstance(text, str):
        errors.append(RowError(line, "text", f"wrong type: expected a string, found {type(text).__name__}"))
    elif not text.strip():
        errors.append(RowError(line, "text", "empty"))
    elif len(text) > limits.text_chars:
        errors.append(RowError(line, "text", f"over-long: {len(text)} characters, the limit is {limits.text_chars}"))
    elif problem := string_problem(text):
        errors.append(RowError(line, "text", problem))

    ext = row.get("external_id")
    if ext is not None and ext != "":
        if isinstance(ext, bool) or not isinstance(ext, (str, int)):
            errors.append(RowError(line, "external_id", "wrong type: expected a string or an integer"))
        else:
            ext = str(ext)
            if len(ext) > 255:
                errors.append(RowError(line, "external_id", "over-long: at most 255 characters"))
            elif problem := string_problem(ext):
                errors.append(RowError(line, "external_id", problem))
    meta = {k: v for k, v in row.items() if k not in RESERVED}
    for key, value in meta.items():
        if len(key) > 200:
            errors.append(RowError(line, key[:50], "over-long field name"))
            continue
        found = find_unstorable({key: value})
        if found:
            errors.append(RowError(line, found[0], found[1]))
            continue
        size = len(value) if isinstance(value, str) else len(json.dumps(value))
        if size > limits.field_chars:
            errors.append(RowError(line, key, f"over-long: {size} characters, the limit is {limits.field_chars}"))
    if errors:
        return errors
    data = {"text": text, **meta}
    if ext is None or ext == "":
        digest = hashlib.sha256(json.dumps(data, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
        ext = f"sha256:{digest[:40]}"
    return str(ext), data


def row_gold(line: int, row: dict[str, Any], text: str, project: Project, fmt: str) -> Any:
    """The row's gold value in its canonical form (validated like an annotation value), None without one, or
    the RowErrors that say what is wrong with it (field `gold`, `gold.label`, ...).

    JSON and JSONL rows carry it as an annotation value (`"gold": {"label": "spam"}`); a CSV cell holds that
    value as JSON text, or, for single-label projects, just the label's name. An empty cell or a null is none."""
    gold = row.get("gold")
    if gold is None or (fmt == "csv" and not str(gold).strip()):
        return None
    if fmt == "csv":
        cell = str(gold).strip()
        if cell.startswith("{"):
            try:
                gold = json.loads(cell)
            except ValueError as exc:
                return [RowError(line, "gold", f"invalid JSON: {exc}")]
        elif project.task_type == TaskType.CLASSIFICATION:
            gold = {"label": cell}
        else:
            return [RowError(line, "gold", 'expected a JSON object, e.g. {"labels": ["a", "b"]}')]
    try:
        return gold_validate(project=project, text=text, value=gold)
    except InvalidInput as exc:
        return [RowError(line, e.get("field") or "gold", e["message"]) for e in exc.errors]


# the key of each task type's annotation value, and the field that may carry its plain form besides `label`
_VALUE_KEY: dict[str, str] = {TaskType.CLASSIFICATION: "label", TaskType.MULTILABEL: "labels", TaskType.SPANS: "spans"}
_PLAIN_SHAPE: dict[str, str] = {
    TaskType.CLASSIFICATION: "a label's name",
    TaskType.MULTILABEL: "a list of label names",
    TaskType.SPANS: "a list of {start, end, label}",
}


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def row_label(line: int, row: dict[str, Any], text: str, project: Project, fmt: str) -> Any:
    """The row's existing final label as a canonical annotation value, None without one, or the RowErrors that
    say what is wrong with it (field `label`, `labels`, `spans`, or below them: `spans[0].end`, `label.label`).

    One field per row. `label` holds the label in its plain form, the form snapshot rows carry: classification
    the name, multilabel a list of names, spans a list of `{start, end, label}`; multilabel rows may send that
    list as `labels`, span rows as `spans`. `label` also takes the annotation value object (`{"label": ...}`,
    `{"labels": [...]}`, `{"spans": [...]}`, as `gold` does); the JSON type tells the two apart (an object is
    never a plain form). In CSV the cell is that JSON as text; a classification cell may be just the name and a
    multilabel one names joined by `|`. Absent, null, an empty string or an empty cell: no label; `[]` is a label
    (multilabel: none of the labels apply; spans: no entity in the text). Checked by `value_validate`, the rule
    every annotation value goes through."""
    given = [name for name in LABEL_FIELDS if not _blank(row.get(name))]
    if not given:
        return None
    name = given[0]
    if len(given) > 1:
        return [RowError(line, given[1], f"send one of {', '.join(given)}: they are the same label")]
    if not _blank(row.get("gold")):
        return [RowError(line, name, "a gold item's value is its gold; send one of them")]
    task_type = project.task_type
    key = _VALUE_KEY[task_type]
    if name != "label" and name != key:
        return [
            RowError(
                line, name, f"this is a {task_type} project: send its label as `label` ({_PLAIN_SHAPE[task_type]})"
            )
        ]
    raw = row[name]
    if fmt == "csv":
        cell = str(raw).strip()
        if task_type == TaskType.CLASSIFICATION and (cell in project.label_names or not cell.startswith(("{", "["))):
            raw = cell  # a name, even one that looks like JSON
        elif cell.startswith(("{", "[")):
            try:
                raw = json.loads(cell)
            except ValueError as exc:
                return [RowError(line, name, f"invalid JSON: {exc}")]
        elif task_type == TaskType.MULTILABEL:
            raw = [part.strip() for part in cell.split("|")]
        else:
            return [RowError(line, name, 'expected a JSON list, e.g. [{"start": 0, "end": 3, "label": "PER"}]')]
    if isinstance(raw, dict):  # the value object: errors named like gold's (label.label, label.spans[0].end)
        try:
            return gold_validate(project=project, text=text, value=raw, field=name)
        except InvalidInput as exc:
            return [RowError(line, e.get("field") or name, e["message"]) for e in exc.errors]
    if not isinstance(raw, str if task_type == TaskType.CLASSIFICATION else list):
        return [RowError(line, name, f"wrong type: expected {_PLAIN_SHAPE[task_type]}, found {type(raw).__name__}")]
    try:
        return value_validate(task_type=task_type, label_names=project.label_names, value={key: raw}, text=text)
    except InvalidInput as exc:
        # the plain form is the value's inner name or list: value.label -> label, value.spans[0].end -> spans[0].end
        inner = f"value.{key}"
        return [RowError(line, _plain_field(name, inner, e.get("field")), e["message"]) for e in exc.errors]


def _plain_field(name: str, inner: str, where: str | None) -> str:
    return name + where[len(inner) :] if where and where.startswith(inner) else name


def rows_parse(f: BinaryIO, fmt: str, limits: Limits) -> Iterator[tuple[int, Any, str]]:
    """(line, row or None, problem) for every row of an open binary file."""
    if fmt == "jsonl":
        return _iter_jsonl(f)
    if fmt == "csv":
        return _iter_csv(f, max(limits.text_chars, limits.field_chars))
    return _iter_json_list(f, max_row_bytes=limits.text_chars * 2 + limits.field_chars * 20 + 65536)


# ------------------------------------------------------------------ worker side: insert


def _insert_batch(
    cursor, project_id: int, batch: dict[str, str], now, finals: dict[str, tuple[str, str]] | None = None
) -> tuple[int, int, int]:
    """INSERT ... ON CONFLICT DO NOTHING RETURNING; (new rows, new gold items, new labeled items).

    `finals`: external_id -> (FinalLabel source, value JSON) of the batch's rows that come with their final
    label: a gold value (source `gold`: a gold item) or an existing label (source `imported`). Such a new row is
    inserted `approved`, and all their FinalLabels in one more INSERT; an existing row is left alone, as every
    duplicate is."""
    table = Item._meta.db_table
    placeholder = "(%s, %s, %s, %s, 0, %s, 0, 0, %s)"
    values = ", ".join([placeholder] * len(batch))
    finals = finals or {}
    params: list[Any] = []
    for ext, data in batch.items():
        final = finals.get(ext)
        is_gold = final is not None and final[0] == FinalLabelSource.GOLD
        params.extend((project_id, ext, data, "open" if final is None else "approved", is_gold, now))
    sql = (
        f"INSERT INTO {table} (project_id, external_id, data, status, priority, is_gold, "  # noqa: S608 - no user input in the SQL text
        f"annotation_count, lease_count, created_at) VALUES {values} "
        "ON CONFLICT (project_id, external_id) DO NOTHING RETURNING id" + (", external_id" if finals else "")
    )
    cursor.execute(sql, params)
    rows = cursor.fetchall()
    new_finals = [(row[0], *finals[row[1]]) for row in rows if row[1] in finals] if finals else []
    if new_finals:
        table = FinalLabel._meta.db_table
        cursor.execute(
            f"INSERT INTO {table} (item_id, source, value, created_at, updated_at) VALUES "  # noqa: S608 - no user input in the SQL text
            + ", ".join(["(%s, %s, %s, %s, %s)"] * len(new_finals)),
            [p for item_id, source, value in new_finals for p in (item_id, source, value, now, now)],
        )
    gold = sum(1 for _, source, _ in new_finals if source == FinalLabelSource.GOLD)
    return len(rows), gold, len(new_finals) - gold


class _BatchWriter:
    """Inserts batches of rows into the current transaction.

    A second thread sends them over the same connection (so inside the same transaction) while this
    thread parses the next batch: psycopg2 releases the GIL while the
    server works, so parsing and inserting overlap. Always close() before the transaction ends.
    """

    def __init__(self, project_id: int, now) -> None:
        self.project_id, self.now = project_id, now
        self.created = self.sent = self.gold = self.labeled = 0
        self.error: BaseException | None = None
        connection.ensure_connection()
        self.raw = connection.connection
        self.queue: queue.Queue[tuple[dict[str, str], dict[str, tuple[str, str]]] | None] = queue.Queue(maxsize=2)
        self.thread = threading.Thread(target=self._run, name="import-writer", daemon=True)
        self.thread.start()

    def put(self, batch: dict[str, str], finals: dict[str, tuple[str, str]]) -> None:
        self.sent += len(batch)
        if self.error is not None:
            raise self.error
        self.queue.put((batch, finals))

    def _run(self) -> None:
        while (work := self.queue.get()) is not None:
            if self.error is not None:
                continue
            try:
                with self.raw.cursor() as cursor:
                    created, gold, labeled = _insert_batch(cursor, self.project_id, work[0], self.now, work[1])
                    self.created += created
                    self.gold += gold
                    self.labeled += labeled
            except BaseException as exc:  # handed to the parsing thread by put() / close()
                self.error = exc

    def close(self) -> None:
        """Wait for every batch; re-raise the first insert error."""
        if self.thread.is_alive():
            self.queue.put(None)
            self.thread.join()
        if self.error is not None:
            raise self.error


class _Rollback(Exception):
    pass


def _progress(job_id: int, done: int) -> None:
    """Publish the bytes read so far while the import's transaction is still open."""
    job_progress(job_id=job_id, progress=done, publish=True)


def import_run(*, job_id: int) -> Job | None:
    """Run an import Job: parse, validate, insert. Idempotent: a redelivered message re-runs a Job
    that was left `running` by a killed worker (its transaction rolled back) and ignores a finished one.
    A lost database connection propagates (the task retries); any other failure fails the Job."""
    job = job_claim(job_id=job_id, kind=JobKind.IMPORT, reclaim=True)
    if job is None:
        return None
    try:
        return _import(job)
    except (OperationalError, InterfaceError):
        raise
    except Exception as exc:
        logger.exception("import job %s failed", job.pk)
        return _finish(
            job,
            ok=False,
            error=job_failure_text(exc, doing="The import"),
            result=None,
            path=Path(job.params.get("path", "")) if job.params.get("path") else None,
        )


def _import(job: Job) -> Job:
    params = job.params
    if params.get("format") == "labelstudio":
        from annotation.datasets.labelstudio import ls_import

        return ls_import(job=job)
    path = Path(params["path"])
    if not path.exists():
        return _finish(job, ok=False, error="The uploaded file is gone (already processed or removed).", result=None)
    skip_bad = params.get("on_error") == "skip"
    limits = Limits()
    cap = settings.TANDEM_IMPORT_MAX_ERRORS
    max_rows = settings.TANDEM_IMPORT_MAX_ROWS
    batch_size = settings.TANDEM_IMPORT_BATCH_SIZE
    errors: list[RowError] = []
    error_count = rows = created = duplicates = gold = labeled = 0
    now = timezone.now()
    project = job.project

    def note(err: RowError) -> None:
        nonlocal error_count
        error_count += 1
        if len(errors) < cap:
            errors.append(err)

    fatal: FatalImportError | None = None
    try:
        with transaction.atomic(), open(path, "rb") as f:
            batch: dict[str, str] = {}
            # external_id -> (source, value JSON) of the batch's rows that bring their final label (gold or imported)
            finals: dict[str, tuple[str, str]] = {}
            writer = _BatchWriter(job.project_id, now)
            stream = rows_parse(f, params["format"], limits)
            try:
                for line, row, problem in stream:
                    rows += 1
                    if rows > max_rows:
                        raise FatalImportError(line, f"more than {max_rows} rows (TANDEM_IMPORT_MAX_ROWS)")
                    if problem:
                        note(RowError(line, None, problem, rows))
                        continue
                    checked = row_validate(line, row, limits)
                    if isinstance(checked, list):
                        for err in checked:
                            err.row = rows
                            note(err)
                        continue
                    text = checked[1]["text"]
                    gold_value = row_gold(line, row, text, project, params["format"])
                    label_value = row_label(line, row, text, project, params["format"])
                    bad = [e for v in (gold_value, label_value) if isinstance(v, list) for e in v]
                    if bad:
                        for err in bad:
                            err.row = rows
                            note(err)
                        continue
                    if error_count and not skip_bad:
                        continue  # the import is lost anyway: only collect the remaining errors
                    ext, data = checked
                    if ext in batch:
                        duplicates += 1
                        continue
                    batch[ext] = json.dumps(data, ensure_ascii=False)
                    if gold_value is not None:
                        finals[ext] = (FinalLabelSource.GOLD.value, json.dumps(gold_value, ensure_ascii=False))
                    elif label_value is not None:
                        finals[ext] = (FinalLabelSource.IMPORTED.value, json.dumps(label_value, ensure_ascii=False))
                    if len(batch) >= batch_size:
                        writer.put(batch, finals)
                        batch, finals = {}, {}
                        _progress(job.pk, f.tell())
                if batch and not (error_count and not skip_bad):
                    writer.put(batch, finals)
            except FatalImportError as exc:
                fatal = exc
            finally:
                writer.close()
            created, gold, labeled = writer.created, writer.gold, writer.labeled
            duplicates += writer.sent - writer.created
            if fatal is not None or (error_count and not skip_bad) or (rows == 0):
                raise _Rollback
    except _Rollback:
        if fatal is not None:
            note(RowError(fatal.line, fatal.field, fatal.message))
        if rows == 0 and not error_count:
            note(RowError(1, None, "the file has no rows"))
        result = {
            "created": 0,
            "duplicates": 0,
            "errors": [e.as_dict() for e in errors],
            "error_count": error_count,
            "rows": rows,
        }
        return _finish(
            job,
            ok=False,
            error=f"{error_count} bad row(s); nothing was imported (use on_error=skip to import the valid rows).",
            result=result,
            path=path,
        )
    result = {
        "created": created,
        "gold": gold,
        "labeled": labeled,
        "duplicates": duplicates,
        "errors": [e.as_dict() for e in errors],
        "error_count": error_count,
        "rows": rows,
    }
    job = _finish(job, ok=True, error="", result=result, path=path)
    if created and settings.TANDEM_PRELABEL_ON_IMPORT:
        prelabel_start(project=job.project, user=job.created_by)
    return job


def _finish(job: Job, *, ok: bool, error: str, result: dict | None, path: Path | None = None) -> Job:
    """End the Job (succeeded with `result`, or failed with `error`) and remove its upload."""
    if ok:
        job_succeed(job_id=job.pk, result=result or {})
    else:
        job_fail(job_id=job.pk, error=error, result=result)
    if path is not None:
        path.unlink(missing_ok=True)
    return Job.objects.select_related("project", "created_by").get(pk=job.pk)
