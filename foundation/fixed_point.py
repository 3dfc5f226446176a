"""Quantizer descriptions and the exact integer requantizer shared by golden model and RTL.

NumPy only: the board host imports this.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lstmfpga.foundation.validation import is_integer

#: Multipliers are normalised into [2**(MULTIPLIER_BITS-1), 2**MULTIPLIER_BITS): relative error
#: below 2**-30, far below the float32 error of the Brevitas computation being reproduced.
MULTIPLIER_BITS = 31


def code_range(bits: int, signed: bool, narrow: bool) -> tuple[int, int]:
    """Inclusive integer range of a ``bits``-wide code."""
    if signed:
        return -(1 << (bits - 1)) + int(narrow), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1 - int(narrow)


@dataclass(frozen=True)
class QuantSpec:
    """One per-tensor uniform quantizer: ``value = code * scale`` (zero point 0).

    Parameters
    ----------
    scale : float
        The float32 scale, as the training framework holds it.
    zero_point : int
        Must be 0; asymmetric quantizers are not supported by the integer datapath.
    bits : int
        Bit width of the code.
    signed : bool
        Whether codes are signed.
    narrow : bool
        Narrow range drops the most negative (signed) or the largest (unsigned) code.
    """

    scale: float
    zero_point: int
    bits: int
    signed: bool
    narrow: bool

    def __post_init__(self):
        if not (isinstance(self.scale, float) and math.isfinite(self.scale) and self.scale > 0):
            raise ValueError(f"Quantizer scale must be a positive finite float, not {self.scale!r}")
        if self.zero_point != 0:
            raise ValueError(f"Quantizer zero point must be 0, not {self.zero_point!r}")
        if not (is_integer(self.bits) and 1 <= self.bits <= 32):
            raise ValueError(f"Quantizer bit width must be an integer in 1..32, not {self.bits!r}")

    @property
    def lo(self) -> int:
        return code_range(self.bits, self.signed, self.narrow)[0]

    @property
    def hi(self) -> int:
        return code_range(self.bits, self.signed, self.narrow)[1]

    @property
    def levels(self) -> int:
        """Number of codes of the full (non-narrow) range: the size of a lookup table."""
        return 1 << self.bits

    def quantize(self, x: np.ndarray) -> np.ndarray:
        """Float to code exactly as Brevitas does it: float32 divide, round half to even, clamp."""
        x32 = np.asarray(x, dtype=np.float32)
        codes = np.rint(x32 / np.float32(self.scale))
        return np.clip(codes, self.lo, self.hi).astype(np.int64)

    def dequantize(self, codes: np.ndarray) -> np.ndarray:
        return (np.asarray(codes, dtype=np.float32) * np.float32(self.scale)).astype(np.float32)

    def to_dict(self) -> dict:
        return {"scale": self.scale, "zero_point": self.zero_point, "bits": self.bits,
                "signed": self.signed, "narrow": self.narrow}

    @classmethod
    def from_dict(cls, d: dict) -> "QuantSpec":
        return cls(scale=float(d["scale"]), zero_point=int(d["zero_point"]), bits=int(d["bits"]),
                   signed=bool(d["signed"]), narrow=bool(d["narrow"]))


def round_shift_half_even(p, shift):
    """``round_half_even(p / 2**shift)`` for integer ``p`` (int64, or Python-int object arrays).

    ``q = p >> shift`` is the floor and ``r = p - (q << shift)`` the remainder, ``0 <= r < 2**shift``;
    the result rounds up when ``r`` is above half of ``2**shift``, or exactly half and ``q`` odd.
    ``shift`` may be an array that broadcasts against ``p`` (one shift per gate).
    """
    q = p >> shift
    twice_r = (p - (q << shift)) * 2
    unit = 1 << shift
    return q + ((twice_r > unit) | ((twice_r == unit) & ((q & 1) == 1)))


def requantize(v, multiplier, shift, lo, hi) -> np.ndarray:
    """``clamp(round_half_even(v * multiplier / 2**shift), lo, hi)`` in exact integers, as int64.

    The one requantization of the integer LSTM (:class:`Requant` applies it with its own
    parameters). ``multiplier``, ``shift``, ``lo`` and ``hi`` broadcast against ``v``; products run
    in int64 when they fit below 2**62, else in Python integers.
    """
    v = np.asarray(v)
    if v.dtype.kind not in "iu":
        raise TypeError(f"requantize expects integers, got {v.dtype}")
    v = v.astype(np.int64, copy=False)
    multiplier = np.asarray(multiplier, dtype=np.int64)
    shift = np.asarray(shift, dtype=np.int64)
    if int(np.abs(v).max(initial=0)) * int(multiplier.max()) < 1 << 62 and int(shift.max()) <= 62:
        p = v * multiplier
    else:
        p, shift = v.astype(object) * multiplier.astype(object), shift.astype(object)
    return np.clip(round_shift_half_even(p, shift), lo, hi).astype(np.int64)


@dataclass(frozen=True)
class Requant:
    """``clamp(round_half_even(v * multiplier / 2**shift), lo, hi)``, exact in integers.

    This is the one rescaling primitive of the integer LSTM; the RTL implements the same
    formula (a ``MULTIPLIER_BITS``-bit multiply, an arithmetic shift, a half-even rounding
    increment and a saturation).
    """

    multiplier: int
    shift: int
    lo: int
    hi: int

    def __post_init__(self):
        if not (is_integer(self.multiplier) and 0 < self.multiplier < (1 << MULTIPLIER_BITS)):
            raise ValueError(f"Requant multiplier must be an integer in 1..2**{MULTIPLIER_BITS}-1, "
                             f"not {self.multiplier!r}")
        if not (is_integer(self.shift) and 0 <= self.shift <= 126):
            raise ValueError(f"Requant shift must be an integer in 0..126, not {self.shift!r}")
        if self.lo > self.hi:
            raise ValueError(f"Requant clamp range is empty: lo={self.lo} > hi={self.hi}")

    @classmethod
    def from_ratio(cls, ratio: float, *, lo: int, hi: int) -> "Requant":
        """Nearest normalised multiplier/shift pair for a positive float ratio."""
        if not (math.isfinite(ratio) and ratio > 0):
            raise ValueError(f"Requant ratio must be positive and finite, not {ratio!r}")
        mantissa, exponent = math.frexp(ratio)  # ratio = mantissa * 2**exponent, mantissa in [0.5, 1)
        shift = MULTIPLIER_BITS - exponent
        multiplier = round(mantissa * (1 << MULTIPLIER_BITS))
        if multiplier == 1 << MULTIPLIER_BITS:
            multiplier >>= 1
            shift -= 1
        if shift < 0:
            raise ValueError(f"Requant ratio {ratio!r} is too large (>= 2**{MULTIPLIER_BITS - 1})")
        if shift > 126:
            # Anything below 2**-95 rounds to zero for every representable input.
            multiplier, shift = 1, 126
        return cls(multiplier=multiplier, shift=shift, lo=int(lo), hi=int(hi))

    @property
    def ratio(self) -> float:
        return self.multiplier / float(1 << self.shift)

    def apply(self, v: np.ndarray) -> np.ndarray:
        """Requantize an integer array (see :func:`requantize`); returns int64."""
        return requantize(v, self.multiplier, self.shift, self.lo, self.hi)

    def to_dict(self) -> dict:
        return {"multiplier": self.multiplier, "shift": self.shift, "lo": self.lo, "hi": self.hi}

    @classmethod
    def from_dict(cls, d: dict) -> "Requant":
        return cls(multiplier=int(d["multiplier"]), shift=int(d["shift"]), lo=int(d["lo"]),
                   hi=int(d["hi"]))
