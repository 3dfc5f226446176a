"""Metrics against hand-computed cases and brute-force references on random data."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from lstmfpga.foundation.errors import InputError
from lstmfpga.model.metrics import binary_metrics, confusion_matrix, metrics_by_kind, roc_auc, roc_curve


def test_hand_computed_case():
    labels = [1, 1, 1, 0, 0, 0, 0, 1]
    scores = [0.9, 0.6, 0.2, 0.7, 0.1, 0.3, 0.5, 0.8]
    # predicted fake (> 0.5): 0.9 0.6 0.7 0.8 -> TP = 3 (0.9, 0.6, 0.8), FP = 1 (0.7),
    # FN = 1 (0.2), TN = 3 (0.1, 0.3, 0.5: 0.5 is not above the threshold).
    m = binary_metrics(labels, scores, loss=0.25)
    assert m["confusion_matrix"] == [[3, 1], [1, 3]]
    assert m["accuracy"] == pytest.approx(6 / 8)
    assert m["precision"] == pytest.approx(3 / 4)
    assert m["recall"] == pytest.approx(3 / 4)
    assert m["f1"] == pytest.approx(3 / 4)
    assert m["loss"] == 0.25 and m["n"] == 8
    # positive/negative pairs ordered correctly: 0.9 beats all 4, 0.8 all 4, 0.6 beats 0.1 0.3 0.5,
    # 0.2 beats 0.1 -> 4 + 4 + 3 + 1 = 12 of 16.
    assert m["roc_auc"] == pytest.approx(12 / 16)


def test_hand_computed_precision_recall_differ():
    labels = [1, 1, 1, 1, 0, 0]
    scores = [0.9, 0.1, 0.2, 0.3, 0.8, 0.4]
    m = binary_metrics(labels, scores)
    # TP = 1, FP = 1, FN = 3, TN = 1
    assert m["confusion_matrix"] == [[1, 1], [3, 1]]
    assert m["precision"] == pytest.approx(0.5)
    assert m["recall"] == pytest.approx(0.25)
    assert m["f1"] == pytest.approx(2 * 0.5 * 0.25 / 0.75)


def test_ties_count_half_and_degenerate_cases():
    assert roc_auc([0, 1], [0.5, 0.5]) == pytest.approx(0.5)
    assert roc_auc([0, 0, 1], [0.2, 0.4, 0.4]) == pytest.approx(0.75)
    assert math.isnan(roc_auc([1, 1, 1], [0.1, 0.2, 0.3]))
    m = binary_metrics([0, 0, 0], [0.1, 0.2, 0.3])
    assert m["precision"] == 0.0 and m["recall"] == 0.0 and m["f1"] == 0.0 and m["accuracy"] == 1.0


@pytest.mark.parametrize("n", [1, 2, 7, 64, 257])
def test_against_brute_force_on_random_data(n):
    rng = np.random.default_rng(n)
    labels = rng.integers(0, 2, n)
    scores = rng.integers(0, 6, n) / 5.0  # many ties on purpose
    predictions = (scores > 0.5).astype(int)
    expected = np.zeros((2, 2), int)
    for y, p in zip(labels, predictions):
        expected[y, p] += 1
    assert confusion_matrix(labels, predictions).tolist() == expected.tolist()

    pos = scores[labels == 1]
    neg = scores[labels == 0]
    if pos.size and neg.size:
        wins = sum(1.0 if p > q else 0.5 if p == q else 0.0 for p, q in itertools.product(pos, neg))
        assert roc_auc(labels, scores) == pytest.approx(wins / (pos.size * neg.size))
        fpr, tpr, thresholds = roc_curve(labels, scores)
        assert fpr[0] == 0 and tpr[0] == 0 and fpr[-1] == pytest.approx(1) and tpr[-1] == pytest.approx(1)
        assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0)
        assert np.trapezoid(tpr, fpr) == pytest.approx(wins / (pos.size * neg.size))
        for f, t, thr in zip(fpr[1:], tpr[1:], thresholds[1:]):
            assert t == pytest.approx((pos >= thr).mean()) and f == pytest.approx((neg >= thr).mean())


def test_metrics_by_kind_compares_each_fake_kind_with_all_reals():
    labels = np.array([0, 0, 1, 1, 1, 1])
    kinds = np.array(["none", "none", "temporal", "temporal", "spatial", "both"])
    scores = np.array([0.1, 0.6, 0.9, 0.2, 0.7, 0.8])
    by_kind = metrics_by_kind(labels, scores, kinds)
    assert sorted(by_kind) == ["both", "spatial", "temporal"]
    assert by_kind["temporal"]["n"] == 4 and by_kind["temporal"]["n_fake"] == 2
    assert by_kind["temporal"]["accuracy"] == pytest.approx(2 / 4)  # 0.1 real ok, 0.6 wrong, 0.9 ok, 0.2 wrong
    assert by_kind["spatial"]["accuracy"] == pytest.approx(2 / 3)


def test_bad_inputs_are_named():
    with pytest.raises(InputError, match="labels must be 0 or 1"):
        binary_metrics([0, 2], [0.1, 0.2])
    with pytest.raises(InputError, match="scores must have the labels' shape"):
        binary_metrics([0, 1], [0.1])
    with pytest.raises(InputError, match="NaN"):
        roc_auc([0, 1], [0.1, float("nan")])
