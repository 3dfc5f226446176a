"""Exact integer requantizer: clamp(round_half_even(v·M / 2^S), lo, hi), pipelined for DSP slices."""

from __future__ import annotations

import functools
import operator

from amaranth import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from lstmfpga.foundation.hw.packed_mac_model import DSP48E2, DspShape
from lstmfpga.foundation.validation import check_integer
from lstmfpga.hw import latency

MULTIPLIER_BITS = 31
SHIFT_BITS = 7
#: The multiplier's top slice is added up from shifted copies of the value in fabric when it is at
#: most this wide (a DSP48E2's 26-bit slice leaves 5 bits, a DSP48E1's 24-bit one 7): a DSP for a
#: few bits would be most of a gate requantizer's multipliers.
FABRIC_BITS = 8


def _slices(width: int, step: int) -> list[tuple[int, int]]:
    return [(lo, min(lo + step, width)) for lo in range(0, width, step)]


def multiplier_slices(dsp: DspShape) -> tuple[list[tuple[int, int]], tuple[int, int] | None]:
    """The multiplier's bit ranges that go to DSPs (unsigned in the ``a_bits`` port) and the top
    range added in fabric (``None`` when every slice has a DSP)."""
    slices = _slices(MULTIPLIER_BITS, dsp.a_bits - 1)
    if len(slices) > 1 and slices[-1][1] - slices[-1][0] <= FABRIC_BITS:
        return slices[:-1], slices[-1]
    return slices, None


def dsp_count(in_width: int, dsp: DspShape) -> int:
    """Multipliers of a :class:`Requantizer` for an ``in_width``-bit value laid out for ``dsp``
    (a one-bit value slice selects the multiplier in fabric, as synthesis maps it)."""
    wide = [hi - lo for lo, hi in _slices(in_width, dsp.b_bits - 1) if hi - lo > 1]
    return len(wide) * len(multiplier_slices(dsp)[0])


