"""Validation metrics of a model version (numpy + scikit-learn; no torch, no Django).

`evaluate_predictor` runs a loaded predictor over validation examples and picks the metrics by task type.

Classification: accuracy, macro-F1, per-label F1, confusion matrix (rows gold, columns predicted, in
label order) and expected calibration error (ECE: 10 equal-width bins of the top probability, the
bin-size-weighted mean |accuracy - confidence|; the bins themselves are kept as the reliability diagram,
`reliability`) and log loss (mean -log p of the gold class; it breaks promotion ties). Multilabel: subset
accuracy, macro-F1 over labels, per-label F1 and 2x2 confusion matrices, ECE (and its bins) and log loss
over every (item, label) probability (the confidence of each per-label decision: p when chosen, 1 - p when
not). Spans: exact-match spans (start, end, label); the micro F1 is reported as "accuracy", with macro-F1 and F1 per label.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, SupportsFloat

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, multilabel_confusion_matrix

from modelsvc.contracts import Predictor
from modelsvc.scoring import decode_spans


def reliability_bins(confidence: np.ndarray, correct: np.ndarray, bins: int = 10) -> list[dict[str, Any]]:
    """The reliability diagram: `bins` equal-width bins of the top probability, (0, 0.1], (0.1, 0.2], ...
    (0 itself falls in the first), each with its mean confidence, accuracy and count; empty bins have
    null confidence and accuracy and n 0. `bin` is the bin's upper edge. The ECE is computed from these."""
    confidence = np.asarray(confidence, dtype=np.float64)
    correct = np.asarray(correct, dtype=np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    rows: list[dict[str, Any]] = []
    for b in range(bins):
        mask = index == b
        n = int(mask.sum())
        rows.append(
            {
                "bin": _r(edges[b + 1]),
                "confidence": float(confidence[mask].mean()) if n else None,
                "accuracy": float(correct[mask].mean()) if n else None,
                "n": n,
            }
        )
    return rows


def _ece(rows: list[dict[str, Any]]) -> float:
    """The bin-size-weighted mean |accuracy - confidence| of reliability bins."""
    total = sum(row["n"] for row in rows)
    if total == 0:
        return 0.0
    return float(sum(row["n"] / total * abs(row["accuracy"] - row["confidence"]) for row in rows if row["n"]))


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, bins: int = 10) -> float:
    return _ece(reliability_bins(confidence, correct, bins))


def _calibration(confidence: np.ndarray, correct: np.ndarray) -> dict[str, Any]:
    """ECE and its reliability diagram from one binning (the diagram's figures rounded as stored)."""
    rows = reliability_bins(confidence, correct)
    reliability = [
        {
            **row,
            "confidence": None if row["n"] == 0 else _r(row["confidence"]),
            "accuracy": None if row["n"] == 0 else _r(row["accuracy"]),
        }
        for row in rows
    ]
    return {"ece": _r(_ece(rows)), "reliability": reliability}


def _r(x: SupportsFloat) -> float:
    return round(float(x), 6)


_FLOOR = 1e-15  # probabilities clipped here for the log (scikit-learn's convention)


def _nll(p_gold: np.ndarray) -> float:
    return float(-np.log(np.clip(p_gold, _FLOOR, 1.0)).mean()) if p_gold.size else 0.0


def classification_metrics(probabilities: np.ndarray, gold: Sequence[int], labels: Sequence[str]) -> dict[str, Any]:
    p = np.asarray(probabilities, dtype=np.float64)
    y = np.asarray(gold, dtype=np.int64)
    pred = p.argmax(axis=1)
    k = len(labels)
    per_label = f1_score(y, pred, labels=list(range(k)), average=None, zero_division=0)
    return {
        "accuracy": _r(accuracy_score(y, pred)),
        "macro_f1": _r(f1_score(y, pred, labels=list(range(k)), average="macro", zero_division=0)),
        "per_label_f1": {name: _r(f) for name, f in zip(labels, per_label, strict=True)},
        "confusion_matrix": confusion_matrix(y, pred, labels=list(range(k))).tolist(),
        **_calibration(p.max(axis=1), pred == y),
        "log_loss": _r(_nll(p[np.arange(len(y)), y])),
        "n": len(y),
    }


