"""The one training loop for every head, float or quantized: :func:`fit`, and :func:`train_head`,
which trains a float head from a :class:`TrainConfig`.

:func:`fit` holds what every training run shares (seeded batch order, augmentation, gradient
clipping, the scheduler, dev metrics, early stopping on the best dev epoch, the resume state);
a caller hands it the head-specific parts as a :class:`HeadSetup`.  :func:`evaluate` and
:func:`write_outputs` produce the result files.

Files :func:`train_head` writes in ``out_dir``:

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

Every file is written atomically: a reader sees the previous file or the whole new one.
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

from lstmfpga.foundation.artifact import Normalization
from lstmfpga.foundation.atomic import atomic_file, atomic_write_bytes
from lstmfpga.foundation.errors import ArtifactError, ConfigError
from lstmfpga.foundation.validation import check_integer
from lstmfpga.model.feature_cache import FeatureSet
from lstmfpga.model.heads import build_head
from lstmfpga.model.losses import make_loss
from lstmfpga.model.metrics import binary_metrics, metrics_by_kind, roc_curve
from lstmfpga.model.train_config import MONITORS, TrainConfig, canonical_choice
from lstmfpga.model.train_data import PreparedData, prepare_data

CHECKPOINT_FORMAT = "lstmfpga-head-1"
RESUME_FORMAT = "lstmfpga-resume-1"
RESUME_NAME = "last.pt"
CHECKPOINT_NAME = "checkpoint.pt"
METRICS_NAME = "metrics.json"
PLOT_NAMES = ("loss_accuracy.png", "confusion_matrix.png", "roc.png")
EVAL_BATCH = 256


@dataclass(frozen=True)
class LoopSettings:
    """How :func:`fit` runs, whatever the head.

    Attributes
    ----------
    epochs, patience, batch_size : int
        Training ends after ``epochs``, or after ``patience`` epochs without a better dev metric.
    seed : int
        Seeds the batch order (per epoch) and the augmentation.
    monitor : str
        The dev metric that picks the best epoch (one of ``MONITORS``; ``loss`` is minimized).
    max_grad_norm : float
        Gradient-norm clipping; 0 turns it off.
    reverse_prob, input_dropout : float
        Training-time augmentation (see :class:`TrainConfig`); 0 turns each off.
    """

    epochs: int
    patience: int
    batch_size: int
    seed: int
    monitor: str = "roc_auc"
    max_grad_norm: float = 0.0
    reverse_prob: float = 0.0
    input_dropout: float = 0.0

    def __post_init__(self):
        for name, low in (("epochs", 1), ("patience", 1), ("batch_size", 1), ("seed", 0)):
            check_integer(name, getattr(self, name), low=low)
        object.__setattr__(self, "monitor", canonical_choice("monitor", self.monitor, MONITORS))

    @classmethod
    def of(cls, config: TrainConfig) -> LoopSettings:
        return cls(epochs=config.epochs, patience=config.patience, batch_size=config.batch_size,
                   seed=config.seed, monitor=config.monitor, max_grad_norm=config.max_grad_norm,
                   reverse_prob=config.reverse_prob, input_dropout=config.input_dropout)

    @property
    def maximize(self) -> bool:
        return self.monitor != "loss"


@dataclass(frozen=True)
class HeadSetup:
    """The head-specific half of a training run, which :func:`fit` drives.

    Attributes
    ----------
    model : torch.nn.Module
        Maps ``[B, T, D]`` float32 features to ``[B, 2]`` logits.
    optimizer : torch.optim.Optimizer
    loss_fn : callable
        ``loss_fn(logits, labels)`` → scalar tensor.
    scheduler : LR scheduler or None
        ``OneCycleLR`` steps after every batch, ``ReduceLROnPlateau`` on the dev loss, any other
        after every epoch; None keeps the learning rate.
    prepare : callable or None
        Runs once before the first epoch of a fresh run, never on resume (the resume state holds
        its effect), e.g. the calibration passes of a quantized head.
    save_extra, load_extra : callable or None
        Model state that ``state_dict`` leaves out (plain data and tensors), saved into and
        restored from the resume state, e.g. a quantizer's statistics progress.
    """

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    loss_fn: Callable
    scheduler: object = None
    prepare: Callable[[], None] | None = None
    save_extra: Callable[[], dict] | None = None
    load_extra: Callable[[dict], None] | None = None


@dataclass(frozen=True)
class ResumeState:
    """Where :func:`fit` keeps its resume state, and what identifies the run it belongs to.

    ``identity`` (plain data) and ``normalization`` must match the saved state's, else the
    state belongs to another run and :func:`fit` refuses it.
    """

    path: Path
    identity: dict
    normalization: Normalization
    every_s: float = 30.0


@dataclass(frozen=True)
class Fitted:
    """What :func:`fit` did: the per-epoch history, the best epoch (whose weights the model now
    holds) and whether early stopping ended it."""

    history: tuple
    best_epoch: int
    stopped_early: bool


@dataclass(frozen=True)
class Evaluation:
    """Final metrics of a trained head, and the scores the plots show (the evaluation split's,
    else the dev part's)."""

    metrics: dict
    report_name: str
    report_y: np.ndarray
    report_scores: np.ndarray


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
    """``value`` with NaN/inf as None and NumPy scalars as Python numbers (strict JSON)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if isinstance(value, np.generic):
        return _json_ready(value.item())
    return value


def save_torch(obj, path: Path) -> Path:
    """``torch.save`` atomically."""
    with atomic_file(path) as handle:
        torch.save(obj, handle)
    return Path(path)


def read_checkpoint(path, *, fmt: str, what: str) -> dict:
    """The dict saved in a checkpoint or resume state ``path`` of format ``fmt``.

    Loads with ``weights_only=True``: tensors and plain data only, never pickled objects; a
    checkpoint stores its module's configuration as plain data and the caller rebuilds it.

    Raises
    ------
    ArtifactError
        The file is missing, unreadable, or of another format (``what`` names the kind).
    """
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"{what} {path} is a folder, not a file" if path.is_dir() else f"{what} {path} does not exist")
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a damaged file: the atomic save makes this rare, but say so
        raise ArtifactError(f"{what} {path} cannot be read ({type(exc).__name__}: {exc})") from exc
    if not isinstance(saved, dict) or saved.get("format") != fmt:
        raise ArtifactError(f"{path} is not an lstmfpga {what} (format {fmt})")
    return saved


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


def predict(model, x: np.ndarray, y: np.ndarray, loss_fn) -> tuple[float, np.ndarray]:
    """Mean loss and fake probabilities (float64), in eval mode."""
    model.eval()
    total, logits_all = 0.0, []
    with torch.no_grad():
        for start in range(0, len(x), EVAL_BATCH):
            xb = torch.from_numpy(np.ascontiguousarray(x[start:start + EVAL_BATCH], dtype=np.float32))
            yb = torch.from_numpy(np.asarray(y[start:start + EVAL_BATCH], dtype=np.int64))
            logits = model(xb)
            total += float(loss_fn(logits, yb)) * len(xb)
            logits_all.append(logits)
    logits = torch.cat(logits_all)
    return total / len(x), torch.softmax(logits, dim=-1)[:, 1].double().numpy()


def _augment(xb: torch.Tensor, settings: LoopSettings) -> torch.Tensor:
    """Training-time input changes; draws from torch's global RNG (saved in the resume state) only
    when enabled, so runs without them are unchanged."""
    if settings.reverse_prob:
        flip = torch.rand(len(xb)) < settings.reverse_prob
        xb = torch.where(flip[:, None, None], xb.flip(1), xb)
    if settings.input_dropout:
        xb = torch.nn.functional.dropout(xb, settings.input_dropout)
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


def _first_difference(saved: dict, current: dict) -> str | None:
    for name in sorted(set(saved) | set(current)):
        if saved.get(name) != current.get(name):
            return f"{name}: {saved.get(name)!r} there, {current.get(name)!r} now"
    return None


def _load_resume_state(resume: ResumeState) -> dict:
    path = resume.path
    state = read_checkpoint(path, fmt=RESUME_FORMAT, what="resume state")
    difference = _first_difference(state["identity"], resume.identity)
    if difference:
        raise ConfigError(f"{path} continues a training with another config ({difference}); "
                          f"use another output folder or delete {path.name}")
    mean = state["normalization"]["mean"].numpy()
    if mean.shape != resume.normalization.mean.shape or not np.allclose(mean, resume.normalization.mean, atol=1e-5):
        raise ArtifactError(f"resume state {path} was trained on other features; "
                            f"use another output folder or delete {path.name}")
    return state


def _normalization_tensors(normalization: Normalization) -> dict:
    """The normalization as checkpoints store it: float32 tensors and the clip."""
    return {"mean": torch.from_numpy(normalization.mean.copy()),
            "std": torch.from_numpy(normalization.std.copy()),
            "clip": normalization.clip}


def load_state(model: torch.nn.Module, state: dict) -> None:
    """Copy ``state`` (a ``model.state_dict()`` of earlier) into the model's own tensors, in place.

    ``load_state_dict`` would do the same for torch's modules, but Brevitas rebuilds its
    activation quantizers there, which unties the quantizer a QuantLSTM's layers share and
    leaves its fast cell on the old ones: training would not continue as it ran.
    """
    own = model.state_dict()
    if own.keys() != state.keys():
        raise ArtifactError(f"state does not fit the {type(model).__name__}: "
                            f"{sorted(own.keys() ^ state.keys())[:4]} differ")
    with torch.no_grad():
        for key, tensor in own.items():
            tensor.copy_(state[key])


def load_checkpoint(path) -> tuple[torch.nn.Module, dict]:
    """The trained head (eval mode) and the whole checkpoint dict of a ``checkpoint.pt``."""
    checkpoint = read_checkpoint(path, fmt=CHECKPOINT_FORMAT, what="head checkpoint")
    config = TrainConfig.from_dict(checkpoint["config"])
    model = build_head(config.head, input_size=checkpoint["input_size"], hidden=config.hidden,
                       layers=config.layers, dropout=config.dropout)
    model.load_state_dict(checkpoint["state_dict"])
    model.eval()
    return model, checkpoint


def _epoch_row(epoch, train_loss, train_acc, dev_metrics, lr, seconds) -> dict:
    dev = dev_metrics or {}
    return {"epoch": epoch, "train_loss": train_loss, "train_accuracy": train_acc,
            "dev_loss": dev.get("loss"), "dev_accuracy": dev.get("accuracy"),
            "dev_precision": dev.get("precision"), "dev_recall": dev.get("recall"),
            "dev_f1": dev.get("f1"), "dev_roc_auc": dev.get("roc_auc"),
            "dev_confusion_matrix": dev.get("confusion_matrix"), "lr": lr, "seconds": seconds}


EPOCH_HEADER = f"{'epoch':>5} {'train_loss':>10} {'train_acc':>9} {'dev_loss':>9} {'dev_acc':>8} " \
               f"{'dev_f1':>7} {'dev_auc':>8} {'lr':>9} {'sec':>6}"


def format_epoch_row(row: dict) -> str:
    def f(v, width, spec):
        return f"{'n/a':>{width}}" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:>{width}{spec}}"
    return (f"{row['epoch']:>5} {f(row['train_loss'], 10, '.4f')} {f(row['train_accuracy'], 9, '.3f')} "
            f"{f(row['dev_loss'], 9, '.4f')} {f(row['dev_accuracy'], 8, '.3f')} {f(row['dev_f1'], 7, '.3f')} "
            f"{f(row['dev_roc_auc'], 8, '.3f')} {f(row['lr'], 9, '.2e')} {f(row['seconds'], 6, '.1f')}")


def fit(setup: HeadSetup, settings: LoopSettings, train: tuple[np.ndarray, np.ndarray],
        dev: tuple[np.ndarray, np.ndarray] | None, *, resume: ResumeState | None = None,
        log: Callable[[str], None] | None = print,
        on_epoch_end: Callable[[dict], None] | None = None) -> Fitted:
    """Train ``setup.model`` in place; it ends holding the weights of the best dev epoch.

    Parameters
    ----------
    setup : HeadSetup
    settings : LoopSettings
    train, dev : (x, y)
        Standardized float32 features ``[N, T, D]`` and int64 labels ``[N]``.  Without ``dev``
        every epoch runs and the last one counts as the best.
    resume : ResumeState or None
        Where to keep the resume state; a state left there by a killed run of the same identity
        is continued.  None keeps none.
    log : callable or None
        Receives the per-epoch table lines; ``None`` is silent.
    on_epoch_end : callable or None
        Called with each epoch's history row after its resume state is saved.
    """
    model, optimizer, loss_fn, scheduler = setup.model, setup.optimizer, setup.loss_fn, setup.scheduler
    say = log or (lambda line: None)
    train_x = torch.from_numpy(np.ascontiguousarray(train[0], dtype=np.float32))
    train_y = torch.from_numpy(np.asarray(train[1], dtype=np.int64))
    n_train = len(train_y)
    steps_per_epoch = math.ceil(n_train / settings.batch_size)
    per_batch = isinstance(scheduler, torch.optim.lr_scheduler.OneCycleLR)
    on_dev_loss = isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)

    history: list[dict] = []
    best_value, best_epoch, best_state, bad_epochs, finished = None, 0, None, 0, False
    start_epoch = 1
    if resume is not None and resume.path.exists():
        state = _load_resume_state(resume)
        if setup.load_extra is not None:
            setup.load_extra(state["extra"])
        load_state(model, state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng"])
        history = list(state["history"])
        best_value, best_epoch, bad_epochs = state["best_value"], state["best_epoch"], state["bad_epochs"]
        best_state, finished = state["best_state"], state["finished"]
        start_epoch = state["epoch"] + 1
        say(f"resuming {resume.path.parent} after epoch {state['epoch']}")
    elif setup.prepare is not None:
        setup.prepare()

    last_save = time.monotonic()
    if not finished and start_epoch <= settings.epochs:
        say(EPOCH_HEADER)
        for row in history:
            say(format_epoch_row(row))
    for epoch in range(start_epoch, settings.epochs + 1):
        if finished:
            break
        started = time.perf_counter()
        model.train()
        order = torch.from_numpy(np.random.default_rng([settings.seed, epoch]).permutation(n_train))
        loss_sum, correct = 0.0, 0
        batches = tqdm(range(0, n_train, settings.batch_size), desc=f"epoch {epoch}", unit="batch",
                       leave=False, disable=log is None or steps_per_epoch < 50)
        for start in batches:
            batch = order[start:start + settings.batch_size]
            xb, yb = _augment(train_x[batch], settings), train_y[batch]
            optimizer.zero_grad(set_to_none=True)
            logits = model(xb)
            loss = loss_fn(logits, yb)
            loss.backward()
            if settings.max_grad_norm:
                torch.nn.utils.clip_grad_norm_(model.parameters(), settings.max_grad_norm)
            optimizer.step()
            if per_batch:
                scheduler.step()
            loss_sum += loss.item() * len(batch)
            correct += int((logits.argmax(dim=-1) == yb).sum())
        lr = optimizer.param_groups[0]["lr"]
        dev_metrics = None
        if dev is not None:
            dev_loss, dev_scores = predict(model, dev[0], dev[1], loss_fn)
            dev_metrics = binary_metrics(dev[1], dev_scores, loss=dev_loss)
        if on_dev_loss:
            scheduler.step(dev_metrics["loss"])
        elif scheduler is not None and not per_batch:
            scheduler.step()
        row = _epoch_row(epoch, loss_sum / n_train, correct / n_train, dev_metrics, lr,
                         time.perf_counter() - started)
        history.append(row)
        if dev_metrics is None or _is_better(dev_metrics[settings.monitor], dev_metrics["loss"], best_value,
                                             settings.maximize):
            best_value = None if dev_metrics is None else (dev_metrics[settings.monitor], dev_metrics["loss"])
            best_epoch, bad_epochs = epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            bad_epochs += 1
        finished = bad_epochs >= settings.patience or epoch == settings.epochs
        # No resume state after the last epoch: the caller's result files follow at once.
        if resume is not None and not finished and time.monotonic() - last_save >= resume.every_s:
            last_save = time.monotonic()
            save_torch({
                "format": RESUME_FORMAT, "identity": resume.identity, "epoch": epoch,
                "model": model.state_dict(), "extra": None if setup.save_extra is None else setup.save_extra(),
                "optimizer": optimizer.state_dict(),
                "scheduler": None if scheduler is None else scheduler.state_dict(),
                "torch_rng": torch.get_rng_state(),
                "history": history, "best_value": best_value, "best_epoch": best_epoch,
                "best_state": best_state, "bad_epochs": bad_epochs, "finished": finished,
                "normalization": _normalization_tensors(resume.normalization),
            }, resume.path)
        say(format_epoch_row(row))
        if on_epoch_end is not None:
            on_epoch_end(row)

    load_state(model, best_state)
    model.eval()
    stopped_early = bool(history) and history[-1]["epoch"] < settings.epochs
    return Fitted(history=tuple(history), best_epoch=best_epoch, stopped_early=stopped_early)


def evaluate(model, data: PreparedData, loss_fn, *, monitor: str, fitted: Fitted) -> Evaluation:
    """The final metrics (dev, the evaluation split, per artifact kind) of a trained head."""
    metrics = {
        "monitor": monitor,
        "best_epoch": fitted.best_epoch,
        "epochs_run": len(fitted.history),
        "stopped_early": fitted.stopped_early,
        "n_train": int(len(data.train_y)),
        "n_dev": int(len(data.dev_y)),
    }
    dev_loss, dev_scores = predict(model, data.dev_x, data.dev_y, loss_fn)
    metrics["dev"] = binary_metrics(data.dev_y, dev_scores, loss=dev_loss)
    metrics["eval_split"] = data.eval_split
    metrics["eval"] = None
    metrics["eval_by_kind"] = {}
    report = ("dev", data.dev_y, dev_scores)
    if data.eval_split is not None:
        eval_loss, eval_scores = predict(model, data.eval_x, data.eval_y, loss_fn)
        metrics["eval"] = binary_metrics(data.eval_y, eval_scores, loss=eval_loss)
        if "artifact_kind" in data.eval_extra:
            metrics["eval_by_kind"] = metrics_by_kind(data.eval_y, eval_scores, data.eval_extra["artifact_kind"])
        report = (data.eval_split, data.eval_y, eval_scores)
    return Evaluation(_json_ready(metrics), *report)


def write_outputs(out_dir: Path, evaluation: Evaluation, fitted: Fitted, *, config: dict,
                  checkpoint: dict, checkpoint_name: str, metrics_name: str, plots: bool) -> Path:
    """Write the checkpoint, the metrics document and the plots atomically; drop the resume state.

    The metrics document is ``{"config": config, **evaluation.metrics, "history": ...}``;
    returns the checkpoint's path.
    """
    checkpoint_path = save_torch(checkpoint, out_dir / checkpoint_name)
    document = {"config": config, **evaluation.metrics, "history": _json_ready(list(fitted.history))}
    atomic_write_bytes(out_dir / metrics_name, (json.dumps(document, indent=2, allow_nan=False) + "\n").encode())
    if plots:
        from lstmfpga.model.plots import plot_confusion, plot_history, plot_roc

        history_png, confusion_png, roc_png = PLOT_NAMES
        name = evaluation.report_name
        chosen = evaluation.metrics["eval"] or evaluation.metrics["dev"]
        plot_history(fitted.history, out_dir / history_png)
        plot_confusion(chosen["confusion_matrix"], out_dir / confusion_png, title=f"Confusion matrix ({name})")
        fpr, tpr, _ = roc_curve(evaluation.report_y, evaluation.report_scores)
        auc = chosen["roc_auc"]
        plot_roc(fpr, tpr, math.nan if auc is None else auc, out_dir / roc_png, title=f"ROC ({name})")
    (out_dir / RESUME_NAME).unlink(missing_ok=True)
    return checkpoint_path


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
    data = prepare_data(feature_set, frames=config.frames, clip=config.clip,
                        dev_fraction=config.dev_fraction, seed=config.seed)
    input_size = data.train_x.shape[-1]
    steps_per_epoch = math.ceil(len(data.train_y) / config.batch_size)

    torch.manual_seed(config.seed)
    model = build_head(config.head, input_size=input_size, hidden=config.hidden, layers=config.layers,
                       dropout=config.dropout)
    optimizer = _make_optimizer(config, model.parameters())
    setup = HeadSetup(model=model, optimizer=optimizer, loss_fn=make_loss(config.loss, focal_gamma=config.focal_gamma),
                      scheduler=_make_scheduler(config, optimizer, steps_per_epoch))
    resume = ResumeState(path=out_dir / RESUME_NAME, identity=config.to_dict(), normalization=data.normalization,
                         every_s=checkpoint_every_s)
    fitted = fit(setup, LoopSettings.of(config), (data.train_x, data.train_y), (data.dev_x, data.dev_y),
                 resume=resume, log=log, on_epoch_end=on_epoch_end)
    evaluation = evaluate(model, data, setup.loss_fn, monitor=config.monitor, fitted=fitted)
    checkpoint_path = write_outputs(out_dir, evaluation, fitted, config=config.to_dict(), checkpoint={
        "format": CHECKPOINT_FORMAT, "config": config.to_dict(), "state_dict": model.state_dict(),
        "normalization": _normalization_tensors(data.normalization),
        "frame_indices": torch.from_numpy(data.frame_indices.copy()), "input_size": input_size,
        "metrics": evaluation.metrics, "history": list(fitted.history),
    }, checkpoint_name=CHECKPOINT_NAME, metrics_name=METRICS_NAME, plots=plots)
    return TrainResult(config=config, out_dir=out_dir, checkpoint_path=checkpoint_path, metrics=evaluation.metrics,
                       history=fitted.history, normalization=data.normalization)
