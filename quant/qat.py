"""Quantization-aware fine-tuning of the LSTM head on cached features.

QAT of a QuantLSTM is slow, so the usual path is: train a float head (``lstmfpga train``), then
initialise the quantized head from it and fine-tune for a few epochs here. Activation scales
settle from statistics during a few training-mode calibration passes before the first step.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from lstmfpga.foundation.atomic import atomic_file
from lstmfpga.foundation.errors import ArtifactError, ConfigError
from lstmfpga.quant.head import QuantHeadConfig, QuantLstmHead

CHECKPOINT_FORMAT = "lstmfpga-qat-head/1"


@dataclass(frozen=True)
class QatConfig:
    """Training settings of a QAT run (the head's shape lives in :class:`QuantHeadConfig`)."""

    epochs: int = 5
    lr: float = 1e-3
    batch_size: int = 16
    weight_decay: float = 1e-4
    calibration_batches: int = 4
    seed: int = 0

    def __post_init__(self):
        for name in ("epochs", "batch_size", "calibration_batches"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < (0 if name == "epochs" else 1):
                raise ConfigError(f"{name} must be a positive integer, not {v!r}")
        for name in ("lr", "weight_decay"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise ConfigError(f"{name} must be a non-negative number, not {v!r}")


@dataclass
class QatResult:
    head: QuantLstmHead
    checkpoint: Path
    history: list = field(default_factory=list)
    metrics: dict = field(default_factory=dict)


def _batches(n: int, batch_size: int, rng: np.random.Generator | None):
    order = rng.permutation(n) if rng is not None else np.arange(n)
    for start in range(0, n, batch_size):
        yield order[start:start + batch_size]


@torch.no_grad()
def predict_scores(head: QuantLstmHead, x: np.ndarray, *, batch_size: int = 64) -> np.ndarray:
    """P(fake) for features ``[N, T, I]`` (eval mode, fake-quantized forward)."""
    head.eval()
    out = []
    for idx in _batches(len(x), batch_size, None):
        logits = head(torch.from_numpy(np.ascontiguousarray(x[idx], dtype=np.float32)))
        out.append(torch.softmax(logits, dim=1)[:, 1].numpy())
    return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)


def calibrate(head: QuantLstmHead, x: np.ndarray, *, batches: int, batch_size: int) -> None:
    """Training-mode forward passes without gradients so Brevitas's activation scales settle."""
    head.train()
    with torch.no_grad():
        for k, idx in enumerate(_batches(len(x), batch_size, None)):
            if k >= batches:
                break
            head(torch.from_numpy(np.ascontiguousarray(x[idx], dtype=np.float32)))


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


def save_qat_checkpoint(head: QuantLstmHead, path: Path, *, extra: dict | None = None) -> Path:
    payload = {"format": CHECKPOINT_FORMAT, "head_config": head.config.to_dict(),
               "state_dict": head.state_dict(), **(extra or {})}
    with atomic_file(path) as handle:
        torch.save(payload, handle)
    return path


def load_qat_checkpoint(path) -> tuple[QuantLstmHead, dict]:
    """The quantized head (eval mode) and the checkpoint dict."""
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"QAT checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise ArtifactError(f"{path}: not a readable checkpoint ({type(exc).__name__}: {exc})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ArtifactError(f"{path}: not an lstmfpga QAT checkpoint (expected format {CHECKPOINT_FORMAT})")
    head = QuantLstmHead(QuantHeadConfig(**ckpt["head_config"]))
    head.load_state_dict(ckpt["state_dict"])
    head.eval()
    return head, ckpt


def qat_train(head: QuantLstmHead, train_x: np.ndarray, train_y: np.ndarray, *,
              config: QatConfig, dev: tuple[np.ndarray, np.ndarray] | None = None,
              progress: bool = True) -> list[dict]:
    """Fine-tune ``head`` in place on standardised features; returns the per-epoch history.

    The head's own standardisation is expected to be the identity during training when the
    inputs are already standardised (it clips to ±clip either way).
    """
    from lstmfpga.model.metrics import binary_metrics

    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    calibrate(head, train_x, batches=config.calibration_batches, batch_size=config.batch_size)
    opt = torch.optim.AdamW(head.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    loss_fn = nn.CrossEntropyLoss()
    history = []
    for epoch in range(1, config.epochs + 1):
        head.train()
        start, total, seen = time.perf_counter(), 0.0, 0
        batches = list(_batches(len(train_x), config.batch_size, rng))
        for idx in tqdm(batches, desc=f"QAT epoch {epoch}/{config.epochs}", disable=not progress, leave=False):
            xb = torch.from_numpy(np.ascontiguousarray(train_x[idx], dtype=np.float32))
            yb = torch.from_numpy(np.asarray(train_y[idx], dtype=np.int64))
            opt.zero_grad()
            loss = loss_fn(head(xb), yb)
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
            seen += len(idx)
        row = {"epoch": epoch, "train_loss": total / max(seen, 1), "seconds": time.perf_counter() - start}
        if dev is not None and len(dev[0]):
            m = binary_metrics(dev[1], predict_scores(head, dev[0]))
            row.update({f"dev_{k}": m[k] for k in ("accuracy", "f1", "roc_auc")})
        history.append(row)
        if progress:
            print("  " + "  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))
    head.eval()
    return history


def qat_from_features(feature_set, out_dir, *, head_config: QuantHeadConfig | None = None,
                      frames: int = 16, float_checkpoint=None, config: QatConfig = QatConfig(),
                      progress: bool = True) -> QatResult:
    """The ``lstmfpga qat`` job: prepare data, initialise (optionally from a float head), fine-tune,
    evaluate on the held-out split, save ``qat_head.pt`` and ``qat_metrics.json``."""
    from lstmfpga.model.metrics import binary_metrics
    from lstmfpga.model.train_data import prepare_data

    out_dir = Path(out_dir)
    float_head = None
    clip = head_config.clip if head_config else 4.0
    if float_checkpoint is not None:
        from lstmfpga.model.training import load_checkpoint

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
    history = qat_train(head, data.train_x, data.train_y, config=config,
                        dev=(data.dev_x, data.dev_y), progress=progress)
    metrics = {}
    if data.eval_x is not None:
        metrics = binary_metrics(data.eval_y, predict_scores(head, data.eval_x))
        metrics["split"] = data.eval_split
    # Training ran on standardised inputs; the exported head standardises raw features itself.
    head.set_normalization(data.normalization.mean, data.normalization.std)
    ckpt_path = save_qat_checkpoint(head, out_dir / "qat_head.pt", extra={
        "frames": frames, "frame_indices": data.frame_indices.tolist(), "history": history,
        "metrics": metrics, "qat_config": asdict(config)})
    (out_dir / "qat_metrics.json").write_text(json.dumps({"history": history, "metrics": metrics}, indent=2))
    return QatResult(head=head, checkpoint=ckpt_path, history=history, metrics=metrics)