def multilabel_metrics(probabilities: np.ndarray, gold: np.ndarray, labels: Sequence[str]) -> dict[str, Any]:
    q = np.asarray(probabilities, dtype=np.float64)
    y = np.asarray(gold, dtype=np.int64)
    pred = (q >= 0.5).astype(np.int64)
    per_label = f1_score(y, pred, average=None, zero_division=0)
    confidence = np.where(pred == 1, q, 1 - q)
    return {
        "accuracy": _r(accuracy_score(y, pred)),  # subset (exact-match) accuracy
        "macro_f1": _r(f1_score(y, pred, average="macro", zero_division=0)),
        "per_label_f1": {name: _r(f) for name, f in zip(labels, per_label, strict=True)},
        "confusion_matrix": {
            name: m.tolist() for name, m in zip(labels, multilabel_confusion_matrix(y, pred), strict=True)
        },
        **_calibration(confidence.ravel(), (pred == y).ravel()),
        "log_loss": _r(_nll(np.where(y == 1, q, 1 - q).ravel())),
        "n": len(y),
    }


def span_metrics(
    predicted: Sequence[Sequence[tuple]], gold: Sequence[Sequence[tuple]], labels: Sequence[str]
) -> dict[str, Any]:
    """Exact-match spans (start, end, label): micro F1 is reported as `accuracy`, plus macro-F1 and per label."""
    per: dict[str, list[int]] = {name: [0, 0, 0] for name in labels}  # tp, predicted, gold
    for p_spans, g_spans in zip(predicted, gold, strict=True):
        ps, gs = set(map(tuple, p_spans)), set(map(tuple, g_spans))
        for s in ps:
            per[s[2]][1] += 1
        for s in gs:
            per[s[2]][2] += 1
        for s in ps & gs:
            per[s[2]][0] += 1

    def f1(tp: int, np_: int, ng: int) -> float:
        return 0.0 if tp == 0 else 2 * tp / (np_ + ng)

    totals = [sum(v[i] for v in per.values()) for i in range(3)]
    per_label = {name: _r(f1(*v)) for name, v in per.items()}
    return {
        "accuracy": _r(f1(*totals)),
        "macro_f1": _r(np.mean(list(per_label.values())) if per_label else 0.0),
        "per_label_f1": per_label,
        "confusion_matrix": None,
        "ece": None,
        "reliability": None,
        "log_loss": None,
        "n": len(gold),
    }


def evaluate_predictor(
    predictor: Predictor, task_type: str, labels: Sequence[str], validation: Sequence[tuple[int, str, Any]]
) -> dict[str, Any]:
    """The metrics of a loaded predictor (zero-shot or fine-tuned) on validation (item id, text, target)
    examples, by task type."""
    raws = predictor.predict([text for _, text, _ in validation])
    if task_type == "classification":
        return classification_metrics(np.stack([r.probabilities for r in raws]), [t for _, _, t in validation], labels)
    if task_type == "multilabel":
        gold = np.zeros((len(validation), len(labels)), dtype=np.int64)
        for row, (_, _, target) in enumerate(validation):
            gold[row, target] = 1
        return multilabel_metrics(np.stack([r.probabilities for r in raws]), gold, labels)
    predicted = [
        [
            (s["start"], s["end"], s["label"])
            for s in decode_spans(r.tags, np.asarray(r.marginals), np.asarray(r.offsets))
        ]
        for r in raws
    ]
    gold_spans = [[(s, e, labels[j]) for s, e, j in target] for _, _, target in validation]
    return span_metrics(predicted, gold_spans, labels)
