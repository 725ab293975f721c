"""Cold start, before any model is trained: zero-shot suggestions and a diverse first batch.

Zero-shot: each label is embedded from its name (and description, when it has one) with the same
sentence encoder as the items; an item's probabilities are the softmax of its cosine similarities to
the labels, divided by a temperature. Diversity: k-means on the item embeddings, and the item nearest
each centre, so the first labels an expert gives cover the whole pool rather than its densest corner.

Pure numpy + scikit-learn over embeddings (no torch here): the encoder is one of modelsvc/runtime's
(ONNX Runtime on a CPU worker, torch on CUDA), used by modelsvc.runtime.predictors.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.cluster import KMeans

DEFAULT_TEMPERATURE = 0.05  # cosine similarities of MiniLM sit in a narrow band; this spreads them


def label_prompts(labels: Sequence[dict[str, Any]]) -> list[str]:
    """The text embedded for each label: "name: description", or the name alone."""
    return [
        f"{label['name']}: {label['description']}" if label.get("description") else label["name"] for label in labels
    ]


def zero_shot_probabilities(
    item_embeddings: np.ndarray, label_embeddings: np.ndarray, *, temperature: float = DEFAULT_TEMPERATURE
) -> np.ndarray:
    """Softmax over labels of cosine similarity / temperature; rows sum to 1.

    Both inputs are L2-normalised embeddings, shapes (n, d) and (k, d).
    """
    if temperature <= 0:
        raise ValueError("temperature must be positive")
    logits = np.asarray(item_embeddings, dtype=np.float64) @ np.asarray(label_embeddings, dtype=np.float64).T
    logits /= temperature
    logits -= logits.max(axis=1, keepdims=True)
    weights = np.exp(logits)
    return weights / weights.sum(axis=1, keepdims=True)


def diversity_pick(item_embeddings: np.ndarray, k: int, *, seed: int = 0) -> list[int]:
    """Indices of k items spread over the pool: the item nearest each k-means centre (distinct, in cluster order)."""
    emb = np.asarray(item_embeddings, dtype=np.float64)
    n = emb.shape[0]
    if k <= 0 or n == 0:
        return []
    if k >= n:
        return list(range(n))
    km = KMeans(n_clusters=k, n_init=4, random_state=seed).fit(emb)
    picked: list[int] = []
    for centre in km.cluster_centers_:
        order = np.argsort(((emb - centre) ** 2).sum(axis=1))
        picked.append(int(next(i for i in order if i not in picked)))
    return picked
