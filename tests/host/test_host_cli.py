"""The host commands end to end on loopback: infer, board-infer (file and --listen), serve-features."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from lstmfpga.cli.main import main
from lstmfpga.host.result_log import read_results
from lstmfpga.foundation.integer_lstm import quantize_input, run_integer


@pytest.fixture
def files(small_artifact, rng, tmp_path):
    small_artifact.save(tmp_path / "model.npz")
    x = rng.normal(size=(30, 4, small_artifact.input_size)).astype(np.float32)
    np.save(tmp_path / "X.npy", x)
    np.save(tmp_path / "y.npy", np.arange(30) % 2)
    return tmp_path, x


def test_infer_writes_what_golden_writes(small_artifact, files, capsys):
    from lstmfpga.foundation.integer_lstm import run_artifact

    tmp, x = files
    want = run_artifact(small_artifact, x)  # what `lstmfpga golden --out` saves
    for mode in ("full", "split"):
        assert main(["infer", "--model", str(tmp / "model.npz"), "--features", str(tmp / "X.npy"), "--labels",
                     str(tmp / "y.npy"), "--mode", mode, "--batch", "7", "--out", str(tmp / f"{mode}.npy")]) == 0
        hidden, logits = np.load(tmp / f"{mode}.npy"), np.load(tmp / f"{mode}_logits.npy")
        assert hidden.dtype == logits.dtype == np.float32
        assert np.array_equal(hidden, want.hidden) and np.array_equal(logits, want.logits)
    out = capsys.readouterr().out
    assert "accuracy" in out and "f1" in out and "sequences/s" in out


@pytest.mark.parametrize("argv,message", [
    (["--features", "missing.npy"], "features not found: missing.npy is neither a feature-cache folder nor a .npy"),
    (["--features", "X.npy", "--labels", "short.npy"], "labels must have shape (30,), got (3,)"),
    (["--features", "wide.npy"], "wide.npy: 38 features per step, the model expects 37"),
    (["--features", "X.npy", "--backend", "pynq"], "the pynq backend needs --overlay"),
    (["--features", "X.npy", "--split", "val"], "--split applies to a feature-cache folder"),
])
def test_infer_input_errors_are_named(files, capsys, monkeypatch, argv, message):
    tmp, x = files
    monkeypatch.chdir(tmp)
    np.save(tmp / "short.npy", np.zeros(3, np.int64))
    np.save(tmp / "wide.npy", np.zeros((2, 4, 38), np.float32))
    assert main(["infer", "--model", "model.npz", *argv]) == 2
    assert message in capsys.readouterr().err


def test_board_infer_golden_check_catches_a_backend_that_differs(files, capsys, monkeypatch):
    """A backend whose h codes are off by one in every 3rd sequence fails the check, naming the first."""
    from lstmfpga.host import board_command
    from lstmfpga.host.backends.golden import GoldenBackend

    class OffByOne(GoldenBackend):
        def run(self, data):
            out = super().run(data)
            out.h_codes[::3, -1, 0] += 1
            return out

    monkeypatch.setattr(board_command, "build_backend", lambda args, artifact: OffByOne(artifact=artifact, mode="full"))
    tmp, x = files
    assert main(["board-infer", "--backend", "golden", "--model", str(tmp / "model.npz"),
                 "--features", str(tmp / "X.npy"), "--check-golden", "--batch", "30"]) == 1
    assert "golden check FAILED: 10 of 30 sequences differ (first: 0)" in capsys.readouterr().err


def test_board_infer_from_file_with_golden_check(files, capsys):
    tmp, x = files
    assert main(["board-infer", "--backend", "golden", "--model", str(tmp / "model.npz"),
                 "--features", str(tmp / "X.npy"), "--check-golden"]) == 0
    out = capsys.readouterr().out
    assert "golden check: all 30 sequences bit-identical" in out and "µs/sequence" in out


def test_board_infer_needs_one_source(files, capsys):
    tmp, _ = files
    assert main(["board-infer", "--backend", "golden", "--model", str(tmp / "model.npz")]) == 2
    assert "exactly one of --features FILE and --listen" in capsys.readouterr().err


def test_stream_commands_over_loopback(small_artifact, files):
    tmp, x = files
    env = dict(os.environ, LSTMFPGA_STREAM_TOKEN="cli-token")
    board = subprocess.Popen(
        [sys.executable, "-m", "lstmfpga.host.board_infer", "--backend", "golden", "--model", str(tmp / "model.npz"),
         "--listen", "127.0.0.1:0", "--results", str(tmp / "board.jsonl"), "--check-golden", "--mode", "split"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        line = ""
        deadline = time.monotonic() + 60
        while "listening on" not in line:
            assert time.monotonic() < deadline and board.poll() is None
            line = board.stdout.readline()
        port = line.split("listening on ")[1].split()[0].rsplit(":", 1)[1]
        sender = subprocess.run(
            [sys.executable, "-m", "lstmfpga.cli.main", "serve-features", "--model", str(tmp / "model.npz"),
             "--features", str(tmp / "X.npy"), "--labels", str(tmp / "y.npy"), "--mode", "split", "--device", "cpu",
             "--board", f"127.0.0.1:{port}", "--results", str(tmp / "host.jsonl")],
            capture_output=True, text=True, env=env, timeout=120)
        assert sender.returncode == 0, sender.stderr
        assert "sent 30 sequences (0 already done, 0 rejected, 0 reconnects)" in sender.stdout
        assert "confusion" in sender.stdout
        wrong = subprocess.run(
            [sys.executable, "-m", "lstmfpga.cli.main", "serve-features", "--model", str(tmp / "model.npz"),
             "--features", str(tmp / "X.npy"), "--board", f"127.0.0.1:{port}", "--token", "nope",
             "--results", str(tmp / "other.jsonl")], capture_output=True, text=True, timeout=120)
        assert wrong.returncode == 2 and "authentication failed" in wrong.stderr
    finally:
        board.send_signal(signal.SIGINT)
        rest, _ = board.communicate(timeout=60)
    assert board.returncode == 0, rest
    assert rest.count("golden ok") == 30 and "served 30 sequences on 2 connections (0 refused), 1 rejected" in rest
    expected = run_integer(small_artifact, quantize_input(small_artifact, x)).logits
    for path in ("board.jsonl", "host.jsonl"):
        got = {int(r["video_id"]): r["logits"] for r in read_results(tmp / path)}
        assert got == {i: expected[i].tolist() for i in range(30)}


@pytest.mark.slow
def test_serve_features_extracts_videos_then_streams(tmp_path, capsys):
    pytest.importorskip("torch")
    pytest.importorskip("av")
    from lstmfpga.host.backends.golden import GoldenBackend
    from lstmfpga.host.board_handler import BackendHandler
    from lstmfpga.host.sequence_server import SequenceServer
    from lstmfpga.model.feature_cache import load_features
    from lstmfpga.model.synthetic.dataset import SynthConfig, generate_dataset
    from lstmfpga.sim.golden.random_artifact import random_artifact

    generate_dataset(tmp_path / "data", SynthConfig(videos=4, frames=6, size=32, seed=1), progress=False)
    artifact = random_artifact(input_size=2048, hidden_size=5, num_classes=2, seed=2)
    artifact.save(tmp_path / "model.npz")
    handler = BackendHandler(backend=GoldenBackend(artifact=artifact))
    with SequenceServer(handler=handler, token="tok") as server:
        code = main(["serve-features", "--model", str(tmp_path / "model.npz"), "--videos", str(tmp_path / "data"),
                     "--features", str(tmp_path / "cache"), "--frames", "4", "--image-size", "32",
                     "--device", "cpu", "--token", "tok", "--board", f"127.0.0.1:{server.address[1]}",
                     "--results", str(tmp_path / "host.jsonl")])
    assert code == 0
    fs = load_features(tmp_path / "cache")
    assert fs.features.shape == (4, 4, 2048)
    got = {r["video_id"]: r["logits"] for r in read_results(tmp_path / "host.jsonl")}
    want = run_integer(artifact, quantize_input(artifact, fs.features.astype(np.float32))).logits
    assert got == {vid: want[i].tolist() for i, vid in enumerate(fs.video_ids)}
    assert "sent 4 sequences" in capsys.readouterr().out
