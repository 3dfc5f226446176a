"""The integer LSTM: what an :class:`LstmArtifact` means, executed exactly as the hardware does.

This is the contract every other stage is checked against (docs/INTEGER_CONTRACT.md, line by
line): every value is an integer code, every rescaling is :func:`~lstmfpga.foundation.fixed_point.
requantize` (round half to even, saturation), every nonlinearity a table look-up.

:func:`accumulate` and :func:`cell_step` are the definition, in int64. :func:`run_layer` runs
them for every step with ``exact_float=False``; by default it takes the exact-float path of
:mod:`~lstmfpga.foundation.exact_float` (the same integers in float BLAS, exact because every
magnitude is bounded below 2**53 first), falling back to :func:`cell_step` for any step whose
magnitudes are not proven exact.

NumPy only: the board runs this for ``--check-golden`` and the host's input path.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lstmfpga.foundation.artifact import LayerArtifact, LstmArtifact
from lstmfpga.foundation.errors import InputError
from lstmfpga.foundation.exact_float import EXACT_FLOAT64, ExactMatmul, layer_kernel
from lstmfpga.foundation.fixed_point import requantize


@dataclass(frozen=True, eq=False)
class IntegerResult:
    """Codes produced by :func:`run_integer`.

    Attributes
    ----------
    h_codes : list of ndarray
        Per layer, int64 ``[B, T, H]`` hidden-state codes at the io scale.
    c_codes : list of ndarray
        Per layer, int64 ``[B, T, H]`` cell-state codes.
    logits : ndarray or None
        int64 ``[B, C]`` classifier accumulators (value = ``logits * classifier.out_scale``).
    """

    h_codes: list
    c_codes: list
    logits: np.ndarray | None

    @property
    def last_h(self) -> np.ndarray:
        return self.h_codes[-1]


# -- host side: float features to io codes -------------------------------------------------------

def quantize_input(artifact: LstmArtifact, x: np.ndarray, *, normalize: bool = True) -> np.ndarray:
    """Host-side input path: standardise (if the artifact has a normalisation) and io-quantize.

    Parameters
    ----------
    x : ndarray
        float ``[B, T, I]`` features.
    normalize : bool
        Apply the artifact's feature standardisation first (when it has one).
    """
    x = check_features(artifact, x)
    if normalize and artifact.normalization is not None:
        x = artifact.normalization.apply(x)
    return artifact.io_quant.quantize(x)


def check_features(artifact: LstmArtifact, x) -> np.ndarray:
    """``x`` as a finite numeric ``[B, T, I]`` array for ``artifact``, else one InputError naming the problem."""
    x = np.asarray(x)
    if x.ndim != 3:
        raise InputError(f"input must be [batch, time, features], got shape {x.shape}")
    if x.shape[2] != artifact.input_size:
        raise InputError(f"input has {x.shape[2]} features per step, the model expects "
                         f"{artifact.input_size}")
    if x.dtype.kind not in "fiu":
        raise InputError(f"input must be numeric, got dtype {x.dtype}")
    bad = ~np.isfinite(x)
    if bad.any():
        b, t, i = np.argwhere(bad)[0]
        raise InputError(f"input contains {int(bad.sum())} NaN/inf values "
                         f"(first at batch {b}, step {t}, feature {i})")
    return x


def _check_layer_codes(x_codes, size: int, io, what: str) -> np.ndarray:
    """``x_codes`` as an integer array ``[B, T, size]`` inside the io range, else InputError."""
    x_codes = np.asarray(x_codes)
    if x_codes.ndim != 3 or x_codes.shape[2] != size:
        raise InputError(f"{what} must be [batch, time, {size}], got {x_codes.shape}")
    if x_codes.dtype.kind not in "iu":
        raise InputError(f"{what} must be integers, got dtype {x_codes.dtype}")
    if x_codes.size and (x_codes.min() < io.lo or x_codes.max() > io.hi):
        raise InputError(f"{what} outside the io range [{io.lo}, {io.hi}]")
    return x_codes


def _layer_codes(layer: LayerArtifact, x_codes) -> np.ndarray:
    return _check_layer_codes(x_codes, layer.input_size, layer.quant["io"], "layer input codes")


def _input_products_exact_float(layer: LayerArtifact, x_codes: np.ndarray) -> np.ndarray:
    B, T, I = x_codes.shape
    return layer_kernel(layer).input.exact_float(x_codes.reshape(B * T, I)).reshape(B, T, 4 * layer.hidden_size)


def input_products(layer: LayerArtifact, x_codes: np.ndarray) -> np.ndarray:
    """``W_x · x`` for every step: int64 ``[B, T, 4, H]`` (the split-mode host GEMM) of io codes."""
    pre = _input_products_exact_float(layer, _layer_codes(layer, x_codes))
    return pre.astype(np.int64).reshape(*pre.shape[:2], 4, layer.hidden_size)


# -- the definition: one time step in int64 ------------------------------------------------------

def accumulate(layer: LayerArtifact, pre: np.ndarray, h: np.ndarray) -> np.ndarray:
    """Gate accumulators ``acc[g] = W_x[g]·x + W_h[g]·h + bias[g]``: int64 ``[B, 4, H]``.

    ``pre`` holds the input products ``W_x·x`` ``[B, 4, H]`` (computed once for all steps),
    ``h`` the previous hidden codes ``[B, H]``.
    """
    recurrent = np.einsum("ghk,bk->bgh", layer.w_h.astype(np.int64), h.astype(np.int64))
    return pre.astype(np.int64) + recurrent + layer.bias[None].astype(np.int64)


def gate_codes(layer: LayerArtifact, acc: np.ndarray) -> np.ndarray:
    """Gate quantize: ``a[g] = RQ_gate[g](acc[g])`` for accumulators ``[..., 4, H]``."""
    rq = layer.gate_requant
    return requantize(acc, *(np.array([getattr(r, name) for r in rq], dtype=np.int64)[:, None]
                             for name in ("multiplier", "shift", "lo", "hi")))


def cell_step(layer: LayerArtifact, acc: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The rest of one time step: gate accumulators ``[B, 4, H]`` and cell codes ``[B, H]`` → (h, c)."""
    a = gate_codes(layer, acc)
    i, f, g, o = (layer.gate_tables[k][a[:, k] - layer.gate_requant[k].lo] for k in range(4))
    fc = layer.fc_requant.apply(f * c)
    ig = layer.ig_requant.apply(i * g)
    c_new = np.clip(fc + ig, layer.cell_lo, layer.cell_hi)
    t = layer.tanh_c_table[c_new - layer.cell_lo]
    h_new = layer.h_requant.apply(o * t)
    return h_new, c_new


