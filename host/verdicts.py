"""From classifier accumulators to per-video verdicts, and the binary metrics of the study.

Label convention of the feature cache: 0 = real, 1 = fake. With two or more classes the
predicted class is the arg-max (class 1 = fake); with one output a positive logit means fake.
NumPy only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lstmfpga.foundation.errors import InputError

VERDICT_NAMES = ("real", "fake")


def predicted_labels(logits: np.ndarray) -> np.ndarray:
    """int64 ``[B]`` predicted labels from logits ``[B, C]`` (integer or float)."""
    logits = np.asarray(logits)
    if logits.ndim != 2 or logits.shape[1] < 1:
        raise InputError(f"logits must be [batch, classes], got shape {logits.shape}")
    if logits.shape[1] == 1:
        return (logits[:, 0] > 0).astype(np.int64)
    return np.argmax(logits, axis=1).astype(np.int64)


def fake_scores(logits: np.ndarray, out_scale: float) -> np.ndarray:
    """float64 ``[B]`` probability of 'fake' from integer logits at scale ``out_scale``."""
    z = np.asarray(logits, dtype=np.float64) * float(out_scale)
    if z.shape[1] == 1:
        return 1.0 / (1.0 + np.exp(-z[:, 0]))
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    return p[:, 1]


@dataclass(frozen=True)
class BinaryMetrics:
    accuracy: float
    precision: float
    recall: float
    f1: float
    confusion: tuple  # ((TN, FP), (FN, TP)): rows true real/fake, columns predicted real/fake

    def table(self) -> str:
        (tn, fp), (fn, tp) = self.confusion
        return "\n".join([
            f"accuracy  {self.accuracy:.4f}",
            f"precision {self.precision:.4f}",
            f"recall    {self.recall:.4f}",
            f"f1        {self.f1:.4f}",
            "confusion (rows: true, columns: predicted)",
            "            real   fake",
            f"  real  {tn:7d}{fp:7d}",
            f"  fake  {fn:7d}{tp:7d}",
        ])


def binary_metrics(labels: np.ndarray, predicted: np.ndarray) -> BinaryMetrics:
    """Accuracy, precision, recall, F1 (positive class: fake = 1) and the confusion matrix."""
    labels = np.asarray(labels).astype(np.int64)
    predicted = np.asarray(predicted).astype(np.int64)
    if labels.shape != predicted.shape or labels.ndim != 1:
        raise InputError(f"labels {labels.shape} and predictions {predicted.shape} must be equal-length vectors")
    if labels.size == 0:
        raise InputError("no labelled samples to score")
    confusion = np.zeros((2, 2), dtype=np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    (tn, fp), (fn, tp) = confusion.tolist()
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return BinaryMetrics(
        accuracy=(tp + tn) / labels.size, precision=precision, recall=recall, f1=f1,
        confusion=((tn, fp), (fn, tp)),
    )
