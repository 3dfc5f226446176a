"""Requantizer RTL (Amaranth simulator) against the contract's Requant.apply on random inputs."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from lstmfpga.hw.rtl.requantizer import Requantizer
from lstmfpga.foundation.fixed_point import Requant


def _cases(rng, in_width, out_width, n):
    lo_out, hi_out = -(1 << (out_width - 1)), (1 << (out_width - 1)) - 1
    cases = []
    for _ in range(n):
        shift = int(rng.choice([0, 1, 2, int(rng.integers(3, 60)), int(rng.integers(60, 127))]))
        mult = int(rng.integers(1, 1 << 31))
        lo = int(rng.integers(lo_out, 1))
        hi = int(rng.integers(max(lo, 0), hi_out + 1))
        vmax = (1 << (in_width - 1)) - 1
        value = int(rng.integers(-vmax - 1, vmax + 1))
        if rng.random() < 0.3:  # exact ties: value·M = (2q+1)·2^(S-1)
            if shift >= 1 and shift < 40:
                mult = 1 << 30
                value = int(np.clip((2 * int(rng.integers(-50, 50)) + 1) << max(shift - 31, 0), -vmax, vmax)) \
                    if shift > 31 else int(rng.integers(-vmax // 4, vmax // 4))
        cases.append((value, mult, shift, lo, hi))
    # at the bounds: v·2^30 / 2^31 = v/2, so v = 2q − 1, 2q, 2q + 1 lands on q − ½ (a tie), q and q + ½
    # for q next to lo and hi, where rounding up or not decides the clamp
    for _ in range(n // 3):
        lo = int(rng.integers(lo_out, 1))
        hi = int(rng.integers(max(lo, 0), hi_out + 1))
        q = int(rng.choice([lo - 1, lo, lo + 1, hi - 1, hi, hi + 1]))
        value = 2 * q + int(rng.integers(-1, 2))
        if abs(value) < 1 << (in_width - 1):
            cases.append((value, 1 << 30, 31, lo, hi))
    return cases


@pytest.mark.parametrize("in_width,out_width", [(34, 8), (16, 6), (20, 13), (41, 4)])
def test_requantizer_matches_contract(in_width, out_width):
    rng = np.random.default_rng(in_width * 100 + out_width)
    cases = _cases(rng, in_width, out_width, 300)
    dut = Requantizer(in_width=in_width, out_width=out_width)
    got = []

    async def bench(ctx):
        for cycle in range(len(cases) + Requantizer.LATENCY):
            if cycle < len(cases):
                value, mult, shift, lo, hi = cases[cycle]
                ctx.set(dut.value, value)
                ctx.set(dut.multiplier, mult)
                ctx.set(dut.shift, shift)
                ctx.set(dut.lo, lo)
                ctx.set(dut.hi, hi)
            await ctx.tick()
            if cycle >= Requantizer.LATENCY - 1:
                got.append(ctx.get(dut.result))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    expect = [int(Requant(multiplier=m, shift=s, lo=lo, hi=hi).apply(np.array([v]))[0])
              for v, m, s, lo, hi in cases]
    assert got[: len(cases)] == expect


@pytest.mark.filterwarnings("ignore:.*created but never used")
def test_requantizer_rejects_bad_widths():
    with pytest.raises(TypeError, match="Output width must be an integer in \\[2, 32\\], not 40"):
        Requantizer(in_width=20, out_width=40)
    with pytest.raises(TypeError, match="Input width must be an integer >= 2, not 'x'"):
        Requantizer(in_width="x", out_width=8)
