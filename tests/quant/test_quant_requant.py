"""The exact integer requantizer against rational arithmetic."""

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from lstmfpga.foundation.fixed_point import MULTIPLIER_BITS, QuantSpec, Requant, code_range


def _reference(v: int, r: Requant) -> int:
    exact = Fraction(v * r.multiplier, 1 << r.shift)
    q = round(exact)  # Python rounds Fractions half to even
    return min(max(q, r.lo), r.hi)


@settings(max_examples=300, deadline=None)
@given(ratio=st.floats(min_value=1e-12, max_value=1e6, allow_nan=False),
       values=st.lists(st.integers(min_value=-(1 << 40), max_value=1 << 40), min_size=1, max_size=40),
       bits=st.integers(min_value=2, max_value=16))
def test_requant_matches_rational_rounding(ratio, values, bits):
    lo, hi = code_range(bits, True, False)
    r = Requant.from_ratio(ratio, lo=lo, hi=hi)
    assert abs(r.ratio / ratio - 1) < 2.0 ** -(MULTIPLIER_BITS - 1)
    assert (1 << (MULTIPLIER_BITS - 1)) <= r.multiplier < (1 << MULTIPLIER_BITS) or r.shift == 126
    got = r.apply(np.array(values, dtype=np.int64))
    assert got.tolist() == [_reference(v, r) for v in values]


def test_requant_ties_round_to_even():
    r = Requant(multiplier=1 << 30, shift=31, lo=-100, hi=100)  # exactly v / 2
    v = np.arange(-9, 10)
    assert r.apply(v).tolist() == [int(round(x / 2)) for x in v.tolist()]
    assert r.apply(np.array([5, 7, -5, -7])).tolist() == [2, 4, -2, -4]


def test_requant_saturates():
    r = Requant.from_ratio(0.5, lo=-128, hi=127)
    assert r.apply(np.array([10_000, -10_000, 254, 255, -256, -258])).tolist() == [127, -128, 127, 127, -128, -128]


def test_requant_rejects_bad_parameters():
    with pytest.raises(ValueError, match="multiplier"):
        Requant(multiplier=0, shift=3, lo=0, hi=1)
    with pytest.raises(ValueError, match="empty"):
        Requant(multiplier=5, shift=3, lo=2, hi=1)
    with pytest.raises(ValueError, match="positive"):
        Requant.from_ratio(-1.0, lo=0, hi=1)
    with pytest.raises(TypeError):
        Requant.from_ratio(0.5, lo=0, hi=1).apply(np.array([0.5]))


@pytest.mark.parametrize("bits,signed,narrow,expected", [
    (8, True, False, (-128, 127)), (8, True, True, (-127, 127)),
    (4, False, False, (0, 15)), (2, True, True, (-1, 1)),
])
def test_code_ranges(bits, signed, narrow, expected):
    assert code_range(bits, signed, narrow) == expected
    spec = QuantSpec(scale=0.5, zero_point=0, bits=bits, signed=signed, narrow=narrow)
    assert (spec.lo, spec.hi) == expected


def test_quantspec_quantize_is_half_even_and_clamped():
    spec = QuantSpec(scale=0.5, zero_point=0, bits=4, signed=True, narrow=False)
    x = np.array([0.25, 0.75, -0.25, 1.25, 100.0, -100.0], dtype=np.float32)
    assert spec.quantize(x).tolist() == [0, 2, 0, 2, 7, -8]
    with pytest.raises(ValueError, match="zero point"):
        QuantSpec(scale=0.5, zero_point=3, bits=4, signed=True, narrow=False)
