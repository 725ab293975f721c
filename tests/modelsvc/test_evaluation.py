"""Validation metrics against values computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from modelsvc.evaluation import classification_metrics, expected_calibration_error, multilabel_metrics, span_metrics


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
