"""Exact integer arithmetic carried out in floats: the integer golden's fast path.

An optimisation of the int64 definition in :mod:`lstmfpga.foundation.integer_lstm`, never a
second definition: tests check that both give the same codes on every shape and on rounding ties.

A float holds an integer exactly while its magnitude stays below 2**24 (float32) or 2**53
(float64), and scaling by a power of two is exact. So, with the magnitudes bounded first:

- an integer matrix product is a float GEMM (:class:`ExactMatmul`), every partial sum exact;
- a requantization ``clamp(round_half_even(v * m / 2**s))`` is
  ``clip(rint(v * (m * 2.0**-s)))``: the product ``v * m`` is exact below 2**53, the
  power-of-two factor is exact, and ``np.rint`` rounds half to even.

:class:`LayerKernel` prepares one layer once (weights as floats, the four gate tables as one
table, the per-layer bounds) for the time step on that path; the caller falls back to the int64
definition for any step whose magnitudes do not fit.
"""

from __future__ import annotations

import weakref

import numpy as np

from lstmfpga.foundation.errors import InputError
from lstmfpga.foundation.artifact import LayerArtifact
from lstmfpga.foundation.fixed_point import Requant

EXACT_FLOAT64 = 1 << 53
EXACT_FLOAT32 = 1 << 24


class ExactMatmul:
    """``a @ w.T`` for integer matrices via the narrowest float type that is exact for them.

    Parameters
    ----------
    name : str
        Names the product in the error raised when no float type is exact.
    w : ndarray
        Integer ``[N, K]`` matrix.
    max_in : int
        Bound on ``|a|``.
    """

    def __init__(self, name: str, w: np.ndarray, max_in: int):
        self.bound = int(np.abs(w).sum(axis=-1, dtype=np.int64).max(initial=0)) * int(max_in)
        if self.bound >= EXACT_FLOAT64:
            raise InputError(f"{name}: integer products could exceed 2**53; cannot compute exactly")
        self.dtype = np.float32 if self.bound < EXACT_FLOAT32 else np.float64
        self.w = np.ascontiguousarray(w, dtype=self.dtype)

    def exact_float(self, a: np.ndarray) -> np.ndarray:
        """The products as floats holding exact integers (no conversion pass)."""
        return a.astype(self.dtype, copy=False) @ self.w.T

    def __call__(self, a: np.ndarray) -> np.ndarray:
        return self.exact_float(a).astype(np.int64)


def _scale(rq: Requant) -> float:
    return float(rq.multiplier) * 2.0 ** -rq.shift


def _requant(v: np.ndarray, scale, lo, hi) -> np.ndarray:
    """In place: ``clip(rint(v * scale), lo, hi)`` (exact when ``|v * multiplier| < 2**53``)."""
    np.multiply(v, scale, out=v)
    np.rint(v, out=v)
    return np.clip(v, lo, hi, out=v)


class LayerKernel:
    """One layer prepared for the float path; build with :func:`layer_kernel` (cached)."""

    def __init__(self, layer: LayerArtifact):
        H, I = layer.hidden_size, layer.input_size
        io = layer.quant["io"]
        io_max = max(abs(io.lo), abs(io.hi))
        self.layer = layer
        self.input = ExactMatmul("input products", layer.w_x.reshape(4 * H, I), io_max)
        self.recurrent = ExactMatmul("recurrent products", layer.w_h.reshape(4 * H, H), io_max)
        self.bias = layer.bias.reshape(4 * H).astype(np.float64)
        self.bias_bound = int(np.abs(layer.bias).max(initial=0))

        rq = layer.gate_requant
        self.gate_scale = np.array([_scale(r) for r in rq])[:, None]
        self.gate_multiplier = max(r.multiplier for r in rq)
        levels = layer.gate_tables.shape[1]
        # One table for the four gates: gate g's code k sits at g * levels + (k - lo_g).
        self.gate_table = layer.gate_tables.reshape(-1).astype(np.float64)
        self.gate_lo = np.array([r.lo for r in rq], dtype=np.float64)[:, None]
        self.gate_hi = np.array([r.hi for r in rq], dtype=np.float64)[:, None]
        self.gate_offset = np.arange(4, dtype=np.float64)[:, None] * levels - self.gate_lo
        self.tanh_table = layer.tanh_c_table.astype(np.float64)
        self.fc_scale, self.ig_scale, self.h_scale = (
            _scale(r) for r in (layer.fc_requant, layer.ig_requant, layer.h_requant))

        tables = np.abs(layer.gate_tables).max(axis=1)
        cell_max = max(abs(layer.cell_lo), abs(layer.cell_hi))
        tanh_max = int(np.abs(layer.tanh_c_table).max(initial=0))
        self.tail_exact = max(int(tables[1]) * cell_max * layer.fc_requant.multiplier,
                              int(tables[0]) * int(tables[2]) * layer.ig_requant.multiplier,
                              int(tables[3]) * tanh_max * layer.h_requant.multiplier) < EXACT_FLOAT64

    def acc_bound(self, pre_bound: int) -> int:
        """Bound on a gate accumulator given a bound on the input products."""
        return pre_bound + self.recurrent.bound + self.bias_bound

    def gates_exact(self, acc_bound: int) -> bool:
        return acc_bound * self.gate_multiplier < EXACT_FLOAT64

    def accumulate(self, pre_t: np.ndarray, h: np.ndarray) -> np.ndarray:
        """Gate accumulators float64 ``[B, 4H]``: input products ``pre_t`` ``[B, 4H]`` (exact
        float) + ``W_h · h`` + bias, for float64 hidden codes ``h`` ``[B, H]``."""
        acc = np.add(pre_t, self.recurrent.exact_float(h), dtype=np.float64)
        acc += self.bias
        return acc

    def tail(self, acc: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Gate requant, tables and cell update on float64 codes; returns ``(h, c)`` ``[B, H]``.

        Exact only when :attr:`tail_exact` holds and :meth:`gates_exact` holds for the
        accumulators (consumes ``acc``).
        """
        layer = self.layer
        B, H = c.shape
        a = _requant(acc.reshape(B, 4, H), self.gate_scale, self.gate_lo, self.gate_hi)
        a += self.gate_offset
        gates = self.gate_table[a.astype(np.intp)]
        i, f, g, o = gates[:, 0], gates[:, 1], gates[:, 2], gates[:, 3]
        fc = _requant(f * c, self.fc_scale, layer.fc_requant.lo, layer.fc_requant.hi)
        ig = _requant(i * g, self.ig_scale, layer.ig_requant.lo, layer.ig_requant.hi)
        c_new = np.clip(fc + ig, layer.cell_lo, layer.cell_hi, out=fc)
        t = self.tanh_table[(c_new - layer.cell_lo).astype(np.intp)]
        h_new = _requant(o * t, self.h_scale, layer.h_requant.lo, layer.h_requant.hi)
        return h_new, c_new


_KERNELS: "weakref.WeakKeyDictionary[LayerArtifact, LayerKernel]" = weakref.WeakKeyDictionary()


def layer_kernel(layer: LayerArtifact) -> LayerKernel:
    """The prepared kernel of ``layer``, built once per layer object (artifacts are immutable)."""
    kernel = _KERNELS.get(layer)
    if kernel is None:
        kernel = _KERNELS[layer] = LayerKernel(layer)
    return kernel
