"""The writers of a snapshot's formats: each reads the canonical rows (one dict per line of data.jsonl, in the
shape of docs/datasets.md) as an iterator and writes one file, in constant memory (a batch of rows at a time).

pyarrow and datasets are imported inside the functions: the web process must not load them at start.
docs/dataset-formats.md describes every layout.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import tarfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import quote

from annotation.models.project import TaskType
from annotation.selectors.exporting import csv_safe
from annotation.services.gold import OUTSIDE, span_token_labels, span_tokens

if TYPE_CHECKING:
    import datasets  # type: ignore[import-untyped,unused-ignore]
    import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]

# rows turned into Arrow at a time: their Python objects (a span row's nested dicts take kilobytes) are what a
# writer holds in memory; Arrow holds the same rows in a fraction of that
BATCH_ROWS = 10_000
ROW_GROUP_ROWS = 50_000  # rows per Parquet row group: few groups, each written as soon as it is full
SPLITS = ("train", "validation", "test")
TAIL_COLUMNS = ("label", "label_source", "split", "annotations", "suggestion")
_META_ARROW = {"string": "string", "int64": "int64", "float64": "float64", "bool": "bool_", "json": "string"}


# the canonical file's JSON form; one encoder object skips json.dumps' per-call setup (hot in every writer)
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def columns(schema: dict[str, Any]) -> list[str]:
    """The canonical row's keys in order (the CSV header, the Parquet and HF column order)."""
    return ["external_id", "text", *(m["column"] for m in schema.get("meta", [])), *TAIL_COLUMNS]


def _json_meta_columns(schema: dict[str, Any]) -> list[str]:
    return [m["column"] for m in schema.get("meta", []) if m["type"] == "json"]


# ---------------------------------------------------------------------------------------------------------- CSV


def csv_write(*, schema: dict[str, Any], rows: Iterable[dict[str, Any]], out: IO[str]) -> None:
    """CSV with the canonical columns: label, annotations, suggestion, a multilabel or span label and json-typed
    metadata as JSON text, null as an empty cell, numbers and booleans as JSON writes them. Every other cell is
    text and goes through `csv_safe` (a leading ' before =, +, -, @, tab or CR), JSON text cells, numbers and the
    header's column names (metadata field names come from imported data) included: every cell, as the dataset
    card says, so a spreadsheet runs nothing (a negative number reads back as the text '-7)."""
    header = columns(schema)
    numeric = {m["column"] for m in schema.get("meta", []) if m["type"] in ("int64", "float64", "bool")}
    json_text = _json_text_keys(schema)
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([csv_safe(name) for name in header])
    for row in rows:
        cells: list[str] = []
        for key in header:
            value = row.get(key)
            if value is None:
                cells.append("")
            elif key in numeric:
                cells.append(csv_safe(_dumps(value)))
            elif isinstance(value, str) and key not in json_text:
                cells.append(csv_safe(value))
            else:
                cells.append(csv_safe(_dumps(value)))
        writer.writerow(cells)


def _json_text_keys(schema: dict[str, Any]) -> frozenset[str]:
    # a string in these columns is written as JSON text too (a json-typed metadata value that happens to be a
    # string), so that a reader decodes every cell of a column the same way
    return frozenset(["annotations", "suggestion", *_json_meta_columns(schema)]) | (
        frozenset() if schema.get("task_type") == TaskType.CLASSIFICATION else frozenset(["label"])
    )


# ------------------------------------------------------------------------------------------------------ Parquet


def _label_arrow_type(task_type: str) -> pa.DataType:
    import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]

    if task_type == TaskType.MULTILABEL:
        return pa.list_(pa.string())
    if task_type == TaskType.SPANS:
        return pa.list_(pa.struct([("start", pa.int64()), ("end", pa.int64()), ("label", pa.string())]))
    return pa.string()


def parquet_schema(schema: dict[str, Any]) -> pa.Schema:
    """The Arrow schema of the Parquet file: real types for metadata, label, annotations and suggestion."""
    import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]

    label = _label_arrow_type(schema.get("task_type", TaskType.CLASSIFICATION))
    fields = [pa.field("external_id", pa.string(), nullable=False), pa.field("text", pa.string())]
    fields += [pa.field(m["column"], getattr(pa, _META_ARROW[m["type"]])()) for m in schema.get("meta", [])]
    fields += [
        pa.field("label", label),
        pa.field("label_source", pa.string()),
        pa.field("split", pa.string()),
        pa.field("annotations", pa.list_(pa.struct([("annotator", pa.string()), ("value", label)]))),
        pa.field(
            "suggestion",
            pa.struct([("model_version", pa.string()), ("value", label), ("confidence", pa.float64())]),
        ),
    ]
    return pa.schema(fields)


