"""PNG plots of a training run and of a search, drawn with matplotlib's Agg canvas.

``matplotlib.figure.Figure`` is used directly (no pyplot): no global figure state, no GUI backend,
safe in worker processes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from lstmfpga.foundation.atomic import atomic_path


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _save(fig, path) -> Path:
    """Write the figure as a PNG, atomically (a reader never sees half an image)."""
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    return Path(path)


def plot_history(history: Sequence[Mapping], path) -> Path:
    """Loss and accuracy per epoch, train vs dev."""
    fig = _figure(10, 4)
    loss_ax, acc_ax = fig.subplots(1, 2)
    epochs = [row["epoch"] for row in history]
    for key, label in (("train_loss", "train"), ("dev_loss", "dev")):
        loss_ax.plot(epochs, [row[key] for row in history], marker="o", label=label)
    for key, label in (("train_accuracy", "train"), ("dev_accuracy", "dev")):
        acc_ax.plot(epochs, [row[key] for row in history], marker="o", label=label)
    loss_ax.set(xlabel="epoch", ylabel="loss", title="Loss")
    acc_ax.set(xlabel="epoch", ylabel="accuracy", title="Accuracy", ylim=(0, 1.02))
    for ax in (loss_ax, acc_ax):
        ax.grid(alpha=0.3)
        ax.legend()
    return _save(fig, path)


def plot_confusion(matrix, path, *, title: str = "Confusion matrix") -> Path:
    """The 2×2 confusion matrix (rows true, columns predicted) with counts in the cells."""
    matrix = np.asarray(matrix)
    fig = _figure(4.2, 3.8)
    ax = fig.subplots()
    image = ax.imshow(matrix, cmap="Blues", vmin=0)
    names = ("real", "fake")
    ax.set(xticks=[0, 1], yticks=[0, 1], xticklabels=names, yticklabels=names,
           xlabel="predicted", ylabel="true", title=title)
    threshold = matrix.max() / 2 if matrix.size else 0
    for (i, j), count in np.ndenumerate(matrix):
        ax.text(j, i, str(count), ha="center", va="center",
                color="white" if count > threshold else "black", fontsize=14)
    fig.colorbar(image, ax=ax)
    return _save(fig, path)


def plot_roc(fpr, tpr, auc: float, path, *, title: str = "ROC") -> Path:
    """The ROC curve with its AUC, and the chance diagonal."""
    fig = _figure(4.5, 4.2)
    ax = fig.subplots()
    label = "AUC n/a" if auc is None or math.isnan(auc) else f"AUC = {auc:.3f}"
    ax.plot(fpr, tpr, drawstyle="default", label=label)
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1)
    ax.set(xlabel="false-positive rate", ylabel="true-positive rate", title=title,
           xlim=(0, 1), ylim=(0, 1.02))
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    return _save(fig, path)


def plot_search(rows: Sequence[Mapping], params: Sequence[str], metric: str, path) -> Path:
    """One panel per hyperparameter: each trial's metric over that parameter's values.

    Every parameter is drawn as categories (the seed's space is categorical), with jitter so that
    trials with the same value stay visible, and the per-value mean as a bar.
    """
    n = max(len(params), 1)
    cols = min(n, 4)
    fig = _figure(3.6 * cols, 3.0 * math.ceil(n / cols))
    axes = np.atleast_1d(fig.subplots(math.ceil(n / cols), cols)).ravel()
    rng = np.random.default_rng(0)
    for ax, param in zip(axes, params):
        values = [row.get(param) for row in rows]
        categories = sorted({v for v in values if v is not None}, key=lambda v: (isinstance(v, str), v))
        position = {v: i for i, v in enumerate(categories)}
        xs, ys = [], []
        for value, row in zip(values, rows):
            score = row.get(metric)
            if value is None or score is None or (isinstance(score, float) and math.isnan(score)):
                continue
            xs.append(position[value] + rng.uniform(-0.15, 0.15))
            ys.append(score)
        for value, i in position.items():
            scores = [y for x, y in zip(xs, ys) if round(x) == i]
            if scores:
                ax.bar(i, np.mean(scores), width=0.6, alpha=0.25, color="tab:blue")
        ax.scatter(xs, ys, s=14, color="tab:blue")
        ax.set_xticks(range(len(categories)), [str(c) for c in categories], rotation=30)
        ax.set(title=param, ylabel=metric)
        ax.grid(alpha=0.3)
    for ax in axes[len(params):]:
        ax.set_visible(False)
    return _save(fig, path)
