"""The random-search space: hyperparameter name → the values a trial picks from.

The default is the seed study's space, exactly.  A JSON or YAML file overrides it key by key::

    {"hidden": [16, 32], "frames": [8], "head": ["lstm", "gru"]}

Keys are :class:`~lstmfpga.model.train_config.TrainConfig` field names (the seed's names
``lstm_units``, ``sequence_length``, ``lstm_layers``, ``learning_rate`` are accepted too); a key
with a one-value list fixes that hyperparameter.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from types import MappingProxyType

from lstmfpga.foundation.errors import ConfigError
from lstmfpga.model.train_config import TrainConfig

SEED_SPACE = {
    "hidden": (512, 1024, 2048),
    "frames": (8, 16, 24),
    "layers": (1, 2, 3),
    "dropout": (0.3, 0.4, 0.5),
    "scheduler": ("ReduceLROnPlateau", "CosineAnnealingLR", "OneCycleLR"),
    "lr": (1e-3, 1e-4, 1e-5),
    "weight_decay": (1e-3, 1e-4, 1e-5),
    "batch_size": (8, 16, 24),
    "loss": ("CrossEntropyLoss", "MSE", "FocalLoss"),
    "optimizer": ("RAdam", "RMSprop", "AdamW"),
}

_KEY_ALIASES = {
    "lstm_units": "hidden", "units": "hidden", "sequence_length": "frames", "seq_len": "frames",
    "lstm_layers": "layers", "learning_rate": "lr", "dropout_rate": "dropout",
}
#: Fields a search may vary: every TrainConfig field except the seed (fixed per search).
SEARCHABLE = tuple(f.name for f in fields(TrainConfig) if f.name != "seed")


@dataclass(frozen=True)
class SearchSpace:
    """Validated choices per hyperparameter, in canonical form (``TrainConfig`` spellings)."""

    choices: Mapping[str, tuple]

    def __post_init__(self):
        if not isinstance(self.choices, Mapping):
            raise ConfigError(f"search space must map hyperparameter names to value lists, not {type(self.choices).__name__}")
        canonical = {}
        for raw_name, values in self.choices.items():
            name = _KEY_ALIASES.get(raw_name, raw_name)
            if name not in SEARCHABLE:
                raise ConfigError(f"search space has unknown hyperparameter {raw_name!r}; "
                                  f"known: {', '.join(SEARCHABLE)}")
            if name in canonical:
                raise ConfigError(f"search space names {name!r} twice")
            if isinstance(values, (str, bytes)) or not isinstance(values, (list, tuple)):
                raise ConfigError(f"search space {raw_name!r} must be a list of values, not {values!r}")
            if not values:
                raise ConfigError(f"search space {raw_name!r} has an empty list of values")
            checked = []
            for value in values:
                try:
                    value = getattr(TrainConfig(**{name: value}), name)
                except TypeError as exc:
                    raise ConfigError(f"search space {raw_name!r} value {value!r}: {exc}") from exc
                except ConfigError as exc:
                    raise ConfigError(f"search space {raw_name!r}: {exc}") from exc
                if value not in checked:
                    checked.append(value)
            canonical[name] = tuple(checked)
        object.__setattr__(self, "choices", MappingProxyType(canonical))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.choices)

    def size(self) -> int:
        """Number of distinct configurations."""
        total = 1
        for values in self.choices.values():
            total *= len(values)
        return total

    def overridden(self, overrides: Mapping) -> SearchSpace:
        """This space with the keys of ``overrides`` replaced."""
        checked = SearchSpace(dict(overrides)).choices
        return SearchSpace({**self.choices, **checked})

    def to_dict(self) -> dict:
        return {name: list(values) for name, values in self.choices.items()}


DEFAULT_SPACE = SearchSpace(SEED_SPACE)


def load_space(path, *, base: SearchSpace = DEFAULT_SPACE) -> SearchSpace:
    """Read a JSON (``.json``) or YAML (``.yaml``/``.yml``) file that overrides ``base`` per key."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"search space file {path} cannot be read: {exc.strerror}") from exc
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except Exception as exc:  # json.JSONDecodeError / yaml.YAMLError: both mean a malformed file
        raise ConfigError(f"search space file {path} is not valid {path.suffix.lstrip('.') or 'JSON'}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"search space file {path} must hold a mapping of hyperparameter lists")
    try:
        return base.overridden(data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
