"""P multiply-accumulate lanes: one broadcast column value times each lane's weight per cycle."""

from __future__ import annotations

from amaranth import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from lstmfpga.hw import latency


class MacLanes(wiring.Component):
    """Row-parallel MAC lanes with a shadow bank.

    Each valid cycle, lane p multiplies the broadcast ``column`` by its ``weight_bits``-wide
    signed weight (bits p·w.. of ``weights``) and accumulates; ``first`` restarts the sum.  Two
    cycles after a ``last`` column, ``done`` pulses and ``sums`` (lane p at bits p·acc..) holds the
    finished accumulators; the lanes meanwhile already accumulate the next group.  ``flush``
    drops whatever is in flight.

    Parameters
    ----------
    lanes, weight_bits, column_bits, acc_bits : int
    """

    LATENCY = latency.MAC_LANES

    def __init__(self, *, lanes: int, weight_bits: int, column_bits: int, acc_bits: int):
        for name, value in (("lanes", lanes), ("weight_bits", weight_bits),
                            ("column_bits", column_bits), ("acc_bits", acc_bits)):
            if not isinstance(value, int) or value < 1:
                raise TypeError(f"{name} must be a positive integer, not {value!r}")
        self.lanes, self.weight_bits, self.column_bits, self.acc_bits = lanes, weight_bits, column_bits, acc_bits
        super().__init__({
            "valid": In(1), "first": In(1), "last": In(1), "flush": In(1),
            "column": In(signed(column_bits)),
            "weights": In(unsigned(lanes * weight_bits)),
            "done": Out(1),
            "sums": Out(unsigned(lanes * acc_bits)),
        })

    def elaborate(self, platform):
        m = Module()
        P, wb, ab = self.lanes, self.weight_bits, self.acc_bits
        prod_bits = wb + self.column_bits
        products = [Signal(signed(prod_bits), name=f"prod{p}") for p in range(P)]
        accs = [Signal(signed(ab), name=f"acc{p}") for p in range(P)]
        valid1, first1, last1 = Signal(), Signal(), Signal()
        m.d.sync += [valid1.eq(self.valid), first1.eq(self.first), last1.eq(self.last & self.valid)]
        for p in range(P):
            w = self.weights[p * wb:(p + 1) * wb].as_signed()
            m.d.sync += products[p].eq(w * self.column)
        sums = []
        for p in range(P):
            s = Signal(signed(ab), name=f"sum{p}")
            m.d.comb += s.eq(products[p] + Mux(first1, 0, accs[p]))
            sums.append(s)
            with m.If(valid1):
                m.d.sync += accs[p].eq(s)
        m.d.sync += self.done.eq(last1 & valid1 & ~self.flush)
        with m.If(self.flush):
            # drop columns in flight (soft reset): no late ``done`` may reach the shadow bank
            m.d.sync += [valid1.eq(0), last1.eq(0)]
        with m.If(last1 & valid1):
            m.d.sync += self.sums.eq(Cat(*[s.as_unsigned() for s in sums]))
        return m
