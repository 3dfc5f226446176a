"""Derive the integer requantization recipe of one LSTM layer from its quantizer scales.

NumPy only. Ratios are formed in float64 from the float32 scales; see docs/INTEGER_CONTRACT.md.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from lstmfpga.foundation.fixed_point import QuantSpec, Requant

_GATES = ("input", "forget", "cell", "output")


def derive_recipe(quant: Mapping[str, QuantSpec]) -> dict:
    """Requantizers of a layer: ``gate_requant`` (4), ``fc_requant``, ``ig_requant``, ``h_requant``."""
    s = {name: np.float64(spec.scale) for name, spec in quant.items()}
    io, cell = quant["io"], quant["cell_state"]
    gate_requant = tuple(
        Requant.from_ratio(float(s["io"] * s[f"weight_{g}"] / s[f"{g}_acc"]),
                           lo=quant[f"{g}_acc"].lo, hi=quant[f"{g}_acc"].hi)
        for g in _GATES)
    return {
        "gate_requant": gate_requant,
        # f·c and i·g land on the cell-state scale; o·tanh(c) on the io scale.
        "fc_requant": Requant.from_ratio(float(s["forget_sigmoid"] * s["cell_state"] / s["cell_state"]),
                                         lo=cell.lo, hi=cell.hi),
        "ig_requant": Requant.from_ratio(float(s["input_sigmoid"] * s["cell_tanh"] / s["cell_state"]),
                                         lo=cell.lo, hi=cell.hi),
        "h_requant": Requant.from_ratio(float(s["output_sigmoid"] * s["hidden_tanh"] / s["io"]),
                                        lo=io.lo, hi=io.hi),
    }
