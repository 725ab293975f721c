"""The fixed training / validation split of a project's approved labels.

New approved items are assigned for good the first time training sees them: per stratum (label), in a
seeded order, to validation while it holds less than TANDEM_VALIDATION_FRACTION of that stratum, else
to training. Gold items (with a gold value) are always validation. Because the assignment never
changes, every version is evaluated on items it was never trained on, and versions compare fairly.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from typing import Any

from django.conf import settings

from annotation.models import FinalLabel, Item, Project
from annotation.models.item import FinalLabelSource
from modelsvc.models import TrainedItem, ValidationItem

LabeledRow = tuple[int, str, Any]  # (item id, text, target)


def label_target(task_type: str, labels: list[str], value: Any) -> Any:
    """An annotation value as a training target (a label index, a list of them, or (start, end, index)
    spans), or None when it does not fit the labels."""
    index = {name: i for i, name in enumerate(labels)}
    if not isinstance(value, dict):
        return None
    if task_type == "classification":
        label = value.get("label")
        return index.get(label) if isinstance(label, str) else None
    if task_type == "multilabel":
        names = value.get("labels")
        return [index[n] for n in names if n in index] if isinstance(names, list) else None
    spans = value.get("spans")
    if not isinstance(spans, list):
        return None
    return [(s["start"], s["end"], index[s["label"]]) for s in spans if s.get("label") in index]


def _stratum(task_type: str, target: Any) -> str:
    if task_type == "classification":
        return str(target)
    if task_type == "multilabel":
        return ",".join(map(str, sorted(target)))
    return "spans" if target else "none"


def _seeded(project_id: int, item_id: int) -> str:
    return hashlib.sha256(f"{project_id}:{item_id}".encode()).hexdigest()


def training_split(project: Project) -> tuple[list[LabeledRow], list[LabeledRow]]:
    """(train, validation) as (item id, text, target), assigning the new approved items (see the module
    docstring); the assignments are written, so later calls keep them."""
    labels = project.label_names
    values = dict(FinalLabel.objects.filter(item__project=project).values_list("item_id", "value"))
    # a gold item's gold value is its FinalLabel (source `gold`)
    gold = set(
        FinalLabel.objects.filter(item__project=project, source=FinalLabelSource.GOLD).values_list("item_id", flat=True)
    )
    texts = dict(Item.objects.filter(pk__in=values.keys()).values_list("id", "data__text"))
    val_ids = set(ValidationItem.objects.filter(project=project).values_list("item_id", flat=True))
    train_ids = set(TrainedItem.objects.filter(project=project).values_list("item_id", flat=True))
    targets = {i: label_target(project.task_type, labels, v) for i, v in values.items()}
    strata: dict[str, list[int]] = defaultdict(list)
    for item_id, target in targets.items():
        if target is not None and isinstance(texts.get(item_id), str):
            strata[_stratum(project.task_type, target)].append(item_id)
    new_val, new_train = [], []
    fraction = settings.TANDEM_VALIDATION_FRACTION
    for members in strata.values():
        have_val = sum(1 for i in members if i in val_ids or i in gold)
        for item_id in sorted(members, key=lambda i: _seeded(project.pk, i)):
            if item_id in val_ids or item_id in train_ids or item_id in gold:
                continue
            if have_val < fraction * len(members):
                new_val.append(item_id)
                have_val += 1
            else:
                new_train.append(item_id)
    ValidationItem.objects.bulk_create(
        [ValidationItem(project=project, item_id=i) for i in new_val], ignore_conflicts=True
    )
    TrainedItem.objects.bulk_create([TrainedItem(project=project, item_id=i) for i in new_train], ignore_conflicts=True)
    val_ids |= set(new_val) | gold
    train_ids |= set(new_train)
    usable = {i for members in strata.values() for i in members}
    train = [(i, texts[i], targets[i]) for i in sorted(train_ids & usable - val_ids)]
    validation = [(i, texts[i], targets[i]) for i in sorted(val_ids & usable)]
    return train, validation