class _Columns:
    """Rows gathered column by column and turned into an Arrow table a batch at a time: building each column
    with pa.array is several times faster than pa.Table.from_pylist over row dicts. `convert` maps a column to
    the function applied to its non-null values."""

    def __init__(self, arrow_schema: pa.Schema, convert: Mapping[str, Callable[[Any], Any]]):
        self.schema = arrow_schema
        self.plan = [(name, convert.get(name)) for name in arrow_schema.names]
        self.values: dict[str, list[Any]] = {name: [] for name in arrow_schema.names}
        self.size = 0

    def add(self, row: dict[str, Any]) -> None:
        for name, convert in self.plan:
            value = row[name]
            self.values[name].append(value if convert is None or value is None else convert(value))
        self.size += 1

    def take(self) -> pa.Table:
        import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]

        arrays = [pa.array(self.values[f.name], type=f.type) for f in self.schema]
        self.values = {name: [] for name in self.schema.names}
        self.size = 0
        return pa.Table.from_arrays(arrays, schema=self.schema)


def parquet_write(
    *, schema: dict[str, Any], rows: Iterable[dict[str, Any]], path: Path, metadata: dict[str, str]
) -> None:
    """Parquet (zstd), a row group per batch written as it goes; `metadata` goes into the file's key-value
    metadata (the card as "tandem.card", the snapshot's id/name/sha256 as "tandem.snapshot")."""
    import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]
    import pyarrow.parquet as pq  # type: ignore[import-untyped,unused-ignore]

    arrow_schema = parquet_schema(schema).with_metadata(metadata)
    batch = _Columns(arrow_schema, dict.fromkeys(_json_meta_columns(schema), _dumps))
    group: list[pa.Table] = []
    with pq.ParquetWriter(str(path), arrow_schema, compression="zstd") as writer:

        def write_group() -> None:
            writer.write_table(pa.concat_tables(group), row_group_size=ROW_GROUP_ROWS)
            group.clear()

        wrote = False
        for row in rows:
            batch.add(row)
            if batch.size >= BATCH_ROWS:
                group.append(batch.take())
                if sum(t.num_rows for t in group) >= ROW_GROUP_ROWS:
                    write_group()
                    wrote = True
        if batch.size or not wrote:  # an empty snapshot still gets a valid file with the schema and no rows
            group.append(batch.take())
        if group:
            write_group()


# ----------------------------------------------------------------------------------------------- Hugging Face


def hf_import() -> Any:
    """The `datasets` module, offline: a snapshot never reaches the Hub."""
    os.environ["HF_DATASETS_OFFLINE"] = "1"
    os.environ["HF_HUB_OFFLINE"] = "1"
    import datasets  # type: ignore[import-untyped,unused-ignore]

    datasets.disable_progress_bars()  # a worker's log is no terminal
    return datasets


def hf_features(schema: dict[str, Any]) -> datasets.Features:
    """The HF Features of a snapshot: label a ClassLabel of the snapshot's labels (a list of them for
    multilabel, a list of {start, end, label: ClassLabel} for spans); annotation values and the suggestion's
    value the same feature as the label; metadata by type (json as its JSON text)."""
    ds = hf_import()
    names = list(schema.get("labels", []))
    task_type = schema.get("task_type", TaskType.CLASSIFICATION)
    label: Any
    if task_type == TaskType.MULTILABEL:
        label = ds.List(ds.ClassLabel(names=names))
    elif task_type == TaskType.SPANS:
        label = ds.List({"start": ds.Value("int64"), "end": ds.Value("int64"), "label": ds.ClassLabel(names=names)})
    else:
        label = ds.ClassLabel(names=names)
    meta_types = {"string": "string", "int64": "int64", "float64": "float64", "bool": "bool", "json": "string"}
    features: dict[str, Any] = {"external_id": ds.Value("string"), "text": ds.Value("string")}
    for m in schema.get("meta", []):
        features[m["column"]] = ds.Value(meta_types[m["type"]])
    features |= {
        "label": label,
        "label_source": ds.Value("string"),
        "split": ds.Value("string"),
        "annotations": ds.List({"annotator": ds.Value("string"), "value": label}),
        "suggestion": {"model_version": ds.Value("string"), "value": label, "confidence": ds.Value("float64")},
    }
    return ds.Features(features)


