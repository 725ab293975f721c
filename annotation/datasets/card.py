"""The dataset card of a snapshot: README.md in the Hugging Face dataset-card form (a YAML header with the
license, task, features and splits, then Markdown), written from the Snapshot row and its project alone (never
from the rows), so it can be written before or without any other format."""

from __future__ import annotations

import json
from typing import Any

import yaml

from annotation.models import Snapshot
from annotation.models.project import TaskType

SPLITS = ("train", "validation", "test")
_TASKS = {
    TaskType.CLASSIFICATION: ("text-classification", "multi-class-classification"),
    TaskType.MULTILABEL: ("text-classification", "multi-label-classification"),
    TaskType.SPANS: ("token-classification", "named-entity-recognition"),
}
_NAMES_PATH = {TaskType.MULTILABEL: ".feature.names", TaskType.SPANS: '.feature["label"].names'}


def _value(value: Any) -> str:
    return (
        "—"
        if value is None or value == [] or value == ""
        else f"`{json.dumps(value, ensure_ascii=False, sort_keys=True)}`"
    )


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines)


def card_header(snapshot: Snapshot) -> dict[str, Any]:
    """The YAML header as a dict (the HF card metadata): license, task categories, pretty name, dataset_info
    (features in the HF YAML form, splits with their sizes)."""
    from annotation.datasets.writers import hf_features

    schema = snapshot.schema or {}
    task_type = schema.get("task_type", snapshot.project.task_type)
    category, task_id = _TASKS.get(task_type, _TASKS[TaskType.CLASSIFICATION])
    header: dict[str, Any] = {}
    if snapshot.project.license:
        header["license"] = snapshot.project.license
    header |= {
        "task_categories": [category],
        "task_ids": [task_id],
        "pretty_name": f"{snapshot.project.name}: {snapshot.name}",
        "tags": ["tandem"],
        "dataset_info": {
            "features": hf_features({**schema, "task_type": task_type})._to_yaml_list(),
            "splits": [{"name": s, "num_examples": int((snapshot.splits or {}).get(s, 0))} for s in SPLITS],
        },
    }
    return header


def card_markdown(snapshot: Snapshot) -> str:
    """The card's text (README.md). The same for the same Snapshot row whenever it is written: JSON fields are
    rendered with sorted keys (jsonb does not keep the order the build wrote them in)."""
    project = snapshot.project
    schema = snapshot.schema or {}
    labels = list(schema.get("labels") or project.label_names)
    splits = snapshot.splits or {}
    per_split = schema.get("per_split") or {}
    overall = snapshot.label_distribution or {}
    created = snapshot.created_at.isoformat() if snapshot.created_at else "—"
    builder = snapshot.created_by.get_username() if snapshot.created_by else "—"
    out = ["---", yaml.safe_dump(card_header(snapshot), sort_keys=False, allow_unicode=True).rstrip(), "---", ""]
    out += [f"# {project.name}: {snapshot.name}", ""]
    out += [
        f"A dataset snapshot of the Tandem project **{project.name}**: {snapshot.rows} rows"
        + (" (empty: no item matched the filters)." if not snapshot.rows else "."),
        "",
        "## Provenance",
        "",
        f"- Project: {project.name} (id {project.pk}), task type `{schema.get('task_type', project.task_type)}`",
        f"- Snapshot: {snapshot.pk}, `{snapshot.name}`",
        f"- Created: {created} by {builder}",
        f"- SHA-256 of the canonical JSONL (`data.jsonl`, the `jsonl` download): `{snapshot.sha256 or '—'}`",
        "- Built by Tandem. The same filters and seed over the same data give the same JSONL bytes and hash; "
        "the other formats hold the same rows.",
        "",
        "## Filters and split",
        "",
    ]
    out += [f"- filter `{key}`: {_value(value)}" for key, value in sorted((snapshot.filters or {}).items())]
    out += [f"- split `{key}`: {_value(value)}" for key, value in sorted((snapshot.split or {}).items())]
    out += ["", "## Counts", ""]
    out += [_table(["split", "rows"], [[s, splits.get(s, 0)] for s in SPLITS] + [["all", snapshot.rows]]), ""]
    out += ["## Label distribution", ""]
    names = labels + sorted(set(overall) - set(labels))
    out += [
        _table(
            ["label", "all", *SPLITS],
            [[n, overall.get(n, 0), *((per_split.get(s) or {}).get(n, 0) for s in SPLITS)] for n in names],
        ),
        "",
        "Multi-label rows count once per label they carry; span rows once per span.",
        "",
        "## Agreement",
        "",
    ]
    agreement = snapshot.agreement
    if isinstance(agreement, dict):
        out += [f"- {key}: {_value(value)}" for key, value in sorted(agreement.items())]
    else:
        out += [f"- {_value(agreement)}"]
    out += [
        "",
        "## Model suggestions",
        "",
        f"- Active model version when built: {snapshot.model_version if snapshot.model_version is not None else '—'}",
        "- Each row's `suggestion` is the one served when the item was labeled where recorded, else the model's "
        "prediction at build time; `suggestion.model_version` names its version.",
        "",
        "## Annotators",
        "",
        (
            "Annotator names are replaced by stable pseudonyms (`annotator-<8 hex>`, a keyed hash of the project "
            "and user): the same annotator has the same pseudonym in every pseudonymised snapshot of this project."
            if snapshot.pseudonymize
            else "Annotator names are the annotators' usernames."
        ),
        "",
        "## Guidelines",
        "",
        project.guidelines.strip() or "None given.",
        "",
        "## License",
        "",
        project.license or "Not stated by the project.",
        "",
        "## Formats",
        "",
        "Every row: `external_id`, `text`, the metadata columns, `label` (classification: a label name; "
        "multi-label: a list of names; spans: a list of `{start, end, label}`, character offsets), `label_source`, "
        "`split`, `annotations` (`[{annotator, value}]`), `suggestion` (`{model_version, value, confidence}` or "
        "null).",
        "",
        "- `jsonl`: one JSON object per line, the canonical content.",
        "- `csv`: lists and objects as JSON text, null as an empty cell. **Formula neutralisation:** every cell "
        "(numbers and column names included) that starts with `=`, `+`, `-`, `@`, a tab or a carriage return "
        "has a leading `'` added, so that spreadsheets run nothing; strip it when you read such a cell back.",
        "- `parquet`: real types (lists and structs); this card is in the file's metadata (`tandem.card`).",
        "- `hf`: a tar of a `datasets` `save_to_disk` folder (one directory per non-empty split), `label` a "
        "`ClassLabel`.",
        "- `conll` (span projects): CoNLL-2003 style BIO, one `-DOCSTART- <external_id> <split> O` document per "
        "item, `token<TAB>tag` lines.",
        "",
        "## Loading",
        "",
        "```python",
        "import pyarrow.parquet as pq",
        'table = pq.read_table("data.parquet")',
        "",
        "import pandas as pd",
        'df = pd.read_json("data.jsonl", lines=True)',
        "",
        "import datasets  # tar -xf hf.tar first",
        'dd = datasets.load_from_disk("<folder from hf.tar>")',
        'names = dd["train"].features["label"]' + _NAMES_PATH.get(schema.get("task_type", ""), ".names"),
        "```",
        "",
    ]
    return "\n".join(out)
