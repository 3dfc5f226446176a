"""Build the integer artifact directly from a Brevitas model, and write its QONNX file.

Codes come from Brevitas's own quantized tensors (``.int()``); the σ/tanh tables come from
running Brevitas's own fused activation quantizers over every input code, so that table
boundaries are exactly Brevitas's.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from brevitas.quant_tensor import IntQuantTensor

from lstmfpga.foundation.atomic import atomic_path
from lstmfpga.foundation.errors import ArtifactError
from lstmfpga.foundation.artifact import (GATES, ClassifierArtifact, LayerArtifact, LstmArtifact,
                                     Normalization)
from lstmfpga.foundation.fixed_point import QuantSpec
from lstmfpga.foundation.recipe import derive_recipe

#: Brevitas cell attribute for each artifact quantizer name.
CELL_QUANTIZERS = {
    "io": "output_quant", "cell_state": "cell_state_quant",
    "input_acc": "input_acc_quant", "forget_acc": "forget_acc_quant",
    "cell_acc": "cell_acc_quant", "output_acc": "output_acc_quant",
    "input_sigmoid": "input_sigmoid_quant", "forget_sigmoid": "forget_sigmoid_quant",
    "cell_tanh": "cell_tanh_quant", "output_sigmoid": "output_sigmoid_quant",
    "hidden_tanh": "hidden_state_tanh_quant",
}
GATE_PARAMS = {"input": "input_gate_params", "forget": "forget_gate_params",
               "cell": "cell_gate_params", "output": "output_gate_params"}


def _spec_from_proxy(proxy, name: str) -> QuantSpec:
    zp = float(proxy.zero_point())
    if zp != 0.0:
        raise ArtifactError(f"quantizer {name} has zero point {zp}: only symmetric (zero point 0) "
                            "quantizers are supported by the integer datapath")
    scale = proxy.scale()
    if scale.numel() != 1:
        raise ArtifactError(f"quantizer {name} is per-channel ({scale.numel()} scales): only "
                            "per-tensor scales are supported")
    return QuantSpec(scale=float(scale.detach().float().item()), zero_point=0,
                     bits=int(proxy.bit_width()), signed=bool(proxy.is_signed),
                     narrow=bool(proxy.is_narrow_range))


def _weight_codes(qt, proxy, name: str) -> tuple[np.ndarray, QuantSpec]:
    """Integer codes and spec of a quantized weight ``qt`` from the weight quantizer ``proxy``."""
    if qt.scale.numel() != 1:
        raise ArtifactError(f"weight quantizer {name} is per-channel: only per-tensor scales are supported")
    if float(qt.zero_point.abs().max()) != 0.0:
        raise ArtifactError(f"weight quantizer {name} has a non-zero zero point")
    spec = QuantSpec(scale=float(qt.scale.detach().float().item()), zero_point=0,
                     bits=int(qt.bit_width), signed=bool(qt.signed),
                     narrow=bool(proxy.is_narrow_range))
    return qt.int().detach().cpu().numpy().astype(np.int64), spec


def _io_tensor(io: QuantSpec) -> IntQuantTensor:
    """A stand-in input at the io scale: Int32Bias takes its scale from the layer's input."""
    return IntQuantTensor(torch.zeros(1, 1), torch.tensor(io.scale), torch.tensor(0.0),
                          torch.tensor(float(io.bits)), io.signed, False)


def _bias_codes(bias_quant, bias, io: QuantSpec, quant_weight) -> np.ndarray:
    qb = bias_quant(bias, _io_tensor(io), quant_weight)
    return torch.round(qb.value / qb.scale).detach().cpu().numpy().astype(np.int64)


@torch.no_grad()
def _table(fused_proxy, in_spec: QuantSpec) -> np.ndarray:
    codes = torch.arange(in_spec.lo, in_spec.lo + in_spec.levels, dtype=torch.float32)
    x = codes * torch.tensor(in_spec.scale, dtype=torch.float32)
    value, scale, _, _ = fused_proxy(x)
    return torch.round(value / scale).numpy().astype(np.int64)


