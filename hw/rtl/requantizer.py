"""Exact integer requantizer: clamp(round_half_even(v·M / 2^S), lo, hi), three pipeline stages."""

from __future__ import annotations

from amaranth import Module, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from lstmfpga.hw import latency

MULTIPLIER_BITS = 31
SHIFT_BITS = 7


class Requantizer(wiring.Component):
    """``result`` = clamp(round_half_even(``value``·``multiplier`` / 2^``shift``), ``lo``, ``hi``).

    Fully pipelined: one input per cycle, the result appears :attr:`LATENCY` cycles after its
    operands (parameters are sampled with the value, so they may change every cycle).

    Parameters
    ----------
    in_width : int
        Signed width of ``value``.
    out_width : int
        Signed width of ``lo``, ``hi`` and ``result``.
    """

    LATENCY = latency.REQUANTIZER

    def __init__(self, *, in_width: int, out_width: int):
        if not isinstance(in_width, int) or in_width < 2:
            raise TypeError(f"Input width must be an integer >= 2, not {in_width!r}")
        if not isinstance(out_width, int) or not 2 <= out_width <= 32:
            raise TypeError(f"Output width must be an integer in [2, 32], not {out_width!r}")
        self.in_width = in_width
        self.out_width = out_width
        super().__init__({
            "value": In(signed(in_width)),
            "multiplier": In(unsigned(MULTIPLIER_BITS)),
            "shift": In(unsigned(SHIFT_BITS)),
            "lo": In(signed(out_width)),
            "hi": In(signed(out_width)),
            "result": Out(signed(out_width)),
        })

    def elaborate(self, platform):
        m = Module()
        pw = self.in_width + MULTIPLIER_BITS + 1
        # stage 1: product
        product = Signal(signed(pw))
        shift1 = Signal(SHIFT_BITS)
        lo1, hi1 = Signal(signed(self.out_width)), Signal(signed(self.out_width))
        m.d.sync += [product.eq(self.value * self.multiplier), shift1.eq(self.shift),
                     lo1.eq(self.lo), hi1.eq(self.hi)]
        # stage 2: floor shift and the half-even rounding decision
        shift_m1 = Signal(SHIFT_BITS)
        m.d.comb += shift_m1.eq(shift1 - 1)
        below_round = Signal(pw)
        m.d.comb += [below_round[i].eq(shift_m1 > i) for i in range(pw)]
        floor_q = Signal(signed(pw))
        m.d.comb += floor_q.eq(product >> shift1)
        round_bit = (product >> shift_m1)[0]
        sticky = (product.as_unsigned() & below_round).any()
        quotient = Signal(signed(pw))
        round_up = Signal()
        lo2, hi2 = Signal(signed(self.out_width)), Signal(signed(self.out_width))
        m.d.sync += [quotient.eq(floor_q),
                     round_up.eq((shift1 != 0) & round_bit & (sticky | floor_q[0])),
                     lo2.eq(lo1), hi2.eq(hi1)]
        # stage 3: round and saturate
        rounded = Signal(signed(pw + 1))
        m.d.comb += rounded.eq(quotient + round_up)
        with m.If(rounded < lo2):
            m.d.sync += self.result.eq(lo2)
        with m.Elif(rounded > hi2):
            m.d.sync += self.result.eq(hi2)
        with m.Else():
            m.d.sync += self.result.eq(rounded)
        return m
