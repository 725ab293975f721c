"""Torch-free contracts between the Django side (modelsvc.services) and the model runtimes.

Web code may import this module; only ``modelsvc/runtime/hf.py`` (and training) import torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class PredictorSpec:
    """What to load: hashable, so a worker process keeps one loaded predictor per spec."""

    backend: str  # "hf" | "fake"
    task_type: str  # "classification" | "multilabel" | "spans"
    labels: tuple[tuple[str, str], ...]  # (name, description) in label order
    kind: str = "zero_shot"  # "zero_shot" | "fine_tuned"
    model_path: str = ""  # a local Hugging Face model directory; "" = the packaged MiniLM
    artifact_path: str = ""  # a fine-tuned version's directory
    sha256: str = ""  # of the artifact's model.safetensors, checked on load

    @property
    def label_names(self) -> list[str]:
        return [name for name, _ in self.labels]


def bio_tags(labels: Sequence[str]) -> list[str]:
    """A span model's tags: "O", then "B-<label>" and "I-<label>" for each label in order (the columns of
    RawPrediction.marginals, and the outputs of a fine-tuned span head)."""
    return ["O"] + [f"{p}-{name}" for name in labels for p in ("B", "I")]


@dataclass
class RawPrediction:
    """One text's model output, before it is turned into the REST shape (modelsvc.scoring).

    classification: `probabilities` over labels, summing to 1.
    multilabel: `probabilities` independent per label, each in [0, 1].
    spans: `tags` ("O", "B-<label>", "I-<label>", ...), `marginals` (tokens, tags) summing to 1 per
    token, and `offsets` (tokens, 2): each token's [start, end) in characters of the text.
    """

    probabilities: np.ndarray
    tags: Sequence[str] = ()
    marginals: np.ndarray | None = None
    offsets: np.ndarray | None = None

    @classmethod
    def spans(cls, tags: Sequence[str], marginals: np.ndarray, offsets: np.ndarray) -> RawPrediction:
        """A span prediction; `probabilities` per label is its highest B+I token probability."""
        k = (len(tags) - 1) // 2
        per_label = np.array(
            [marginals[:, 1 + 2 * j : 3 + 2 * j].sum(axis=1).max() if len(marginals) else 0.0 for j in range(k)]
        )
        return cls(probabilities=per_label, tags=tags, marginals=marginals, offsets=offsets)


class Predictor(Protocol):
    """A loaded model: texts in, raw predictions out; `score` is what explanations occlude."""

    spec: PredictorSpec

    def predict(self, texts: Sequence[str]) -> list[RawPrediction]: ...

    def score(self, texts: Sequence[str], target: str) -> np.ndarray:
        """How strongly the model suggests label `target` for each text (a probability in [0, 1])."""
        ...

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalised text embeddings (n, d), for the cold-start diversity pick."""
        ...


class PredictorBase:
    """`predict` and `score` over two hooks a runtime implements: `_probabilities(texts)` (n, k) for
    classification / multilabel, and `_span_outputs(texts)` [(offsets, BIO marginals)] for spans."""

    spec: PredictorSpec
    tags: Sequence[str]

    def _probabilities(self, texts: Sequence[str]) -> np.ndarray:
        raise NotImplementedError

    def _span_outputs(self, texts: Sequence[str]) -> list[tuple[np.ndarray, np.ndarray]]:
        raise NotImplementedError

    def predict(self, texts: Sequence[str]) -> list[RawPrediction]:
        if self.spec.task_type == "spans":
            return [RawPrediction.spans(self.tags, m, offsets) for offsets, m in self._span_outputs(texts)]
        return [RawPrediction(probabilities=row) for row in self._probabilities(texts)]

    def score(self, texts: Sequence[str], target: str) -> np.ndarray:
        j = self.spec.label_names.index(target)
        if self.spec.task_type == "spans":
            return np.array([raw.probabilities[j] for raw in self.predict(texts)])
        return np.asarray(self._probabilities(texts))[:, j]


class ModelUnavailable(RuntimeError):
    """The model could not be loaded (missing, incomplete, not safetensors): the Job fails with this message."""
