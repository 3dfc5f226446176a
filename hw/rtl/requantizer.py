"""Exact integer requantizer: clamp(round_half_even(v·M / 2^S), lo, hi), pipelined for DSP slices."""

from __future__ import annotations

from amaranth import Module, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from lstmfpga.hw import latency

MULTIPLIER_BITS = 31
SHIFT_BITS = 7


#: Operand slice width of the partial products: a signed 18×18 multiplier (ECP5 MULT18X18D,
#: Xilinx DSP48's B port) takes 17 magnitude bits of each.
SLICE_BITS = 17


def _slices(width: int) -> list[tuple[int, int]]:
    return [(lo, min(lo + SLICE_BITS, width)) for lo in range(0, width, SLICE_BITS)]


class Requantizer(wiring.Component):
    """``result`` = clamp(round_half_even(``value``·``multiplier`` / 2^``shift``), ``lo``, ``hi``).

    Fully pipelined: one input per cycle, the result appears :attr:`LATENCY` cycles after its
    operands (parameters are sampled with the value, so they may change every cycle).  The wide
    product is built from DSP-sized partial products in three registered stages (partial
    products, their sums per value slice, the product), then the floor shift with the rounding
    decision, then round and saturate.

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
        ow = self.out_width

        def delayed(source, stages, name):
            regs = [source]
            for n in range(stages):
                r = Signal.like(source, name=f"{name}_d{n + 1}")
                m.d.sync += r.eq(regs[-1])
                regs.append(r)
            return regs[-1]

        # partial products: value slices (the top one signed) × multiplier slices (unsigned)
        v_slices = _slices(self.in_width)
        rows = []
        for i, (vlo, vhi) in enumerate(v_slices):
            v = self.value[vlo:vhi]
            v = v.as_signed() if i == len(v_slices) - 1 else v
            parts = []
            for mlo, mhi in _slices(MULTIPLIER_BITS):
                pp = Signal(signed(vhi - vlo + mhi - mlo + 1), name=f"pp_v{vlo}_m{mlo}")
                m.d.sync += pp.eq(v * self.multiplier[mlo:mhi])
                parts.append((pp, mlo))
            row = Signal(signed(pw), name=f"row_v{vlo}")
            m.d.sync += row.eq(sum(pp << mlo for pp, mlo in parts))
            rows.append((row, vlo))
        product = Signal(signed(pw))
        m.d.sync += product.eq(sum(row << vlo for row, vlo in rows))
        shift1 = delayed(self.shift, 3, "shift")
        lo1, hi1 = delayed(self.lo, 3, "lo"), delayed(self.hi, 3, "hi")
        # floor shift and the half-even rounding decision
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
        lo2, hi2 = Signal(signed(ow)), Signal(signed(ow))
        m.d.sync += [quotient.eq(floor_q),
                     round_up.eq((shift1 != 0) & round_bit & (sticky | floor_q[0])),
                     lo2.eq(lo1), hi2.eq(hi1)]
        # round and saturate
        rounded = Signal(signed(pw + 1))
        m.d.comb += rounded.eq(quotient + round_up)
        with m.If(rounded < lo2):
            m.d.sync += self.result.eq(lo2)
        with m.Elif(rounded > hi2):
            m.d.sync += self.result.eq(hi2)
        with m.Else():
            m.d.sync += self.result.eq(rounded)
        return m
