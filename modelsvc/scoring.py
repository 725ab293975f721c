"""Raw model output -> the REST `prediction` shape, and the queue priority it gives an item.

Pure numpy (no torch, no Django). The shape (DESIGN.md):
    {"model_version", "kind", "value", "confidence", "probabilities": {label: p}, "uncertainty",
     "scores": {"least_confidence", "margin", "entropy"}}
`value` is an annotation value; `kind` the version's kind ("zero_shot" | "fine_tuned": the labeling page never
pre-selects a zero-shot suggestion); `confidence` the model's probability for `value` as a whole: the predicted
label's for a classification, the mean of the chosen labels' probabilities (of 1 - p over every label when
none is chosen) for multilabel, null for spans (each span carries its own score); `uncertainty` is the score
the project's measure picks (higher = less sure). Multilabel: the three scores of each label's yes/no distribution, averaged over labels (the
per-label binary entropy aggregated by mean; the max is kept as "entropy_max"). Spans: the scores of
each token's BIO distribution, averaged over tokens (and "entropy_max" over tokens).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any, NamedTuple, SupportsFloat

import numpy as np

from modelsvc import uncertainty as u
from modelsvc.contracts import RawPrediction

MEASURES = ("least_confidence", "margin", "entropy")


def _r(x: SupportsFloat) -> float:
    return round(float(x), 6)


def decode_spans(tags: Sequence[str], marginals: np.ndarray, offsets: np.ndarray) -> list[dict[str, Any]]:
    """Greedy BIO decoding: a span starts at B-X (or an I-X not continuing X) and runs over I-X tokens.
    Its score is the mean probability of the chosen tags over its tokens."""
    spans: list[dict[str, Any]] = []
    best = marginals.argmax(axis=1) if len(marginals) else np.zeros(0, dtype=int)
    current: dict[str, Any] | None = None
    probs: list[float] = []
    for t, tag_index in enumerate(best):
        tag = tags[tag_index]
        prefix, _, label = tag.partition("-")
        if prefix == "I" and current is not None and current["label"] == label:
            current["end"] = int(offsets[t][1])
            probs.append(float(marginals[t, tag_index]))
            continue
        if current is not None:
            current["score"] = _r(np.mean(probs))
            spans.append(current)
            current = None
        if prefix in ("B", "I"):
            current = {"start": int(offsets[t][0]), "end": int(offsets[t][1]), "label": label}
            probs = [float(marginals[t, tag_index])]
    if current is not None:
        current["score"] = _r(np.mean(probs))
        spans.append(current)
    return spans


class Scored(NamedTuple):
    contract: dict[str, Any]  # the REST prediction (numbers rounded to 6 decimals)
    scores: dict[str, float]  # the same scores unrounded: what the queue orders by and Prediction rows keep
    uncertainty: float  # unrounded score of the project's measure


def score(
    raw: RawPrediction, *, task_type: str, labels: Sequence[str], measure: str, model_version: int, kind: str
) -> Scored:
    """The REST prediction for one item and its exact scores. Rounding is for the JSON only: ranked by
    6-decimal values, the many confident items tie and the queue would fall back to id order among them,
    and two-class measures that rank alike (1 - p_max, 2 (1 - p_max), entropy) would break ties apart."""
    p = np.asarray(raw.probabilities, dtype=np.float64)
    extra: dict[str, float] = {}
    if task_type == "classification":
        scores = {name: float(values[0]) for name, values in u.classification_scores(p[None, :]).items()}
        value: dict[str, Any] = {"label": labels[int(p.argmax())]}
        confidence: float | None = float(p.max())
    elif task_type == "multilabel":
        yes_no = np.stack([p, 1.0 - p], axis=1)  # each label's binary distribution
        per_label = u.classification_scores(yes_no)
        scores = {name: float(values.mean()) for name, values in per_label.items()}
        extra["entropy_max"] = float(per_label["entropy"].max())
        value = {"labels": [name for name, q in zip(labels, p, strict=True) if q >= 0.5]}
        chosen = p >= 0.5
        confidence = float(p[chosen].mean()) if chosen.any() else float((1.0 - p).mean()) if len(p) else None
    elif task_type == "spans":
        m = np.asarray(raw.marginals, dtype=np.float64)
        if m.ndim == 2 and m.shape[0] > 0:
            per_token = u.classification_scores(m)
            scores = {name: float(values.mean()) for name, values in per_token.items()}
            extra["entropy_max"] = float(per_token["entropy"].max())
        else:
            scores = {name: 0.0 for name in MEASURES}
        value = {"spans": decode_spans(raw.tags, m, np.asarray(raw.offsets))}
        confidence = None
    else:
        raise ValueError(f"unknown task type {task_type!r}")
    if measure not in MEASURES:
        raise ValueError(f"unknown uncertainty measure {measure!r}")
    contract = {
        "model_version": model_version,
        "kind": kind,
        "value": value,
        "confidence": None if confidence is None else _r(confidence),
        "probabilities": {name: _r(q) for name, q in zip(labels, p, strict=True)},
        "uncertainty": _r(scores[measure]),
        "scores": {name: _r(v) for name, v in {**scores, **extra}.items()},
    }
    return Scored(contract, {**scores, **extra}, float(scores[measure]))


def priorities(
    item_ids: Sequence[int],
    uncertainties: Sequence[float],
    *,
    exploration_rate: float,
    seed: int,
    first: Sequence[int] = (),
) -> list[float]:
    """Queue priority per item (the queue serves the highest first).

    Normally the item's uncertainty (in [0, 1]). With probability `exploration_rate` (decided per item
    by a seeded RNG, so a redelivered chunk computes the same) an item instead takes the uncertainty
    of a uniformly chosen item of the same chunk: it lands at a random rank, so about that share of
    what the queue serves at any depth is a random pick, and `next` stays one index scan. Items in
    `first` (the cold-start diversity pick, in order) go ahead of everything: 2 - rank/len(first).
    """
    n = len(item_ids)
    out = [float(x) for x in uncertainties]
    for i, item_id in enumerate(item_ids):
        rng = random.Random(seed * 1_000_003 + int(item_id))  # noqa: S311 - sampling, not security
        if n > 1 and rng.random() < exploration_rate:
            out[i] = float(uncertainties[rng.randrange(n)])
    ranks = {item_id: rank for rank, item_id in enumerate(first)}
    for i, item_id in enumerate(item_ids):
        if item_id in ranks:
            out[i] = 2.0 - ranks[item_id] / max(len(first), 1)
    return out