@torch.no_grad()
def layer_artifact(layer) -> LayerArtifact:
    """One Brevitas ``_QuantLSTMLayer`` (eval mode) → :class:`LayerArtifact`."""
    if layer.reverse_input:
        raise ArtifactError("bidirectional/reversed QuantLSTM layers are not supported")
    if layer.cifg:
        raise ArtifactError("coupled input-forget gates (CIFG) are not supported")
    quant = {name: _spec_from_proxy(getattr(layer.cell, attr), name)
             for name, attr in CELL_QUANTIZERS.items()}
    w_x, w_h, bias = [], [], []
    for gate in GATES:
        params = getattr(layer, GATE_PARAMS[gate])
        qx = params.input_weight()
        wx, spec = _weight_codes(qx, params.input_weight.weight_quant, f"weight_{gate}")
        wh, spec_h = _weight_codes(params.hidden_weight(), params.hidden_weight.weight_quant, f"weight_{gate}")
        if spec_h != spec:
            raise ArtifactError(f"gate {gate}: input and hidden weights use different quantizers")
        quant[f"weight_{gate}"] = spec
        w_x.append(wx)
        w_h.append(wh)
        if params.bias is None:
            bias.append(np.zeros(wx.shape[0], dtype=np.int64))
        else:
            bias.append(_bias_codes(params.bias_quant, params.bias, quant["io"], qx))
    fast = layer.fast_cell
    tables = np.stack([
        _table(fast.input_sigmoid_quant, quant["input_acc"]),
        _table(fast.forget_sigmoid_quant, quant["forget_acc"]),
        _table(fast.cell_tanh_quant, quant["cell_acc"]),
        _table(fast.output_sigmoid_quant, quant["output_acc"]),
    ])
    tanh_c = _table(fast.hidden_state_tanh_quant, quant["cell_state"])
    return LayerArtifact(input_size=layer.input_size, hidden_size=layer.hidden_size,
                         w_x=np.stack(w_x), w_h=np.stack(w_h), bias=np.stack(bias), quant=quant,
                         gate_tables=tables, tanh_c_table=tanh_c, **derive_recipe(quant))


@torch.no_grad()
def artifact_from_head(head, *, meta: dict | None = None) -> LstmArtifact:
    """A :class:`~lstmfpga.quant.head.QuantLstmHead` (or a bare ``QuantLSTM``) → artifact."""
    from lstmfpga.quant.head import QuantLstmHead

    was_training = head.training
    head.eval()
    try:
        lstm = head.lstm if isinstance(head, QuantLstmHead) else head
        if any(len(directions) != 1 for directions in lstm.layers):
            raise ArtifactError("bidirectional QuantLSTM is not supported by the FPGA head")
        layers = tuple(layer_artifact(directions[0]) for directions in lstm.layers)
        classifier = normalization = None
        if isinstance(head, QuantLstmHead):
            io = layers[0].quant["io"]
            if head.classifier is not None:
                cls = head.classifier
                qw = cls.quant_weight()
                weight, wq = _weight_codes(qw, cls.weight_quant, "classifier weight")
                classifier = ClassifierArtifact(
                    weight=weight, bias=_bias_codes(cls.bias_quant, cls.bias, io, qw),
                    weight_quant=wq, input_scale=io.scale)
            normalization = Normalization(mean=head.feature_mean.cpu().numpy().astype(np.float32),
                                          std=head.feature_std.cpu().numpy().astype(np.float32),
                                          clip=float(head.config.clip))
        return LstmArtifact(layers=layers, classifier=classifier, normalization=normalization,
                            meta=dict(meta or {}, source="brevitas"))
    finally:
        head.train(was_training)


def export_qonnx_file(head, path: str | Path, *, timesteps: int = 8) -> Path:
    """Write the QONNX graph of a head (the TorchScript exporter: dynamo drops the LSTM)."""
    from brevitas.export import export_qonnx

    path = Path(path)
    was_training = head.training
    head.eval()
    try:
        example = torch.zeros(1, timesteps, head.config.input_size if hasattr(head, "config")
                              else head.layers[0][0].input_size)
        with atomic_path(path) as tmp:
            export_qonnx(head, example, export_path=str(tmp), dynamo=False)
    finally:
        head.train(was_training)
    return path

