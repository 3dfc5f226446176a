"""Valid artifacts with random weights and plausible scales, built without torch.

For hardware and host tests: every field is consistent (ranges, tables, requant ratios derived
from the scales), but the tables come from NumPy rather than Brevitas.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from lstmfpga.foundation.artifact import (ClassifierArtifact, GATES, LayerArtifact, LstmArtifact,
                                     Normalization)
from lstmfpga.foundation.fixed_point import QuantSpec
from lstmfpga.foundation.recipe import derive_recipe


def _spec(scale: float, bits: int, signed: bool, narrow: bool = False) -> QuantSpec:
    return QuantSpec(scale=float(np.float32(scale)), zero_point=0, bits=bits, signed=signed, narrow=narrow)


def _table(fn, in_spec: QuantSpec, out_spec: QuantSpec) -> np.ndarray:
    codes = np.arange(in_spec.lo, in_spec.lo + in_spec.levels)
    x = codes.astype(np.float32) * np.float32(in_spec.scale)
    return out_spec.quantize(fn(x).astype(np.float32))


def random_layer(rng: np.random.Generator, *, input_size: int, hidden_size: int, io: QuantSpec,
                 cell: QuantSpec, weight_bits: int, act_bits: int) -> LayerArtifact:
    H, I = hidden_size, input_size
    wq = {g: _spec(rng.uniform(0.5, 1.5) / (2 ** (weight_bits - 1) - 1) / np.sqrt(I + H) * 2,
                   weight_bits, True, True) for g in GATES}
    w_x = np.stack([rng.integers(wq[g].lo, wq[g].hi + 1, size=(H, I)) for g in GATES])
    w_h = np.stack([rng.integers(wq[g].lo, wq[g].hi + 1, size=(H, H)) for g in GATES])
    acc = {g: _spec(rng.uniform(3.0, 8.0) / 2 ** (act_bits - 1), act_bits, True) for g in GATES}
    sig = _spec(1.0 / (2 ** act_bits - 1), act_bits, False)
    tanh = _spec(1.0 / (2 ** (act_bits - 1) - 1), act_bits, True)
    bias = np.stack([rng.integers(-3, 4, size=H) * int(round(acc[g].scale / (io.scale * wq[g].scale)))
                     for g in GATES]).astype(np.int64)
    quant = {"io": io, "cell_state": cell,
             "input_acc": acc["input"], "forget_acc": acc["forget"], "cell_acc": acc["cell"],
             "output_acc": acc["output"], "input_sigmoid": sig, "forget_sigmoid": sig,
             "cell_tanh": tanh, "output_sigmoid": sig, "hidden_tanh": tanh,
             **{f"weight_{g}": wq[g] for g in GATES}}
    sigmoid = lambda v: 1.0 / (1.0 + np.exp(-v))  # noqa: E731
    tables = np.stack([_table(sigmoid, acc["input"], sig), _table(sigmoid, acc["forget"], sig),
                       _table(np.tanh, acc["cell"], tanh), _table(sigmoid, acc["output"], sig)])
    return LayerArtifact(input_size=I, hidden_size=H, w_x=w_x, w_h=w_h, bias=bias, quant=quant,
                         gate_tables=tables, tanh_c_table=_table(np.tanh, cell, tanh),
                         **derive_recipe(quant))


def random_artifact(*, input_size: int, hidden_size: int, num_layers: int = 1, num_classes: int = 2,
                    weight_bits: int = 4, act_bits: int = 8, seed: int = 0,
                    normalization: bool = True) -> LstmArtifact:
    """A random but fully consistent :class:`LstmArtifact`."""
    rng = np.random.default_rng(seed)
    io = _spec(rng.uniform(2.0, 4.0) / 2 ** (act_bits - 1), act_bits, True)
    cell = _spec(rng.uniform(2.0, 4.0) / 2 ** (act_bits - 1), act_bits, True)
    layers = tuple(random_layer(rng, input_size=input_size if l == 0 else hidden_size,
                                hidden_size=hidden_size, io=io, cell=cell,
                                weight_bits=weight_bits, act_bits=act_bits)
                   for l in range(num_layers))
    classifier = None
    if num_classes:
        wq = _spec(1.0 / (2 ** (weight_bits - 1) - 1) / np.sqrt(hidden_size), weight_bits, True, True)
        classifier = ClassifierArtifact(
            weight=rng.integers(wq.lo, wq.hi + 1, size=(num_classes, hidden_size)),
            bias=rng.integers(-50, 51, size=num_classes), weight_quant=wq, input_scale=io.scale)
    norm = None
    if normalization:
        norm = Normalization(mean=rng.normal(0, 1, input_size).astype(np.float32),
                             std=rng.uniform(0.5, 2.0, input_size).astype(np.float32), clip=4.0)
    return LstmArtifact(layers=layers, classifier=classifier, normalization=norm,
                        meta={"source": "random_artifact", "seed": seed})


def most_negative_weights(artifact: LstmArtifact) -> LstmArtifact:
    """``artifact`` with every LSTM weight at the most negative code of a full-range quantizer.

    The corner packed multipliers must survive: with inputs at the most negative code too, every
    product is the largest positive one, ``2^(wb+ab-2)``, and every sum grows as fast as it can.
    """
    layers = []
    for layer in artifact.layers:
        quant = dict(layer.quant)
        for gate in GATES:
            spec = quant[f"weight_{gate}"]
            quant[f"weight_{gate}"] = QuantSpec(scale=spec.scale, zero_point=spec.zero_point, bits=spec.bits,
                                                signed=True, narrow=False)
        lo = quant[f"weight_{GATES[0]}"].lo
        layers.append(dataclasses.replace(layer, quant=quant, w_x=np.full_like(layer.w_x, lo),
                                          w_h=np.full_like(layer.w_h, lo)))
    return dataclasses.replace(artifact, layers=tuple(layers),
                               meta={**artifact.meta, "weights": "most negative"})
