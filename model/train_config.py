"""The training configuration: one frozen, validated dataclass that checkpoints store as a dict.

Choice fields take the seed study's names (``ReduceLROnPlateau``, ``CrossEntropyLoss``, ``AdamW``)
or any case/punctuation variant or short alias of them (``plateau``, ``ce``, ``focal``); they are
stored in their canonical spelling, so a config read back from a checkpoint compares equal.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

from lstmfpga.foundation.errors import ConfigError
from lstmfpga.foundation.validation import check_integer, is_finite_number

HEADS = ("lstm", "bilstm", "gru", "frame-avg")
LOSSES = ("CrossEntropyLoss", "MSE", "FocalLoss")
OPTIMIZERS = ("RAdam", "RMSprop", "AdamW")
SCHEDULERS = ("ReduceLROnPlateau", "CosineAnnealingLR", "OneCycleLR")
MONITORS = ("roc_auc", "accuracy", "f1", "loss")

_ALIASES = {
    "frameaverage": "frame-avg", "frameavg": "frame-avg", "avg": "frame-avg", "mean": "frame-avg",
    "crossentropy": "CrossEntropyLoss", "ce": "CrossEntropyLoss",
    "mseloss": "MSE", "focal": "FocalLoss",
    "plateau": "ReduceLROnPlateau", "cosine": "CosineAnnealingLR", "cosineannealing": "CosineAnnealingLR",
    "onecycle": "OneCycleLR",
    "auc": "roc_auc",
}


def _key(value: str) -> str:
    return re.sub(r"[^a-z0-9]", "", value.lower())


def canonical_choice(field_name: str, value, choices: tuple[str, ...]) -> str:
    """The canonical spelling of ``value`` among ``choices``; :class:`ConfigError` if none fits."""
    if isinstance(value, str):
        by_key = {_key(c): c for c in choices}
        key = _key(value)
        if key in by_key:
            return by_key[key]
        alias = _ALIASES.get(key)
        if alias in choices:
            return alias
    raise ConfigError(f"{field_name} must be one of {', '.join(choices)}, not {value!r}")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines one training run of a head over cached features.

    Attributes
    ----------
    head : str
        ``'lstm'``, ``'bilstm'``, ``'gru'`` or ``'frame-avg'`` (mean over time, then an MLP).
    hidden : int
        Recurrent units per direction (the seed's "LSTM units"); the MLP width for frame-avg.
    layers : int
        Stacked recurrent layers (ignored by frame-avg).
    frames : int
        Sequence length T: frames sub-sampled uniformly from the cache's T_max.
    dropout : float
        On the head's input to the classifier, and between stacked recurrent layers.
    input_dropout : float
        Dropout on the standardized input features while training (every frame, every feature).
    reverse_prob : float
        Augmentation: the probability that a training sequence is shown in reverse time order
        (a forgery stays a forgery played backwards; the order statistics a temporal head should
        learn, such as frame-to-frame smoothness, do not depend on the direction).
    lr, weight_decay : float
        Learning rate (OneCycleLR's peak) and decoupled/L2 weight decay.
    batch_size, epochs, patience : int
        Early stopping ends training after ``patience`` epochs without a better dev metric.
    loss, optimizer, scheduler : str
        One of :data:`LOSSES`, :data:`OPTIMIZERS`, :data:`SCHEDULERS`.
    focal_gamma : float
        The focusing exponent of FocalLoss.
    clip : float
        Standardized features are clipped to ``[-clip, clip]`` (the quantized head's input range).
    dev_fraction : float
        Share of the train split held out, stratified by label, for early stopping and search.
    monitor : str
        The dev metric for early stopping and the search: ``roc_auc``, ``accuracy``, ``f1``
        (maximized) or ``loss`` (minimized).
    max_grad_norm : float
        Gradient-norm clipping; 0 turns it off.
    seed : int
        Seeds the dev split, batch order, initialization and dropout.
    """

    head: str = "lstm"
    hidden: int = 512
    layers: int = 1
    frames: int = 16
    dropout: float = 0.3
    input_dropout: float = 0.0
    reverse_prob: float = 0.0
    lr: float = 1e-3
    weight_decay: float = 1e-4
    batch_size: int = 16
    epochs: int = 30
    patience: int = 5
    loss: str = "CrossEntropyLoss"
    optimizer: str = "AdamW"
    scheduler: str = "ReduceLROnPlateau"
    focal_gamma: float = 2.0
    clip: float = 4.0
    dev_fraction: float = 0.2
    monitor: str = "roc_auc"
    max_grad_norm: float = 5.0
    seed: int = 0

    def __post_init__(self):
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731 (frozen)
        set_("head", canonical_choice("head", self.head, HEADS))
        set_("loss", canonical_choice("loss", self.loss, LOSSES))
        set_("optimizer", canonical_choice("optimizer", self.optimizer, OPTIMIZERS))
        set_("scheduler", canonical_choice("scheduler", self.scheduler, SCHEDULERS))
        set_("monitor", canonical_choice("monitor", self.monitor, MONITORS))
        for name, low in (("hidden", 1), ("layers", 1), ("frames", 1), ("batch_size", 1),
                          ("epochs", 1), ("patience", 1), ("seed", 0)):
            check_integer(name, getattr(self, name), low=low)
        checks = (
            ("dropout", lambda v: 0.0 <= v < 1.0, "in [0, 1)"),
            ("input_dropout", lambda v: 0.0 <= v < 1.0, "in [0, 1)"),
            ("reverse_prob", lambda v: 0.0 <= v <= 1.0, "in [0, 1]"),
            ("lr", lambda v: 0.0 < v <= 10.0, "in (0, 10]"),
            ("weight_decay", lambda v: 0.0 <= v < 1.0, "in [0, 1)"),
            ("focal_gamma", lambda v: 0.0 <= v <= 10.0, "in [0, 10]"),
            ("clip", lambda v: v > 0.0, "> 0"),
            ("dev_fraction", lambda v: 0.0 < v < 1.0, "in (0, 1)"),
            ("max_grad_norm", lambda v: v >= 0.0, ">= 0"),
        )
        for name, ok, text in checks:
            value = getattr(self, name)
            if not is_finite_number(value) or not ok(value):
                raise ConfigError(f"{name} must be a number {text}, not {value!r}")
            set_(name, float(value))

    def to_dict(self) -> dict:
        """Plain JSON-ready dict (what checkpoints store)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        """Build from a dict; unknown keys raise :class:`ConfigError` naming them."""
        unknown = sorted(set(values) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ConfigError(f"unknown TrainConfig fields {unknown}")
        return cls(**values)

    def replace(self, **changes) -> TrainConfig:
        """A copy with some fields changed (validated again)."""
        return self.from_dict({**self.to_dict(), **changes})

    @property
    def maximize(self) -> bool:
        """Whether a larger monitor value is better."""
        return self.monitor != "loss"
