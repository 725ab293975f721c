"""The stopping signal (issue 13, point 8): are more labels still changing the model?

The stabilizing-predictions criterion (Bloodgood and Vijay-Shanker 2009, "A method for stopping active learning
based on stabilizing predictions and the need for user-adjustable stopping"), as small-text's `KappaAverage`
implements it: Cohen's kappa between the predictions of successive models on a fixed stop set; stop when the
mean kappa of the last WINDOW successive pairs is at least KAPPA (3 and 0.99, the paper's and small-text's
defaults). Like small-text, two identical prediction vectors have kappa 1.0 (scikit-learn's formula divides by
zero when both use one and the same label throughout); every other kappa is scikit-learn's
`cohen_kappa_score`.

small-text itself is not used: importing any of it imports torch and transformers when they are installed (its
package __init__ probes for them), which the web process must never load; and its `stop()` compares vectors of
one fixed length, where our versions predict different subsets of the sample (below). The rule is small, and
tests check it against hand-computed values.

- The stop set: up to SAMPLE_SIZE of the project's non-gold items, those with the smallest
  sha256("<project id>:<item id>"), chosen from ALL non-gold items, labeled or not, so that it stays fixed as
  labels arrive (only a later import can displace members, by items with smaller hashes).
- The models: the project's versions that have predictions (Prediction rows) on the sample, in version order:
  the versions that were pre-labeled (activated); candidates never activated predicted nothing.
- "Unlabeled": pre-labeling predicts only items still in the queue, so an item decided before a version was
  pre-labeled has no prediction of it. Each pair's kappa is over the sample items BOTH versions predicted,
  which leaves out items labeled between them; None when they share none.
- Values compared: the label (classification); the canonical label-set string, sorted in the project's label
  order (multilabel); spans token by token: each whitespace token of a sample item is one unit, labeled with
  the first span overlapping it or "O" (services/gold.py's `span_token_labels`, the rule gold scoring and agreement use).
"""

from __future__ import annotations

import json
from itertools import pairwise
from typing import Any

import numpy as np
from django.db import connection

from annotation.models import Item, Project
from annotation.models.project import TaskType
from annotation.services.gold import span_token_labels
from modelsvc.models import Prediction, VersionKind

SAMPLE_SIZE = 1000
WINDOW = 3  # successive version pairs averaged
KAPPA = 0.99


# the sample's order; written with the immutable text-to-bytea cast (the same bytes as UTF-8 for digits and ":")
# so that an expression index (project_id, STOP_SET_ORDER) WHERE NOT is_gold can serve it: without one, a 1M-item
# project hashes every item (~1 s a core)
STOP_SET_ORDER = "sha256((project_id::text || ':' || id::text)::bytea)"


def stop_set(project: Project, size: int = SAMPLE_SIZE) -> list[int]:
    """The fixed sample: the non-gold items with the smallest sha256 of "<project id>:<item id>"."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id FROM {Item._meta.db_table} WHERE project_id = %s AND NOT is_gold "  # noqa: S608
            f"ORDER BY {STOP_SET_ORDER} LIMIT %s",
            [project.pk, size],
        )
        return [row[0] for row in cursor.fetchall()]


def stable_kappa(a: list[Any], b: list[Any]) -> float | None:
    """Cohen's kappa of two prediction vectors (scikit-learn), 1.0 when identical (small-text's rule)."""
    if not a:
        return None
    if a == b:
        return 1.0
    from sklearn.metrics import cohen_kappa_score  # heavy: imported when metrics compute

    value = float(cohen_kappa_score(a, b))
    return value if np.isfinite(value) else None


def kappa_average(history: list[float | None], window: int = WINDOW, threshold: float = KAPPA) -> float | None:
    """The mean of the last `window` kappas; None when there are fewer, or one of them is None."""
    last = history[-window:]
    if len(last) < window or any(k is None for k in last):
        return None
    return float(np.mean([k for k in last if k is not None]))


def _units(project: Project, sample: list[int]) -> dict[int, dict[Any, str]]:
    """Per version number: its prediction per unit of the sample (an item, or an (item, token) for spans)."""
    # an imported version (Label Studio predictions) predicted only its own items, once: not a step of the loop
    rows = (
        Prediction.objects.filter(item_id__in=sample, model_version__project=project)
        .exclude(model_version__kind=VersionKind.IMPORTED)
        .values_list("model_version__version", "item_id", "value")
    )
    order = {name: i for i, name in enumerate(project.label_names)}
    texts: dict[int, str] = {}
    if project.task_type == TaskType.SPANS:
        texts = dict(Item.objects.filter(pk__in=sample).values_list("id", "data__text"))
    out: dict[int, dict[Any, str]] = {}
    for number, item_id, value in rows:
        units = out.setdefault(number, {})
        value = value or {}
        if project.task_type == TaskType.CLASSIFICATION:
            units[item_id] = str(value.get("label"))
        elif project.task_type == TaskType.MULTILABEL:
            labels = sorted(value.get("labels", []), key=lambda n: (order.get(n, len(order)), n))
            units[item_id] = json.dumps(labels)
        else:
            text = texts.get(item_id)
            for t, label in enumerate(span_token_labels(text if isinstance(text, str) else "", value.get("spans", []))):
                units[(item_id, t)] = label
    return out


def _sentence(versions: int, sample_size: int, mean: float | None, stable: bool) -> str:
    needed = WINDOW + 1
    if versions < needed:
        return (
            f"not enough versions yet ({versions} of {needed} needed): the signal compares the predictions of "
            f"{needed} successive versions on a fixed sample of {sample_size:,} items"
        )
    if mean is None:
        return f"the last {needed} versions share too few predicted items in the {sample_size:,}-item sample to compare"
    if stable:
        return (
            f"the last {needed} versions agree on a {sample_size:,}-item sample (mean Cohen's kappa {mean:.3f}, "
            f"at least {KAPPA}): more labels are unlikely to change this model"
        )
    return (
        f"the model is still changing: the last {needed} versions' predictions on a {sample_size:,}-item sample "
        f"have a mean Cohen's kappa of {mean:.3f}, below {KAPPA}: more labels still change this model"
    )


def stopping_section(project: Project) -> dict[str, Any]:
    """The "stopping" object of GET /api/projects/{id}/metrics (see the module docstring)."""
    sample = stop_set(project)
    units = _units(project, sample) if sample else {}
    numbers = sorted(units)
    history: list[dict[str, Any]] = []
    for older, newer in pairwise(numbers):
        shared = sorted(units[older].keys() & units[newer].keys())
        kappa = stable_kappa([units[older][u] for u in shared], [units[newer][u] for u in shared])
        history.append({"model_version": newer, "kappa": kappa})
    mean = kappa_average([h["kappa"] for h in history])
    stable = mean is not None and mean >= KAPPA
    return {
        "kappa_history": history,
        "stable": stable,
        "sample_size": len(sample),
        "sentence": _sentence(len(numbers), len(sample), mean, stable),
    }
