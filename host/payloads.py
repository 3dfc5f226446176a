"""Host-side input preparation: standardise + quantize features, and the split-mode GEMM.

Follows docs/INTEGER_CONTRACT.md ("Host side"). The split-mode products ``W_i . x`` run as one
GEMM over all sequences and steps: on a CUDA device through torch when one is present (float64,
exact for these integer ranges), else NumPy. NumPy only at import time.
"""

from __future__ import annotations

import importlib.util

import numpy as np

from lstmfpga.foundation.errors import ConfigError, InputError
from lstmfpga.host.stream_protocol import PayloadKind
from lstmfpga.foundation.integer_lstm import input_products, quantize_input

DEVICES = ("auto", "cpu", "cuda")
_EXACT_FLOAT64 = 1 << 53


def quantize_features(artifact, x: np.ndarray) -> np.ndarray:
    """Float features ``[B, T, I]`` (or ``[T, I]``) to io codes, int8 when the io width allows."""
    x = np.asarray(x)
    single = x.ndim == 2
    codes = quantize_input(artifact, x[None] if single else x)
    if artifact.io_quant.bits <= 8:
        codes = codes.astype(np.int8)
    return codes[0] if single else codes


def _cuda_torch(device: str):
    if device not in DEVICES:
        raise ConfigError(f"device must be one of {', '.join(DEVICES)}, not {device!r}")
    if device == "cpu" or importlib.util.find_spec("torch") is None:
        if device == "cuda":
            raise ConfigError("device 'cuda' needs torch, which is not installed")
        return None
    import torch

    if torch.cuda.is_available():
        return torch
    if device == "cuda":
        raise ConfigError("device 'cuda' was requested but torch sees no CUDA device")
    return None


def split_products(artifact, codes: np.ndarray, *, device: str = "cpu") -> np.ndarray:
    """Layer-0 input products ``[B, T, 4, H]`` as int32 (the split-mode stream payload)."""
    codes = np.asarray(codes)
    single = codes.ndim == 2
    codes = codes[None] if single else codes
    layer = artifact.layers[0]
    torch = _cuda_torch(device)
    if torch is None:
        pre = input_products(layer, codes.astype(np.int64))
    else:
        B, T, I = codes.shape
        H = layer.hidden_size
        w = layer.w_x.reshape(4 * H, I)
        if int(np.abs(w).sum(axis=1).max(initial=0)) * int(np.abs(codes).max(initial=0)) >= _EXACT_FLOAT64:
            raise InputError("input products could exceed 2**53; cannot compute them exactly")
        wt = torch.as_tensor(w, dtype=torch.float64, device="cuda")
        xt = torch.as_tensor(codes.reshape(B * T, I), dtype=torch.float64, device="cuda")
        pre = torch.round(xt @ wt.T).to(torch.int64).cpu().numpy().reshape(B, T, 4, H)
    if pre.size and (pre.min() < -(1 << 31) or pre.max() >= 1 << 31):
        raise InputError("split-mode input products do not fit in int32")
    pre = pre.astype(np.int32)
    return pre[0] if single else pre


def backend_input(artifact, codes: np.ndarray, mode: str, *, device: str = "cpu") -> np.ndarray:
    """What a backend of ``mode`` takes for io codes ``[B, T, I]``."""
    if mode == "full":
        return codes
    if mode == "split":
        return split_products(artifact, codes, device=device)
    raise ConfigError(f"mode must be 'full' or 'split', not {mode!r}")


def payload_kind_for(mode: str, *, send_float: bool = False) -> PayloadKind:
    """The stream payload that carries one sequence for a board running ``mode``."""
    if send_float:
        return PayloadKind.FEATURES_F32
    return PayloadKind.CODES_I8 if mode == "full" else PayloadKind.PREACT_I32


def prepare_payloads(artifact, x: np.ndarray, kind: PayloadKind, *, device: str = "cpu") -> np.ndarray:
    """Stream payloads for float features ``[B, T, I]``: one array per sequence along axis 0."""
    kind = PayloadKind(kind)
    if kind == PayloadKind.FEATURES_F16:
        return np.asarray(x, dtype=np.float16)
    if kind == PayloadKind.FEATURES_F32:
        return np.asarray(x, dtype=np.float32)
    codes = quantize_features(artifact, x)
    if kind == PayloadKind.CODES_I8:
        if artifact.io_quant.bits > 8:
            raise ConfigError(f"io quantizer has {artifact.io_quant.bits} bits; CODES_I8 carries at most 8")
        return codes
    return split_products(artifact, codes, device=device)