# -- running layers and the model ----------------------------------------------------------------

def run_layer(layer: LayerArtifact, x_codes: np.ndarray | None = None, *, pre: np.ndarray | None = None,
              exact_float: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Run one layer over a sequence from zero state.

    Give either ``x_codes`` (int ``[B, T, I]``, in the io range) or the split-mode
    pre-activations ``pre`` (int ``[B, T, 4, H]``, from :func:`input_products`). Returns h and c
    codes int64 ``[B, T, H]``.

    ``exact_float=False`` runs the int64 definition (:func:`accumulate`, :func:`cell_step`) at
    every step; the default runs the exact-float kernel where its bounds hold. Both give the same
    codes.
    """
    if (x_codes is None) == (pre is None):
        raise ValueError("run_layer takes exactly one of x_codes and pre")
    if x_codes is not None:
        x_codes = _layer_codes(layer, x_codes)
    else:
        pre = np.asarray(pre, dtype=np.int64)
        if layer_kernel(layer).acc_bound(int(np.abs(pre).max(initial=0))) >= EXACT_FLOAT64:
            raise InputError("input products this large could make the gate accumulators exceed 2**53")
    if not exact_float:
        return _run_layer_int64(layer, x_codes, pre)
    return _run_layer_exact_float(layer, x_codes, pre)


def _run_layer_int64(layer: LayerArtifact, x_codes: np.ndarray | None, pre: np.ndarray | None):
    H = layer.hidden_size
    if pre is None:
        w_x = layer.w_x.reshape(4 * H, layer.input_size).astype(np.int64)
        pre = (x_codes.astype(np.int64) @ w_x.T).reshape(*x_codes.shape[:2], 4, H)
    B, T = pre.shape[:2]
    h = np.zeros((B, H), dtype=np.int64)
    c = np.zeros((B, H), dtype=np.int64)
    hs, cs = [], []
    for t in range(T):
        h, c = cell_step(layer, accumulate(layer, pre[:, t], h), c)
        hs.append(h)
        cs.append(c)
    return np.stack(hs, axis=1), np.stack(cs, axis=1)


def _run_layer_exact_float(layer: LayerArtifact, x_codes: np.ndarray | None, pre: np.ndarray | None):
    kernel = layer_kernel(layer)
    H = layer.hidden_size
    if pre is None:
        pre = _input_products_exact_float(layer, x_codes)
        pre_bound = kernel.input.bound
    else:
        pre_bound = int(np.abs(pre).max(initial=0))
        pre = pre.reshape(pre.shape[0], pre.shape[1], 4 * H).astype(np.float64)
    B, T = pre.shape[:2]
    acc_exact = kernel.gates_exact(kernel.acc_bound(pre_bound))
    h = np.zeros((B, H))
    c = np.zeros((B, H))
    hs = np.empty((B, T, H))
    cs = np.empty((B, T, H))
    for t in range(T):
        acc = kernel.accumulate(pre[:, t], h)
        if kernel.tail_exact and (acc_exact or kernel.gates_exact(int(np.abs(acc).max(initial=0)))):
            h, c = kernel.tail(acc, c)
        else:
            h, c = cell_step(layer, acc.astype(np.int64).reshape(B, 4, H), c.astype(np.int64))
            h, c = h.astype(np.float64), c.astype(np.float64)
        hs[:, t] = h
        cs[:, t] = c
    return hs.astype(np.int64), cs.astype(np.int64)


def classifier_logits(artifact: LstmArtifact, h_last: np.ndarray) -> np.ndarray | None:
    """Integer classifier accumulators ``Σ w_cls·h_T + bias_cls`` on the last step's hidden codes ``[B, H]``."""
    if artifact.classifier is None:
        return None
    cls = artifact.classifier
    matmul = ExactMatmul("classifier", cls.weight, int(np.abs(h_last).max(initial=0)))
    return matmul(h_last) + cls.bias[None]


def _check_codes(artifact: LstmArtifact, x_codes: np.ndarray) -> np.ndarray:
    x_codes = _check_layer_codes(x_codes, artifact.input_size, artifact.io_quant, "input codes")
    if x_codes.shape[1] < 1:
        raise InputError("input has no time steps")
    return x_codes.astype(np.int64, copy=False)


def run_integer(artifact: LstmArtifact, x_codes: np.ndarray, *,
                layer0_pre: np.ndarray | None = None, exact_float: bool = True) -> IntegerResult:
    """Run every layer and the classifier on io-quantized inputs ``[B, T, I]``.

    ``layer0_pre`` optionally replaces layer 0's input products (split mode), to check that the
    host GEMM path gives the same result; ``exact_float`` as in :func:`run_layer`.
    """
    x = _check_codes(artifact, x_codes)
    h_all, c_all = [], []
    for l, layer in enumerate(artifact.layers):
        if l == 0 and layer0_pre is not None:
            h, c = run_layer(layer, pre=layer0_pre, exact_float=exact_float)
        else:
            h, c = run_layer(layer, x, exact_float=exact_float)
        h_all.append(h)
        c_all.append(c)
        x = h
    return IntegerResult(h_codes=h_all, c_codes=c_all,
                         logits=classifier_logits(artifact, h_all[-1][:, -1]))


@dataclass(frozen=True, eq=False)
class GoldenOutput:
    """Dequantized outputs, as ``lstmfpga golden`` writes them."""

    hidden: np.ndarray         # float32 [B, T, H]
    logits: np.ndarray | None  # float32 [B, C]
    codes: IntegerResult


def run_artifact(artifact: LstmArtifact, x: np.ndarray, *, normalize: bool = True) -> GoldenOutput:
    """Float features in, dequantized hidden sequence (and logits) out."""
    codes = run_integer(artifact, quantize_input(artifact, x, normalize=normalize))
    hidden, logits = dequantize_outputs(artifact, codes.last_h, codes.logits)
    return GoldenOutput(hidden=hidden, logits=logits, codes=codes)


def dequantize_outputs(artifact: LstmArtifact, h_codes: np.ndarray,
                       logits: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    """float32 hidden values and logits from their integer codes (what ``lstmfpga golden`` writes)."""
    hidden = artifact.io_quant.dequantize(h_codes)
    if logits is not None:
        logits = (logits.astype(np.float64) * artifact.classifier.out_scale).astype(np.float32)
    return hidden, logits
