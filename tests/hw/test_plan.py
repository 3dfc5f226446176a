"""Board planning without Yosys: lane candidates, the no-fit error, the CLI, and the choice of
lanes/mode/column sets against a brute-force search (the logic fit is a stated stand-in here; the Yosys-backed
path is tested in test_plan_yosys.py)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

pytest.importorskip("amaranth")

from lstmfpga.foundation.errors import ConfigError  # noqa: E402
from lstmfpga.cli.main import main  # noqa: E402
from lstmfpga.hw import plan as plan_mod  # noqa: E402
from lstmfpga.hw.boards import BOARDS, get_board  # noqa: E402
from lstmfpga.hw.cycle_model import estimate as cycle_estimate  # noqa: E402
from lstmfpga.hw.ddr_schedule import estimate_ddr  # noqa: E402
from lstmfpga.hw.plan import (MAX_LANES, NoFitError, candidate_lanes, make_plan, packed_macs_per_dsp,  # noqa: E402
                             parse_shape, shape_config)
from lstmfpga.hw.resources import estimate_resources  # noqa: E402
from plan_standins import stand_in_fit, stand_in_fits  # noqa: E402,F401


def test_parse_shape():
    assert parse_shape("2048, 512,1,4") == dict(input_size=2048, hidden_size=512, num_layers=1, weight_bits=4)
    with pytest.raises(ConfigError, match=r"--shape must be I,H,L,WBITS \(four integers\), not '1,2'"):
        parse_shape("1,2")
    with pytest.raises(ConfigError, match=r"--shape hidden_size must be an integer, not 'x'"):
        parse_shape("3,x,1,4")


@pytest.mark.parametrize("hidden", [1, 3, 17, 100, 1100])
def test_candidate_lanes_cover_every_lane_count_fastest_first(hidden):
    """One lane per gate row at most (4H rows), and no more than MAX_LANES."""
    config = shape_config(input_size=7, hidden_size=hidden, num_layers=2, weight_bits=4)
    candidates = candidate_lanes(config, 5)
    assert sorted(candidates) == list(range(4, min(4 * hidden, MAX_LANES) + 1, 4))
    cycles = [cycle_estimate(dataclasses.replace(config, lanes=p), 5).compute_cycles for p in candidates]
    assert cycles == sorted(cycles)


def _brute_force(template, board, mode, fit):
    """Among every multiple of 4S up to 4HS that fits on one weight-memory read port or, on a board
    with UltraRAM, two: the fewest lanes within 1 % of the fastest."""
    fitting = []
    S = fit.column_sets
    for lanes in range(4 * S, min(4 * S * template.hidden_size, MAX_LANES) + 1, 4 * S):
        for ports in (1, 2) if board.uram else (1,):
            config = dataclasses.replace(template, mode=mode, lanes=lanes, macs_per_dsp=fit.macs_per_dsp,
                                         column_sets=S, weight_ports=ports)
            est = estimate_resources(config, fit, bram36_budget=board.bram36 - 2, uram_budget=board.uram)
            totals = est.totals
            if (totals["lut"] + 4000 <= 0.85 * board.lut and totals["ff"] + 6000 <= 0.85 * board.ff
                    and totals["dsp"] <= board.dsp and totals["bram36"] + 2 <= board.bram36
                    and totals["uram"] <= board.uram):
                fitting.append((cycle_estimate(config, 16).compute_cycles, lanes))
                break
    fastest = min(c for c, _ in fitting)
    # within 1 % of the fastest, the fewest lanes
    return min((lanes, c) for c, lanes in fitting if c <= fastest * 1.01)[::-1]


@pytest.mark.slow
@pytest.mark.parametrize("board_key,shape,mode,slopes,k", [
    # awkward small shape, DSP-bound: 27 + 10·ceil(P/2) <= 360 allows P <= 66 (6-bit x 8-bit: 2 per DSP)
    ("ultra96", (40, 22, 2, 6), "full", {"dsp": (27, 10.0)}, "auto"),
    # the same without packing: 27 + 10·P <= 360 allows P <= 33
    ("ultra96", (40, 22, 2, 6), "full", {"dsp": (27, 10.0)}, 1),
    # LUT-bound: 5000 + 1500·P + 4000 <= 0.85·117120 allows P <= 60
    ("kv260", (300, 26, 1, 4), "split", {"lut": (5_000, 1_500.0)}, "auto"),
])
def test_choice_matches_brute_force(stand_in_fits, board_key, shape, mode, slopes, k):
    stand_in_fits.slopes.update(slopes)
    board = get_board(board_key)
    template = shape_config(input_size=shape[0], hidden_size=shape[1], num_layers=shape[2],
                            weight_bits=shape[3])
    plan = make_plan(template, board, mode=mode, timesteps=16, macs_per_dsp=k, column_sets=1)
    expected_k = packed_macs_per_dsp(template, board) if k == "auto" else k
    assert expected_k == (2 if k == "auto" else 1) == plan.config.macs_per_dsp
    cycles, lanes = _brute_force(template, board, mode,
                                 stand_in_fit(mode, board.family, macs_per_dsp=expected_k, **slopes))
    assert lanes < 4 * template.hidden_size          # the budget, not the shape, limits P
    assert (plan.cycles.compute_cycles, plan.lanes) == (cycles, lanes)
    assert plan.mode == mode and list(stand_in_fits) == [(mode, board.family)]
    for key, used in plan.used.items():
        assert used <= plan.check.limit[key] <= board.budget()[key]
    assert plan.us_per_step == pytest.approx(cycles / 16 / board.clock_mhz)


@pytest.mark.parametrize("seed", range(4))
def test_column_sets_beyond_four_h_rows(stand_in_fits, seed):
    """A short-row model on a board with DSPs for more lanes than it has gate rows: auto column
    sets ranks every S on memory and multipliers alone and fits them in that order; its plan is
    the brute-force search's for its S, no S it fitted is faster by more than 1 %, none it left
    could be (its bound with the fit's constant DSPs reserved), and it beats S = 1 wherever lanes
    past 4H help."""
    rng = np.random.default_rng(seed)
    board = get_board(str(rng.choice(["zcu104", "kv260"])))
    template = dataclasses.replace(
        shape_config(input_size=int(rng.integers(300, 2100)), hidden_size=int(rng.integers(20, 120)),
                     num_layers=int(rng.integers(1, 3)), weight_bits=4), stream_width=128)
    plan = make_plan(template, board, mode="full", timesteps=16)
    S = plan.config.column_sets
    assert S > 1 and plan.lanes > 4 * template.hidden_size and plan.lanes % (4 * S) == 0
    sized = [call[2] if len(call) == 3 else 1 for call in stand_in_fits]
    assert len(set(sized)) == len(sized) <= plan_mod.MAX_SET_FITS and S in sized
    k = plan.config.macs_per_dsp
    best = {s: _brute_force(template, board, "full", stand_in_fit("full", board.family, macs_per_dsp=k, column_sets=s))
            for s in {*sized, 1}}
    cycles = plan.cycles.compute_cycles
    assert (cycles, plan.lanes) == best[S]
    assert all(cycles <= best[s][0] * 1.01 for s in sized)
    if len(sized) < plan_mod.MAX_SET_FITS:
        settled = plan_mod._settings(template, board, None, 16, "auto", "auto", 1)[1]
        bounds = plan_mod._set_bounds(settled, "full", "auto", board, 16, dsp_reserve=27)
        assert all(bounds[s] * 1.01 >= cycles for s in bounds if s not in sized)
    assert best[S][0] * 1.01 < best[1][0]
    assert f"column_sets S={S}" in plan.report()


def test_sample_lanes_for_column_sets_are_distinct_multiples_of_4s():
    """The proxies' lane counts for S sets: two or more distinct multiples of 4S, growing with the
    given ones, the given ones themselves at S = 1 (their Yosys results stay cached)."""
    from lstmfpga.hw.plan import sample_lanes_for

    rng = np.random.default_rng()
    for _ in range(200):
        given = tuple(sorted({4 * int(p) for p in rng.integers(1, 40, size=int(rng.integers(2, 5)))}))
        if len(given) < 2:
            continue
        assert sample_lanes_for(given, 1) == given
        for S in (2, 4, 8, 16):
            lanes = sample_lanes_for(given, S)
            assert len(lanes) == len(given) and list(lanes) == sorted(set(lanes))
            assert all(p % (4 * S) == 0 and p >= 4 * S for p in lanes)
    assert sample_lanes_for((4, 8), 4) == (16, 32) and sample_lanes_for((8, 16), 16) == (64, 128)


@pytest.mark.parametrize("seed", range(3))
def test_two_tail_units_shorten_tail_bound_steps(stand_in_fits, seed):
    """Split mode with short rows is bound by the tail's units a cycle: two tail units plan lanes
    in multiples of 8S (an even number of units a group), never S = 1, and a faster step; the
    sample lanes of their proxies are multiples of 8S too (the stand-in fit checks)."""
    rng = np.random.default_rng(seed)
    board = get_board(str(rng.choice(["zcu104", "kv260"])))
    template = shape_config(input_size=int(rng.integers(64, 600)), hidden_size=int(rng.integers(40, 200)),
                            num_layers=1, weight_bits=4)
    one = make_plan(template, board, mode="split", timesteps=8)
    sized = len(stand_in_fits)
    two = make_plan(template, board, mode="split", timesteps=8, tail_units=2)
    S = two.config.column_sets
    assert two.config.tail_units == 2 and S > 1 and two.lanes % (8 * S) == 0
    assert two.cycles.compute_cycles < one.cycles.compute_cycles
    assert stand_in_fits[sized:] and all(len(call) == 3 for call in stand_in_fits[sized:])   # S > 1 only
    with pytest.raises(ConfigError, match=r"tail_units 2 needs column_sets of at least 2"):
        make_plan(template, board, mode="split", column_sets=1, tail_units=2)


def test_fixed_column_sets_are_checked(stand_in_fits):
    template = shape_config(input_size=64, hidden_size=8, num_layers=1, weight_bits=4)
    assert make_plan(template, get_board("kv260"), mode="split", column_sets=4).config.column_sets == 4
    # mode auto with fixed sets: the split comparison is sized with those sets too
    plan = make_plan(template, get_board("zcu104"), column_sets=2)
    assert plan.mode == "full" and plan.config.column_sets == 2
    assert plan.alternative.startswith("split mode would fit with P=")
    with pytest.raises(ConfigError, match=r"column_sets 8 needs a stream of at least 64 bits in full mode"):
        make_plan(template, get_board("kv260"), mode="full", column_sets=8)
    with pytest.raises(ConfigError, match=r"column_sets must be an integer in \[1, 16\], not 17"):
        make_plan(template, get_board("kv260"), column_sets=17)


def test_auto_prefers_full_and_reports_split_for_comparison(stand_in_fits):
    board = get_board("zcu104")
    template = shape_config(input_size=20, hidden_size=12, num_layers=1, weight_bits=4)
    plan = make_plan(template, board, timesteps=8, column_sets=1)
    assert plan.mode == "full"
    assert plan.alternative.startswith("split mode would fit with P=")
    assert stand_in_fits == [("full", "xcup"), ("split", "xcup")]
    report = plan.report()
    for text in ("full mode", "µs per timestep", "BRAM36", "URAM", "extrapolated", "shell reserve"):
        assert text in report


def test_nothing_fits_names_the_binding_resource_without_synthesis(stand_in_fits):
    template = shape_config(input_size=2048, hidden_size=2048, num_layers=3, weight_bits=4)
    with pytest.raises(NoFitError) as info:
        make_plan(template, get_board("pynq-z2"), residency="chip")
    message = str(info.value)
    assert "nothing fits PYNQ-Z2" in message and "4.9 Mib on chip" in message
    assert "binding resource: BRAM36 (on-chip memory) in full and split mode" in message
    assert "layer 0 W_x 64.0 + W_h 64.0 Mib" in message          # 4·2048·2048·4 bits = 64 Mib
    assert stand_in_fits == []                                   # decided on memory alone


def test_bad_arguments(stand_in_fits):
    template = shape_config(input_size=8, hidden_size=8, num_layers=1, weight_bits=4)
    board = get_board("kv260")
    with pytest.raises(ConfigError, match=r"mode must be one of full, split, auto, not 'both'"):
        make_plan(template, board, mode="both")
    with pytest.raises(ConfigError, match=r"clock_mhz must be in \(0, 1000\], not -5"):
        make_plan(template, board, clock_mhz=-5)
    with pytest.raises(ConfigError, match=r"timesteps must be an integer in \[1, 24\], not 25"):
        make_plan(template, board, timesteps=25)


def test_packing_is_the_most_the_widths_allow_on_the_board_and_can_be_fixed(stand_in_fits):
    template = shape_config(input_size=8, hidden_size=8, num_layers=1, weight_bits=4)
    assert packed_macs_per_dsp(template, get_board("kv260")) == 2                    # DSP48E2, 4x8 bits
    narrow = dataclasses.replace(template, io_bits=4)
    assert packed_macs_per_dsp(narrow, get_board("kv260")) == 3
    assert packed_macs_per_dsp(dataclasses.replace(narrow, weight_bits=2), get_board("pynq-z2")) == 4  # DSP48E1
    assert packed_macs_per_dsp(dataclasses.replace(narrow, weight_bits=2), get_board("kv260")) == 5    # DSP48E2
    assert make_plan(template, get_board("kv260"), macs_per_dsp=1).config.macs_per_dsp == 1
    with pytest.raises(ConfigError, match=r"macs_per_dsp must be in \[1, 2\] for 4-bit weights and 8-bit"):
        make_plan(template, get_board("kv260"), macs_per_dsp=3)
    with pytest.raises(ConfigError, match="macs_per_dsp must be an integer, not 'two'"):
        make_plan(template, get_board("kv260"), macs_per_dsp="two")


def test_cli_no_fit_exits_2_with_a_message(capsys):
    assert main(["plan", "--shape", "2048,2048,3,4", "--board", "pynq-z2", "--residency", "chip"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: nothing fits PYNQ-Z2") and "binding resource: BRAM36" in err


def test_cli_rejects_bad_shape_and_missing_model(capsys, tmp_path):
    assert main(["plan", "--shape", "2048,512", "--board", "kv260"]) == 2
    assert "--shape must be I,H,L,WBITS" in capsys.readouterr().err
    assert main(["plan", "--model", str(tmp_path / "none.npz"), "--board", "kv260"]) == 2
    assert "none.npz" in capsys.readouterr().err
    assert main(["plan", "--shape", "64,16,1,4", "--board", "kv260", "--sample-lanes", "8;16"]) == 2
    assert "--sample-lanes must be comma-separated integers, not '8;16'" in capsys.readouterr().err
    assert main(["plan", "--shape", "64,16,1,4", "--board", "kv260", "--macs-per-dsp", "most"]) == 2
    assert "--macs-per-dsp must be an integer or auto, not 'most'" in capsys.readouterr().err


def test_cli_plans_an_artifact(stand_in_fits, tmp_path, capsys):
    from lstmfpga.sim.golden.random_artifact import random_artifact

    path = tmp_path / "model.npz"
    random_artifact(input_size=20, hidden_size=12, num_layers=2, num_classes=2, weight_bits=5, seed=3).save(path)
    assert main(["plan", "--model", str(path), "--board", "kv260", "--mode", "split",
                 "--clock-mhz", "150", "--timesteps", "7", "--cache-dir", str(tmp_path / "c")]) == 0
    out = capsys.readouterr().out
    assert "model I=20 H=12 L=2 weight_bits=5 classes=2" in out
    assert "board KV260 (xck26, xcup) at 150 MHz" in out and "split mode" in out
    assert list(stand_in_fits) == [("split", "xcup")]


def test_sample_lanes_are_checked_before_any_synthesis():
    from lstmfpga.hw.resources import fit_logic

    template = shape_config(input_size=8, hidden_size=8, num_layers=1, weight_bits=4)
    with pytest.raises(ConfigError, match=r"sample_lanes needs at least two different lane counts, not \(8, 8\)"):
        fit_logic(template, family="xcup", sample_lanes=(8, 8))
    with pytest.raises(ConfigError, match=r"sample_lanes must be positive multiples of 4, not 6"):
        fit_logic(template, family="xcup", sample_lanes=(6, 8))


def test_dsp_bound_fraction_counts_every_mac_of_the_model(stand_in_fits):
    """MACs per cycle against the board's DSP-bound limit, from the LSTM's own MAC count."""
    import numpy as np

    from lstmfpga.hw.boards import BOARD_KEYS

    rng = np.random.default_rng()
    for _ in range(4):
        I, H, L = int(rng.integers(1, 90)), int(rng.integers(1, 30)), int(rng.integers(1, 4))
        wb, T = int(rng.integers(2, 9)), int(rng.integers(1, 25))
        mode = str(rng.choice(["full", "split"]))
        board = get_board(str(rng.choice(BOARD_KEYS)))
        plan = make_plan(shape_config(input_size=I, hidden_size=H, num_layers=L, weight_bits=wb),
                         board, mode=mode, timesteps=T, compare=False)
        # per step: 4H gate rows × (layer input on chip + H recurrent columns)
        macs = T * sum(4 * H * ((0 if mode == "split" else I) if layer == 0 else H) + 4 * H * H
                       for layer in range(L))
        assert plan.macs_per_cycle == pytest.approx(macs / plan.cycles.compute_cycles)
        assert plan.dsp_bound_fraction(1) == pytest.approx(macs / plan.cycles.compute_cycles / board.dsp)
        packed, name = plan.packed_macs_per_dsp()
        assert plan.config.macs_per_dsp == packed >= 2          # the plan packs as far as the widths allow
        assert plan.dsp_bound_fraction() == plan.dsp_bound_fraction(packed) == \
            pytest.approx(plan.dsp_bound_fraction(1) / packed)
        assert (f"{plan.dsp_bound_fraction(1):.1%} of {board.dsp:,} DSPs × 1 MAC, "
                f"{plan.dsp_bound_fraction():.1%} of {board.dsp:,} × {packed} (this core)") in plan.report()
        S = plan.config.column_sets    # each set packs its own P/S rows
        assert f"macs_per_dsp k={packed}, column_sets S={S} ({S * -(-plan.lanes // S // packed)} multipliers" \
            in plan.report()
        assert name in plan.report()


def test_packed_rows_are_laid_out_for_the_boards_own_dsp(stand_in_fits):
    """A DSP48E2 packing's operand overflows a DSP48E1's 25-bit port (synthesis then splits each
    product over two, and packing saves nothing): a 7-series plan packs for its DSP48E1, shorter
    runs and all, and says how to build it."""
    from lstmfpga.foundation.hw.packed_mac_model import DSP_SHAPES, max_macs_per_dsp

    rng = np.random.default_rng()
    wb, io = int(rng.integers(2, 9)), int(rng.choice([4, 6, 8]))
    template = dataclasses.replace(shape_config(input_size=int(rng.integers(8, 90)),
                                                hidden_size=int(rng.integers(4, 30)), num_layers=1, weight_bits=wb),
                                   io_bits=io)
    for board in BOARDS.values():
        key = board.key
        plan = make_plan(template, board, compare=False)
        c = plan.config
        dsp = DSP_SHAPES[c.packing_dsp]
        assert c.packing_dsp == ("DSP48E1" if board.family == "xc7" else "DSP48E2"), key
        assert c.macs_per_dsp == max_macs_per_dsp(weight_bits=wb, act_bits=io, dsp=dsp)
        assert ("laid out for a DSP48E1 (`lstmfpga hdl --packing-dsp DSP48E1`)" in plan.report()) == \
            (board.family == "xc7")


def test_study_widths_pack_two_rows_per_ultrascale_dsp_and_the_clock_is_called_an_assumption(stand_in_fits):
    plan = make_plan(shape_config(input_size=64, hidden_size=16, num_layers=1, weight_bits=4), get_board("kv260"))
    assert plan.packed_macs_per_dsp() == (2, "DSP48E2")
    assert "200 MHz is the board's assumed fabric clock, not a timing result" in plan.report()
    other = make_plan(shape_config(input_size=64, hidden_size=16, num_layers=1, weight_bits=4), get_board("kv260"),
                      clock_mhz=150)
    assert "assumed fabric clock" not in other.report()


def test_sweep_seed_plans_the_study_grid_and_times_every_sequence_length(stand_in_fits, capsys):
    """Every units × layers shape of the seed space: the plan make_plan picks (by a drawn rank),
    timed by the cycle model at T=8/16/24, and what binds it (a resource, P = 4H, or the reason
    nothing fits)."""
    import numpy as np

    from lstmfpga.hw.boards import BOARD_KEYS
    from lstmfpga.hw.plan_sweep import sweep, sweep_table

    rng = np.random.default_rng()
    board = get_board(str(rng.choice(BOARD_KEYS)))
    wb = int(rng.integers(2, 9))
    units, layers = sorted(rng.choice([8, 12, 64, 512, 1024], size=2, replace=False)), [1, int(rng.integers(2, 4))]
    rank = str(rng.choice(["latency", "throughput"]))
    rows = sweep(board, units=units, layers=layers, timesteps=(24, 8, 16), input_size=int(rng.integers(30, 2049)),
                 weight_bits=wb, rank=rank)
    assert [(r.units, r.layers) for r in rows] == [(h, n) for h in units for n in layers]
    for row in rows:
        assert row.timesteps == (8, 16, 24)
        if row.plan is None:
            assert "on-chip memory" in row.binding or "DSP" in row.binding or "LUT" in row.binding
            continue
        again = make_plan(row.plan.config, board, timesteps=16, compare=False, rank=rank)
        assert (again.lanes, again.mode, again.config.column_sets, again.residency, again.batch) == \
            (row.plan.lanes, row.plan.mode, row.plan.config.column_sets, row.plan.residency, row.plan.batch)
        for t in (8, 16, 24):
            if row.plan.residency == "chip":
                cycles = cycle_estimate(row.plan.config, t).run_cycles
            else:
                cycles = estimate_ddr(row.plan.config, t, residency=row.plan.residency, batch=row.plan.batch,
                                      port=row.plan.port).run_cycles
            assert row.us_per_sequence[t] == pytest.approx(cycles / board.clock_mhz)
            assert row.sequences_per_s[t] == pytest.approx(row.plan.batch * 1e6 * board.clock_mhz / cycles)
        S = row.plan.config.column_sets
        if row.plan.residency != "chip" and row.plan.cycles.ddr_bound:
            assert row.binding.startswith("DDR bandwidth")
        elif row.plan.lanes == min(4 * row.units * S, MAX_LANES // (4 * S) * 4 * S):
            assert row.binding.startswith("lanes (P = 4H·S")
        else:
            assert row.binding.split()[0] in ("LUT", "FF", "DSP", "BRAM36", "URAM")
    table = sweep_table(board, rows).splitlines()
    assert table[0].startswith(f"{board.name} ({board.device}) at {board.clock_mhz:g} MHz")
    assert "µs/seq T=8" in table[1] and "seq/s T=16" in table[1] and len(table) == 3 + len(rows)


def test_cli_sweep_seed_plans_every_shape_of_the_study_on_each_pynq_board(stand_in_fits, capsys):
    """All nine units × layers shapes find a plan (on chip or with weights in DDR) on a board drawn
    from PYNQ-Z2, KV260 and ZCU104."""
    board = get_board(str(np.random.default_rng().choice(["pynq-z2", "kv260", "zcu104"])))
    assert main(["plan", "--sweep-seed", "--board", board.key]) == 0
    out = capsys.readouterr().out
    lines = [line.split() for line in out.splitlines() if line[:4].strip() in ("512", "1024", "2048")]
    assert [(int(c[0]), int(c[1])) for c in lines] == [(h, n) for h in (512, 1024, 2048) for n in (1, 2, 3)]
    assert all(c[2] == "full" or c[2] == "split" for c in lines), out          # no "—": every shape planned
    assert all(c[3] in ("chip", "wx", "all", "stream") for c in lines)
    assert f"{board.name} ({board.device}) at {board.clock_mhz:g} MHz" in out
    assert main(["plan", "--sweep-seed", "--board", "zcu104", "--weight-bits", "9"]) == 2
    assert "--weight-bits must be" in capsys.readouterr().err


def test_dsp_line_is_fitted_in_multipliers_and_must_match_the_packing():
    from lstmfpga.hw.resources import fit_lines
    from lstmfpga.hw.yosys_synth import ResourceCount

    # lanes not a multiple of k: the last unit is partly empty but still one DSP
    samples = [(p, ResourceCount(lut=100 + 10 * p, ff=50 + 20 * p, dsp=27 + -(-p // 3))) for p in (8, 16, 20)]
    coefficients, residuals = fit_lines(samples, macs_per_dsp=3)
    assert coefficients["dsp"] == pytest.approx((27, 1)) and residuals["dsp"] == pytest.approx(0, abs=1e-9)
    assert coefficients["lut"] == pytest.approx((100, 10))
    fit = stand_in_fit("full", "xcup", macs_per_dsp=3, dsp=coefficients["dsp"])
    assert fit.logic_at(100)["dsp"] == 27 + 34
    assert "DSP 27 + 1.00·ceil(P/3)" in fit.describe()
    with pytest.raises(ConfigError, match=r"sample lanes \[4, 8\] give one multiplier count 1 at macs_per_dsp 8"):
        fit_lines([(4, samples[0][1]), (8, samples[1][1])], macs_per_dsp=8)
    config = shape_config(input_size=8, hidden_size=8, num_layers=1, weight_bits=4)
    with pytest.raises(ConfigError, match="the logic fit is for macs_per_dsp 3, the configuration has 1"):
        estimate_resources(config, fit)


def test_report_says_when_packed_rows_outrun_the_proxies(stand_in_fits):
    from lstmfpga.hw.resources import LogicSample
    from lstmfpga.hw.yosys_synth import ResourceCount

    plan = make_plan(shape_config(input_size=2048, hidden_size=64, num_layers=1, weight_bits=4), get_board("zcu104"),
                     compare=False, column_sets=1)
    assert plan.config.macs_per_dsp == 2 and "outrun" not in plan.report()     # a stand-in fit has no proxies
    sample = LogicSample(8, 32, 16, ResourceCount(), 0.0, 0, 0.0, True)
    with_proxies = dataclasses.replace(plan.check.estimate.fit, samples=(sample,))
    check = dataclasses.replace(plan.check, estimate=dataclasses.replace(plan.check.estimate, fit=with_proxies))
    report = dataclasses.replace(plan, check=check).report()
    assert "rows of 2112 columns outrun the packing's 2047-product DSP run, the proxies' 48 do not" in report
    short = dataclasses.replace(plan, config=dataclasses.replace(plan.config, input_size=1000), check=check)
    assert "outrun" not in short.report()


def test_cli_plans_at_the_stream_width_given(stand_in_fits, capsys):
    """``--stream-width``: the plan's sequence time is the cycle model's RUN_CYCLES at that width
    (fewer input beats than at 32 bits), and the report names the width."""
    import random
    import re

    from lstmfpga.foundation.hw.config import STREAM_WIDTHS
    from lstmfpga.hw.cycle_model import estimate

    rng = random.Random(5)
    i, h, t = rng.randint(40, 300), rng.randint(8, 40), rng.randint(2, 24)
    width = rng.choice([w for w in STREAM_WIDTHS if w > 32])
    times = {}
    for w in (32, width):
        assert main(["plan", "--shape", f"{i},{h},1,4", "--board", "kv260", "--mode", "full", "--no-compare",
                     "--timesteps", str(t), "--stream-width", str(w)]) == 0
        out = capsys.readouterr().out
        assert f"input and output streams of {w} bits included" in out
        times[w] = float(re.search(r"([\d.]+) µs per sequence", out).group(1))
        lanes = int(re.search(r"P=(\d+) MAC lanes", out).group(1))
        k = int(re.search(r"macs_per_dsp k=(\d+)", out).group(1))
        sets = int(re.search(r"column_sets S=(\d+)", out).group(1))
        config = dataclasses.replace(shape_config(input_size=i, hidden_size=h, num_layers=1, weight_bits=4),
                                     lanes=lanes, macs_per_dsp=k, column_sets=sets, stream_width=w)
        assert times[w] == pytest.approx(estimate(config, t).run_cycles / 200.0, abs=0.05)
    # a wider stream allows more column sets; the streams themselves overlap the computation
    assert times[width] <= times[32]
    with pytest.raises(SystemExit) as exited:
        main(["plan", "--shape", "64,16,1,4", "--board", "kv260", "--stream-width", "48"])
    assert exited.value.code == 2 and "invalid choice: 48" in capsys.readouterr().err


def test_cli_streams_as_wide_as_the_boards_hp_ports_by_default(stand_in_fits, capsys):
    """Without ``--stream-width`` a plan's core streams at its board's HP port width (64 bits on
    the Zynq-7000 PYNQ-Z2, 128 on the UltraScale+ boards), and its time is that core's RUN_CYCLES."""
    import re

    from lstmfpga.hw.cycle_model import estimate

    rng = np.random.default_rng()
    board = get_board(str(rng.choice(list(BOARDS))))
    i, h, t = int(rng.integers(40, 300)), int(rng.integers(8, 40)), int(rng.integers(2, 25))
    assert main(["plan", "--shape", f"{i},{h},1,4", "--board", board.key, "--mode", "full", "--no-compare",
                 "--residency", "chip", "--timesteps", str(t)]) == 0
    out = capsys.readouterr().out
    assert f"input and output streams of {board.hp_width} bits included" in out
    lanes = int(re.search(r"P=(\d+) MAC lanes", out).group(1))
    k = int(re.search(r"macs_per_dsp k=(\d+)", out).group(1))
    sets = int(re.search(r"column_sets S=(\d+)", out).group(1))
    config = dataclasses.replace(shape_config(input_size=i, hidden_size=h, num_layers=1, weight_bits=4),
                                 lanes=lanes, macs_per_dsp=k, column_sets=sets, stream_width=board.hp_width)
    us = float(re.search(r"([\d.]+) µs per sequence", out).group(1))
    assert us == pytest.approx(estimate(config, t).run_cycles / board.clock_mhz, abs=0.05)


def test_a_weight_memory_too_wide_for_one_port_moves_to_two(stand_in_fits):
    """The base model in full mode on a ZCU104 with logic to spare: one read port of UltraRAM and
    block RAM cannot feed the lanes the DSPs allow; the plan reads the rows' halves through both
    ports, with more lanes and fewer cycles than any single-port fit, and its URAM tiles count
    half rows."""
    from lstmfpga.hw.memory_map import uram_tiles

    stand_in_fits.slopes.update({"lut": (5_000, 20.0), "ff": (4_000, 40.0)})
    board = get_board("zcu104")
    template = shape_config(input_size=2048, hidden_size=512, num_layers=1, weight_bits=4)
    template = dataclasses.replace(template, stream_width=128)
    plan = make_plan(template, board, mode="full", column_sets=16, compare=False)
    assert plan.config.weight_ports == 2 and "weight memory on two read ports" in plan.report()
    fit = stand_in_fit("full", "xcup", macs_per_dsp=2, column_sets=plan.config.column_sets, **stand_in_fits.slopes)
    single = None   # the fastest fit on one port: (cycles, lanes)
    for lanes in candidate_lanes(plan.config, 16):
        check = plan_mod._check(dataclasses.replace(plan.config, lanes=lanes, weight_ports=1), fit, board)
        if check.fits and (single is None or cycle_estimate(check.config, 16).compute_cycles < single[0]):
            single = (cycle_estimate(check.config, 16).compute_cycles, lanes)
    assert single is not None and single[1] < plan.lanes
    assert plan.cycles.compute_cycles < single[0]
    assert not plan_mod._check(dataclasses.replace(plan.config, weight_ports=1), fit, board).fits
    weights = next(t for t in plan.check.estimate.memories if "weight_mem" in t.memory.name)
    assert weights.memory.read_ports == 2 and weights.memory.width == 2 * plan.lanes
    assert 0 < weights.uram <= uram_tiles(weights.memory.depth, weights.memory.width) <= board.uram


def test_a_weight_memory_deeper_than_half_an_ultraram_is_folded_in_part(stand_in_fits):
    """The base model in full mode on a KV260 with logic to spare: at the lanes the DSPs allow the
    weight memory is 2,048-4,096 rows deep, so folded whole it needs two UltraRAMs per 144 bits,
    half empty.  The plan folds the first 2,048 rows of the lanes the UltraRAMs hold and leaves the
    rest to one-port memories: more lanes and fewer cycles than any fit on one port or folded whole,
    the folded bank in UltraRAM, every bank's bits those of the rows."""
    from lstmfpga.hw.memory_map import URAM_DEPTH, URAM_WIDTH

    stand_in_fits.slopes.update({"lut": (5_000, 20.0), "ff": (4_000, 40.0)})
    board = get_board("kv260")
    template = dataclasses.replace(shape_config(input_size=2048, hidden_size=512, num_layers=1, weight_bits=4),
                                   stream_width=128)
    plan = make_plan(template, board, mode="full", column_sets=13, compare=False)
    c = plan.config
    assert c.weight_ports == 2 and c.fold_rows == URAM_DEPTH // 2 and 0 <= c.fold_lanes < c.lanes
    assert URAM_DEPTH // 2 < c.weight_memory_rows <= URAM_DEPTH
    assert "weight memory folded" in plan.report()
    fit = stand_in_fit("full", "xcup", macs_per_dsp=2, column_sets=c.column_sets, **stand_in_fits.slopes)
    unfolded = dataclasses.replace(c, fold_lanes=0, fold_rows=0)
    for lanes in candidate_lanes(c, 16):   # nothing faster fits without the fold
        if cycle_estimate(dataclasses.replace(c, lanes=lanes), 16).compute_cycles < plan.cycles.compute_cycles:
            for ports in (1, 2):
                assert not plan_mod._check(dataclasses.replace(unfolded, lanes=lanes, weight_ports=ports),
                                           fit, board).fits
    assert not plan_mod._check(unfolded, fit, board).fits
    banks = {t.memory.name.rsplit("/", 1)[-1]: t for t in plan.check.estimate.memories if "weight_mem" in t.memory.name}
    assert set(banks) == {"mem", "upper_rows"} | ({"one_port_lanes"} if c.fold_lanes else set())
    assert banks["mem"].uram == -(-(c.fold_lanes or c.lanes) * c.weight_bits // (2 * URAM_WIDTH))
    assert banks["mem"].bram36 == 0
    row_bits = sum(t.memory.width * (2 if t.memory.read_ports == 2 else 1) for name, t in banks.items()
                   if name != "upper_rows")
    assert row_bits == c.lanes * c.weight_bits
    assert banks["upper_rows"].memory.depth == c.weight_memory_rows - c.fold_rows
    assert sum(t.uram for t in plan.check.estimate.memories) <= board.uram
    # a config folded at its lanes (a plan's own) plans again to the same core
    for fold_lanes in sorted({c.fold_lanes, 2 * (c.lanes // 4)}):
        folded = dataclasses.replace(c, fold_lanes=fold_lanes, lutram_upper_lanes=2)
        assert make_plan(folded, board, mode="full", column_sets=13, compare=False).config == c
