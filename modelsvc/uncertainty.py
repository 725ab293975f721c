"""Uncertainty scores over rows of class probabilities: pure numpy, no torch (usable anywhere).

Higher means less sure, for every score, so the queue can sort by any of them descending. For rows of
class probabilities, shape (n, k):
    least_confidence = 1 - max_c p_c
    margin           = 1 - (p_(1) - p_(2))     (breaking ties: small gap between the two best classes)
    entropy          = -sum_c p_c log p_c / log k    (normalised to [0, 1])
Multilabel and span predictions are scored as rows too (each label's yes/no distribution, each token's
BIO distribution) and aggregated per item by modelsvc.scoring.
"""

from __future__ import annotations

import numpy as np


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


def classification_scores(p: np.ndarray) -> dict[str, np.ndarray]:
    """The three scores of each row of `p` (n, k >= 2), one check and one sort for all three.

    Parameters
    ----------
    p : np.ndarray
        Rows of class probabilities, each non-negative and summing to 1.

    Returns
    -------
    dict[str, np.ndarray]
        "least_confidence", "margin" and "entropy", each of shape (n,), in [0, 1].

    Notes
    -----
    margin is computed as rest + second best (the same number as 1 - (best - second best), without
    rounding 1 - tiny to 1); the top class's entropy term, -p log p with p = 1 - rest, is taken as
    -(1 - rest) log1p(-rest), so a saturated row keeps its (tiny) entropy.
    """
    s, rest = _rest(_check_probabilities(p))
    return {"least_confidence": rest, "margin": _margin(s, rest), "entropy": _entropy(s, rest)}
