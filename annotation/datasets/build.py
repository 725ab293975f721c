"""Creating and building a snapshot (docs/datasets.md).

`snapshot_create` checks the definition and queues a SNAPSHOT Job; `snapshot_build` is that Job's work:

1. In one REPEATABLE READ transaction (so every statement sees the same data even while people keep labeling):
   pass 1 reads only (item id, external-id rank, stratum code, group code) of the matching items through a
   server-side cursor into numpy arrays, and one aggregate gives the metadata fields and their JSON types;
   split.py assigns the splits; pass 2 walks the ids in batches (items, final labels, counting annotations with
   their usernames, the suggestions recorded on annotations) and writes the canonical rows to data.jsonl.tmp
   while hashing them. Memory stays flat: a few integers per item plus one batch.
2. fsync, rename to data.jsonl; the counts, schema and sha256 saved on the Snapshot.
3. The dataset card (README.md) written, the snapshot `ready`: downloadable from here on.
4. The eager formats (TANDEM_SNAPSHOT_EAGER_FORMATS) written from data.jsonl by formats.format_ensure, each on
   its own (one that cannot be written is logged and named in the Job's result, never fails the snapshot); the
   Job succeeded with {"snapshot", "rows"}.

Any error fails both the snapshot and the Job (a database error is left to the task's retries first). The build
writes only its own directory, from scratch, so a retried or reclaimed build simply starts over.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
from array import array
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import Field
from django.utils import timezone

from annotation.datasets.filters import definition_normalize, filter_sql
from annotation.datasets.paths import CANONICAL_NAME, snapshot_dir
from annotation.datasets.rows import (
    SPLITS,
    meta_columns,
    pseudonym,
    row_line,
    row_make,
    stratum_names,
    value_plain,
)
from annotation.datasets.split import split_assign
from annotation.models import Job, Project, Snapshot, SnapshotStatus
from annotation.models.job import JobKind
from annotation.models.project import TaskType
from annotation.services.jobs import job_claim, job_error_text, job_fail, job_failure_text, job_progress, job_succeed

logger = logging.getLogger(__name__)

BUILD_LOCK = "build.lock"  # held by the one worker building a snapshot (fcntl.flock, like the formats' locks)
BATCH = 5000  # items per pass-2 batch: four queries each
FETCH = 20_000  # rows per round trip of the pass-1 cursor
# a nominal alpha over more distinct values than this says nothing (every span set its own category): null
ALPHA_MAX_VALUES = 100_000
# the krippendorff package builds units x values x values arrays: above this many cells the same nominal alpha is
# computed from sparse counts instead (alpha_nominal_sparse), so a 1M-row build stays within its memory
ALPHA_PACKAGE_MAX_CELLS = 2_000_000

# an item's stratum as text: its final label, or the sorted set of its labels or of its spans' labels as a JSON
# array (byte order: the same in every database), "" without a final label
_STRATUM = {
    TaskType.CLASSIFICATION: "COALESCE(fl.value->>'label', '')",
    TaskType.MULTILABEL: (
        'COALESCE((SELECT json_agg(DISTINCT x COLLATE "C" ORDER BY x COLLATE "C")::text FROM '
        "jsonb_array_elements_text(CASE WHEN jsonb_typeof(fl.value->'labels') = 'array' THEN fl.value->'labels' END)"
        " x), '')"
    ),
    TaskType.SPANS: (
        "COALESCE((SELECT json_agg(DISTINCT (s->>'label') COLLATE \"C\" ORDER BY (s->>'label') COLLATE \"C\")::text "
        "FROM jsonb_array_elements(CASE WHEN jsonb_typeof(fl.value->'spans') = 'array' THEN fl.value->'spans' END) s),"
        " '')"
    ),
}
_FROM = "FROM annotation_item i LEFT JOIN annotation_finallabel fl ON fl.item_id = i.id"


# ---------------------------------------------------------------- create


@transaction.atomic
def snapshot_create(*, project: Project, user: Any, body: Any, queue: bool = True) -> tuple[Snapshot, Job]:
    """Check the definition (400 with the field of each problem), create the SNAPSHOT Job and the Snapshot
    (`building`), and queue the build once the transaction commits (`queue=False`: the caller builds it itself,
    with snapshot_build, as the command line does)."""
    from annotation.tasks import snapshot_build_task

    definition = definition_normalize(project=project, body=body)
    job = Job.objects.create(
        kind=JobKind.SNAPSHOT,
        project=project,
        created_by=user,
        # the annotators filter's user ids: the Snapshot stores names (or pseudonyms), the build needs the ids
        params={"annotator_ids": definition["annotator_ids"]},
    )
    snapshot = Snapshot.objects.create(
        project=project,
        name=definition["name"],
        job=job,
        filters=definition["filters"],
        split=definition["split"],
        pseudonymize=definition["pseudonymize"],
        created_by=user,
    )
    job.params = {"snapshot": snapshot.pk, **job.params}
    job.save(update_fields=["params"])
    if queue:
        snapshot_build_task.delay_on_commit(job.pk)
    return snapshot, job


# ---------------------------------------------------------------- fail


def snapshot_job_fail(*, job_id: int, error: str) -> None:
    """Fail the Job and its snapshot (if still building) with `error`: the build raised, or its task died for good
    (modelsvc.tasks.JobTask calls this)."""
    job_fail(job_id=job_id, error=error)
    Snapshot.objects.filter(job_id=job_id, status=SnapshotStatus.BUILDING).update(
        status=SnapshotStatus.FAILED, error=job_error_text(error), finished_at=timezone.now()
    )


# ---------------------------------------------------------------- build


def snapshot_build(*, job_id: int) -> Snapshot | None:
    """A SNAPSHOT Job's work (the Celery task's, or the command line's synchronously): build its snapshot as the
    module says. None when there is nothing to do: the Job was not claimable (it ended), or another worker holds
    this snapshot's build lock (a message redelivered while its first delivery still builds).

    Idempotent: a Job left running by a lost worker is reclaimed and its snapshot rebuilt from scratch; a snapshot
    already `ready` (its worker died before ending the Job) only has its Job succeed."""
    job = job_claim(job_id=job_id, kind=JobKind.SNAPSHOT, reclaim=True)
    if job is None:
        return None
    snapshot_id = (job.params or {}).get("snapshot")
    snapshot = Snapshot.objects.select_related("project").filter(pk=int(snapshot_id or 0)).first()
    if snapshot is None:
        job_fail(job_id=job_id, error="The snapshot was deleted before it was built.")
        return None
    if snapshot.status == SnapshotStatus.READY:
        job_succeed(job_id=job_id, result={"snapshot": snapshot.pk, "rows": snapshot.rows})
        return snapshot
    try:
        folder = snapshot_dir(snapshot)
        folder.mkdir(parents=True, exist_ok=True)
        with (folder / BUILD_LOCK).open("a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released when the file closes
            except BlockingIOError:
                logger.info("snapshot %s: another worker is building it (job %s)", snapshot.pk, job_id)
                return None
            # a delivery that read `building` before another one finished and let go of the lock: a built
            # snapshot never changes, so look again now that the lock is ours
            snapshot.refresh_from_db()
            if snapshot.status != SnapshotStatus.BUILDING:
                if snapshot.status == SnapshotStatus.READY:
                    job_succeed(job_id=job_id, result={"snapshot": snapshot.pk, "rows": snapshot.rows})
                else:
                    job_fail(job_id=job_id, error=snapshot.error or "The snapshot's build failed.")
                return snapshot
            _build(snapshot=snapshot, job=job)
    except (OperationalError, InterfaceError):
        raise  # the task retries; after its retries JobTask fails both through snapshot_job_fail
    except Exception as exc:
        logger.exception("snapshot job %s failed", job_id)
        snapshot_job_fail(job_id=job_id, error=job_failure_text(exc, doing="Building the snapshot"))
    snapshot.refresh_from_db()
    return snapshot


def _build(*, snapshot: Snapshot, job: Job) -> None:
    """Under the snapshot's build lock: its files written from scratch, then its fields, then ready."""
    folder = snapshot_dir(snapshot)
    for leftover in folder.iterdir():  # an earlier attempt's files: start from scratch (locks stay, see formats)
        if leftover.is_file() and not leftover.name.endswith(".lock"):
            leftover.unlink()
    Snapshot.objects.filter(pk=snapshot.pk).update(formats={}, sha256="", error="")
    snapshot.formats = {}

    outer = connection.in_atomic_block  # the tests' transaction: its isolation level is already set
    with transaction.atomic():
        with connection.cursor() as cursor:
            if not outer:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            # PostgreSQL's JIT compiles each batch's statement anew (its cost estimate is high, its rows few): it
            # took longer than running the statement
            cursor.execute("SET LOCAL jit = off")
            cursor.execute("SET LOCAL work_mem = '64MB'")  # pass 1's sorts of narrow keys stay in memory
        stats = _write_canonical(snapshot=snapshot, job=job)
    # the final count on this connection too (the published ones may not reach a Job this process cannot see yet)
    job_progress(job_id=job.pk, progress=stats["rows"], total=stats["rows"])

    for name, value in stats.items():
        setattr(snapshot, name, value)
    snapshot.save(
        update_fields=["rows", "splits", "label_distribution", "agreement", "model_version", "sha256", "schema"]
    )
    from annotation.datasets.formats import CARD, format_applicable, format_ensure

    format_ensure(snapshot, "jsonl")  # records {"bytes": size, "sha256"} of the canonical file
    # the card is written once, here, and every format that carries it copies this file (formats.card_text):
    # a later change of the project's name, guidelines or license never makes two formats' cards differ
    format_ensure(snapshot, CARD)
    finished = timezone.now()
    Snapshot.objects.filter(pk=snapshot.pk, status=SnapshotStatus.BUILDING).update(
        status=SnapshotStatus.READY, finished_at=finished
    )
    snapshot.status, snapshot.finished_at = SnapshotStatus.READY, finished
    # ready (downloadable) from here: the other formats are conveniences written from data.jsonl, each on its
    # own; one that cannot be written (say CoNLL over overlapping spans) is logged and left to its download,
    # which answers with the reason, and never fails the snapshot
    failed: dict[str, str] = {}
    for fmt in settings.TANDEM_SNAPSHOT_EAGER_FORMATS:
        if fmt in ("jsonl", CARD) or not format_applicable(snapshot, fmt):
            continue
        try:
            format_ensure(snapshot, fmt)
        except (OperationalError, InterfaceError):
            raise
        except Exception as exc:
            logger.warning("snapshot %s: format %s not written: %s", snapshot.pk, fmt, exc)
            failed[fmt] = str(getattr(exc, "detail", exc))
    result: dict[str, Any] = {"snapshot": snapshot.pk, "rows": stats["rows"]}
    if failed:
        result["formats_not_written"] = failed
    job_succeed(job_id=job.pk, result=result)


