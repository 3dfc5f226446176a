"""Binary classification metrics in NumPy: confusion matrix, precision/recall/F1, ROC and its AUC.

Class 1 (fake) is the positive class.  A video is predicted fake when its fake probability is
above the threshold (0.5: the arg-max of two logits, ties going to real).
"""

from __future__ import annotations

import math

import numpy as np

from lstmfpga.foundation.errors import InputError


def _check_binary(labels, scores=None) -> tuple[np.ndarray, np.ndarray | None]:
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise InputError(f"labels must be 1-D, not shape {labels.shape}")
    if labels.size and not np.isin(labels, (0, 1)).all():
        raise InputError(f"labels must be 0 or 1, found {sorted(set(labels.tolist()))}")
    labels = labels.astype(np.int64)
    if scores is None:
        return labels, None
    scores = np.asarray(scores, dtype=np.float64)
    if scores.shape != labels.shape:
        raise InputError(f"scores must have the labels' shape {labels.shape}, not {scores.shape}")
    if not np.isfinite(scores).all():
        raise InputError("scores contain NaN or infinite values")
    return labels, scores


def confusion_matrix(labels, predictions) -> np.ndarray:
    """``[[TN, FP], [FN, TP]]``: rows are the true class, columns the predicted class."""
    labels, _ = _check_binary(labels)
    predictions, _ = _check_binary(predictions)
    if predictions.shape != labels.shape:
        raise InputError(f"predictions must have the labels' shape {labels.shape}, not {predictions.shape}")
    matrix = np.zeros((2, 2), dtype=np.int64)
    np.add.at(matrix, (labels, predictions), 1)
    return matrix


def _ratio(numerator: float, denominator: float) -> float:
    # The zero-division convention of the common libraries: an empty ratio counts as 0.
    return float(numerator) / denominator if denominator else 0.0


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, tied values sharing the mean of their ranks."""
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    boundaries = np.flatnonzero(np.diff(sorted_values)) + 1
    starts = np.concatenate(([0], boundaries))
    ends = np.concatenate((boundaries, [values.size]))
    ranks = np.empty(values.size, dtype=np.float64)
    for start, end in zip(starts, ends):
        ranks[order[start:end]] = (start + 1 + end) / 2.0
    return ranks


def roc_auc(labels, scores) -> float:
    """Area under the ROC curve (the Mann-Whitney U statistic, ties counting one half).

    NaN when only one class is present.
    """
    labels, scores = _check_binary(labels, scores)
    n_pos = int(labels.sum())
    n_neg = labels.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return math.nan
    ranks = _average_ranks(scores)
    u = ranks[labels == 1].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def roc_curve(labels, scores) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """False-positive rate, true-positive rate and thresholds (decreasing), from (0, 0) to (1, 1).

    Point ``k`` predicts fake for every score ``>= thresholds[k]``; the first threshold is ``inf``.
    """
    labels, scores = _check_binary(labels, scores)
    n_pos = int(labels.sum())
    n_neg = labels.size - n_pos
    if labels.size == 0:
        return np.zeros(1), np.zeros(1), np.array([np.inf])
    order = np.argsort(-scores, kind="mergesort")
    sorted_scores = scores[order]
    last_of_group = np.concatenate((np.flatnonzero(np.diff(sorted_scores)), [sorted_scores.size - 1]))
    tp = np.cumsum(labels[order])[last_of_group]
    fp = (last_of_group + 1) - tp
    tpr = np.concatenate(([0.0], tp / n_pos if n_pos else np.zeros(tp.size)))
    fpr = np.concatenate(([0.0], fp / n_neg if n_neg else np.zeros(fp.size)))
    thresholds = np.concatenate(([np.inf], sorted_scores[last_of_group]))
    return fpr, tpr, thresholds


def binary_metrics(labels, scores, *, threshold: float = 0.5, loss: float | None = None) -> dict:
    """Accuracy, precision, recall, F1, ROC-AUC and the confusion matrix, as a JSON-ready dict.

    Parameters
    ----------
    labels : array of 0/1
        The true classes.
    scores : array of float
        The predicted probability of class 1 (fake).
    threshold : float
        A video is predicted fake when its score is above this.
    loss : float, optional
        Copied into the result as ``"loss"`` when given.
    """
    labels, scores = _check_binary(labels, scores)
    predictions = (scores > threshold).astype(np.int64)
    matrix = confusion_matrix(labels, predictions)
    (tn, fp), (fn, tp) = matrix.tolist()
    precision = _ratio(tp, tp + fp)
    recall = _ratio(tp, tp + fn)
    result = {
        "n": int(labels.size),
        "accuracy": _ratio(tp + tn, labels.size),
        "precision": precision,
        "recall": recall,
        "f1": _ratio(2 * precision * recall, precision + recall),
        "roc_auc": roc_auc(labels, scores),
        "confusion_matrix": matrix.tolist(),
    }
    if loss is not None:
        result = {"loss": float(loss), **result}
    return result


def metrics_by_kind(labels, scores, kinds, *, threshold: float = 0.5) -> dict:
    """Metrics of each fake kind against all real videos: ``{kind: binary_metrics(...)}``.

    ``kinds`` names each video's artifact kind (e.g. ``'none'``, ``'spatial'``, ``'temporal'``,
    ``'both'``).  For every kind that occurs among the fakes, the subset is the fakes of that kind
    plus every real video, so "accuracy on temporal fakes vs reals" compares like with like.
    """
    labels, scores = _check_binary(labels, scores)
    kinds = np.asarray(kinds).astype(str)
    if kinds.shape != labels.shape:
        raise InputError(f"kinds must have the labels' shape {labels.shape}, not {kinds.shape}")
    result = {}
    for kind in sorted(set(kinds[labels == 1].tolist())):
        mask = (labels == 0) | (kinds == kind)
        metrics = binary_metrics(labels[mask], scores[mask], threshold=threshold)
        metrics["n_fake"] = int(labels[mask].sum())
        result[kind] = metrics
    return result
