"""The interface every inference backend implements.

A backend runs integer inputs through the quantized LSTM and returns integers: the last layer's
hidden codes for every step and the classifier accumulators. In ``full`` mode the input is the
io-quantized feature codes ``[B, T, I]``; in ``split`` mode it is the layer-0 input products
``[B, T, 4, H]`` (the host GEMM, see ``lstmfpga.host.payloads``).

NumPy only.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

import numpy as np

from lstmfpga.foundation.errors import ConfigError, InputError
from lstmfpga.foundation.hw.config import MODES

BACKENDS = {
    "golden": "lstmfpga.host.backends.golden:GoldenBackend",
    "rtl": "lstmfpga.host.backends.rtl:RtlBackend",
    "pynq": "lstmfpga.host.backends.pynq_board:PynqBackend",
}


@dataclass(frozen=True, eq=False)
class BackendOutput:
    """Integer outputs of one batch.

    Attributes
    ----------
    h_codes : ndarray
        int64 ``[B, T, H]``: the last layer's hidden codes at the io scale.
    logits : ndarray or None
        int64 ``[B, C]`` classifier accumulators, ``None`` without a classifier.
    seconds : ndarray
        float64 ``[B]``: time each sequence spent in the backend (compute and transfers).
    """

    h_codes: np.ndarray
    logits: np.ndarray | None
    seconds: np.ndarray


class Backend:
    """Base class: argument checks shared by all backends.

    Parameters
    ----------
    artifact
        The ``LstmArtifact`` to run.
    mode
        ``"full"`` or ``"split"`` (see module docstring).
    """

    name = "base"

    def __init__(self, *, artifact, mode: str = "full") -> None:
        if mode not in MODES:
            raise ConfigError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        self.artifact = artifact
        self.mode = mode

    def check_input(self, data: np.ndarray) -> np.ndarray:
        """Validate a batch for this backend's mode; return it as int64."""
        data = np.asarray(data)
        a = self.artifact
        if data.dtype.kind not in "iu":
            raise InputError(f"{self.mode}-mode input must be integers, got dtype {data.dtype}")
        if self.mode == "full":
            if data.ndim != 3 or data.shape[2] != a.input_size:
                raise InputError(f"full-mode input must be codes [batch, time, {a.input_size}], got shape {data.shape}")
            io = a.io_quant
            if data.size and (int(data.min()) < io.lo or int(data.max()) > io.hi):
                raise InputError(f"input codes outside the io range [{io.lo}, {io.hi}]")
        else:
            shape = (4, a.hidden_size)
            if data.ndim != 4 or data.shape[2:] != shape:
                raise InputError(f"split-mode input must be pre-activations [batch, time, 4, {a.hidden_size}], "
                                 f"got shape {data.shape}")
            if data.size and (int(data.min()) < -(1 << 31) or int(data.max()) >= 1 << 31):
                raise InputError("split-mode pre-activations do not fit in int32")
        if data.shape[1] < 1:
            raise InputError("input has no time steps")
        return data.astype(np.int64, copy=False)

    def run(self, data: np.ndarray) -> BackendOutput:
        raise NotImplementedError

    def close(self) -> None:
        """Release simulators, buffers, overlays."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def make_backend(name: str, **kwargs) -> Backend:
    """Build backend ``name`` (golden, rtl, pynq) with its keyword arguments."""
    if name not in BACKENDS:
        raise ConfigError(f"backend must be one of {', '.join(BACKENDS)}, not {name!r}")
    module_name, cls_name = BACKENDS[name].split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and not exc.name.startswith("lstmfpga"):
            raise ConfigError(f"backend {name!r} needs the Python package {exc.name!r}, which is not installed") from None
        raise
    return getattr(module, cls_name)(**kwargs)
