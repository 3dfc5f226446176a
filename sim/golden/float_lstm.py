"""Float golden model: a plain LSTM in NumPy with torch.nn.LSTM's conventions.

Weights per layer in torch layout: ``w_ih [4H, I]``, ``w_hh [4H, H]``, ``b_ih``, ``b_hh``
``[4H]``, gate order i, f, g, o. Computes in float64, returns float32.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lstmfpga.foundation.errors import InputError


@dataclass(frozen=True, eq=False)
class FloatLayer:
    w_ih: np.ndarray
    w_hh: np.ndarray
    b_ih: np.ndarray
    b_hh: np.ndarray

    @property
    def hidden_size(self) -> int:
        return self.w_hh.shape[1]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # overflow-free form


def run_float(layers: list[FloatLayer], x: np.ndarray) -> list[np.ndarray]:
    """Run a stack of LSTM layers from zero state; returns each layer's hidden sequence ``[B, T, H]``."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 3:
        raise InputError(f"input must be [batch, time, features], got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise InputError("input contains NaN/inf values")
    outputs = []
    for l, layer in enumerate(layers):
        if x.shape[2] != layer.w_ih.shape[1]:
            raise InputError(f"layer {l} expects {layer.w_ih.shape[1]} features, got {x.shape[2]}")
        B, T, _ = x.shape
        H = layer.hidden_size
        pre = x @ layer.w_ih.astype(np.float64).T + (layer.b_ih + layer.b_hh).astype(np.float64)
        w_hh = layer.w_hh.astype(np.float64).T
        h = np.zeros((B, H))
        c = np.zeros((B, H))
        hs = np.empty((B, T, H))
        for t in range(T):
            z = pre[:, t] + h @ w_hh
            i, f, g, o = _sigmoid(z[:, :H]), _sigmoid(z[:, H:2 * H]), np.tanh(z[:, 2 * H:3 * H]), _sigmoid(z[:, 3 * H:])
            c = f * c + i * g
            h = o * np.tanh(c)
            hs[:, t] = h
        outputs.append(hs.astype(np.float32))
        x = hs
    return outputs


def float_layers_from_artifact(artifact) -> list[FloatLayer]:
    """Dequantized weights of an artifact as float layers (bias split into b_ih, zero b_hh)."""
    layers = []
    io_scale = np.float64(artifact.io_quant.scale)
    for layer in artifact.layers:
        H = layer.hidden_size
        s_w = layer.weight_scales()[:, None, None]
        w_ih = (layer.w_x * s_w).reshape(4 * H, layer.input_size)
        w_hh = (layer.w_h * s_w).reshape(4 * H, H)
        b = (layer.bias * (io_scale * layer.weight_scales()[:, None])).reshape(4 * H)
        layers.append(FloatLayer(w_ih=w_ih, w_hh=w_hh, b_ih=b, b_hh=np.zeros_like(b)))
    return layers


def run_float_artifact(artifact, x: np.ndarray, *, normalize: bool = True):
    """The unquantized counterpart of an artifact: (hidden [B,T,H], logits [B,C] | None)."""
    from lstmfpga.foundation.integer_lstm import check_features

    x = np.asarray(check_features(artifact, x), dtype=np.float32)
    if normalize and artifact.normalization is not None:
        x = artifact.normalization.apply(x)
    hidden = run_float(float_layers_from_artifact(artifact), x)[-1]
    logits = None
    if artifact.classifier is not None:
        cls = artifact.classifier
        w = cls.weight * np.float64(cls.weight_quant.scale)
        b = cls.bias * cls.out_scale
        logits = (hidden[:, -1].astype(np.float64) @ w.T + b).astype(np.float32)
    return hidden, logits
