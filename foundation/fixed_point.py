"""Quantizer descriptions and the exact integer requantizer shared by golden model and RTL.

NumPy only: the board host imports this.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

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
        if not (isinstance(self.bits, int) and 1 <= self.bits <= 32):
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


def round_shift_half_even(p: np.ndarray, shift: int) -> np.ndarray:
    """``round_half_even(p / 2**shift)`` for integer ``p`` (int64 or Python-int object arrays)."""
    if shift == 0:
        return p
    q = p >> shift
    rem = p - (q << shift)
    half = 1 << (shift - 1)
    up = (rem > half) | ((rem == half) & ((q & 1) == 1))
    return q + up


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
        if not (isinstance(self.multiplier, int) and 0 < self.multiplier < (1 << MULTIPLIER_BITS)):
            raise ValueError(f"Requant multiplier must be an integer in 1..2**{MULTIPLIER_BITS}-1, "
                             f"not {self.multiplier!r}")
        if not (isinstance(self.shift, int) and 0 <= self.shift <= 126):
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
        """Requantize an integer array; returns int64."""
        v = np.asarray(v)
        if v.dtype.kind not in "iu":
            raise TypeError(f"Requant.apply expects integers, got {v.dtype}")
        v = v.astype(np.int64, copy=False)
        vmax = int(np.abs(v).max()) if v.size else 0
        if vmax * self.multiplier < (1 << 62) and self.shift <= 62:
            out = round_shift_half_even(v * np.int64(self.multiplier), self.shift)
        else:  # exact but slow path for extreme magnitudes: Python integers
            out = round_shift_half_even(v.astype(object) * self.multiplier, self.shift)
        return np.clip(out, self.lo, self.hi).astype(np.int64)

    def to_dict(self) -> dict:
        return {"multiplier": self.multiplier, "shift": self.shift, "lo": self.lo, "hi": self.hi}

    @classmethod
    def from_dict(cls, d: dict) -> "Requant":
        return cls(multiplier=int(d["multiplier"]), shift=int(d["shift"]), lo=int(d["lo"]),
                   hi=int(d["hi"]))
