"""Plans with weights in DDR (:mod:`lstmfpga.hw.plan_ddr`): the board's weight port, the on-chip
memories a residency and batch leave, and the planner's choice (logic fit: the stated stand-in of
``plan_standins``; shapes, boards, residencies and batches drawn at random)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

pytest.importorskip("amaranth")

from lstmfpga.cli.main import main  # noqa: E402
from lstmfpga.foundation.errors import ConfigError  # noqa: E402
from lstmfpga.hw.boards import BOARD_KEYS, get_board  # noqa: E402
from lstmfpga.hw.ddr_schedule import estimate_ddr  # noqa: E402
from lstmfpga.hw.memory_map import memories_at  # noqa: E402
from lstmfpga.hw.plan import make_plan, shape_config  # noqa: E402
from lstmfpga.hw.plan_ddr import (BATCH_TOLERANCE, DDR_EFFICIENCY, DDR_LATENCY_NS, DDR_RESERVE,  # noqa: E402
                                  _ddr_check, board_port, ddr_memories)
from plan_standins import stand_in_fit, stand_in_fits  # noqa: E402,F401


def test_board_port_is_the_ps_port_and_the_sustained_ddr_rate():
    rng = np.random.default_rng()
    board = get_board(str(rng.choice(BOARD_KEYS)))
    clock = float(rng.uniform(50, 400))
    port = board_port(board, clock)
    beats_per_s = board.ddr_gbps * 1e9 * DDR_EFFICIENCY / (board.hp_width // 8)
    assert port.interval == pytest.approx(max(1.0, clock * 1e6 / beats_per_s))
    assert port.latency == pytest.approx(max(1.0, DDR_LATENCY_NS * clock / 1e3))
    assert (port.data_width, port.max_burst) == (board.hp_width, board.hp_max_burst)
    slow = board_port(board, clock, ddr_gbps=0.5)
    assert slow.bytes_per_cycle * clock * 1e6 == pytest.approx(min(0.5e9, clock * 1e6 * board.hp_width / 8))
    for bad in (0, -1.0, float("inf")):
        with pytest.raises(ConfigError, match=r"--ddr-gbps must be a positive number of GB/s"):
            board_port(board, clock, ddr_gbps=bad)


def _draw(rng):
    S = int(rng.integers(1, 6))
    config = shape_config(input_size=int(rng.integers(1, 300)), hidden_size=int(rng.integers(1, 60)),
                          num_layers=int(rng.integers(1, 4)), weight_bits=int(rng.integers(2, 9)))
    config = dataclasses.replace(config, column_sets=S, stream_width=128, lanes=4 * S)
    return dataclasses.replace(config, lanes=4 * S * int(rng.integers(1, config.hidden_size + 1)))


@pytest.mark.parametrize("residency", ["wx", "all", "stream"])
def test_ddr_memories_hold_the_double_buffer_and_b_sequences(residency):
    rng = np.random.default_rng()
    config, batch = _draw(rng), int(rng.integers(1, 9))
    chip = {m.name: m for m in memories_at(config)}
    ddr = {m.name: m for m in ddr_memories(config, residency, batch)}
    layers = range(config.num_layers)
    weights = ddr["core/weight_mem/mem"]
    x_max = max(config.x_columns(layer) for layer in layers)
    depth = {"stream": 2 * max(config.issued_columns(layer) for layer in layers),
             "all": 2 * max(x_max, config.h_columns),
             "wx": 2 * x_max + config.num_layers * config.groups * config.h_columns}[residency]
    assert (weights.depth, weights.width) == (max(2, depth), chip["core/weight_mem/mem"].width)
    assert ("core/tail/pre_mem" in ddr) == (residency != "stream")
    if residency != "stream":
        assert sum(m.bits for name, m in ddr.items() if name.endswith("pre_mem")) >= (
            config.max_timesteps * batch * 4 * config.hidden_size * 32)
    for name, memory in chip.items():
        if name.rsplit("/", 1)[-1].startswith(("h_buf", "cell_mem", "input_buf", "word_buf", "pre_mem")):
            # B sequences' words; a memory has two words at least, so a two-word one may hold one (H = 1)
            words = (1, 2) if memory.depth == 2 else (memory.depth,)
            assert ddr[name].depth in {max(2, batch * n) for n in words} and ddr[name].width == memory.width
        elif "weight_mem" not in name:
            assert ddr[name] == memory


@pytest.mark.parametrize("mode, residency", [("full", "stream"), ("split", "stream"), ("full", "all"), ("full", "wx")])
def test_ddr_memories_of_a_batch_are_those_of_the_generated_core(mode, residency):
    """The planner's memories for a residency the RTL builds and B sequences are the memories of
    the core the RTL generates with ``max_batch`` = B (elaborated), but for the read master's FIFO,
    which ``DDR_RESERVE`` counts as one BRAM36."""
    from lstmfpga.hw.memory_map import accelerator_memories

    rng = np.random.default_rng()
    config = dataclasses.replace(_draw(rng), mode=mode, max_timesteps=int(rng.integers(1, 25)))
    config = dataclasses.replace(config, lanes=min(config.lanes, 4 * config.column_sets * 4))
    if config.column_sets % 2 == 0 and config.lanes % (8 * config.column_sets) == 0:
        config = dataclasses.replace(config, tail_units=int(rng.integers(1, 3)))
    batch = int(rng.integers(2, 9))
    model = {m.name: m for m in ddr_memories(config, residency, batch)}
    built = {m.name: m for m in accelerator_memories(dataclasses.replace(config, weight_residency=residency,
                                                                          max_batch=batch))}
    fifo = built.pop("core/fetcher/reader/fifo/storage")
    assert fifo.bits <= 36 * 1024 and DDR_RESERVE["bram36"] >= 1
    assert model == built, (config, batch)


@pytest.mark.parametrize("residency", ["stream", "all", "wx"])
def test_ddr_memories_of_one_word_sequences_are_those_of_the_generated_core(residency):
    """A sequence of one step in one stream word: one sequence's memories are at their floor of
    two words, and a batch of B holds B words, not 2·B."""
    from lstmfpga.hw.memory_map import accelerator_memories

    rng = np.random.default_rng()
    config = shape_config(input_size=int(rng.integers(1, 17)), hidden_size=int(rng.integers(1, 9)),
                          num_layers=int(rng.integers(1, 4)), weight_bits=int(rng.integers(2, 9)))
    config = dataclasses.replace(config, lanes=8, stream_width=128, max_timesteps=1)
    batch = int(rng.integers(2, 9))
    model = {m.name: m for m in ddr_memories(config, residency, batch)}
    built = {m.name: m for m in accelerator_memories(dataclasses.replace(config, weight_residency=residency,
                                                                          max_batch=batch))}
    built.pop("core/fetcher/reader/fifo/storage")
    assert model["core/input_buf"].depth == batch
    assert model == built, (config, batch)


def test_a_shape_too_big_for_the_chip_gets_a_ddr_plan_at_the_latency_of_one_sequence(stand_in_fits):
    rng = np.random.default_rng()
    board = get_board(str(rng.choice(BOARD_KEYS)))
    units, layers = [(1024, 2), (1024, 3), (2048, 1), (2048, 2), (2048, 3)][int(rng.integers(5))]  # on no board's chip
    template = shape_config(input_size=2048, hidden_size=units, num_layers=layers, weight_bits=4)
    plan = make_plan(template, board, timesteps=16)
    assert plan.residency in ("wx", "all", "stream") and plan.mode == "full"
    assert plan.alternative.startswith("on chip: binding resource: BRAM36")
    fit = stand_in_fit("full", board.family, macs_per_dsp=plan.config.macs_per_dsp,
                       column_sets=plan.config.column_sets)
    assert _ddr_check(plan.config, fit, board, plan.residency, plan.batch).fits
    assert plan.cycles == estimate_ddr(plan.config, 16, residency=plan.residency, batch=plan.batch, port=plan.port)
    alone = estimate_ddr(plan.config, 16, residency=plan.residency, batch=1, port=plan.port)
    assert plan.cycles.compute_cycles <= alone.compute_cycles * (1 + BATCH_TOLERANCE)
    if plan.cycles.ddr_bound:
        # at the DDR's bound, or (an input pass on the MACs, a recurrence on the port) at its phases'
        assert max(plan.cycles.bandwidth_fraction, plan.cycles.phase_fraction) >= 0.85
    assert plan.sequences_per_s == pytest.approx(plan.batch * 1e6 * plan.clock_mhz / plan.cycles.run_cycles)
    report = plan.report()
    for text in ("weights: ", f"batch B={plan.batch}", "GB/s sustained", "DDR engine:", "DDR read master"):
        assert text in report
    fixed = make_plan(template, board, timesteps=16, residency=plan.residency, batch=1)
    assert (fixed.batch, fixed.residency) == (1, plan.residency)


def test_logic_that_refuses_every_candidate_sends_the_search_to_fewer_lanes(stand_in_fits):
    """The lane ladder is sized on memory and ideal multipliers; when the Yosys logic fit then
    refuses every candidate (here each multiplier costs several DSPs), the search runs again on
    ladders bounded by the fitted logic instead of giving up."""
    from lstmfpga.hw.plan import SHELL_RESERVE, UTILIZATION_LIMIT, _with_sets
    from lstmfpga.hw.plan_ddr import _lane_ladder

    rng = np.random.default_rng()
    board = get_board("pynq-z2")
    per_multiplier = float(rng.uniform(4.0, 12.0))
    stand_in_fits.slopes["dsp"] = (27, per_multiplier)
    # one layer with an input pass: MAC-bound there, so every candidate within 5 % of the fastest
    # has the most lanes the memory allows
    template = shape_config(input_size=2048, hidden_size=int(rng.choice([512, 1024])), num_layers=1, weight_bits=4)
    plan = make_plan(template, board, timesteps=16, residency="all")
    dsp_limit = board.dsp * UTILIZATION_LIMIT["dsp"] - SHELL_RESERVE["dsp"] - DDR_RESERVE["dsp"]
    assert 27 + per_multiplier * plan.config.multipliers <= dsp_limit
    assert plan.used["dsp"] <= plan.check.limit["dsp"]
    fit = stand_in_fit("full", board.family, macs_per_dsp=plan.config.macs_per_dsp,
                       column_sets=plan.config.column_sets, dsp=(27, per_multiplier))
    assert _ddr_check(plan.config, fit, board, plan.residency, plan.batch).fits
    # the ladder without the logic reaches far past what the DSPs allow
    base = _with_sets(plan.config, "full", plan.config.column_sets)
    top = _lane_ladder(base, board, plan.residency)[-1]
    assert 27 + per_multiplier * top.multipliers > dsp_limit


def test_residency_and_batch_are_validated(stand_in_fits):
    template = shape_config(input_size=30, hidden_size=8, num_layers=1, weight_bits=4)
    board = get_board("kv260")
    with pytest.raises(ConfigError, match=r"residency must be one of chip, wx, all, stream, auto, rtl, not 'x'"):
        make_plan(template, board, residency="x")
    with pytest.raises(ConfigError, match=r"batch must be an integer in \[1, 1\], not 2"):
        make_plan(template, board, residency="chip", batch=2)
    with pytest.raises(ConfigError, match=r"batch must be an integer in \[1, 64\], not 65"):
        make_plan(template, board, residency="all", batch=65)
    with pytest.raises(ConfigError, match=r"ddr_gbps must be a positive number of GB/s, not -2"):
        make_plan(template, board, ddr_gbps=-2)
    with pytest.raises(ConfigError, match=r"a DDR-resident plan runs every layer on the FPGA"):
        make_plan(template, board, residency="stream", mode="split")
    assert make_plan(template, board, compare=False).residency == "chip"     # it fits: on chip
    plan = make_plan(template, board, residency="stream", batch=3)
    assert plan.batch == 3
    # the RTL builds a stream plan with its batch: the report names the options
    assert (f"the RTL builds it: `lstmfpga hdl --weight-residency stream --ddr-width {plan.port.data_width} "
            f"--ddr-burst {plan.port.max_burst} --ddr-outstanding {plan.port.outstanding} --max-batch 3`") in plan.report()
    for residency in ("all", "wx"):
        plan = make_plan(template, board, residency=residency, batch=2)
        assert (f"the RTL builds it: `lstmfpga hdl --weight-residency {residency} --ddr-width {plan.port.data_width} "
                f"--ddr-burst {plan.port.max_burst} --ddr-outstanding {plan.port.outstanding} --max-batch 2`"
                ) in plan.report()


def test_residency_rtl_plans_only_what_the_rtl_builds(stand_in_fits):
    """--residency rtl: on chip when the weights fit, else a DDR residency the RTL builds (today
    every one: stream, all, wx)."""
    from lstmfpga.hw.plan_ddr import RTL_RESIDENCIES

    rng = np.random.default_rng()
    board = get_board(str(rng.choice(BOARD_KEYS)))
    units, layers = [(1024, 2), (2048, 1), (2048, 3)][int(rng.integers(3))]
    template = shape_config(input_size=2048, hidden_size=units, num_layers=layers, weight_bits=4)
    plan = make_plan(template, board, timesteps=16, residency="rtl")
    assert plan.residency in RTL_RESIDENCIES and "the RTL builds it" in plan.report()
    small = shape_config(input_size=30, hidden_size=8, num_layers=1, weight_bits=4)
    assert make_plan(small, board, residency="rtl", compare=False).residency == "chip"


def test_rank_throughput_takes_the_residency_that_moves_the_most_sequences(stand_in_fits, capsys):
    """``rank="throughput"``: of the DDR residencies' plans (each planned alone is the reference)
    the one with the most sequences a second; ``"latency"``: the fastest sequence."""
    from lstmfpga.hw.plan import NoFitError

    rng = np.random.default_rng()
    board = get_board(str(rng.choice(BOARD_KEYS)))
    # on no board's chip, and with more than one DDR residency that fits (2048 units on the small
    # boards: `stream` only)
    shapes = [(1024, 2)] if board.key in ("pynq-z2", "ultra96") else [(1024, 2), (1024, 3), (2048, 1), (2048, 2)]
    units, layers = shapes[int(rng.integers(len(shapes)))]
    template = dataclasses.replace(shape_config(input_size=2048, hidden_size=units, num_layers=layers, weight_bits=4),
                                   stream_width=board.hp_width)   # as `plan` streams
    alone = []
    for residency in ("wx", "all", "stream"):
        try:
            alone.append(make_plan(template, board, timesteps=16, residency=residency))
        except NoFitError:
            pass
    assert len(alone) >= 2
    by_latency = make_plan(template, board, timesteps=16)
    by_throughput = make_plan(template, board, timesteps=16, rank="throughput")
    assert by_latency.us_per_sequence == min(p.us_per_sequence for p in alone)
    assert by_throughput.sequences_per_s == max(p.sequences_per_s for p in alone)
    assert by_throughput.sequences_per_s >= by_latency.sequences_per_s
    assert by_throughput.us_per_sequence >= by_latency.us_per_sequence
    with pytest.raises(ConfigError, match=r"rank must be one of latency, throughput, not 'fast'"):
        make_plan(template, board, rank="fast")
    shape = f"2048,{units},{layers},4"
    assert main(["plan", "--shape", shape, "--board", board.key, "--rank", "throughput"]) == 0
    assert f"batch B={by_throughput.batch}: {by_throughput.sequences_per_s:,.0f} sequences/s" in capsys.readouterr().out


def test_cli_plans_weights_in_ddr(stand_in_fits, capsys):
    assert main(["plan", "--shape", "2048,2048,3,4", "--board", "pynq-z2"]) == 0
    out = capsys.readouterr().out
    assert "weights: every weight row streamed from DDR" in out and "PYNQ-Z2 PS port 64-bit" in out
    assert main(["plan", "--shape", "2048,2048,3,4", "--board", "pynq-z2", "--ddr-gbps", "0.4",
                 "--residency", "stream", "--batch", "1"]) == 0
    out = capsys.readouterr().out
    assert "0.40 GB/s sustained: the DDR rate given" in out and "batch B=1" in out
    assert main(["plan", "--shape", "64,8,1,4", "--board", "kv260", "--batch", "many"]) == 2
    assert "--batch must be an integer or auto, not 'many'" in capsys.readouterr().err
    assert main(["plan", "--sweep-seed", "--board", "kv260", "--batch", "2"]) == 2
    assert "--batch sets one plan's batch; --sweep-seed picks each shape's own" in capsys.readouterr().err


def test_binding_limit_names_the_port_or_both_phases():
    """A DDR-bound plan near its bandwidth bound is bound by the port; one further off is bound by
    its phases in turn (an input pass on the MACs, a recurrence on the port)."""
    from lstmfpga.hw.ddr_schedule import DdrEstimate, DdrPort
    from lstmfpga.hw.plan import Plan
    from lstmfpga.hw.plan_sweep import DDR_BOUND_SHARE, binding_limit

    rng = np.random.default_rng()
    config = shape_config(input_size=64, hidden_size=16, num_layers=1, weight_bits=4)
    port = DdrPort(data_width=int(rng.choice([64, 128])))
    compute = int(rng.integers(10_000, 100_000))
    for share in (float(rng.uniform(DDR_BOUND_SHARE, 1.0)), float(rng.uniform(0.5, DDR_BOUND_SHARE - 0.01))):
        ideal = share * compute * float(rng.uniform(0.3, 0.99))           # below the bound: DDR-bound
        phases = float(rng.uniform(max(share, ideal / compute), 1.0)) * compute
        cycles = DdrEstimate("all", 2, 16, compute, compute + 100, ideal, int(share * compute * port.beat_bytes),
                             share * compute, phases)
        plan = Plan(config, get_board("kv260"), 200.0, 16, cycles, None, residency="all", batch=2, port=port)
        label = binding_limit(plan)
        if share >= DDR_BOUND_SHARE:
            assert label == f"DDR bandwidth ({port.data_width}-bit port; {share:.0%} of its bound)"
        else:
            assert label == (f"DDR bandwidth and MAC lanes by phase ({port.data_width}-bit port; {phases / compute:.0%} "
                             f"of the phases' bound, {share:.0%} of the DDR bound, {ideal / compute:.0%} of the MAC bound)")
