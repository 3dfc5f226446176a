"""MacLanes (Amaranth simulator) against NumPy dot products, with idle cycles between columns."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from lstmfpga.hw.rtl.mac_lanes import MacLanes


@pytest.mark.parametrize("lanes,weight_bits,groups", [(4, 2, 3), (12, 4, 2), (8, 8, 4)])
def test_mac_lanes_dot_products(lanes, weight_bits, groups):
    rng = np.random.default_rng(lanes + weight_bits)
    acc_bits = 24
    columns = [int(rng.integers(1, 30)) for _ in range(groups)]
    wlo, whi = -(1 << (weight_bits - 1)), (1 << (weight_bits - 1)) - 1
    weights = [rng.integers(wlo, whi + 1, size=(k, lanes)) for k in columns]
    values = [rng.integers(-128, 128, size=k) for k in columns]
    dut = MacLanes(lanes=lanes, weight_bits=weight_bits, column_bits=8, acc_bits=acc_bits)
    sums = []

    def pack(row):
        return sum((int(w) & ((1 << weight_bits) - 1)) << (p * weight_bits) for p, w in enumerate(row))

    async def bench(ctx):
        feed = []
        for g in range(groups):
            for k in range(columns[g]):
                feed.append((weights[g][k], values[g][k], k == 0, k == columns[g] - 1))
                if rng.random() < 0.3:
                    feed.append(None)  # idle cycle inside a group
        for cycle in range(len(feed) + MacLanes.LATENCY + 2):
            item = feed[cycle] if cycle < len(feed) else None
            ctx.set(dut.valid, item is not None)
            if item is not None:
                row, value, first, last = item
                ctx.set(dut.weights, pack(row))
                ctx.set(dut.column, int(value))
                ctx.set(dut.first, first)
                ctx.set(dut.last, last)
            if ctx.get(dut.done):
                raw = ctx.get(dut.sums)
                lane_vals = [(raw >> (p * acc_bits)) & ((1 << acc_bits) - 1) for p in range(lanes)]
                sums.append([v - (1 << acc_bits) if v >> (acc_bits - 1) else v for v in lane_vals])
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert len(sums) == groups
    for g in range(groups):
        assert sums[g] == (values[g] @ weights[g]).tolist()


@pytest.mark.filterwarnings("ignore:.*created but never used")
def test_mac_lanes_rejects_zero_lanes():
    with pytest.raises(TypeError, match="lanes must be a positive integer, not 0"):
        MacLanes(lanes=0, weight_bits=4, column_bits=8, acc_bits=20)