def _label_ids(array: pa.Array, names: pa.Array) -> pa.Array:
    """A column of the label type (the Parquet one: names) with each label name replaced by its ClassLabel id:
    the name itself, a list's items, a span struct's `label` field. Arrow's index_in does it in C++ (a span row
    holds a label name in four places: label, two annotations, the suggestion). Raises ValueError for a name
    that is not one of the snapshot's labels."""
    import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]
    import pyarrow.compute as pc  # type: ignore[import-untyped,unused-ignore]

    mask = array.is_null() if array.null_count else None
    if pa.types.is_string(array.type):
        ids = pc.index_in(array, value_set=names)
        if ids.null_count != array.null_count:
            unknown = pc.filter(array, pc.and_(ids.is_null(), array.is_valid()))[0].as_py()
            raise ValueError(f"label {unknown!r} is not one of the snapshot's labels")
        return ids.cast(pa.int64())
    if pa.types.is_list(array.type):
        return pa.ListArray.from_arrays(array.offsets, _label_ids(array.values, names), mask=mask)
    return _struct_replace(array, "label", lambda child: _label_ids(child, names))


def _struct_replace(array: pa.StructArray, name: str, change: Callable[[pa.Array], pa.Array]) -> pa.StructArray:
    """A struct array with `change` applied to its field `name`, its other fields and nulls kept. The fields are
    read through flatten(), which makes a child null where the struct is (a null struct's children hold
    arbitrary values, e.g. "" for a string)."""
    import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]

    names = [array.type.field(i).name for i in range(array.type.num_fields)]
    children = [change(c) if n == name else c for n, c in zip(names, array.flatten(), strict=True)]
    return pa.StructArray.from_arrays(children, names=names, mask=array.is_null() if array.null_count else None)


def _hf_table(table: pa.Table, names: pa.Array, target: pa.Schema) -> pa.Table:
    """A batch in the Parquet schema (label names) as the HF features' Arrow schema (ClassLabel ids)."""
    import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]

    columns = []
    for field in target:
        column = table.column(field.name).combine_chunks()
        if field.name == "label":
            column = _label_ids(column, names)
        elif field.name == "annotations":
            values = _struct_replace(column.values, "value", lambda child: _label_ids(child, names))
            column = pa.ListArray.from_arrays(
                column.offsets, values, mask=column.is_null() if column.null_count else None
            )
        elif field.name == "suggestion":
            column = _struct_replace(column, "value", lambda child: _label_ids(child, names))
        columns.append(column.cast(field.type))
    return pa.Table.from_arrays(columns, schema=target)


