"""Requantizer RTL (Amaranth simulator) against the contract's Requant.apply on random inputs,
its partial products laid out for each device multiplier."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from lstmfpga.foundation.fixed_point import Requant
from lstmfpga.foundation.hw.packed_mac_model import DSP48E1, DSP48E2, DSP_SHAPES, MULT18X18D
from lstmfpga.hw.rtl.requantizer import MULTIPLIER_BITS, Requantizer, dsp_count, multiplier_slices


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
    # the extremes of both operands: the most negative value, the largest multiplier, its top bits
    for value in (-(1 << (in_width - 1)), (1 << (in_width - 1)) - 1):
        for mult in ((1 << MULTIPLIER_BITS) - 1, 0b11111 << 26, 1):
            cases.append((value, mult, int(rng.integers(0, 127)), lo_out, hi_out))
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


@pytest.mark.parametrize("draw", range(5))
def test_requantizer_matches_contract(draw):
    """Widths drawn (a gate's 34-bit sums among them), each device's slicing in turn."""
    rng = np.random.default_rng()
    dsp = (DSP48E2, DSP48E1, MULT18X18D)[draw] if draw < 3 else list(DSP_SHAPES.values())[int(rng.integers(3))]
    in_width = 34 if draw == 0 else int(rng.integers(2, 50))
    out_width = int(rng.integers(2, 17))
    cases = _cases(rng, in_width, out_width, 300)
    dut = Requantizer(in_width=in_width, out_width=out_width, dsp=dsp)
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
    assert got[: len(cases)] == expect, (in_width, out_width, dsp.name)


def test_multiplier_slices_cover_the_multiplier_once():
    """DSP slices fit the ``a_bits`` port unsigned, the fabric slice stays narrow, together they
    tile the 31 bits; a DSP48E2 needs two multipliers for a gate's 34-bit value (the old 17-bit
    slicing four)."""
    for dsp in DSP_SHAPES.values():
        slices, fabric = multiplier_slices(dsp)
        tiles = [*slices, *([fabric] if fabric else [])]
        assert [lo for lo, _ in tiles] == [0, *(hi for _, hi in tiles[:-1])] and tiles[-1][1] == MULTIPLIER_BITS
        assert all(hi - lo <= dsp.a_bits - 1 for lo, hi in slices)
    assert (dsp_count(34, DSP48E2), dsp_count(34, DSP48E1), dsp_count(34, MULT18X18D)) == (2, 2, 4)
    assert (dsp_count(18, DSP48E2), dsp_count(35, DSP48E2), dsp_count(36, MULT18X18D)) == (1, 2, 6)
    assert multiplier_slices(MULT18X18D) == ([(0, 17), (17, 31)], None)


@pytest.mark.filterwarnings("ignore:.*created but never used")
def test_requantizer_rejects_bad_parameters():
    with pytest.raises(TypeError, match="Output width must be an integer in \\[2, 32\\], not 40"):
        Requantizer(in_width=20, out_width=40)
    with pytest.raises(TypeError, match="Input width must be an integer >= 2, not 'x'"):
        Requantizer(in_width="x", out_width=8)
    with pytest.raises(TypeError, match="dsp must be a DspShape, not 'DSP48E2'"):
        Requantizer(in_width=20, out_width=8, dsp="DSP48E2")
