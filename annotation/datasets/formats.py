"""A snapshot's download formats: each written once from the canonical data.jsonl into the snapshot's folder
under TANDEM_SNAPSHOT_DIR, on first download or eagerly by the build, and recorded in Snapshot.formats with its
size and sha256 (the download's ETag).

Two workers or web replicas never write one format twice: the writer holds an exclusive flock on
`<file>.lock` in the snapshot's folder (shared storage, like TANDEM_IMPORT_DIR), looks again, writes to
`<file>.tmp`, fsyncs and renames it into place. A file in place is complete.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from contextlib import suppress
from pathlib import Path
from typing import Any

from django.db import connection
from django.utils.text import slugify

from annotation.datasets.paths import rows_read, snapshot_dir
from annotation.exceptions import ApplicationError, Conflict, InvalidInput
from annotation.models import Snapshot
from annotation.models.project import TaskType

FORMATS = ("jsonl", "csv", "parquet", "hf", "conll", "labelstudio")
CARD = "card"  # README.md: served by ?format=card, not a dataset format
FILES = {
    "jsonl": "data.jsonl",
    "csv": "data.csv",
    "parquet": "data.parquet",
    "hf": "hf.tar",
    "conll": "data.conll",
    "labelstudio": "labelstudio.json",
    CARD: "README.md",
}
CONTENT_TYPES = {
    "jsonl": "application/x-ndjson",
    "csv": "text/csv; charset=utf-8",
    "parquet": "application/vnd.apache.parquet",
    "hf": "application/x-tar",
    "conll": "text/plain; charset=utf-8",
    "labelstudio": "application/json",
    CARD: "text/markdown; charset=utf-8",
}
EXTENSIONS = {
    "jsonl": "jsonl",
    "csv": "csv",
    "parquet": "parquet",
    "hf": "tar",
    "conll": "conll",
    "labelstudio": "json",
    CARD: "md",
}


def download_slug(snapshot: Snapshot) -> str:
    """`<project-slug>-<snapshot-id>-<name-slug>`: the download's file name without extension."""
    project = slugify(snapshot.project.name) or "project"
    name = slugify(snapshot.name) or "snapshot"
    return f"{project}-{snapshot.pk}-{name}"


def _task_type(snapshot: Snapshot) -> str:
    return (snapshot.schema or {}).get("task_type") or snapshot.project.task_type


def format_applicable(snapshot: Snapshot, fmt: str) -> bool:
    """Whether the format exists for this snapshot (conll: span projects only). Overlapping spans are found only
    while writing conll (format_ensure raises)."""
    if fmt == "conll":
        return _task_type(snapshot) == TaskType.SPANS
    return fmt in FORMATS or fmt == CARD


def format_check(snapshot: Snapshot, fmt: str) -> None:
    """InvalidInput (field \"format\") unless `fmt` is a format (or `card`) that applies to the snapshot."""
    if fmt not in FORMATS and fmt != CARD:
        raise InvalidInput(
            f"Unknown format {fmt!r}.",
            [{"field": "format", "message": f"One of {', '.join((*FORMATS, CARD))}."}],
        )
    if not format_applicable(snapshot, fmt):
        raise InvalidInput(
            "CoNLL is for span projects only.",
            [{"field": "format", "message": f"conll needs a spans project; this one is {_task_type(snapshot)}."}],
        )


