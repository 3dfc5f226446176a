"""Train one head over cached features: :func:`train_head`.

Files written in ``out_dir``:

``last.pt``
    The resume state at the end of an epoch (model, optimizer, scheduler, RNG, history, best
    weights, early-stopping counters), written when ``checkpoint_every_s`` have passed since the
    last one (0: after every epoch; writing it can cost more than an epoch of a small head).
    A killed run given the same ``out_dir`` and config continues from it and ends with the same
    weights as an uninterrupted run.  Deleted when training finishes.
``checkpoint.pt``
    The result: ``{"format", "config", "state_dict", "normalization": {"mean", "std", "clip"},
    "frame_indices", "input_size", "metrics"}`` with the weights of the best dev epoch.
    ``mean``/``std`` are float32 tensors ``[D]``.  Load it with :func:`load_checkpoint`.
``metrics.json``, ``loss_accuracy.png``, ``confusion_matrix.png``, ``roc.png``
    Final metrics (dev and the evaluation split, per artifact kind) and the per-epoch history.
"""

from __future__ import annotations

import copy
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from lstmfpga.foundation.atomic import atomic_file
from lstmfpga.foundation.errors import ArtifactError, ConfigError
from lstmfpga.model.feature_cache import FeatureSet
from lstmfpga.model.heads import build_head
from lstmfpga.model.losses import make_loss
from lstmfpga.model.metrics import binary_metrics, metrics_by_kind, roc_curve
from lstmfpga.model.train_config import TrainConfig
from lstmfpga.model.train_data import PreparedData, prepare_data
from lstmfpga.foundation.artifact import Normalization

CHECKPOINT_FORMAT = "lstmfpga-head-1"
RESUME_NAME = "last.pt"
CHECKPOINT_NAME = "checkpoint.pt"
METRICS_NAME = "metrics.json"
EVAL_BATCH = 256


@dataclass(frozen=True)
class TrainResult:
    """What :func:`train_head` produced.

    ``metrics`` is the content of ``metrics.json``; ``monitor_value`` the dev metric the search
    ranks by (NaN when undefined).
    """

    config: TrainConfig
    out_dir: Path
    checkpoint_path: Path
    metrics: dict
    history: tuple
    normalization: Normalization

    @property
    def monitor_value(self) -> float:
        value = self.metrics["dev"][self.config.monitor]
        return math.nan if value is None else float(value)


def _json_ready(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if isinstance(value, np.generic):
        return _json_ready(value.item())
    return value


def _atomic_torch_save(obj, path: Path) -> None:
    with atomic_file(path) as handle:
        torch.save(obj, handle)


def _make_optimizer(config: TrainConfig, params):
    kwargs = {"lr": config.lr, "weight_decay": config.weight_decay}
    if config.optimizer == "RAdam":
        return torch.optim.RAdam(params, **kwargs)
    if config.optimizer == "RMSprop":
        return torch.optim.RMSprop(params, **kwargs)
    return torch.optim.AdamW(params, **kwargs)


def _make_scheduler(config: TrainConfig, optimizer, steps_per_epoch: int):
    if config.scheduler == "ReduceLROnPlateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min", factor=0.5, patience=max(1, config.patience // 2))
    if config.scheduler == "CosineAnnealingLR":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs)
    return torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=config.lr, total_steps=config.epochs * steps_per_epoch)


def _predict(model, x: np.ndarray, y: np.ndarray, loss_fn) -> tuple[float, np.ndarray]:
    """Mean loss and fake probabilities, in eval mode."""
    model.eval()
    total, logits_all = 0.0, []
    with torch.no_grad():
        for start in range(0, len(x), EVAL_BATCH):
            xb = torch.from_numpy(x[start:start + EVAL_BATCH])
            yb = torch.from_numpy(y[start:start + EVAL_BATCH])
            logits = model(xb)
            total += float(loss_fn(logits, yb)) * len(xb)
            logits_all.append(logits)
    logits = torch.cat(logits_all)
    return total / len(x), torch.softmax(logits, dim=-1)[:, 1].double().numpy()


def _augment(xb: torch.Tensor, config: TrainConfig) -> torch.Tensor:
    """Training-time input changes; draws from torch's global RNG (saved in the resume state) only
    when enabled, so runs without them are unchanged."""
    if config.reverse_prob:
        flip = torch.rand(len(xb)) < config.reverse_prob
        xb = torch.where(flip[:, None, None], xb.flip(1), xb)
    if config.input_dropout:
        xb = torch.nn.functional.dropout(xb, config.input_dropout)
    return xb


