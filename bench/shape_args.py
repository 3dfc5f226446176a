"""The model-shape options the benchmark scripts share, with the study's base model as default.

The study's smallest LSTM on ResNet-50 features: I=2048, H=512, one layer, T=16, 4-bit weights and
8-bit activations (``../shared/seed``).
"""

from __future__ import annotations

import argparse

STUDY_BASE = {"input": 2048, "hidden": 512, "layers": 1, "steps": 16, "weight_bits": 4, "act_bits": 8}


def add_shape_arguments(parser: argparse.ArgumentParser, *, act_bits: bool = True) -> None:
    """Add ``--input --hidden --layers --steps --weight-bits`` (and ``--act-bits``) to ``parser``."""
    group = parser.add_argument_group("model shape (default: the study's base model)")
    for name, help_ in (("input", "feature size I"), ("hidden", "LSTM units H"), ("layers", "LSTM layers L"),
                        ("steps", "timesteps T"), ("weight_bits", "weight bits"), ("act_bits", "activation bits")):
        if name == "act_bits" and not act_bits:
            continue
        group.add_argument("--" + name.replace("_", "-"), type=int, default=STUDY_BASE[name],
                           help=f"{help_} (default: %(default)s)")
