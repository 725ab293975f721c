"""Validation metrics against values computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from modelsvc.evaluation import (
    classification_metrics,
    expected_calibration_error,
    multilabel_metrics,
    reliability_bins,
    span_metrics,
)


def test_ece_by_hand():
    # bin (0.8, 0.9]: confidences 0.9, 0.9 with 1 of 2 correct -> |0.5 - 0.9| = 0.4, weight 2/4
    # bin (0.5, 0.6]: confidences 0.6, 0.6 with 2 of 2 correct -> |1.0 - 0.6| = 0.4, weight 2/4
    assert expected_calibration_error(np.array([0.9, 0.9, 0.6, 0.6]), np.array([1, 0, 1, 1])) == pytest.approx(0.4)
    assert expected_calibration_error(np.array([1.0, 1.0]), np.array([1, 1])) == pytest.approx(0.0)


def test_classification_metrics_by_hand():
    p = np.array([[0.8, 0.2], [0.3, 0.7], [0.6, 0.4], [0.1, 0.9]])
    m = classification_metrics(p, [0, 1, 1, 1], ["a", "b"])
    assert m["accuracy"] == 0.75
    assert m["confusion_matrix"] == [[1, 0], [1, 2]]
    # a: precision 1/2, recall 1 -> 2/3; b: precision 1, recall 2/3 -> 0.8
    assert m["per_label_f1"] == {"a": pytest.approx(2 / 3, abs=1e-6), "b": pytest.approx(0.8)}
    assert m["macro_f1"] == pytest.approx((2 / 3 + 0.8) / 2, abs=1e-6)
    # -log of the gold class's probability, averaged: 0.8, 0.7, 0.4, 0.9
    assert m["log_loss"] == pytest.approx(-np.log([0.8, 0.7, 0.4, 0.9]).mean(), abs=1e-6)


def test_multilabel_subset_accuracy():
    m = multilabel_metrics(np.array([[0.9, 0.2], [0.6, 0.7]]), np.array([[1, 0], [1, 0]]), ["x", "y"])
    assert m["accuracy"] == 0.5  # the second row predicts y too
    assert m["per_label_f1"]["x"] == 1.0
    # every (item, label) probability of the gold answer: 0.9, 0.8, 0.6, 0.3
    assert m["log_loss"] == pytest.approx(-np.log([0.9, 0.8, 0.6, 0.3]).mean(), abs=1e-6)


def test_span_metrics_exact_match():
    predicted = [[(0, 3, "PER"), (5, 9, "LOC")], [(1, 2, "PER")]]
    gold = [[(0, 3, "PER"), (5, 8, "LOC")], [(1, 2, "PER")]]
    m = span_metrics(predicted, gold, ["PER", "LOC"])
    assert m["per_label_f1"] == {"PER": 1.0, "LOC": 0.0}
    assert m["accuracy"] == pytest.approx(2 * 2 / (3 + 3), abs=1e-6)  # micro: 2 of 3 predicted, 2 of 3 gold


def test_reliability_bins_and_ece_are_one_binning():
    rng = np.random.default_rng(7)
    p = rng.dirichlet([1.0, 1.0, 1.0], size=200)
    y = rng.integers(0, 3, size=200)
    m = classification_metrics(p, y.tolist(), ["a", "b", "c"])
    bins = m["reliability"]
    assert [b["bin"] for b in bins] == pytest.approx([0.1 * i for i in range(1, 11)])
    assert sum(b["n"] for b in bins) == 200
    # each bin against numpy directly: (lo, hi] of the top probability
    top, correct = p.max(axis=1), p.argmax(axis=1) == y
    for b in bins:
        inside = (top > b["bin"] - 0.1 + 1e-12) & (top <= b["bin"] + 1e-12)
        assert b["n"] == inside.sum()
        if b["n"]:
            assert b["confidence"] == pytest.approx(top[inside].mean(), abs=1e-6)
            assert b["accuracy"] == pytest.approx(correct[inside].mean(), abs=1e-6)
        else:
            assert b["confidence"] is None
            assert b["accuracy"] is None
    # the ECE is the bin-size-weighted mean |accuracy - confidence| of those bins
    weighted = sum(b["n"] / 200 * abs(b["accuracy"] - b["confidence"]) for b in bins if b["n"])
    assert m["ece"] == pytest.approx(weighted, abs=1e-5)
    assert m["ece"] > 0


def test_classification_metrics_match_sklearn():
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

    rng = np.random.default_rng(3)
    p = rng.dirichlet([2.0, 1.0, 0.5], size=120)
    y = rng.integers(0, 3, size=120)
    pred = p.argmax(axis=1)
    m = classification_metrics(p, y.tolist(), ["a", "b", "c"])
    assert m["accuracy"] == pytest.approx(accuracy_score(y, pred), abs=1e-6)
    assert m["macro_f1"] == pytest.approx(f1_score(y, pred, average="macro", labels=[0, 1, 2]), abs=1e-6)
    per_label = f1_score(y, pred, average=None, labels=[0, 1, 2])
    assert [m["per_label_f1"][k] for k in "abc"] == pytest.approx(list(per_label), abs=1e-6)
    assert m["confusion_matrix"] == confusion_matrix(y, pred, labels=[0, 1, 2]).tolist()


def test_multilabel_reliability_over_every_label_decision():
    q = np.array([[0.95, 0.3], [0.55, 0.05]])
    y = np.array([[1, 1], [0, 0]])
    m = multilabel_metrics(q, y, ["x", "y"])
    # decisions: x chosen at 0.95 (right), y not at 0.7 (wrong), x chosen at 0.55 (wrong), y not at 0.95 (right)
    filled = {b["bin"]: b for b in m["reliability"] if b["n"]}
    assert sorted(filled) == [0.6, 0.7, 1.0]  # upper edges, rounded as stored
    assert filled[1.0]["n"] == 2
    assert filled[1.0]["accuracy"] == 1.0
    assert filled[0.7]["accuracy"] == 0.0
    assert filled[0.6]["accuracy"] == 0.0
    assert m["ece"] == pytest.approx((2 * 0.05 + 0.7 + 0.55) / 4, abs=1e-6)


def test_spans_have_no_reliability():
    assert span_metrics([[(0, 1, "PER")]], [[(0, 1, "PER")]], ["PER"])["reliability"] is None


def test_ece_of_nothing_is_zero_and_bins_are_empty():
    assert expected_calibration_error(np.array([]), np.array([])) == 0.0
    assert all(b["n"] == 0 for b in reliability_bins(np.array([]), np.array([])))