def _is_better(value: float, loss: float, best: tuple | None, maximize: bool) -> bool:
    """Better monitor value; on a tie (common for AUC and accuracy on a small dev part), lower loss."""
    if best is None:
        return True
    best_value, best_loss = best
    if math.isnan(value) or math.isnan(best_value):
        return not math.isnan(value) or (math.isnan(best_value) and loss < best_loss)
    if value == best_value:
        return loss < best_loss
    return value > best_value if maximize else value < best_value


def _config_difference(saved: dict, config: TrainConfig) -> str | None:
    current = config.to_dict()
    for name in sorted(set(saved) | set(current)):
        if saved.get(name) != current.get(name):
            return f"{name}: {saved.get(name)!r} there, {current.get(name)!r} now"
    return None


def _load_resume_state(path: Path, config: TrainConfig, data: PreparedData) -> dict:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a damaged file: the atomic save makes this rare, but say so
        raise ArtifactError(f"resume state {path} cannot be read ({exc}); delete it to start over") from exc
    if state.get("format") != CHECKPOINT_FORMAT:
        raise ArtifactError(f"resume state {path} has format {state.get('format')!r}, not {CHECKPOINT_FORMAT!r}")
    difference = _config_difference(state["config"], config)
    if difference:
        raise ConfigError(f"{path} continues a training with another config ({difference}); "
                          f"use another output folder or delete {path.name}")
    mean = state["normalization"]["mean"].numpy()
    if mean.shape != data.normalization.mean.shape or not np.allclose(mean, data.normalization.mean, atol=1e-5):
        raise ArtifactError(f"resume state {path} was trained on other features; "
                            f"use another output folder or delete {path.name}")
    return state


def _normalization_tensors(normalization: Normalization) -> dict:
    return {"mean": torch.from_numpy(normalization.mean.copy()),
            "std": torch.from_numpy(normalization.std.copy()),
            "clip": normalization.clip}


def load_checkpoint(path) -> tuple[torch.nn.Module, dict]:
    """The trained head (eval mode) and the whole checkpoint dict of a ``checkpoint.pt``."""
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"checkpoint {path} does not exist")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ArtifactError(f"checkpoint {path} cannot be read: {exc}") from exc
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != CHECKPOINT_FORMAT:
        raise ArtifactError(f"{path} is not an lstmfpga head checkpoint (format {CHECKPOINT_FORMAT})")
    config = TrainConfig.from_dict(checkpoint["config"])
    model = build_head(config.head, input_size=checkpoint["input_size"], hidden=config.hidden,
                       layers=config.layers, dropout=config.dropout)
    model.load_state_dict(checkpoint["state_dict"])
    model.eval()
    return model, checkpoint


def _epoch_row(epoch, train_loss, train_acc, dev_metrics, lr, seconds) -> dict:
    return {"epoch": epoch, "train_loss": train_loss, "train_accuracy": train_acc,
            "dev_loss": dev_metrics["loss"], "dev_accuracy": dev_metrics["accuracy"],
            "dev_precision": dev_metrics["precision"], "dev_recall": dev_metrics["recall"],
            "dev_f1": dev_metrics["f1"], "dev_roc_auc": dev_metrics["roc_auc"],
            "dev_confusion_matrix": dev_metrics["confusion_matrix"], "lr": lr, "seconds": seconds}


EPOCH_HEADER = f"{'epoch':>5} {'train_loss':>10} {'train_acc':>9} {'dev_loss':>9} {'dev_acc':>8} " \
               f"{'dev_f1':>7} {'dev_auc':>8} {'lr':>9} {'sec':>6}"


def format_epoch_row(row: dict) -> str:
    def f(v, width, spec):
        return f"{'n/a':>{width}}" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:>{width}{spec}}"
    return (f"{row['epoch']:>5} {f(row['train_loss'], 10, '.4f')} {f(row['train_accuracy'], 9, '.3f')} "
            f"{f(row['dev_loss'], 9, '.4f')} {f(row['dev_accuracy'], 8, '.3f')} {f(row['dev_f1'], 7, '.3f')} "
            f"{f(row['dev_roc_auc'], 8, '.3f')} {f(row['lr'], 9, '.2e')} {f(row['seconds'], 6, '.1f')}")


