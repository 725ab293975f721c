"""Occlusion explanations: offsets in characters, and the word that decides the label on top."""

from __future__ import annotations

import numpy as np
import pytest

from modelsvc.explain import occlusion, words


def test_word_offsets_are_python_characters():
    text = "Hi 👩\u200d💻 café\r\nnaïve e\u0301! don't"
    spans = words(text)
    got = [text[s:e] for s, e in spans]
    assert got == ["Hi", "👩\u200d💻", "café", "naïve", "e\u0301", "!", "don't"]
    assert spans[2] == (7, 11)  # code points: the emoji sequence before it is 3 of them
    for s, e in spans:
        assert text[s:e].strip() == text[s:e]


def test_occlusion_weights_the_deciding_word():
    def score(texts):
        return np.array([0.9 if "goal" in t else 0.2 for t in texts])

    tokens = occlusion("what a goal that was", score)
    top = max(tokens, key=lambda t: t["weight"])
    assert top["text"] == "goal"
    assert top["start"] == 7
    assert top["end"] == 11
    assert top["weight"] == pytest.approx(0.7)
    assert all(t["weight"] == 0 for t in tokens if t["text"] != "goal")


def test_long_texts_are_occluded_in_windows_of_one_batch():
    calls = []

    def score(texts):
        calls.append(len(texts))
        return np.zeros(len(texts))

    text = " ".join(f"w{i}" for i in range(500))
    tokens = occlusion(text, score, max_variants=50)
    assert calls == [51]
    assert len(tokens) == 500


@pytest.mark.ml
def test_real_model_puts_a_planted_keyword_on_top():
    """The real MiniLM, zero-shot: the planted word that decides the label gets the top attribution."""
    from modelsvc.contracts import PredictorSpec
    from modelsvc.runtime.config import EncoderConfig
    from modelsvc.runtime.encoders import shared_encoder
    from modelsvc.runtime.predictors import ZeroShotPredictor

    spec = PredictorSpec(
        backend="hf",
        task_type="classification",
        labels=(("football", "sports, matches, goals"), ("cooking", "food, recipes, kitchen")),
    )
    predictor = ZeroShotPredictor(spec, shared_encoder(EncoderConfig(cpu_threads=2), "torch"))
    for text, planted in (
        ("I told my neighbour about the weekend and the striker was amazing", "striker"),
        ("We spent the afternoon at home, and the recipe turned out great", "recipe"),
    ):
        label = spec.label_names[int(np.argmax(predictor._probabilities([text])[0]))]
        tokens = occlusion(text, lambda texts, label=label: predictor.score(texts, label))
        top = max(tokens, key=lambda t: t["weight"])
        assert top["text"] == planted, (label, sorted(tokens, key=lambda t: -t["weight"])[:3])
