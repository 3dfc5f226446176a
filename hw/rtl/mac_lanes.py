"""P multiply-accumulate lanes: one broadcast column value times each lane's weight per cycle."""

from __future__ import annotations

from amaranth import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from lstmfpga.hw import latency
from lstmfpga.hw.rtl import fanout


def lanes_ports(*, lanes: int, weight_bits: int, column_bits: int, acc_bits: int) -> dict:
    """The ports of the engine's MAC lanes, one MAC per multiplier or packed
    (:class:`~lstmfpga.hw.rtl.packed_mac.PackedMacLanes`)."""
    return {
        "valid": In(1), "first": In(1), "last": In(1), "flush": In(1),
        "column": In(signed(column_bits)),
        "weights": In(unsigned(lanes * weight_bits)),
        "done": Out(1),
        "sums": Out(unsigned(lanes * acc_bits)),
    }


def copied_inputs(m, lanes, *, count: int):
    """The lanes' inputs registered once in the fabric: the column and the controls in ``count``
    copies, one per block of lanes (:mod:`~lstmfpga.hw.rtl.fanout`), the weights once.

    The MAC blocks register them again as their operands, and synthesis may move those registers
    into the DSPs (a copy in each), so the broadcast's fan-out is split here, a cycle before them
    (:data:`~lstmfpga.hw.latency.COLUMN_COPY`).  Returns (column, valid, first, last, weights);
    ``last`` is set only with ``valid``.
    """
    column = fanout.kept(Signal.like(lanes.column, reset_less=True), count=count, name="column_near")
    valid, first, last = (fanout.kept(Signal(), count=count, name=s) for s in ("valid0", "first0", "last0"))
    # (a flip-flop stage, not a shift register: with the memory's output register before it, Yosys
    # maps the pair to SRL16Es, a LUT for every weight bit of every lane)
    weights = Signal.like(lanes.weights, name="weights0", reset_less=True, attrs=fanout.FLIP_FLOPS)
    m.d.sync += weights.eq(lanes.weights)
    for b in range(count):
        m.d.sync += [column[b].eq(lanes.column), valid[b].eq(lanes.valid & ~lanes.flush),
                     first[b].eq(lanes.first), last[b].eq(lanes.last & lanes.valid)]
    return column, valid, first, last, weights


class MacLanes(wiring.Component):
    """Row-parallel MAC lanes, pipelined like a DSP slice behind a fabric stage: per-block copies of
    the broadcast column, operand registers (A/B), product register (M), accumulator (P).

    Each valid cycle, lane p multiplies the broadcast ``column`` by its ``weight_bits``-wide
    signed weight (bits p·w.. of ``weights``) and accumulates; ``first`` restarts the sum.
    :attr:`LATENCY` cycles after a ``last`` column, ``done`` pulses and ``sums`` (lane p at bits
    p·acc..) holds the finished accumulators; the lanes meanwhile already accumulate the next group.
    ``flush`` drops whatever is in flight.

    Parameters
    ----------
    lanes, weight_bits, column_bits, acc_bits : int
    """

    LATENCY = latency.COLUMN_COPY + latency.MAC_LANES

    def __init__(self, *, lanes: int, weight_bits: int, column_bits: int, acc_bits: int):
        for name, value in (("lanes", lanes), ("weight_bits", weight_bits),
                            ("column_bits", column_bits), ("acc_bits", acc_bits)):
            if not isinstance(value, int) or value < 1:
                raise TypeError(f"{name} must be a positive integer, not {value!r}")
        self.lanes, self.weight_bits, self.column_bits, self.acc_bits = lanes, weight_bits, column_bits, acc_bits
        super().__init__(lanes_ports(lanes=lanes, weight_bits=weight_bits, column_bits=column_bits, acc_bits=acc_bits))

    def elaborate(self, platform):
        m = Module()
        P, wb, ab = self.lanes, self.weight_bits, self.acc_bits
        n = fanout.copies(P)
        near, valid0, first0, last0, weights0 = copied_inputs(m, self, count=n)
        # A/B: operands; the datapath registers have no reset (valid bits guard them), so that
        # synthesis can move them into the DSP's own A/B/M registers (hw/ecp5_dsp_registers.py for ECP5)
        column = fanout.kept(Signal(signed(self.column_bits), reset_less=True), count=n, name="column")
        valid1, first1, last1 = (fanout.kept(Signal(), count=n, name=s) for s in ("valid1", "first1", "last1"))
        weights = Signal(unsigned(P * wb), reset_less=True)
        m.d.sync += weights.eq(weights0)
        for b in range(n):
            m.d.sync += [column[b].eq(near[b]), valid1[b].eq(valid0[b] & ~self.flush),
                         first1[b].eq(first0[b]), last1[b].eq(last0[b] & valid0[b])]
        # M: products
        products = [Signal(signed(wb + self.column_bits), name=f"prod{p}", reset_less=True) for p in range(P)]
        valid2, first2, last2 = (fanout.kept(Signal(), count=n, name=s) for s in ("valid2", "first2", "last2"))
        for b in range(n):
            m.d.sync += [valid2[b].eq(valid1[b] & ~self.flush), first2[b].eq(first1[b]),
                         last2[b].eq(last1[b] & valid1[b])]
        for p in range(P):
            m.d.sync += products[p].eq(weights[p * wb:(p + 1) * wb].as_signed() * column[fanout.block_of(p)])
        # P: accumulators
        accs = [Signal(signed(ab), name=f"acc{p}") for p in range(P)]
        sums = []
        for p in range(P):
            b = fanout.block_of(p)
            s = Signal(signed(ab), name=f"sum{p}")
            m.d.comb += s.eq(products[p] + Mux(first2[b], 0, accs[p]))
            sums.append(s)
            with m.If(valid2[b]):
                m.d.sync += accs[p].eq(s)
        # ``flush`` (soft reset) drops the columns in flight: no late ``done`` reaches the shadow bank
        m.d.sync += self.done.eq(last2[0] & valid2[0] & ~self.flush)
        for b in range(n):
            block = range(b * fanout.LANES_PER_COPY, min(P, (b + 1) * fanout.LANES_PER_COPY))
            with m.If(last2[b] & valid2[b]):
                m.d.sync += self.sums[block.start * ab:block.stop * ab].eq(Cat(*[sums[p].as_unsigned() for p in block]))
        return m