def _pass_one(
    *, snapshot: Snapshot, condition: str, params: dict[str, Any]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """(ids ascending, external-id rank, stratum code, group code or None) of the matching items."""
    project = snapshot.project
    group_by = snapshot.split.get("group_by")
    stratum = _STRATUM[TaskType(project.task_type)]
    group = "NULLIF(i.data -> %(group_by)s, 'null'::jsonb)" if group_by else "NULL::jsonb"
    # the keys first, narrow, so that the three sorts of the window functions sort a few bytes per item, not the
    # items' data
    sql = f"""
        WITH m AS MATERIALIZED (
            SELECT i.id, i.external_id::text COLLATE "C" AS ext, ({stratum})::text COLLATE "C" AS st, {group} AS g
            {_FROM} WHERE {condition}
        )
        SELECT id, row_number() OVER (ORDER BY ext), dense_rank() OVER (ORDER BY st),
               CASE WHEN g IS NULL THEN -1 ELSE dense_rank() OVER (ORDER BY g) END
        FROM m ORDER BY id
    """  # noqa: S608 - only the fixed expressions above and the condition's own text are formatted in
    ids, order, strata, groups = array("q"), array("q"), array("q"), array("q")
    with connection.chunked_cursor() as cursor:
        cursor.execute(sql, {**params, "group_by": group_by})
        while batch := cursor.fetchmany(FETCH):
            for item_id, rank, code, group_code in batch:
                ids.append(item_id)
                order.append(rank)
                strata.append(code)
                groups.append(group_code)
    as_np = [
        np.frombuffer(a, dtype=np.int64) if len(a) else np.zeros(0, dtype=np.int64)
        for a in (ids, order, strata, groups)
    ]
    return as_np[0], as_np[1], as_np[2], (as_np[3] if group_by else None)


def _meta_schema(*, condition: str, params: dict[str, Any]) -> list[dict[str, str]]:
    """[{"field", "column", "type"}] of the metadata fields of the matching items (docs/datasets.md: types)."""
    sql = (
        "SELECT e.key, CASE jsonb_typeof(e.value) WHEN 'number' THEN "
        "CASE WHEN e.value::text !~ '^-?[0-9]+$' THEN 'float' "
        "WHEN e.value::text::numeric BETWEEN -9223372036854775808 AND 9223372036854775807 THEN 'int' "
        "ELSE 'bigint' END ELSE jsonb_typeof(e.value) END "
        f"{_FROM} CROSS JOIN LATERAL jsonb_each(CASE WHEN jsonb_typeof(i.data) = 'object' THEN i.data END) e "
        f"WHERE {condition} AND e.key <> 'text' GROUP BY 1, 2"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        found = cursor.fetchall()
    types: dict[str, set[str]] = {}
    for field, kind in found:
        types.setdefault(field, set())
        if kind != "null":
            types[field].add(kind)
    out = []
    for field, column in meta_columns(sorted(types)):
        kinds = types[field]
        if kinds <= {"string"}:
            kind = "string"  # all null too: a column of nulls
        elif kinds == {"boolean"}:
            kind = "bool"
        elif kinds == {"int"}:
            kind = "int64"
        elif kinds <= {"int", "float"}:
            kind = "float64"
        else:
            kind = "json"
        out.append({"field": field, "column": column, "type": kind})
    return out


def _suggestion(task_type: str, labels: list[str], raw: Any, version_names: dict[int, str]) -> dict[str, Any] | None:
    """A recorded suggestion or an item's prediction, in the row's form: {"model_version": str, "value": plain,
    "confidence"}. A classification prediction without a confidence takes its label's probability (as the
    lease's suggestion does, services/queue.py)."""
    if not isinstance(raw, dict) or not isinstance(raw.get("value"), dict):
        return None
    value = raw["value"]
    version = raw.get("model_version")
    if isinstance(version, int) and not isinstance(version, bool) and version in version_names:
        name = version_names[version]
    else:
        name = "" if version is None else str(version)
    confidence = raw.get("confidence")
    if confidence is None and task_type == TaskType.CLASSIFICATION and isinstance(raw.get("probabilities"), dict):
        confidence = raw["probabilities"].get(value.get("label"))
    return {
        "model_version": name,
        "value": value_plain(task_type, value, labels),
        "confidence": float(confidence)
        if isinstance(confidence, int | float) and not isinstance(confidence, bool)
        else None,
    }


def alpha_nominal_sparse(*, unit: np.ndarray, code: np.ndarray, n_values: int) -> float | None:
    """Krippendorff's nominal alpha from one (unit, value code) pair per rating, every unit rated at least twice,
    without the units x values x values arrays of the `krippendorff` package (which gives the same number:
    tests/datasets/test_build.py compares). alpha = 1 - (n - 1) * D / (n^2 - sum_v n_v^2) with D the off-diagonal
    sum of the coincidence matrix, sum_u (m_u^2 - sum_v n_uv^2) / (m_u - 1), and n_v the value totals. Like
    agreement.alpha_from_counts: 1.0 where one value only was given, None without ratings."""
    if not len(unit):
        return None
    pair, n_uv = np.unique(unit * n_values + code, return_counts=True)
    m_u = np.bincount(unit).astype(np.float64)
    pair_unit = pair // n_values
    squares = np.bincount(pair_unit, weights=n_uv.astype(np.float64) ** 2, minlength=len(m_u))
    rated = m_u >= 2
    disagreement = float(((m_u[rated] ** 2 - squares[rated]) / (m_u[rated] - 1)).sum())
    n_v = np.bincount(code, minlength=n_values).astype(np.float64)
    n = n_v.sum()
    expected = n * n - float((n_v**2).sum())
    if expected == 0:
        return 1.0
    return float(1 - (n - 1) * disagreement / expected)


class _Stats:
    """Counts and agreement of the rows written, gathered one row at a time."""

    def __init__(self, task_type: str, labels: list[str]):
        self.task_type = task_type
        self.labels = labels
        self.splits = dict.fromkeys(SPLITS, 0)
        self.per_split: dict[str, Counter[str]] = {s: Counter() for s in SPLITS}
        self.items_pairable = 0
        self.share_sum = 0.0
        self.share_n = 0
        self.categories: dict[str, int] = {}
        # per counting annotation of a row with 2 or more: its unit (row) and value codes (int32: 4 bytes each)
        self.unit = array("i")
        self.code = array("i")
        self.alpha_undefined = False

    def add(self, *, split: str, label: Any, values: list[Any]) -> None:
        self.splits[split] += 1
        self.per_split[split].update(stratum_names(self.task_type, label))
        if values and label is not None:
            self.share_sum += sum(v == label for v in values) / len(values)
            self.share_n += 1
        if len(values) < 2:
            return
        unit = self.items_pairable
        self.items_pairable += 1
        if self.alpha_undefined:
            return
        for value in values:
            key = json.dumps(value, sort_keys=True, ensure_ascii=False)
            code = self.categories.setdefault(key, len(self.categories))
            self.unit.append(unit)
            self.code.append(code)
        if len(self.categories) > ALPHA_MAX_VALUES:
            self.alpha_undefined = True
            self.unit, self.code = array("i"), array("i")

    def _ordered(self, counts: Counter[str]) -> dict[str, int]:
        out = {name: counts.get(name, 0) for name in self.labels}
        out.update({name: n for name, n in sorted(counts.items()) if name not in out})
        return out

    def _alpha(self) -> float | None:
        n_units, n_values = self.items_pairable, len(self.categories)
        if self.alpha_undefined or n_units < 2:
            return None
        unit = np.frombuffer(self.unit, dtype=np.int32).astype(np.int64)
        code = np.frombuffer(self.code, dtype=np.int32).astype(np.int64)
        if n_units * n_values * n_values > ALPHA_PACKAGE_MAX_CELLS:
            return alpha_nominal_sparse(unit=unit, code=code, n_values=n_values)
        from annotation.quality.agreement import alpha_from_counts

        counts = np.bincount(unit * n_values + code, minlength=n_units * n_values).reshape(n_units, n_values)
        return alpha_from_counts(counts)

    def result(self) -> dict[str, Any]:
        total: Counter[str] = Counter()
        for counts in self.per_split.values():
            total.update(counts)
        return {
            "rows": sum(self.splits.values()),
            "splits": dict(self.splits),
            "label_distribution": self._ordered(total),
            "per_split": {s: self._ordered(c) for s, c in self.per_split.items()},
            "agreement": {
                "items": self.items_pairable,
                "mean_item_agreement": (self.share_sum / self.share_n) if self.share_n else None,
                "krippendorff_alpha": self._alpha(),
            },
        }


def _write_canonical(*, snapshot: Snapshot, job: Job) -> dict[str, Any]:
    """Passes 1 and 2 (inside the caller's REPEATABLE READ transaction): data.jsonl written and fsynced; the
    Snapshot's counts, schema and sha256 returned."""
    from modelsvc.models import ModelVersion

    project = snapshot.project
    task_type = project.task_type
    labels = project.label_names
    annotator_ids = [int(pk) for pk in (job.params or {}).get("annotator_ids", [])]
    condition, params = filter_sql(project=project, filters=snapshot.filters, annotator_ids=annotator_ids)

    ids, order, strata, groups = _pass_one(snapshot=snapshot, condition=condition, params=params)
    meta = _meta_schema(condition=condition, params=params)
    split = snapshot.split
    assigned = split_assign(
        order=order,
        strata=strata,
        groups=groups,
        ratios=(split["train"], split["validation"], split["test"]),
        seed=int(split["seed"]),
        stratify=bool(split.get("stratify", True)),
    )
    del order, strata, groups
    total = len(ids)
    _progress(job.pk, 0, total)

    versions = ModelVersion.objects.filter(project=project)
    version_names = dict(versions.exclude(name="").values_list("version", "name"))
    active = versions.filter(status="active").values_list("version", flat=True).first()
    names: dict[int, str] = {}
    meta_fields = [(m["field"], m["column"]) for m in meta]
    stats = _Stats(task_type, labels)
    digest = hashlib.sha256()
    folder = snapshot_dir(snapshot)
    tmp = folder / f"{CANONICAL_NAME}.tmp"
    starts = range(0, total, BATCH)
    # pass 2 in a pipeline: a second thread sends the next batch's statement over this same connection (so in the
    # same REPEATABLE READ transaction; psycopg2 lets go of the GIL while it waits) while this thread encodes the
    # batch before it. PostgreSQL and Python then work at the same time instead of taking turns.
    connection.ensure_connection()
    raw = connection.connection
    sql = _batch_sql()

    def fetch(start: int) -> list[tuple[Any, ...]]:
        with raw.cursor() as cursor:
            cursor.execute(sql, {"ids": ids[start : start + BATCH].tolist()})
            return cursor.fetchall()

    with tmp.open("wb") as out, ThreadPoolExecutor(max_workers=1, thread_name_prefix="snapshot-fetch") as pool:
        ahead = pool.submit(fetch, 0) if total else None
        for start in starts:
            assert ahead is not None
            found = ahead.result()
            ahead = pool.submit(fetch, start + BATCH) if start + BATCH < total else None
            batch = ids[start : start + BATCH].tolist()
            chunk = b"".join(
                _rows(
                    found=found,
                    batch=batch,
                    splits=assigned[start : start + BATCH].tolist(),
                    snapshot=snapshot,
                    labels=labels,
                    meta=meta_fields,
                    version_names=version_names,
                    names=names,
                    stats=stats,
                )
            )
            out.write(chunk)
            digest.update(chunk)
            _progress(job.pk, min(start + BATCH, total), total)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, folder / CANONICAL_NAME)
    _fsync_dir(folder)

    result = stats.result()
    return {
        "rows": result["rows"],
        "splits": result["splits"],
        "label_distribution": result["label_distribution"],
        "agreement": result["agreement"],
        "model_version": active,
        "sha256": digest.hexdigest(),
        "schema": {"task_type": task_type, "labels": labels, "meta": meta, "per_split": result["per_split"]},
    }


# One statement per batch: each item with its final label, its counting annotations (annotator id and name, value;
# by annotation id) and the earliest suggestion recorded on any of its annotations. JSON comes back as text and is
# decoded here (json.loads), once per column.
_BATCH_SQL = """
SELECT i.id, i.external_id, i.data::text, i.prediction::text, fl.value::text, fl.source,
  (SELECT json_agg(json_build_array(a.annotator_id, u.{username}, a.value) ORDER BY a.id)::text
     FROM annotation_annotation a JOIN {users} u ON u.id = a.annotator_id
    WHERE a.item_id = i.id AND a.counts),
  (SELECT a.suggestion::text FROM annotation_annotation a
    WHERE a.item_id = i.id AND a.suggestion IS NOT NULL AND jsonb_typeof(a.suggestion) = 'object'
    ORDER BY a.id LIMIT 1)
FROM annotation_item i LEFT JOIN annotation_finallabel fl ON fl.item_id = i.id
WHERE i.id = ANY(%(ids)s::bigint[])
ORDER BY i.id
"""


def _batch_sql() -> str:
    from django.contrib.auth import get_user_model

    user = get_user_model()
    username = user._meta.get_field(user.USERNAME_FIELD)
    assert isinstance(username, Field)
    return _BATCH_SQL.format(
        users=connection.ops.quote_name(user._meta.db_table), username=connection.ops.quote_name(str(username.column))
    )


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _rows(
    *,
    found: list[tuple[Any, ...]],
    batch: list[int],
    splits: list[int],
    snapshot: Snapshot,
    labels: list[str],
    meta: list[tuple[str, str]],
    version_names: dict[int, str],
    names: dict[int, str],
    stats: _Stats,
) -> list[bytes]:
    """The canonical lines of one batch of item ids (ascending), from `found`, what _BATCH_SQL answered for them.
    `names`: user id -> the name a row shows (a pseudonym where the snapshot hides names), filled in as annotators
    turn up."""
    project_id = snapshot.project_id
    task_type = snapshot.project.task_type
    secret = settings.SECRET_KEY
    if [r[0] for r in found] != batch:  # the transaction's snapshot makes this impossible; say so if it is not
        raise RuntimeError("The items changed while the snapshot was built.")
    lines = []
    for (_, external_id, data, prediction, final, source, own, recorded), split_code in zip(found, splits, strict=True):
        data = _loads(data)
        label = value_plain(task_type, _loads(final), labels) if final is not None else None
        annotations = []
        values = []
        for user_id, username, value in _loads(own) or []:
            plain = value_plain(task_type, value, labels)
            values.append(plain)
            name = names.get(user_id)
            if name is None:
                name = (
                    pseudonym(secret=secret, project_id=project_id, user_id=user_id)
                    if snapshot.pseudonymize
                    else username
                )
                names[user_id] = name
            annotations.append({"annotator": name, "value": plain})
        suggestion = _suggestion(task_type, labels, _loads(recorded), version_names)
        if suggestion is None:
            suggestion = _suggestion(task_type, labels, _loads(prediction), version_names)
        split = SPLITS[split_code]
        row = row_make(
            external_id=external_id,
            data=data if isinstance(data, dict) else {},
            meta=meta,
            label=label,
            label_source=source,
            split=split,
            annotations=annotations,
            suggestion=suggestion,
        )
        stats.add(split=split, label=label, values=values)
        lines.append(row_line(row))
    return lines


def _progress(job_id: int, done: int, total: int) -> None:
    """Rows written so far, published on the "jobs" connection: pollers see it during the build's transaction."""
    job_progress(job_id=job_id, progress=done, total=total, publish=True)


def _fsync_dir(folder: Any) -> None:
    """The rename itself made durable (POSIX: fsync the directory)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
