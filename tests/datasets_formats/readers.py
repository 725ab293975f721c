"""Reading each format back with its reference library (csv, pyarrow, datasets, nltk), into canonical rows to
compare with the JSONL."""

from __future__ import annotations

import csv
import io
import json
import os
import tarfile
from pathlib import Path
from typing import Any
from urllib.parse import unquote

FORMULA = ("=", "+", "-", "@", "\t", "\r")


def jsonl_rows(data: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in data.decode().splitlines()]


def csv_rows(data: bytes, schema: dict[str, Any]) -> tuple[list[str], list[dict[str, Any]]]:
    """The CSV's header and its rows decoded to canonical values (the ' before a formula character stripped,
    JSON cells parsed, numbers and booleans read as JSON)."""
    reader = csv.DictReader(io.StringIO(data.decode("utf-8"), newline=""))
    types = {m["column"]: m["type"] for m in schema["meta"]}
    rows = []
    for raw in reader:
        row: dict[str, Any] = {}
        for key, cell in raw.items():
            if cell.startswith("'") and cell[1:].startswith(FORMULA):
                cell = cell[1:]
            is_json = key in ("annotations", "suggestion") or types.get(key) in ("json", "int64", "float64", "bool")
            is_json = is_json or (key == "label" and schema["task_type"] != "classification")
            if cell == "":
                row[key] = None
            else:
                row[key] = json.loads(cell) if is_json else cell
        rows.append(row)
    return list(reader.fieldnames or []), rows


def untar(data: bytes, dest: Path) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        names = tar.getnames()
        tar.extractall(dest, filter="data")
    return names


def hf_load(folder: Path):
    os.environ["HF_DATASETS_OFFLINE"] = "1"
    os.environ["HF_HUB_OFFLINE"] = "1"
    import datasets

    return datasets.load_from_disk(str(folder))


def conll_documents(path: Path) -> list[tuple[str, str, list[tuple[str, str]]]]:
    """(external_id, split, [(token, tag)]) per item. The tokens and tags come from nltk's ConllCorpusReader,
    which drops each -DOCSTART- line (an item without tokens is an empty sentence); the ids and splits come from those lines."""
    import nltk
    from nltk.corpus.reader.conll import ConllCorpusReader

    if str(path.parent) not in nltk.data.path:  # nltk reads corpora only under the roots it was given
        nltk.data.path.append(str(path.parent))
    # two columns: nltk's (word, tag) reader calls the second one "pos"; the tags are the BIO tags
    reader = ConllCorpusReader(str(path.parent), [path.name], ("words", "pos"))
    sentences = [list(sent) for sent in reader.tagged_sents()]
    heads = [line.split() for line in path.read_text(encoding="utf-8").splitlines() if line.startswith("-DOCSTART-")]
    assert len(heads) == len(sentences)
    return [(unquote(h[1]), h[2], sent) for h, sent in zip(heads, sentences, strict=True)]
