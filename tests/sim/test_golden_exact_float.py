"""The golden's exact-float fast path gives exactly the codes of the int64 definition.

Three ways to the same codes: the fast path (``run_layer``), the int64 definition it optimises
(``run_layer(..., exact_float=False)``: ``accumulate`` + ``cell_step``), and a reference written
independently of both below (NumPy integer matmuls, :meth:`Requant.apply` per gate). Requants
with tiny multipliers make half-way ties on most values, so round-half-to-even is exercised, not
just reached by chance.
"""

import dataclasses

import numpy as np
import pytest

from lstmfpga.foundation.errors import InputError
from lstmfpga.foundation.fixed_point import Requant
from lstmfpga.foundation.exact_float import EXACT_FLOAT64, layer_kernel
from lstmfpga.foundation.integer_lstm import input_products, run_integer, run_layer
from lstmfpga.sim.golden.random_artifact import random_artifact


def _ties(v, rq):
    """Values exactly half-way between two codes inside the clamp range (rounding decides)."""
    p = v * rq.multiplier
    q = p >> rq.shift
    return int(((p % (1 << rq.shift) == 1 << (rq.shift - 1)) & (q >= rq.lo) & (q < rq.hi)).sum())


def _reference_layer(layer, pre):
    """h and c codes ``[B, T, H]`` and how many requant inputs sat exactly half-way."""
    B, T = pre.shape[:2]
    H = layer.hidden_size
    w_h = layer.w_h.reshape(4 * H, H).astype(np.int64)
    h = np.zeros((B, H), dtype=np.int64)
    c = np.zeros((B, H), dtype=np.int64)
    hs, cs, ties = [], [], 0
    for t in range(T):
        acc = pre[:, t] + (h @ w_h.T).reshape(B, 4, H) + layer.bias[None]
        a = np.stack([layer.gate_requant[g].apply(acc[:, g]) for g in range(4)], axis=1)
        i, f, g, o = (layer.gate_tables[k][a[:, k] - layer.gate_requant[k].lo] for k in range(4))
        t_c = layer.tanh_c_table
        ties += sum(_ties(acc[:, k], layer.gate_requant[k]) for k in range(4))
        ties += _ties(f * c, layer.fc_requant) + _ties(i * g, layer.ig_requant)
        c = np.clip(layer.fc_requant.apply(f * c) + layer.ig_requant.apply(i * g), layer.cell_lo, layer.cell_hi)
        ties += _ties(o * t_c[c - layer.cell_lo], layer.h_requant)
        h = layer.h_requant.apply(o * t_c[c - layer.cell_lo])
        hs.append(h)
        cs.append(c)
    return np.stack(hs, axis=1), np.stack(cs, axis=1), ties


def _random_codes(layer, rng, B, T):
    io = layer.quant["io"]
    return rng.integers(io.lo, io.hi + 1, size=(B, T, layer.input_size))


def _reference_pre(layer, x):
    H, I = layer.hidden_size, layer.input_size
    B, T = x.shape[:2]
    return (x.reshape(B * T, I) @ layer.w_x.reshape(4 * H, I).astype(np.int64).T).reshape(B, T, 4, H)


def _with_tie_prone_requants(layer):
    """Coarse requants: ``v * m / 2**s`` lands exactly on .5 for many v."""
    gates = tuple(Requant(multiplier=3 - 2 * (g % 2), shift=1 + g, lo=r.lo, hi=r.hi)
                  for g, r in enumerate(layer.gate_requant))
    tail = {name: Requant(multiplier=m, shift=s, lo=getattr(layer, name).lo, hi=getattr(layer, name).hi)
            for name, m, s in (("fc_requant", 1, 1), ("ig_requant", 3, 3), ("h_requant", 1, 2))}
    return dataclasses.replace(layer, gate_requant=gates, **tail)


@pytest.mark.parametrize("weight_bits,act_bits,I,H", [(2, 4, 13, 5), (4, 8, 37, 19), (8, 8, 71, 33),
                                                      (3, 6, 1, 1), (6, 5, 96, 7)])