def hf_write(
    *,
    schema: dict[str, Any],
    rows: Iterable[dict[str, Any]],
    out: IO[bytes],
    workdir: Path,
    top: str,
    card: str,
    mtime: int,
) -> None:
    """The `save_to_disk` layout of a DatasetDict with one directory per non-empty split, README.md (the card)
    beside dataset_dict.json, all under the folder `top`, as an uncompressed tar with a fixed member order and
    mtime. Rows go to one Arrow stream file per split as they come (a batch at a time), `datasets` memory-maps
    those and saves them; `workdir` (emptied and removed at the end) holds both."""
    import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]

    ds = hf_import()
    features = hf_features(schema)
    arrow_schema = features.arrow_schema
    names = pa.array(list(schema.get("labels", [])), type=pa.string())
    source_schema = parquet_schema(schema)  # rows go to Arrow with label names, then names become ids
    convert = dict.fromkeys(_json_meta_columns(schema), _dumps)
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        streams: dict[str, Path] = {}
        writers: dict[str, pa.ipc.RecordBatchStreamWriter] = {}
        pending = {split: _Columns(source_schema, convert) for split in SPLITS}
        counts = dict.fromkeys(SPLITS, 0)

        def flush(split: str) -> None:
            if not pending[split].size:
                return
            if split not in writers:
                streams[split] = workdir / f"{split}.arrow"
                writers[split] = pa.ipc.new_stream(str(streams[split]), arrow_schema)
            counts[split] += pending[split].size
            writers[split].write_table(_hf_table(pending[split].take(), names, arrow_schema))

        for row in rows:
            columns = pending[row["split"]]
            columns.add(row)
            if columns.size >= BATCH_ROWS:
                flush(row["split"])
        for split in SPLITS:
            flush(split)
        for writer in writers.values():
            writer.close()

        info = ds.DatasetInfo(features=features)
        splits = {
            split: ds.Dataset.from_file(str(streams[split]), info=info, split=split, in_memory=False)
            for split in SPLITS
            if counts[split]
        }
        saved = workdir / top
        ds.DatasetDict(splits).save_to_disk(str(saved))
        del splits  # the memory maps of the stream files
        (saved / "README.md").write_text(card, encoding="utf-8")
        _tar_dir(saved, top=top, out=out, mtime=mtime)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _tar_dir(root: Path, *, top: str, out: IO[bytes], mtime: int) -> None:
    """`root` as `top/...` in an uncompressed tar: members sorted by path, owner root, fixed mode and mtime."""

    def member(name: str, path: Path) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.mtime, info.uid, info.gid, info.uname, info.gname = mtime, 0, 0, "", ""
        if path.is_dir():
            info.type, info.mode = tarfile.DIRTYPE, 0o755
        else:
            info.size, info.mode = path.stat().st_size, 0o644
        return info

    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(member(top, root))
        for path in sorted(root.rglob("*"), key=lambda p: p.relative_to(root).parts):
            info = member(f"{top}/{path.relative_to(root).as_posix()}", path)
            if info.isdir():
                tar.addfile(info)
            else:
                with path.open("rb") as fh:
                    tar.addfile(info, fh)


# ------------------------------------------------------------------------------------------------------- CoNLL


class OverlappingSpans(Exception):
    """A row whose label has spans that overlap: BIO cannot tag them."""

    def __init__(self, external_id: str):
        super().__init__(external_id)
        self.external_id = external_id


def _overlaps(spans: list[dict[str, Any]]) -> bool:
    end = None
    for span in sorted(spans, key=lambda s: (s["start"], s["end"])):
        if end is not None and span["start"] < end:
            return True
        end = span["end"] if end is None else max(end, span["end"])
    return False


def bio_tags(text: str, spans: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(token, BIO tag) of each whitespace token of a text whose spans do not overlap. The label comes from
    services/gold.py's one span-token rule (`span_token_labels`: the first span by (start, end, label) that
    overlaps the token); B- on the first token of that span, I- on the tokens after it."""
    ranges = span_tokens(text)
    labels = span_token_labels(ranges, spans)
    ordered = sorted(spans, key=lambda s: (s["start"], s["end"], s["label"]))
    out = []
    k, previous = 0, None
    for (start, end), label in zip(ranges, labels, strict=True):
        # the first span overlapping this token: spans do not overlap, so they also end in this order
        while k < len(ordered) and ordered[k]["end"] <= start:
            k += 1
        owner = k if label != OUTSIDE and k < len(ordered) and ordered[k]["start"] < end else None
        tag = OUTSIDE if owner is None else ("I-" if owner == previous else "B-") + label
        out.append((text[start:end], tag))
        previous = owner
    return out


def conll_docstart(external_id: str, split: str) -> str:
    """An item's header line: CoNLL-2003's document start with the (percent-encoded) external id and the split
    where `-X- -X-` stand, so every item is one document and the file lines up with data.jsonl row by row."""
    return f"-DOCSTART- {quote(external_id, safe='')} {split} O"


def conll_write(*, rows: Iterable[dict[str, Any]], out: IO[str]) -> None:
    """CoNLL-2003 style BIO, one item per document: the `-DOCSTART-` line, then one `token<TAB>tag` line per
    whitespace token, then a blank line. A row without a label is all O. Raises OverlappingSpans (at the first
    such row: the caller throws the partial file away)."""
    for row in rows:
        spans = row["label"] or []
        if _overlaps(spans):
            raise OverlappingSpans(row["external_id"])
        lines = [conll_docstart(row["external_id"], row["split"])]
        lines += [f"{token}\t{tag}" for token, tag in bio_tags(row["text"], spans)]
        out.write("\n".join(lines) + "\n\n")
