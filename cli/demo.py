"""``lstmfpga demo``: the whole co-design loop on the built-in synthetic dataset.

data → ResNet-50 features → random search → frame-average baseline → temporal check → QAT
(4-bit weights, 8-bit activations) → QONNX + integer artifact → Verilog → Verilator verification →
inference on the simulated board (RTL) and on the golden model → board plan → ``index.html``.

The temporal check is a second synthetic set whose fakes are temporal-only (every frame a
plausible face; only the frame order gives them away): an LSTM and the frame-average head train on
the same features and split with the same recipe, and the report shows both.

Every stage calls the same command a user would run, writes under one output folder, and is
skipped when its result already exists, so an interrupted demo continues where it stopped.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

from lstmfpga.foundation.errors import LstmfpgaError
from lstmfpga.hw.boards import BOARD_KEYS

#: The demo's search space: the seed's space at demo scale (small heads, few epochs), LSTM only
#: because the FPGA head is an LSTM. `lstmfpga search` without --space uses the seed's full space.
DEMO_SPACE = {
    "hidden": [16, 24, 32],
    "frames": [16],
    "layers": [1],
    "dropout": [0.3, 0.4, 0.5],
    "scheduler": ["ReduceLROnPlateau", "CosineAnnealingLR", "OneCycleLR"],
    "lr": [0.001, 0.003],
    "weight_decay": [0.001, 0.0001, 0.00001],
    "batch_size": [8, 16],
    "loss": ["CrossEntropyLoss", "MSE", "FocalLoss"],
    "optimizer": ["RAdam", "RMSprop", "AdamW"],
}

#: The temporal check's training recipe, shared by the LSTM and the frame-average head.
TEMPORAL_RECIPE = ["--hidden", "32", "--frames", "16", "--epochs", "60", "--patience", "15", "--lr", "0.003",
                   "--weight-decay", "0.001", "--reverse-prob", "0.5", "--input-dropout", "0.5"]


class _Tee(io.TextIOBase):
    def __init__(self, *streams):
        self.streams = streams

    def write(self, s):
        for stream in self.streams:
            stream.write(s)
        return len(s)

    def flush(self):
        for stream in self.streams:
            stream.flush()


class Demo:
    def __init__(self, args):
        self.args = args
        self.out = Path(args.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.log_dir = self.out / "logs"
        self.log_dir.mkdir(exist_ok=True)
        self.timings: dict[str, float] = {}
        self.started = time.perf_counter()
        self.stage_no = 0
        self.stages = (STAGES + (TEMPORAL_STAGES if args.temporal_videos else 0)
                       + (REFERENCE_STAGES if args.performance_reference else 0))
        self._side: list[_Background] = []

    def _number(self, name: str) -> tuple[str, Path]:
        self.stage_no += 1
        return (f"[{self.stage_no}/{self.stages}] {name}",
                self.log_dir / f"{self.stage_no:02d}-{name.split()[0]}.log")

    def run(self, name: str, argv: list[str], *, done: Path | None = None) -> str:
        """Run one ``lstmfpga`` command in-process, echo and log its output."""
        from lstmfpga.cli.main import main

        self.print_background()
        banner, log_path = self._number(name)
        if done is not None and done.exists():
            print(f"{banner}: already done ({done.relative_to(self.out)}), skipping", flush=True)
            return log_path.read_text() if log_path.exists() else ""
        print(f"{banner}: lstmfpga {' '.join(argv)}", flush=True)
        start = time.perf_counter()
        buffer = io.StringIO()
        with contextlib.redirect_stdout(_Tee(sys.stdout, buffer)):
            code = main(argv)
        self.timings[name] = time.perf_counter() - start
        log_path.write_text(buffer.getvalue())
        if code != 0:
            raise LstmfpgaError(f"demo stage '{name}' failed (exit {code}); its output is in {log_path}")
        print(f"{banner}: done in {self.timings[name]:.0f} s", flush=True)
        return buffer.getvalue()

    def background(self, stages: list[tuple[str, list[str], Path | None]]) -> "_Background":
        """Start ``stages`` (name, argv, done marker) one after another beside the main line."""
        numbered = [(*self._number(name), name, argv, done) for name, argv, done in stages]
        self._side.append(_Background(self, numbered))
        return self._side[-1]

    def print_background(self) -> None:
        """Echo what the side lines have reported since the last call (the main thread prints all)."""
        for side in self._side:
            while True:
                try:
                    print(side.messages.get_nowait(), flush=True)
                except queue.Empty:
                    break

    def join_background(self) -> None:
        """Wait for every side line; raise the first one's failure."""
        try:
            for side in self._side:
                while side.thread.is_alive():
                    side.thread.join(timeout=0.5)
                    self.print_background()
        finally:
            for side in self._side:
                side.stop()
            self.print_background()
        for side in self._side:
            if side.error is not None:
                raise side.error