class Requantizer(wiring.Component):
    """``result`` = clamp(round_half_even(``value``·``multiplier`` / 2^``shift``), ``lo``, ``hi``).

    Fully pipelined: one input per cycle, the result appears :attr:`LATENCY` cycles after its
    operands (parameters are sampled with the value, so they may change every cycle).  The wide
    product is built from partial products sized for ``dsp`` in three registered stages (partial
    products, their sums per value slice, the product): value slices of ``b_bits - 1`` bits times
    multiplier slices of ``a_bits - 1`` bits, a top multiplier slice of at most
    :data:`FABRIC_BITS` bits as shifted copies of the value added in fabric (pairs in the first
    stage, all in the second); the shift right by S - 1 takes two
    (whole bytes, then 0-7 bits, gathering the sticky bit); then the half-even decision with the
    floor cut to a window of ``out_width + 2`` bits; then round on that window; then saturate.

    Parameters
    ----------
    in_width : int
        Signed width of ``value``.
    out_width : int
        Signed width of ``lo``, ``hi`` and ``result``.
    dsp : DspShape
        The device's multiplier the partial products are sized for (default DSP48E2:
        :func:`dsp_count` multipliers, two for a value of up to 34 bits).
    """

    LATENCY = latency.REQUANTIZER

    def __init__(self, *, in_width: int, out_width: int, dsp: DspShape = DSP48E2):
        check_integer("Input width", in_width, low=2, error=TypeError)
        check_integer("Output width", out_width, low=2, high=32, error=TypeError)
        if not isinstance(dsp, DspShape):
            raise TypeError(f"dsp must be a DspShape, not {dsp!r}")
        self.in_width = in_width
        self.out_width = out_width
        self.dsp = dsp
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

        # partial products: value slices (the top one signed) × multiplier slices (unsigned); the
        # datapath registers have no reset, so that synthesis can move the partial-product registers
        # into the DSPs' output registers (hw/ecp5_dsp_registers.py)
        m_slices, fabric = multiplier_slices(self.dsp)
        v_slices = _slices(self.in_width, self.dsp.b_bits - 1)
        rows = []
        for i, (vlo, vhi) in enumerate(v_slices):
            v = self.value[vlo:vhi]
            v = v.as_signed() if i == len(v_slices) - 1 else v
            parts = []
            for mlo, mhi in m_slices:
                pp = Signal(signed(vhi - vlo + mhi - mlo + 1), name=f"pp_v{vlo}_m{mlo}", reset_less=True)
                m.d.sync += pp.eq(v * self.multiplier[mlo:mhi])
                parts.append((pp, mlo))
            row = Signal(signed(pw), name=f"row_v{vlo}", reset_less=True)
            m.d.sync += row.eq(sum(pp << mlo for pp, mlo in parts))
            rows.append((row, vlo))
        if fabric is not None:
            # value × the top bits as a sum of the value's shifted copies, never a multiply that
            # synthesis would put in a DSP
            flo, fhi = fabric
            copies = [Mux(self.multiplier[b], self.value << (b - flo), 0) for b in range(flo, fhi)]
            pairs = []
            for j in range(0, len(copies), 2):
                pair = Signal(signed(self.in_width + fhi - flo + 1), name=f"fabric_m{flo + j}", reset_less=True)
                m.d.sync += pair.eq(sum(copies[j:j + 2]))
                pairs.append(pair)
            row = Signal(signed(pw), name=f"row_m{flo}", reset_less=True)
            m.d.sync += row.eq(sum(pairs))
            rows.append((row, flo))
        product = Signal(signed(pw), reset_less=True)
        m.d.sync += product.eq(sum(row << lo for row, lo in rows))
        lo1, hi1 = delayed(self.lo, 3, "lo"), delayed(self.hi, 3, "hi")
        shift2 = delayed(self.shift, 2, "shift")
        # y = product >> (S - 1) in two steps (by whole bytes, then by 0-7 bits), collecting the
        # bits shifted out into ``sticky``; then floor = y >> 1 and the round bit is y[0].
        # S = 0 means no rounding: y = product << 1.  The byte shift's choice is decoded beside the
        # product, one-hot (S = 0, 0..nbytes - 1 bytes, everything) with a thermometer of the bytes
        # it drops, so the shift itself is an AND-OR of registered selects.
        nbytes = -(-pw // 8)
        pre = Signal(SHIFT_BITS + 1)
        m.d.comb += pre.eq(Mux(shift2 == 0, 0, shift2 - 1))
        exact3, fine3 = Signal(), Signal(3)
        by_bytes = Signal(nbytes + 1)      # one-hot: shift by n bytes, n = nbytes for all of them
        dropped = Signal(nbytes)           # bit i: byte i is shifted out
        m.d.sync += [exact3.eq(shift2 == 0), fine3.eq(pre[:3]),
                     by_bytes.eq(Cat(*[(shift2 != 0) & (pre[3:] == n) for n in range(nbytes)],
                                     (shift2 != 0) & (pre[3:] >= nbytes))),
                     dropped.eq(Cat(*[(shift2 != 0) & (pre[3:] > i) for i in range(nbytes)]))]
        coarse = Signal(signed(pw + 1))
        sticky4, fine4, exact4 = Signal(), Signal(3), Signal()
        doubled = Signal(signed(pw + 1))
        m.d.comb += doubled.eq(product << 1)
        choices = [Mux(exact3, doubled, 0)]
        choices += [Mux(by_bytes[n], product >> (8 * n), 0) for n in range(nbytes)]
        choices.append(Mux(by_bytes[nbytes], product >> (pw - 1), 0))
        byte_any = Cat(*(product.as_unsigned()[8 * i:8 * (i + 1)].any() for i in range(nbytes)))
        m.d.sync += [coarse.eq(functools.reduce(operator.or_, choices)), sticky4.eq((byte_any & dropped).any()),
                     fine4.eq(fine3), exact4.eq(exact3)]
        lo4, hi4 = delayed(lo1, 1, "lo4"), delayed(hi1, 1, "hi4")
        # fine shift
        y = Signal(signed(pw + 1))
        sticky5, exact5 = Signal(), Signal()
        low_mask = Signal(8)
        m.d.comb += low_mask.eq((1 << fine4) - 1)
        m.d.sync += [y.eq(coarse >> fine4), sticky5.eq(sticky4 | (coarse.as_unsigned()[:8] & low_mask).any()),
                     exact5.eq(exact4)]
        lo5, hi5 = delayed(lo4, 1, "lo5"), delayed(hi4, 1, "hi5")
        # rounding decision; the floor in an (ow + 2)-bit window, or which side it left it on
        floor = y >> 1
        window = ow + 2
        upper = floor.as_unsigned()[window - 1:]
        small = Signal(signed(window))
        round_up, above, below = Signal(), Signal(), Signal()
        m.d.sync += [small.eq(floor[:window]),
                     round_up.eq(~exact5 & y[0] & (sticky5 | floor[0])),
                     above.eq(~floor[-1] & upper.any()), below.eq(floor[-1] & ~upper.all())]
        lo6, hi6 = delayed(lo5, 1, "lo6"), delayed(hi5, 1, "hi6")
        # round, then saturate a stage later (outside the window the value is beyond lo/hi): the
        # rounding carry and the bound compares in one cycle were the path that set the tail's clock
        rounded = Signal(signed(window + 1))
        m.d.sync += rounded.eq(small + round_up)
        above7, below7 = delayed(above, 1, "above"), delayed(below, 1, "below")
        lo7, hi7 = delayed(lo6, 1, "lo7"), delayed(hi6, 1, "hi7")
        with m.If(below7 | (~above7 & (rounded < lo7))):
            m.d.sync += self.result.eq(lo7)
        with m.Elif(above7 | (rounded > hi7)):
            m.d.sync += self.result.eq(hi7)
        with m.Else():
            m.d.sync += self.result.eq(rounded)
        return m
