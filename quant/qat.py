"""Quantization-aware fine-tuning of the LSTM head on cached features, through the one training
loop (:func:`lstmfpga.model.training.fit`): early stopping on the best dev epoch, resume after a
kill, metrics and plots, as for a float head.

QAT of a QuantLSTM is slow, so the usual path is: train a float head (``lstmfpga train``), then
initialise the quantized head from it and fine-tune for a few epochs here. Activation scales
settle from statistics during a few training-mode calibration passes before the first step.

Files :func:`qat_from_features` writes in ``out_dir``: ``qat_head.pt`` (:func:`load_qat_checkpoint`),
``qat_metrics.json`` (laid out as ``lstmfpga train``'s ``metrics.json``), the three PNG plots, and
``last.pt`` while training runs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from lstmfpga.foundation.errors import ConfigError
from lstmfpga.foundation.validation import check_integer, is_finite_number
from lstmfpga.model.train_config import MONITORS, canonical_choice
from lstmfpga.model.training import (RESUME_NAME, HeadSetup, LoopSettings, ResumeState, evaluate, fit,
                                     read_checkpoint, save_torch, write_outputs)
from lstmfpga.quant.head import QuantHeadConfig, QuantLstmHead

CHECKPOINT_FORMAT = "lstmfpga-qat-head/1"
CHECKPOINT_NAME = "qat_head.pt"
METRICS_NAME = "qat_metrics.json"


@dataclass(frozen=True)
class QatConfig:
    """Training settings of a QAT run (the head's shape lives in :class:`QuantHeadConfig`).

    ``patience`` and ``monitor`` mean what they mean for ``lstmfpga train``: the run stops after
    ``patience`` epochs without a better dev ``monitor`` and keeps the best dev epoch's weights.
    """

    epochs: int = 5
    lr: float = 1e-3
    batch_size: int = 16
    weight_decay: float = 1e-4
    calibration_batches: int = 4
    patience: int = 5
    monitor: str = "roc_auc"
    seed: int = 0

    def __post_init__(self):
        for name, low in (("epochs", 1), ("batch_size", 1), ("calibration_batches", 1), ("patience", 1),
                          ("seed", 0)):
            check_integer(name, getattr(self, name), low=low)
        for name in ("lr", "weight_decay"):
            v = getattr(self, name)
            if not is_finite_number(v) or v < 0:
                raise ConfigError(f"{name} must be a non-negative number, not {v!r}")
        object.__setattr__(self, "monitor", canonical_choice("monitor", self.monitor, MONITORS))

    @property
    def loop(self) -> LoopSettings:
        """The training loop's settings (no gradient clipping, no augmentation)."""
        return LoopSettings(epochs=self.epochs, patience=self.patience, batch_size=self.batch_size,
                            seed=self.seed, monitor=self.monitor)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class QatResult:
    head: QuantLstmHead
    checkpoint: Path
    history: list = field(default_factory=list)
    metrics: dict = field(default_factory=dict)


def calibrate(head: QuantLstmHead, x: np.ndarray, *, batches: int, batch_size: int) -> None:
    """Training-mode forward passes without gradients so Brevitas's activation scales settle."""
    head.train()
    with torch.no_grad():
        for start in range(0, min(len(x), batches * batch_size), batch_size):
            head(torch.from_numpy(np.ascontiguousarray(x[start:start + batch_size], dtype=np.float32)))


def init_from_float(head: QuantLstmHead, float_head: nn.Module) -> None:
    """Copy a float ``RecurrentHead`` (``rnn`` = nn.LSTM, ``classifier`` = nn.Linear) into the head."""
    rnn = getattr(float_head, "rnn", None)
    if not isinstance(rnn, nn.LSTM):
        raise ConfigError(f"QAT starts from an LSTM head; this checkpoint holds a "
                          f"{type(rnn).__name__ if rnn is not None else type(float_head).__name__}")
    head.load_float_lstm(rnn)
    if head.classifier is not None:
        cls = float_head.classifier
        if tuple(cls.weight.shape) != tuple(head.classifier.weight.shape):
            raise ConfigError(f"float classifier shape {tuple(cls.weight.shape)} does not match "
                              f"{tuple(head.classifier.weight.shape)}")
        with torch.no_grad():
            head.classifier.weight.copy_(cls.weight)
            head.classifier.bias.copy_(cls.bias)


def _checkpoint(head: QuantLstmHead, extra: dict | None) -> dict:
    # Plain data only (the configuration as a dict), so that loading needs no unpickling.
    return {"format": CHECKPOINT_FORMAT, "head_config": head.config.to_dict(), "state_dict": head.state_dict(),
            **(extra or {})}


def save_qat_checkpoint(head: QuantLstmHead, path: Path, *, extra: dict | None = None) -> Path:
    """Save the head: its configuration, its state dict and ``extra`` (plain data)."""
    return save_torch(_checkpoint(head, extra), path)


def load_qat_checkpoint(path) -> tuple[QuantLstmHead, dict]:
    """The quantized head (eval mode), rebuilt from its stored configuration, and the checkpoint dict."""
    ckpt = read_checkpoint(path, fmt=CHECKPOINT_FORMAT, what="QAT checkpoint")
    head = QuantLstmHead(QuantHeadConfig(**ckpt["head_config"]))
    head.load_state_dict(ckpt["state_dict"])
    head.eval()
    return head, ckpt


def _setup(head: QuantLstmHead, train_x: np.ndarray, config: QatConfig) -> HeadSetup:
    return HeadSetup(
        model=head, loss_fn=nn.CrossEntropyLoss(),
        optimizer=torch.optim.AdamW(head.parameters(), lr=config.lr, weight_decay=config.weight_decay),
        prepare=lambda: calibrate(head, train_x, batches=config.calibration_batches, batch_size=config.batch_size),
        save_extra=head.statistics_state, load_extra=head.load_statistics_state)


def qat_train(head: QuantLstmHead, train_x: np.ndarray, train_y: np.ndarray, *,
              config: QatConfig, dev: tuple[np.ndarray, np.ndarray] | None = None,
              progress: bool = True) -> list[dict]:
    """Fine-tune ``head`` in place on standardised features, in memory; returns the per-epoch history.

    With ``dev`` the head ends with its best dev epoch's weights (early stopping as configured),
    without it after the last epoch.  The head's own standardisation is expected to be the
    identity during training when the inputs are already standardised (it clips to ±clip either way).
    """
    torch.manual_seed(config.seed)
    fitted = fit(_setup(head, train_x, config), config.loop, (train_x, train_y), dev,
                 log=print if progress else None)
    return list(fitted.history)


def qat_from_features(feature_set, out_dir, *, head_config: QuantHeadConfig | None = None,
                      frames: int = 16, float_checkpoint=None, config: QatConfig = QatConfig(),
                      progress: bool = True, plots: bool = True, checkpoint_every_s: float = 30.0,
                      on_epoch_end=None) -> QatResult:
    """The ``lstmfpga qat`` job: prepare data, initialise (optionally from a float head), fine-tune
    with early stopping on the dev part, evaluate on the held-out split, write ``qat_head.pt``,
    ``qat_metrics.json`` and the plots.  A killed run given the same ``out_dir`` resumes.
    ``plots``, ``checkpoint_every_s`` and ``on_epoch_end`` are :func:`~lstmfpga.model.training.train_head`'s."""
    from lstmfpga.model.train_data import prepare_data
    from lstmfpga.model.training import load_checkpoint

    if not checkpoint_every_s >= 0:
        raise ConfigError(f"checkpoint_every_s must be >= 0, not {checkpoint_every_s!r}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    float_head = None
    clip = head_config.clip if head_config else 4.0
    if float_checkpoint is not None:
        float_head, ckpt = load_checkpoint(float_checkpoint)
        tc = ckpt["config"]
        if tc["head"] != "lstm":
            raise ConfigError(f"{float_checkpoint}: QAT starts from an 'lstm' head, this one is {tc['head']!r}")
        frames, clip = int(tc["frames"]), float(tc.get("clip", clip))
        base = head_config or QuantHeadConfig(input_size=int(ckpt["input_size"]), hidden_size=1)
        head_config = QuantHeadConfig(input_size=int(ckpt["input_size"]), hidden_size=int(tc["hidden"]),
                                      num_layers=int(tc["layers"]), num_classes=2,
                                      weight_bits=base.weight_bits, act_bits=base.act_bits, clip=clip)
    if head_config is None:
        raise ConfigError("give a head configuration or a float checkpoint to start QAT from")
    if head_config.input_size != feature_set.features.shape[2]:
        raise ConfigError(f"head input size {head_config.input_size} != feature width {feature_set.features.shape[2]}")
    data = prepare_data(feature_set, frames=frames, clip=head_config.clip, dev_fraction=0.2, seed=config.seed)
    torch.manual_seed(config.seed)
    head = QuantLstmHead(head_config)
    if float_head is not None:
        init_from_float(head, float_head)
    setup = _setup(head, data.train_x, config)
    identity = {**config.to_dict(), **{f"head_{k}": v for k, v in head_config.to_dict().items()},
                "frames": frames, "float_checkpoint": None if float_checkpoint is None else Path(float_checkpoint).name}
    resume = ResumeState(path=out_dir / RESUME_NAME, identity=identity, normalization=data.normalization,
                         every_s=checkpoint_every_s)
    fitted = fit(setup, config.loop, (data.train_x, data.train_y), (data.dev_x, data.dev_y), resume=resume,
                 log=print if progress else None, on_epoch_end=on_epoch_end)
    evaluation = evaluate(head, data, setup.loss_fn, monitor=config.monitor, fitted=fitted)
    # Training ran on standardised inputs; the exported head standardises raw features itself.
    head.set_normalization(data.normalization.mean, data.normalization.std)
    ckpt_path = write_outputs(out_dir, evaluation, fitted, config=config.to_dict(), checkpoint=_checkpoint(head, {
        "frames": frames, "frame_indices": data.frame_indices.tolist(), "history": list(fitted.history),
        "metrics": evaluation.metrics, "qat_config": config.to_dict()}),
        checkpoint_name=CHECKPOINT_NAME, metrics_name=METRICS_NAME, plots=plots)
    return QatResult(head=head, checkpoint=ckpt_path, history=list(fitted.history), metrics=evaluation.metrics)