class _Background:
    """Demo stages that depend on nothing the main line makes, run in a thread, each as its own
    ``lstmfpga`` process (output into its log file), while the main line uses the other core."""

    def __init__(self, demo: Demo, stages):
        self.demo = demo
        self.messages: queue.SimpleQueue = queue.SimpleQueue()
        self.error: LstmfpgaError | None = None
        self._process: subprocess.Popen | None = None
        self._stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(stages,), name="demo-side-line", daemon=True)
        self.thread.start()

    def _run(self, stages) -> None:
        from lstmfpga.foundation.process_lifetime import parent_death_signal

        for banner, log_path, name, argv, done in stages:
            if self._stopped.is_set():
                return
            if done is not None and done.exists():
                self.messages.put(f"{banner}: already done ({done.relative_to(self.demo.out)}), skipping")
                continue
            self.messages.put(f"{banner}: lstmfpga {' '.join(argv)} (beside the main line; log {log_path})")
            start = time.perf_counter()
            with open(log_path, "w") as log:
                self._process = subprocess.Popen([sys.executable, "-m", "lstmfpga.cli.main", *argv],
                                                 stdout=log, stderr=subprocess.STDOUT, preexec_fn=parent_death_signal)
                code = self._process.wait()
            if self._stopped.is_set():
                return
            if code != 0:
                self.error = LstmfpgaError(f"demo stage '{name}' failed (exit {code}); its output is in {log_path}")
                return
            self.demo.timings[name] = time.perf_counter() - start
            self.messages.put(f"{banner}: done in {self.demo.timings[name]:.0f} s")

    def stop(self) -> None:
        """End the running stage (the main line failed or was interrupted)."""
        self._stopped.set()
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()


STAGES = 11
TEMPORAL_STAGES = 4
REFERENCE_STAGES = 1


def run_demo(args) -> int:
    d = Demo(args)
    try:
        _run_stages(d, args)
    finally:
        for side in d._side:
            side.stop()
    total = time.perf_counter() - d.started
    print(f"demo finished in {total / 60:.1f} min; report: {d.out / 'index.html'}")
    return 0


def _side_stages(out: Path, args) -> list[tuple[str, list[str], Path | None]]:
    """What needs nothing from the main line: the deployment shape's board plan (its Yosys runs
    are cached for the report) and the temporal-only check."""
    stages = []
    if args.performance_reference:
        from lstmfpga.cli.demo_report import REFERENCE_SHAPE

        shape = ",".join(str(REFERENCE_SHAPE[k]) for k in ("input_size", "hidden_size", "num_layers", "weight_bits"))
        stages.append(("plan (deployment shape)", ["plan", "--shape", shape, "--board", "zcu104", "--no-compare"],
                       None))
    if args.temporal_videos:
        temporal = out / "temporal"
        stages += [
            ("synth-data (temporal-only fakes)", [
                "synth-data", "--out", str(temporal / "data"), "--videos", str(args.temporal_videos),
                "--fake-kinds", "temporal", "--val-fraction", "0.5", "--seed", str(args.seed + 1)],
             temporal / "data" / "Validation" / "video_list.txt"),
            ("features (temporal-only set)", [
                "features", "--data", str(temporal / "data"), "--dataset", "forgerynet", "--out",
                str(temporal / "features"), "--frames", "16", "--image-size", str(args.image_size), "--workers", "1"],
             None)]
        stages += [(f"train {head} (temporal-only set)", [
            "train", "--features", str(temporal / "features"), "--out", str(temporal / head), "--head", head,
            *TEMPORAL_RECIPE, "--seed", str(args.seed)], temporal / head / "metrics.json")
            for head in ("lstm", "frame-avg")]
    return stages