def train_head(config: TrainConfig, feature_set: FeatureSet, out_dir, *,
               log: Callable[[str], None] | None = print,
               on_epoch_end: Callable[[dict], None] | None = None,
               plots: bool = True, checkpoint_every_s: float = 30.0) -> TrainResult:
    """Train ``config.head`` on ``feature_set`` and write checkpoint, metrics and plots to ``out_dir``.

    Resumes from ``out_dir/last.pt`` when a previous run with the same config was interrupted.

    Parameters
    ----------
    config : TrainConfig
    feature_set : FeatureSet
        Needs 'train' videos of both classes; 'test' (else 'val') videos are the evaluation split.
    out_dir : path
        Created if missing.
    log : callable or None
        Receives the per-epoch table lines; ``None`` is silent.
    on_epoch_end : callable or None
        Called with each epoch's history row after its resume state is saved.
    plots : bool
        Write the PNG plots.
    checkpoint_every_s : float
        Least seconds between two resume states (``last.pt``); 0 writes one after every epoch.
        Only how much work a kill loses depends on it, never the result.

    Raises
    ------
    ConfigError
        ``config.frames`` exceeds the cache's frames, or ``out_dir`` holds another config's run.
    InputError
        Too few training videos of a class, or non-finite features.
    """
    if not isinstance(config, TrainConfig):
        raise ConfigError(f"config must be a TrainConfig, not {type(config).__name__}")
    if not checkpoint_every_s >= 0:
        raise ConfigError(f"checkpoint_every_s must be >= 0, not {checkpoint_every_s!r}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    say = log or (lambda line: None)
    data = prepare_data(feature_set, frames=config.frames, clip=config.clip,
                        dev_fraction=config.dev_fraction, seed=config.seed)
    input_size = data.train_x.shape[-1]
    n_train = len(data.train_y)
    steps_per_epoch = math.ceil(n_train / config.batch_size)

    torch.manual_seed(config.seed)
    model = build_head(config.head, input_size=input_size, hidden=config.hidden, layers=config.layers,
                       dropout=config.dropout)
    loss_fn = make_loss(config.loss, focal_gamma=config.focal_gamma)
    optimizer = _make_optimizer(config, model.parameters())
    scheduler = _make_scheduler(config, optimizer, steps_per_epoch)

    resume_path = out_dir / RESUME_NAME
    history: list[dict] = []
    best_value, best_epoch, best_state, bad_epochs, finished = None, 0, None, 0, False
    start_epoch = 1
    if resume_path.exists():
        state = _load_resume_state(resume_path, config, data)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng"])
        history = list(state["history"])
        best_value, best_epoch, bad_epochs = state["best_value"], state["best_epoch"], state["bad_epochs"]
        best_state, finished = state["best_state"], state["finished"]
        start_epoch = state["epoch"] + 1
        say(f"resuming {out_dir} after epoch {state['epoch']}")

    last_save = time.monotonic()
    train_x = torch.from_numpy(data.train_x)
    train_y = torch.from_numpy(data.train_y)
    if not finished and start_epoch <= config.epochs:
        say(EPOCH_HEADER)
        for row in history:
            say(format_epoch_row(row))
    for epoch in range(start_epoch, config.epochs + 1):
        if finished:
            break
        started = time.perf_counter()
        model.train()
        order = torch.from_numpy(np.random.default_rng([config.seed, epoch]).permutation(n_train))
        loss_sum, correct = 0.0, 0
        batches = tqdm(range(0, n_train, config.batch_size), desc=f"epoch {epoch}", unit="batch",
                       leave=False, disable=log is None or steps_per_epoch < 50)
        for start in batches:
            batch = order[start:start + config.batch_size]
            xb, yb = _augment(train_x[batch], config), train_y[batch]
            optimizer.zero_grad(set_to_none=True)
            logits = model(xb)
            loss = loss_fn(logits, yb)
            loss.backward()
            if config.max_grad_norm:
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
            optimizer.step()
            if config.scheduler == "OneCycleLR":
                scheduler.step()
            loss_sum += loss.item() * len(batch)
            correct += int((logits.argmax(dim=-1) == yb).sum())
        lr = optimizer.param_groups[0]["lr"]
        dev_loss, dev_scores = _predict(model, data.dev_x, data.dev_y, loss_fn)
        dev_metrics = binary_metrics(data.dev_y, dev_scores, loss=dev_loss)
        if config.scheduler == "ReduceLROnPlateau":
            scheduler.step(dev_loss)
        elif config.scheduler == "CosineAnnealingLR":
            scheduler.step()
        row = _epoch_row(epoch, loss_sum / n_train, correct / n_train, dev_metrics, lr,
                         time.perf_counter() - started)
        history.append(row)
        value = dev_metrics[config.monitor]
        if _is_better(value, dev_loss, best_value, config.maximize):
            best_value, best_epoch, bad_epochs = (value, dev_loss), epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            bad_epochs += 1
        finished = bad_epochs >= config.patience or epoch == config.epochs
        # No resume state after the last epoch: the final checkpoint follows at once.
        if not finished and time.monotonic() - last_save >= checkpoint_every_s:
            last_save = time.monotonic()
            _atomic_torch_save({
                "format": CHECKPOINT_FORMAT, "config": config.to_dict(), "epoch": epoch,
                "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "torch_rng": torch.get_rng_state(),
                "history": history, "best_value": best_value, "best_epoch": best_epoch,
                "best_state": best_state, "bad_epochs": bad_epochs, "finished": finished,
                "normalization": _normalization_tensors(data.normalization),
            }, resume_path)
        say(format_epoch_row(row))
        if on_epoch_end is not None:
            on_epoch_end(row)

    stopped_early = bool(history) and history[-1]["epoch"] < config.epochs
    model.load_state_dict(best_state)
    metrics = {
        "monitor": config.monitor,
        "best_epoch": best_epoch,
        "epochs_run": len(history),
        "stopped_early": stopped_early,
        "n_train": n_train,
        "n_dev": int(len(data.dev_y)),
    }
    dev_loss, dev_scores = _predict(model, data.dev_x, data.dev_y, loss_fn)
    metrics["dev"] = binary_metrics(data.dev_y, dev_scores, loss=dev_loss)
    metrics["eval_split"] = data.eval_split
    metrics["eval"] = None
    metrics["eval_by_kind"] = {}
    report_y, report_scores, report_name = data.dev_y, dev_scores, "dev"
    if data.eval_split is not None:
        eval_loss, eval_scores = _predict(model, data.eval_x, data.eval_y, loss_fn)
        metrics["eval"] = binary_metrics(data.eval_y, eval_scores, loss=eval_loss)
        if "artifact_kind" in data.eval_extra:
            metrics["eval_by_kind"] = metrics_by_kind(data.eval_y, eval_scores, data.eval_extra["artifact_kind"])
        report_y, report_scores, report_name = data.eval_y, eval_scores, data.eval_split
    metrics = _json_ready(metrics)

    checkpoint_path = out_dir / CHECKPOINT_NAME
    _atomic_torch_save({
        "format": CHECKPOINT_FORMAT, "config": config.to_dict(), "state_dict": model.state_dict(),
        "normalization": _normalization_tensors(data.normalization),
        "frame_indices": torch.from_numpy(data.frame_indices.copy()), "input_size": input_size,
        "metrics": metrics, "history": history,
    }, checkpoint_path)
    document = {"config": config.to_dict(), **metrics, "history": _json_ready(history)}
    (out_dir / METRICS_NAME).write_text(json.dumps(document, indent=2, allow_nan=False) + "\n")
    if plots:
        from lstmfpga.model.plots import plot_confusion, plot_history, plot_roc

        plot_history(history, out_dir / "loss_accuracy.png")
        chosen = metrics["eval"] or metrics["dev"]
        plot_confusion(chosen["confusion_matrix"], out_dir / "confusion_matrix.png",
                       title=f"Confusion matrix ({report_name})")
        fpr, tpr, _ = roc_curve(report_y, report_scores)
        auc = chosen["roc_auc"]
        plot_roc(fpr, tpr, math.nan if auc is None else auc, out_dir / "roc.png", title=f"ROC ({report_name})")
    resume_path.unlink(missing_ok=True)
    return TrainResult(config=config, out_dir=out_dir, checkpoint_path=checkpoint_path, metrics=metrics,
                       history=tuple(history), normalization=data.normalization)