def _sha256(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def _record(snapshot: Snapshot, fmt: str, entry: dict[str, Any]) -> None:
    """formats[fmt] = entry, merged into the stored JSON in one UPDATE (other formats' entries, written by
    other processes meanwhile, stay)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {Snapshot._meta.db_table} SET formats = formats || %s::jsonb WHERE id = %s",  # noqa: S608
            [json.dumps({fmt: entry}), snapshot.pk],
        )
    snapshot.formats = {**(snapshot.formats or {}), fmt: entry}


def _stored_formats(snapshot: Snapshot) -> dict[str, Any]:
    return Snapshot.objects.filter(pk=snapshot.pk).values_list("formats", flat=True).first() or {}


class FormatBusy(ApplicationError):
    """Another process is writing this format right now (503: the download view adds Retry-After)."""

    status_code = 503


def card_text(snapshot: Snapshot) -> str:
    """The snapshot's dataset card as written once (README.md, at build time): what every format that carries
    the card copies, so none of them depends on when it was written."""
    return format_ensure(snapshot, CARD).read_text(encoding="utf-8")


def format_ensure(snapshot: Snapshot, fmt: str, *, wait: bool = True) -> Path:
    """The path of the snapshot's file in format `fmt` (`card` for README.md), written first if missing, and
    snapshot.formats[fmt] = {"bytes", "sha256"} recorded. Raises InvalidInput (field "format") for an unknown
    format, conll on a non-span project, or conll over a row with overlapping spans (no file is left).
    Needs the canonical data.jsonl in place (Conflict without it) and the Snapshot's counts saved (the card
    reads them). Blocks while another process writes the same format, then returns its file; `wait=False`
    raises FormatBusy instead (a web request does not hold its thread for another's write)."""
    format_check(snapshot, fmt)
    folder = snapshot_dir(snapshot)
    path = folder / FILES[fmt]
    if fmt in (snapshot.formats or {}) and path.exists():
        return path
    if not (folder / FILES["jsonl"]).exists():
        raise Conflict(
            "The snapshot's files are gone.",
            [{"field": None, "message": f"No canonical file for snapshot {snapshot.pk} in TANDEM_SNAPSHOT_DIR."}],
        )
    if fmt == "jsonl":  # the canonical file itself, written by the build; its hash is the snapshot's
        size = path.stat().st_size
        _record(snapshot, fmt, {"bytes": size, "sha256": snapshot.sha256 or _sha256(path)[1]})
        return path
    with (folder / f"{FILES[fmt]}.lock").open("a") as lock:
        try:  # released when the file closes
            fcntl.flock(lock, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise FormatBusy(
                f"The {fmt} file of this snapshot is being written; try again in a moment.",
                [{"field": "format", "message": "being written"}],
                headers={"Retry-After": "5"},
            ) from None
        wrote = not path.exists()
        if wrote:
            _write(snapshot, fmt, path)
        stored = _stored_formats(snapshot)
        if fmt in stored and not wrote:  # another process wrote and recorded it while we waited for the lock
            snapshot.formats = stored
        else:
            size, digest = _sha256(path)
            _record(snapshot, fmt, {"bytes": size, "sha256": digest})
    return path


def _write(snapshot: Snapshot, fmt: str, path: Path) -> None:
    """Write `fmt` to `<path>.tmp`, fsync, rename into place; the temp file is removed on any failure."""
    from annotation.datasets import writers

    tmp = path.with_name(path.name + ".tmp")
    try:
        if fmt == "csv":
            with tmp.open("w", encoding="utf-8", newline="") as fh:
                writers.csv_write(schema=snapshot.schema, rows=rows_read(snapshot), out=fh)
                _sync(fh)
        elif fmt == "parquet":
            meta = {"id": snapshot.pk, "name": snapshot.name, "sha256": snapshot.sha256}
            writers.parquet_write(
                schema=snapshot.schema,
                rows=rows_read(snapshot),
                path=tmp,
                metadata={"tandem.card": card_text(snapshot), "tandem.snapshot": json.dumps(meta)},
            )
            with tmp.open("rb+") as fh:
                _sync(fh)
        elif fmt == "hf":
            stamp = snapshot.finished_at or snapshot.created_at
            with tmp.open("wb") as fh:
                writers.hf_write(
                    schema=snapshot.schema,
                    rows=rows_read(snapshot),
                    out=fh,
                    workdir=path.with_name("hf.work"),
                    top=download_slug(snapshot),
                    card=card_text(snapshot),
                    mtime=int(stamp.timestamp()),
                )
                _sync(fh)
        elif fmt == "conll":
            with tmp.open("w", encoding="utf-8", newline="\n") as fh:
                try:
                    writers.conll_write(rows=rows_read(snapshot), out=fh)
                except writers.OverlappingSpans as exc:
                    raise InvalidInput(
                        "CoNLL cannot hold overlapping spans.",
                        [
                            {
                                "field": "format",
                                "message": f"The item {exc.external_id!r} has overlapping spans: BIO tags cannot "
                                "say which span a token belongs to.",
                                "external_id": exc.external_id,
                            }
                        ],
                    ) from None
                _sync(fh)
        elif fmt == "labelstudio":
            _labelstudio_write(snapshot, tmp)
        elif fmt == CARD:
            from annotation.datasets.card import card_markdown

            with tmp.open("w", encoding="utf-8", newline="\n") as fh:
                fh.write(card_markdown(snapshot))
                _sync(fh)
        os.replace(tmp, path)
    except BaseException:
        with suppress(FileNotFoundError):
            tmp.unlink()
        raise


def _labelstudio_write(snapshot: Snapshot, tmp: Path) -> None:
    from annotation.datasets.labelstudio import ls_write_snapshot

    with tmp.open("wb") as fh:
        ls_write_snapshot(snapshot=snapshot, rows=rows_read(snapshot), out=fh)
        _sync(fh)


def _sync(fh: Any) -> None:
    fh.flush()
    os.fsync(fh.fileno())


def bundle_ensure(snapshot: Snapshot, fmt: str) -> tuple[Path, int, str]:
    """A tar of `<slug>/README.md` (the card) and `<slug>/<slug>.<ext>` (the format's file): its path, size and
    sha256. Written once, like the formats, as `<file>.bundle.tar`, with its size and hash in
    `<file>.bundle.tar.sha256` (renamed into place before the tar, so a tar in place always has its hash)."""
    path = format_ensure(snapshot, fmt)
    card = format_ensure(snapshot, CARD)
    bundle = path.with_name(path.name + ".bundle.tar")
    digest_file = bundle.with_name(bundle.name + ".sha256")
    if not bundle.exists():
        with (snapshot_dir(snapshot) / f"{bundle.name}.lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not bundle.exists():
                _bundle_write(snapshot, fmt, path, card, bundle, digest_file)
    size, digest = digest_file.read_text().split()
    return bundle, int(size), digest


def _bundle_write(snapshot: Snapshot, fmt: str, path: Path, card: Path, bundle: Path, digest_file: Path) -> None:
    import tarfile

    slug = download_slug(snapshot)
    stamp = int((snapshot.finished_at or snapshot.created_at).timestamp())
    members = [(f"{slug}/README.md", card)]
    if fmt != CARD:
        members.append((f"{slug}/{slug}.{EXTENSIONS[fmt]}", path))
    tmp = bundle.with_name(bundle.name + ".tmp")
    digest_tmp = digest_file.with_name(digest_file.name + ".tmp")
    try:
        with tmp.open("wb") as fh:
            with tarfile.open(fileobj=fh, mode="w", format=tarfile.PAX_FORMAT) as tar:
                top = tarfile.TarInfo(slug)
                top.type, top.mode, top.mtime = tarfile.DIRTYPE, 0o755, stamp
                tar.addfile(top)
                for name, source in members:
                    info = tarfile.TarInfo(name)
                    info.size, info.mode, info.mtime = source.stat().st_size, 0o644, stamp
                    with source.open("rb") as data:
                        tar.addfile(info, data)
            _sync(fh)
        size, digest = _sha256(tmp)
        digest_tmp.write_text(f"{size} {digest}\n")
        os.replace(digest_tmp, digest_file)
        os.replace(tmp, bundle)
    except BaseException:
        for leftover in (tmp, digest_tmp):
            with suppress(FileNotFoundError):
                leftover.unlink()
        raise
