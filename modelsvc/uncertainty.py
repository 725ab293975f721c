"""Uncertainty scores over predicted probabilities: pure numpy, no torch (usable anywhere).

Higher means less sure, for every score, so the queue can sort by any of them descending.

Classification (rows of class probabilities, shape (n, k)):
    least_confidence = 1 - max_c p_c
    margin           = 1 - (p_(1) - p_(2))     (breaking ties: small gap between the two best classes)
    entropy          = -sum_c p_c log p_c / log k    (normalised to [0, 1])
Multilabel (independent label probabilities, shape (n, k)):
    the per-label binary entropy H(p) = -p log p - (1-p) log(1-p), in bits, aggregated by mean and max.
Spans (token-level BIO marginals, one (tokens, tags) array per item):
    token entropy normalised by log(tags), aggregated per item by mean and max.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

_EPS = 1e-12


def _check_probabilities(p: np.ndarray, *, axis: int = -1) -> np.ndarray:
    p = np.asarray(p, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] < 2:
        raise ValueError(f"expected an (n, k >= 2) array of probabilities, got shape {p.shape}")
    if np.any(p < -1e-9) or not np.allclose(p.sum(axis=axis), 1.0, atol=1e-4):
        raise ValueError("each row must be a probability distribution (non-negative, summing to 1)")
    return np.clip(p, 0.0, 1.0)


def _rest(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows sorted ascending (renormalised), and each row's mass outside its top class, summed from the
    small probabilities themselves. 1 - p_max would round to 0 for every confident item (p_max is 1.0
    in floating point once the rest is below ~1e-16), and the queue would fall back to id order among
    them; the sum of the rest keeps them apart down to the smallest representable probability."""
    s = np.sort(p / p.sum(axis=1, keepdims=True), axis=1)
    return s, s[:, :-1].sum(axis=1)


def _margin(s: np.ndarray, rest: np.ndarray) -> np.ndarray:
    return np.minimum(rest + s[:, -2], 1.0)


def _entropy(s: np.ndarray, rest: np.ndarray) -> np.ndarray:
    small = s[:, :-1]
    h = -(small * np.log(np.clip(small, np.finfo(np.float64).tiny, 1.0))).sum(axis=1)
    h -= (1.0 - rest) * np.log1p(-np.minimum(rest, 1.0 - 1e-16))
    return np.clip(h / np.log(s.shape[1]), 0.0, 1.0)


def least_confidence(p: np.ndarray) -> np.ndarray:
    """1 - the probability of the most likely class, per row."""
    return _rest(_check_probabilities(p))[1]


def margin(p: np.ndarray) -> np.ndarray:
    """1 - (best - second best), per row: 1 when the two best classes tie, 0 when one class has it all.
    Computed as rest + second best (the same number, without rounding 1 - tiny to 1)."""
    return _margin(*_rest(_check_probabilities(p)))


def entropy(p: np.ndarray) -> np.ndarray:
    """Shannon entropy per row, normalised by log(k) to [0, 1]. The top class's term, -p log p with
    p = 1 - rest, is taken as -(1 - rest) log1p(-rest), so a saturated row keeps its (tiny) entropy."""
    return _entropy(*_rest(_check_probabilities(p)))


def classification_scores(p: np.ndarray) -> dict[str, np.ndarray]:
    """The three scores of each row (one check and one sort for all three)."""
    s, rest = _rest(_check_probabilities(p))
    return {"least_confidence": rest, "margin": _margin(s, rest), "entropy": _entropy(s, rest)}


def binary_entropy(q: np.ndarray) -> np.ndarray:
    """Elementwise binary entropy in bits (1 at q = 0.5, 0 at q in {0, 1})."""
    q = np.clip(np.asarray(q, dtype=np.float64), 0.0, 1.0)
    qc = np.clip(q, _EPS, 1.0)
    rc = np.clip(1.0 - q, _EPS, 1.0)
    return -(q * np.log2(qc) + (1.0 - q) * np.log2(rc))


def multilabel_scores(q: np.ndarray) -> dict[str, np.ndarray]:
    """Per-label binary entropy aggregated per item (mean and max) for independent label probabilities."""
    q = np.asarray(q, dtype=np.float64)
    if q.ndim != 2 or np.any(q < 0) or np.any(q > 1):
        raise ValueError("expected an (n, k) array of label probabilities in [0, 1]")
    h = binary_entropy(q)
    return {"mean_entropy": h.mean(axis=1), "max_entropy": h.max(axis=1)}


def span_scores(marginals: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
    """Token-level BIO tag marginals (one (tokens, tags) array per item) -> normalised token entropy, mean and max."""
    means, maxes = [], []
    for m in marginals:
        m = np.asarray(m, dtype=np.float64)
        if m.ndim != 2 or m.shape[0] == 0:
            means.append(0.0)
            maxes.append(0.0)
            continue
        h = entropy(m)
        means.append(float(h.mean()))
        maxes.append(float(h.max()))
    return {"mean_entropy": np.array(means), "max_entropy": np.array(maxes)}
