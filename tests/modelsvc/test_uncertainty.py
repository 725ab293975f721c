"""Uncertainty scores against values computed by hand."""

import math

import numpy as np
import pytest

from modelsvc.contracts import RawPrediction
from modelsvc.scoring import score
from modelsvc.uncertainty import classification_scores

P = np.array([[0.7, 0.2, 0.1], [0.4, 0.4, 0.2], [1.0, 0.0, 0.0], [1 / 3, 1 / 3, 1 / 3]])


def test_least_confidence_by_hand():
    np.testing.assert_allclose(classification_scores(P)["least_confidence"], [0.3, 0.6, 0.0, 2 / 3])


def test_margin_by_hand():
    # 1 - (best - second best): 1 - 0.5, a tie, certain, a three-way tie
    np.testing.assert_allclose(classification_scores(P)["margin"], [0.5, 1.0, 0.0, 1.0])


def test_entropy_by_hand():
    h0 = -(0.7 * math.log(0.7) + 0.2 * math.log(0.2) + 0.1 * math.log(0.1)) / math.log(3)
    h1 = -(2 * 0.4 * math.log(0.4) + 0.2 * math.log(0.2)) / math.log(3)
    np.testing.assert_allclose(classification_scores(P)["entropy"], [h0, h1, 0.0, 1.0], atol=1e-9)


def test_scores_rank_the_uncertain_item_first():
    scores = classification_scores(P)
    for values in scores.values():
        assert np.argmax(values) in (1, 3)  # the tie or the uniform row
        assert np.argmin(values) == 2  # the certain row


def test_two_classes_all_three_measures_rank_alike():
    # with two classes 1 - p_max, 2 (1 - p_max) and H(p_max) all fall as p_max rises; the active-learning
    # bench relies on it to report margin's runs for least confidence and entropy on binary datasets
    p_max = np.random.default_rng(7).uniform(0.5, 1.0, size=500)
    p = np.stack([p_max, 1.0 - p_max], axis=1)
    scores = classification_scores(p)
    np.testing.assert_allclose(scores["margin"], 2 * scores["least_confidence"])
    order = np.argsort(-scores["margin"], kind="stable")
    for name in ("least_confidence", "entropy"):
        np.testing.assert_array_equal(np.argsort(-scores[name], kind="stable"), order)
    # not so with three classes: (0.5, 0.25, 0.25) is less confident but more decided than (0.6, 0.4, 0.0)
    three = np.array([[0.5, 0.25, 0.25], [0.6, 0.4, 0.0]])
    assert classification_scores(three)["least_confidence"][0] > classification_scores(three)["least_confidence"][1]
    assert classification_scores(three)["margin"][0] < classification_scores(three)["margin"][1]


def test_saturated_rows_keep_their_order():
    # softmax of logit gaps 20, 40, 50, 60: p_max rounds to 1.0 for the last three, so 1 - p_max would be
    # 0 for them and the queue would serve them in id order; the scores keep them apart, in the same order
    # under every measure
    gaps = np.array([20.0, 40.0, 50.0, 60.0])
    p = np.stack([np.ones_like(gaps), np.exp(-gaps)], axis=1)
    p /= p.sum(axis=1, keepdims=True)
    assert (p[1:, 0] == 1.0).all()
    scores = classification_scores(p)
    np.testing.assert_allclose(scores["least_confidence"], np.exp(-gaps) / (1 + np.exp(-gaps)), rtol=1e-12)
    np.testing.assert_allclose(scores["margin"], 2 * scores["least_confidence"], rtol=1e-12)
    for values in scores.values():
        assert (values > 0).all()
        assert (np.diff(values) < 0).all(), values
    three = np.array([[1.0, np.exp(-50.0), np.exp(-70.0)], [1.0, np.exp(-55.0), np.exp(-52.0)]])
    three /= three.sum(axis=1, keepdims=True)
    for values in classification_scores(three).values():
        assert values[0] > values[1] > 0


def test_rejects_rows_that_are_not_distributions():
    with pytest.raises(ValueError, match="probability distribution"):
        classification_scores(np.array([[0.5, 0.6]]))
    with pytest.raises(ValueError, match="shape"):
        classification_scores(np.array([0.5, 0.5]))


def test_multilabel_scores_each_labels_yes_no_distribution_by_mean_and_max():
    h = lambda q: -(q * math.log2(q) + (1 - q) * math.log2(1 - q))  # noqa: E731 - binary entropy in bits
    out = score(
        RawPrediction(probabilities=np.array([0.5, 0.25, 0.25])),
        task_type="multilabel",
        labels=["a", "b", "c"],
        measure="entropy",
        model_version=1,
        kind="zero_shot",
    )
    assert out.scores["entropy"] == pytest.approx((1.0 + 2 * h(0.25)) / 3)
    assert out.scores["entropy_max"] == pytest.approx(1.0)


def test_span_token_marginals_mean_and_max():
    tags = ["O", "B-X", "I-X"]
    sure = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])  # two tokens, tags O/B/I
    torn = np.array([[1.0, 0.0, 0.0], [1 / 3, 1 / 3, 1 / 3]])
    offsets = np.array([[0, 1], [2, 3]])
    for marginals, mean, most in ((sure, 0.0, 0.0), (torn, 0.5, 1.0)):
        raw = RawPrediction.spans(tags, marginals, offsets)
        out = score(raw, task_type="spans", labels=["X"], measure="entropy", model_version=1, kind="zero_shot")
        assert out.scores["entropy"] == pytest.approx(mean, abs=1e-9)
        assert out.scores["entropy_max"] == pytest.approx(most, abs=1e-9)
    empty = RawPrediction.spans(tags, np.zeros((0, 3)), np.zeros((0, 2), dtype=np.int64))
    assert (
        score(empty, task_type="spans", labels=["X"], measure="entropy", model_version=1, kind="zero_shot").uncertainty
        == 0.0
    )