def _run_stages(d: Demo, args) -> None:
    out = d.out
    d.background(_side_stages(out, args))
    data, cache = out / "data", out / "features"
    search, baseline, qat, hdl = out / "search", out / "baseline", out / "qat", out / "hdl"
    d.run("synth-data", ["synth-data", "--out", str(data), "--videos", str(args.videos),
                         "--seed", str(args.seed)], done=data / "Validation" / "video_list.txt")
    d.run("features", ["features", "--data", str(data), "--dataset", "forgerynet", "--out", str(cache),
                       "--frames", "16", "--image-size", str(args.image_size), "--workers", "1"])
    space = out / "demo_space.json"
    space.write_text(json.dumps(DEMO_SPACE, indent=2))
    d.run("search", ["search", "--features", str(cache), "--out", str(search), "--trials", str(args.trials),
                     "--space", str(space), "--head", "lstm", "--epochs", str(args.epochs), "--seed", str(args.seed)],
          done=search / "best" / "checkpoint.pt")
    best = json.loads((search / "best" / "config.json").read_text())
    best_cfg = best.get("config", best)
    d.run("baseline (frame average)", [
        "train", "--features", str(cache), "--out", str(baseline), "--head", "frame-avg",
        "--hidden", str(best_cfg["hidden"]), "--frames", str(best_cfg["frames"]),
        "--epochs", str(args.epochs), "--lr", str(best_cfg["lr"]), "--batch-size", str(best_cfg["batch_size"]),
        "--seed", str(args.seed)], done=baseline / "metrics.json")
    d.run("qat", ["qat", "--features", str(cache), "--out", str(qat), "--float-checkpoint",
                  str(search / "best" / "checkpoint.pt"), "--weight-bits", "4", "--act-bits", "8",
                  "--epochs", str(args.qat_epochs), "--seed", str(args.seed)], done=qat / "qat_head.pt")
    artifact = qat / "artifact.npz"
    d.run("export", ["export", "--checkpoint", str(qat / "qat_head.pt"), "--out", str(qat)], done=artifact)
    d.run("hdl", ["hdl", "--model", str(artifact), "--lanes", str(args.lanes), "--mode", "full",
                  "--out", str(hdl)], done=hdl / "manifest.json")
    build = out / "verilator"
    # the compiled harness, one core per CPU (at most two: the demo's RTL work is small)
    jobs = str(min(2, os.cpu_count() or 1))
    d.run("verify", ["verify", "--model", str(artifact), "--lanes", str(args.lanes), "--sequences",
                     str(args.verify_sequences), "--build-dir", str(build), "--jobs", jobs])
    infer = out / "infer"
    d.run("infer golden", ["infer", "--backend", "golden", "--model", str(artifact), "--features", str(cache),
                           "--split", "val", "--out", str(infer / "golden.npy")])
    d.run("infer rtl", ["infer", "--backend", "rtl", "--model", str(artifact), "--features", str(cache),
                        "--split", "val", "--lanes", str(args.lanes), "--build-dir", str(build),
                        "--jobs", jobs, "--out", str(infer / "rtl.npy")])
    d.run(f"plan {args.board}", ["plan", "--model", str(artifact), "--board", args.board, "--no-compare"])
    d.join_background()
    from lstmfpga.cli.demo_report import write_report

    write_report(out, timings=d.timings, board=args.board, performance_reference=args.performance_reference)


def register(subparsers) -> None:
    """Add ``demo`` to the ``lstmfpga`` parser."""
    p = subparsers.add_parser("demo", help="the whole pipeline on the built-in synthetic dataset",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="demo_out", help="output folder (default demo_out)")
    p.add_argument("--videos", type=int, default=192, help="synthetic videos (default 192)")
    p.add_argument("--temporal-videos", type=int, default=384,
                   help="videos of the temporal-only check set, half in Validation; 0 skips it (default 384)")
    p.add_argument("--trials", type=int, default=8, help="random-search trials (default 8)")
    p.add_argument("--epochs", type=int, default=20, help="max epochs per trial (default 20)")
    p.add_argument("--qat-epochs", type=int, default=3)
    p.add_argument("--image-size", type=int, default=112, help="ResNet-50 input size (default 112)")
    p.add_argument("--lanes", type=int, default=16, help="MAC lanes of the simulated core (default 16)")
    p.add_argument("--verify-sequences", type=int, default=8)
    p.add_argument("--board", default="zcu104", choices=BOARD_KEYS)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-performance-reference", dest="performance_reference", action="store_false",
                   help="leave the deployment shape (H=512) out of the performance chart: saves its board plans")
    p.set_defaults(handler=run_demo)