@pytest.mark.parametrize("ties", [False, True])
def test_fast_path_equals_int64_reference(weight_bits, act_bits, I, H, ties):
    rng = np.random.default_rng(weight_bits * 100 + act_bits + I)
    layer = random_artifact(input_size=I, hidden_size=H, weight_bits=weight_bits, act_bits=act_bits,
                            seed=I).layers[0]
    if ties:
        layer = _with_tie_prone_requants(layer)
    x = _random_codes(layer, rng, B=9, T=11)
    pre = _reference_pre(layer, x)
    np.testing.assert_array_equal(input_products(layer, x), pre)
    h_ref, c_ref, n_ties = _reference_layer(layer, pre)
    for h, c in (run_layer(layer, x), run_layer(layer, pre=pre), run_layer(layer, x, exact_float=False),
                 run_layer(layer, pre=pre, exact_float=False)):
        np.testing.assert_array_equal(h, h_ref)
        np.testing.assert_array_equal(c, c_ref)
    if ties:  # worth something only if half-way values really occur
        assert n_ties > 20


@pytest.mark.parametrize("seed", range(12))
def test_fast_path_equals_definition_on_drawn_configurations(seed):
    """Shapes, widths, batch, length and tie-prone requants drawn at random (seeded)."""
    rng = np.random.default_rng(1300 + seed)
    I, H = (int(n) for n in rng.integers(1, 80, size=2))
    artifact = random_artifact(input_size=I, hidden_size=H, num_layers=int(rng.integers(1, 4)),
                               weight_bits=int(rng.integers(2, 9)), act_bits=int(rng.integers(4, 9)),
                               num_classes=int(rng.integers(0, 4)), seed=seed)
    if rng.random() < 0.5:
        artifact = dataclasses.replace(artifact, layers=tuple(_with_tie_prone_requants(l) for l in artifact.layers))
    B, T = (int(n) for n in rng.integers(1, 12, size=2))
    x = _random_codes(artifact.layers[0], rng, B=B, T=T)
    fast, definition = run_integer(artifact, x), run_integer(artifact, x, exact_float=False)
    for h_fast, h_def, c_fast, c_def in zip(fast.h_codes, definition.h_codes, fast.c_codes, definition.c_codes):
        np.testing.assert_array_equal(h_fast, h_def)
        np.testing.assert_array_equal(c_fast, c_def)
    if artifact.classifier is not None:
        np.testing.assert_array_equal(fast.logits, definition.logits)


def test_huge_input_products_take_the_int64_path():
    """Split-mode products beyond the float64 proof still give the exact codes (int64 fallback)."""
    rng = np.random.default_rng(5)
    layer = random_artifact(input_size=17, hidden_size=6, seed=5).layers[0]
    kernel = layer_kernel(layer)
    pre = rng.integers(-(1 << 40), 1 << 40, size=(4, 5, 4, 6))
    pre[1] //= 1 << 30  # some sequences small enough for the fast path
    assert not kernel.gates_exact(int(np.abs(pre).max()))
    h_ref, c_ref, _ = _reference_layer(layer, pre)
    for h, c in (run_layer(layer, pre=pre), run_layer(layer, pre=pre, exact_float=False)):
        np.testing.assert_array_equal(h, h_ref)
        np.testing.assert_array_equal(c, c_ref)


def test_products_beyond_float64_are_refused():
    layer = random_artifact(input_size=3, hidden_size=2, seed=1).layers[0]
    pre = np.full((1, 1, 4, 2), EXACT_FLOAT64 - 1, dtype=np.int64)
    for exact_float in (True, False):
        with pytest.raises(InputError, match="exceed 2\\*\\*53"):
            run_layer(layer, pre=pre, exact_float=exact_float)
    with pytest.raises(ValueError, match="exactly one of x_codes and pre"):
        run_layer(layer)


def test_out_of_range_codes_are_refused():
    layer = random_artifact(input_size=3, hidden_size=2, seed=1).layers[0]
    x = np.full((1, 2, 3), layer.quant["io"].hi + 1)
    with pytest.raises(InputError, match="outside the io range"):
        input_products(layer, x)
    with pytest.raises(InputError, match="must be integers"):
        input_products(layer, x.astype(np.float32) - 5)
    with pytest.raises(InputError, match="must be \\[batch, time, 3\\]"):
        run_layer(layer, x[0])
