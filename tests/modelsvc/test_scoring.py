"""The REST prediction shape and queue priorities, checked against values computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from modelsvc.contracts import RawPrediction
from modelsvc.scoring import decode_spans, priorities, score


def test_classification_contract_by_hand():
    out = score(
        RawPrediction(probabilities=np.array([0.7, 0.2, 0.1])),
        task_type="classification",
        labels=["a", "b", "c"],
        measure="margin",
        model_version=3,
        kind="zero_shot",
    ).contract
    assert out["value"] == {"label": "a"}
    assert out["model_version"] == 3
    assert out["probabilities"] == {"a": 0.7, "b": 0.2, "c": 0.1}
    entropy = -(0.7 * math.log(0.7) + 0.2 * math.log(0.2) + 0.1 * math.log(0.1)) / math.log(3)
    assert out["scores"]["least_confidence"] == pytest.approx(0.3)
    assert out["scores"]["margin"] == pytest.approx(1 - (0.7 - 0.2))
    assert out["scores"]["entropy"] == pytest.approx(entropy, abs=1e-6)
    assert out["uncertainty"] == out["scores"]["margin"]


def test_measure_picks_the_uncertainty():
    raw = RawPrediction(probabilities=np.array([0.5, 0.5]))
    for measure, expected in (("least_confidence", 0.5), ("margin", 1.0), ("entropy", 1.0)):
        out = score(
            raw, task_type="classification", labels=["x", "y"], measure=measure, model_version=1, kind="zero_shot"
        ).contract
        assert out["uncertainty"] == pytest.approx(expected)
    with pytest.raises(ValueError):
        score(raw, task_type="classification", labels=["x", "y"], measure="vibes", model_version=1, kind="zero_shot")


def test_exact_scores_keep_apart_what_the_json_rounds_together():
    # two confident items 3e-7 apart: the JSON shows both as 1e-06 least confidence, the queue must not
    a, b = (
        score(
            RawPrediction(probabilities=np.array([1 - eps, eps])),
            task_type="classification",
            labels=["x", "y"],
            measure="least_confidence",
            model_version=1,
            kind="zero_shot",
        )
        for eps in (1.1e-6, 1.4e-6)
    )
    assert a.contract["uncertainty"] == b.contract["uncertainty"] == 1e-06
    assert a.uncertainty == pytest.approx(1.1e-6, rel=1e-9)
    assert b.uncertainty > a.uncertainty
    assert b.scores["margin"] > a.scores["margin"]
    assert b.scores["entropy"] > a.scores["entropy"]
    assert a.contract["scores"]["margin"] == round(a.scores["margin"], 6)


def test_multilabel_contract_by_hand():
    out = score(
        RawPrediction(probabilities=np.array([0.9, 0.5, 0.1])),
        task_type="multilabel",
        labels=["a", "b", "c"],
        measure="entropy",
        model_version=1,
        kind="zero_shot",
    ).contract
    assert out["value"] == {"labels": ["a", "b"]}
    h = lambda q: -(q * math.log2(q) + (1 - q) * math.log2(1 - q))  # noqa: E731
    assert out["scores"]["entropy"] == pytest.approx((h(0.9) + 1.0 + h(0.1)) / 3, abs=1e-6)
    assert out["scores"]["entropy_max"] == pytest.approx(1.0)
    assert out["scores"]["least_confidence"] == pytest.approx((0.1 + 0.5 + 0.1) / 3, abs=1e-6)


def test_span_decoding_bio():
    tags = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
    m = np.array(
        [
            [0.1, 0.8, 0.05, 0.05, 0.0],  # B-PER
            [0.1, 0.0, 0.7, 0.1, 0.1],  # I-PER continues
            [0.9, 0.0, 0.0, 0.1, 0.0],  # O
            [0.2, 0.0, 0.0, 0.0, 0.8],  # I-LOC without B: starts a span
            [0.2, 0.6, 0.0, 0.2, 0.0],  # B-PER right after: adjacent span
        ]
    )
    offsets = np.array([[0, 3], [4, 9], [10, 12], [13, 19], [20, 24]])
    spans = decode_spans(tags, m, offsets)
    assert spans == [
        {"start": 0, "end": 9, "label": "PER", "score": pytest.approx(0.75)},
        {"start": 13, "end": 19, "label": "LOC", "score": pytest.approx(0.8)},
        {"start": 20, "end": 24, "label": "PER", "score": pytest.approx(0.6)},
    ]
    out = score(
        RawPrediction(probabilities=np.array([0.8, 0.8]), tags=tags, marginals=m, offsets=offsets),
        task_type="spans",
        labels=["PER", "LOC"],
        measure="entropy",
        model_version=1,
        kind="zero_shot",
    ).contract
    assert out["value"]["spans"][0]["label"] == "PER"
    assert 0 < out["uncertainty"] < 1


def test_priorities_follow_uncertainty_without_exploration():
    ids = list(range(1, 11))
    u = [i / 10 for i in ids]
    assert priorities(ids, u, exploration_rate=0.0, seed=1) == u


def test_exploration_moves_about_its_share_to_random_ranks_deterministically():
    ids = list(range(1, 2001))
    u = list(np.linspace(0, 1, 2000))
    a = priorities(ids, u, exploration_rate=0.1, seed=7)
    assert a == priorities(ids, u, exploration_rate=0.1, seed=7)  # a redelivered chunk computes the same
    moved = sum(1 for x, y in zip(a, u, strict=True) if x != y)
    assert 120 < moved < 280  # ~10% of 2000 (binomial sd ~13)
    assert set(a) <= set(u)  # an explored item takes another item's score: ranks stay in range
    everything = priorities(ids, u, exploration_rate=1.0, seed=7)
    assert sum(1 for x, y in zip(everything, u, strict=True) if x != y) > 1900


def test_first_picks_go_ahead_in_order():
    out = priorities([1, 2, 3, 4], [0.9, 0.1, 0.5, 0.2], exploration_rate=0.0, seed=0, first=[4, 2])
    assert out[3] > out[1] > max(out[0], out[2])


def test_contract_carries_the_versions_kind_and_the_confidence_of_its_value():
    def contract(p, task_type, kind="fine_tuned"):
        return score(
            RawPrediction(probabilities=np.array(p)),
            task_type=task_type,
            labels=["a", "b", "c"],
            measure="margin",
            model_version=2,
            kind=kind,
        ).contract

    single = contract([0.2, 0.7, 0.1], "classification", kind="zero_shot")
    assert single["kind"] == "zero_shot"
    assert single["confidence"] == pytest.approx(0.7)  # the predicted label's probability
    chosen = contract([0.9, 0.6, 0.1], "multilabel")
    assert chosen["kind"] == "fine_tuned"
    assert chosen["value"] == {"labels": ["a", "b"]}
    assert chosen["confidence"] == pytest.approx((0.9 + 0.6) / 2)  # the mean over the chosen labels
    none = contract([0.2, 0.3, 0.1], "multilabel")
    assert none["value"] == {"labels": []}
    assert none["confidence"] == pytest.approx((0.8 + 0.7 + 0.9) / 3)  # nothing chosen: the mean of 1 - p
    tags = ["O", "B-a", "I-a"]
    spans = score(
        RawPrediction.spans(tags, np.array([[0.1, 0.9, 0.0]]), np.array([[0, 1]])),
        task_type="spans",
        labels=["a"],
        measure="entropy",
        model_version=2,
        kind="fine_tuned",
    ).contract
    assert spans["confidence"] is None  # each span carries its own score
