"""Torch-free contracts between the web side and the model runtime (the model loop is its own issue).

Web code may import this module; only ``modelsvc/runtime/hf.py`` (and training) import torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Prediction:
    """Class probabilities for one text, in label order."""

    probabilities: tuple[float, ...]
    model_version: str


class Predictor(Protocol):
    """Anything that turns texts into class probabilities over a fixed label list."""

    labels: Sequence[str]

    def predict(self, texts: Sequence[str]) -> list[Prediction]: ...
