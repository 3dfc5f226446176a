"""The one requantizer (per-gate broadcast parameters, int64 and Python-int paths) against exact rationals."""

from fractions import Fraction

import numpy as np
import pytest

from lstmfpga.foundation.fixed_point import requantize


def _exact(v: int, m: int, s: int, lo: int, hi: int) -> int:
    return min(max(round(Fraction(v * m, 1 << s)), lo), hi)  # Fraction rounds half to even


@pytest.mark.parametrize("seed", range(8))
def test_requantize_broadcasts_one_parameter_set_per_gate(seed):
    rng = np.random.default_rng(seed)
    big = seed % 2 == 1  # odd seeds force the Python-integer path
    m = rng.integers(1, 1 << 31, size=(4, 1))
    s = rng.integers(0, 70 if big else 40, size=(4, 1))
    s[0, 0] = 0
    lo = -rng.integers(1, 1 << 20, size=(4, 1))
    hi = rng.integers(1, 1 << 20, size=(4, 1))
    v = rng.integers(-(1 << 40), 1 << 40, size=(5, 4, 3), dtype=np.int64)
    # Exact half-way values on gate 1: v * m = (2k + 1) * 2**(s - 1).
    s[1, 0], m[1, 0] = 3, 1
    v[:, 1, :2] = np.array([4, 12])  # 0.5 and 1.5
    got = requantize(v, m, s, lo, hi)
    want = np.array([[[_exact(int(v[b, g, j]), int(m[g, 0]), int(s[g, 0]), int(lo[g, 0]), int(hi[g, 0]))
                       for j in range(3)] for g in range(4)] for b in range(5)])
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, want)
    assert got[:, 1, :2].tolist() == [[0, 2]] * 5


def test_requantize_refuses_floats():
    with pytest.raises(TypeError, match="requantize expects integers, got float64"):
        requantize(np.array([0.5]), 1, 1, -1, 1)
