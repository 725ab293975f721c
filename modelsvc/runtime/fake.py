"""A deterministic predictor for fast unit tests only (TANDEM_MODEL_BACKEND=fake).

A label whose name appears in the text as a word gets a high score, every other label a score from a
hash of (text, label): the same text always gives the same probabilities, and deleting the label's
word lowers its score, so explanations by occlusion point at it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np

from modelsvc.contracts import PredictorBase, PredictorSpec, bio_tags


def _noise(text: str, label: str) -> float:
    digest = hashlib.sha256(f"{label}\x00{text}".encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32


class FakePredictor(PredictorBase):
    def __init__(self, spec: PredictorSpec) -> None:
        self.spec = spec
        self.names = spec.label_names
        self.tags = bio_tags(self.names)

    def _logits(self, text: str) -> np.ndarray:
        lowered = set(re.findall(r"\w+", text.lower()))
        return np.array([_noise(text, n) + (3.0 if n.lower() in lowered else 0.0) for n in self.names])

    def _probabilities(self, texts: Sequence[str]) -> np.ndarray:
        logits = np.array([self._logits(t) for t in texts]).reshape(len(texts), len(self.names))
        if self.spec.task_type == "multilabel":
            return 1.0 / (1.0 + np.exp(-(logits - 1.5)))
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def _spans(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        words = [(m.start(), m.end()) for m in re.finditer(r"\w+", text)]
        k = len(self.names)
        marginals = np.zeros((len(words), 1 + 2 * k))
        for t, (start, end) in enumerate(words):
            word = text[start:end].lower()
            hits = [j for j, n in enumerate(self.names) if n.lower() == word]
            if hits:
                marginals[t, 1 + 2 * hits[0]] = 0.8
                marginals[t, 0] = 0.2
            else:
                marginals[t, 0] = 0.6 + 0.4 * _noise(text[start:end], "O")
                marginals[t, 1] = 1.0 - marginals[t, 0]
        return np.array(words, dtype=np.int64).reshape(-1, 2), marginals

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Deterministic pseudo-embeddings (8 dimensions from a hash of the text), L2-normalised."""
        rows = np.array([[_noise(t, str(d)) - 0.5 for d in range(8)] for t in texts]).reshape(len(texts), 8)
        return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)

    def _span_outputs(self, texts: Sequence[str]) -> list[tuple[np.ndarray, np.ndarray]]:
        return [self._spans(text) for text in texts]
