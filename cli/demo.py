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
import sys
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
        self.stages = STAGES + (TEMPORAL_STAGES if args.temporal_videos else 0)

    def run(self, name: str, argv: list[str], *, done: Path | None = None) -> str:
        """Run one ``lstmfpga`` command in-process, echo and log its output."""
        from lstmfpga.cli.main import main

        self.stage_no += 1
        banner = f"[{self.stage_no}/{self.stages}] {name}"
        log_path = self.log_dir / f"{self.stage_no:02d}-{name.split()[0]}.log"
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


STAGES = 11
TEMPORAL_STAGES = 4


def run_demo(args) -> int:
    d = Demo(args)
    out = d.out
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
    if args.temporal_videos:
        temporal = out / "temporal"
        d.run("synth-data (temporal-only fakes)", [
            "synth-data", "--out", str(temporal / "data"), "--videos", str(args.temporal_videos),
            "--fake-kinds", "temporal", "--val-fraction", "0.5", "--seed", str(args.seed + 1)],
            done=temporal / "data" / "Validation" / "video_list.txt")
        d.run("features (temporal-only set)", [
            "features", "--data", str(temporal / "data"), "--dataset", "forgerynet", "--out",
            str(temporal / "features"), "--frames", "16", "--image-size", str(args.image_size), "--workers", "1"])
        for head in ("lstm", "frame-avg"):
            d.run(f"train {head} (temporal-only set)", [
                "train", "--features", str(temporal / "features"), "--out", str(temporal / head), "--head", head,
                *TEMPORAL_RECIPE, "--seed", str(args.seed)], done=temporal / head / "metrics.json")
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
    from lstmfpga.cli.demo_report import write_report

    report = write_report(out, timings=d.timings, board=args.board,
                          performance_reference=args.performance_reference)
    total = time.perf_counter() - d.started
    print(f"demo finished in {total / 60:.1f} min; report: {report}")
    return 0


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
