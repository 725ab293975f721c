"""Why the model suggests a label: occlusion of words, model-agnostic (works for spans too).

Each word (or, for long texts, each window of words) is deleted in turn, and its weight is how much
the model's score for the suggested label drops without it: positive = the word supports the label.
All variants go to the model as one batch. Offsets are characters of the original text (Python code
points, the same as annotation offsets). No torch here: the score function comes from the predictor.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence

import numpy as np

# a word with its combining marks (and inner apostrophes), or a run of other visible characters
# (punctuation; an emoji sequence joined by ZWJ stays one token)
WORD = re.compile(r"[\w\u0300-\u036f]+(?:['\u2019][\w\u0300-\u036f]+)*|[^\w\s]+", re.UNICODE)


def words(text: str) -> list[tuple[int, int]]:
    """[start, end) character offsets of the words and punctuation marks of `text`."""
    return [(m.start(), m.end()) for m in WORD.finditer(text)]


def occlusion(
    text: str, score: Callable[[Sequence[str]], np.ndarray], *, max_variants: int = 64
) -> list[dict[str, object]]:
    """Token attributions: [{"text", "start", "end", "weight"}] with weight = score(text) - score(text
    without the token's window), rounded; windows of ceil(n / max_variants) words keep long texts to
    one batch of at most `max_variants` + 1 texts."""
    spans = words(text)
    if not spans:
        return []
    size = max(1, math.ceil(len(spans) / max_variants))
    windows = [spans[i : i + size] for i in range(0, len(spans), size)]
    variants = [text]
    for window in windows:
        start, end = window[0][0], window[-1][1]
        variants.append(text[:start] + text[end:])
    scores = np.asarray(score(variants), dtype=np.float64)
    base = scores[0]
    tokens = []
    for window, s in zip(windows, scores[1:], strict=True):
        for start, end in window:
            tokens.append({"text": text[start:end], "start": start, "end": end, "weight": round(float(base - s), 6)})
    return tokens
