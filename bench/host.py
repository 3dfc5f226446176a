"""Host benchmarks: backends (golden, rtl with and without double buffering) and the feature
stream over loopback. Prints one table per part with ratios against a baseline of the same run.

    .venv/bin/python bench/host.py [--sequences N] [--skip-rtl]

The rtl rows report two clocks: wall time of the simulation (Verilator + cocotb + the driver in
a bridge thread) and simulated time at 100 MHz from START to the unpacked result (what a board's
fabric would take; the host's own Python time does not advance simulated time, so double
buffering cannot show there: it hides host packing time behind compute on a real board).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from lstmfpga.host.backends.golden import GoldenBackend
from lstmfpga.host.board_handler import BackendHandler
from lstmfpga.host.infer import run_backend
from lstmfpga.host.payloads import prepare_payloads
from lstmfpga.host.sequence_sender import SequenceSender, iter_pairs
from lstmfpga.host.sequence_server import SequenceServer
from lstmfpga.host.stream_protocol import PayloadKind
from lstmfpga.sim.golden.random_artifact import random_artifact

CLOCK_HZ = 100e6


def table(title: str, rows: list[tuple[str, float, str]]) -> None:
    """rows: (name, seconds per sequence, note); the first row is the baseline."""
    base = rows[0][1]
    print(f"\n{title}")
    print(f"{'case':<44} {'µs/seq':>12} {'seq/s':>12} {'vs base':>9}  note")
    for name, seconds, note in rows:
        print(f"{name:<44} {seconds * 1e6:12.1f} {1 / seconds:12.1f} {base / seconds:8.2f}x  {note}")


def bench_backends(n: int, skip_rtl: bool) -> None:
    artifact = random_artifact(input_size=13, hidden_size=6, num_layers=2, num_classes=2, seed=5)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 5, artifact.input_size)).astype(np.float32)
    rows = []
    for mode in ("full", "split"):
        golden = GoldenBackend(artifact=artifact, mode=mode)
        run_backend(golden, x[:4], batch=4)  # warm-up
        start = time.perf_counter()
        run_backend(golden, x, batch=n)
        rows.append((f"golden {mode} (batch {n})", (time.perf_counter() - start) / n, "NumPy, batched"))
        start = time.perf_counter()
        run_backend(golden, x[: max(n // 4, 1)], batch=1)
        rows.append((f"golden {mode} (batch 1)", (time.perf_counter() - start) / max(n // 4, 1), "NumPy, one by one"))
    if not skip_rtl:
        from lstmfpga.host.backends.rtl import RtlBackend

        cache = Path(tempfile.gettempdir()) / "lstmfpga-bench-verilator"
        for mode in ("full", "split"):
            for double in (True, False):
                with RtlBackend(artifact=artifact, mode=mode, lanes=8, max_steps=5, cache_dir=cache,
                                double_buffer=double) as rtl:
                    run_backend(rtl, x[:2], batch=2)  # build + first launch outside the timing
                    rtl.cycles.clear()
                    rtl.sim_seconds.clear()
                    start = time.perf_counter()
                    run_backend(rtl, x, batch=n)
                    total = time.perf_counter() - start
                    cycles = float(np.mean(rtl.cycles))
                    label = "double" if double else "single"
                    rows.append((f"rtl {mode} {label}-buffered: wall, in simulation", rtl.last_wall_seconds / n,
                                 f"with launch: {1e6 * total / n:.0f} µs/seq"))
                    rows.append((f"rtl {mode} {label}-buffered: simulated @100MHz", float(np.mean(rtl.sim_seconds)),
                                 f"START to result incl. AXI-Lite + DMA; core {cycles:.0f} cycles (CYCLES)"))
    table(f"backends: I=13 H=6 L=2 T=5, {n} sequences (baseline: golden full, batched)", rows)


class _NullBackend(GoldenBackend):
    """Measures the stream alone: answers zeros without computing."""

    name = "null"

    def run(self, data):
        from lstmfpga.host.backends.base import BackendOutput

        b, t = data.shape[:2]
        return BackendOutput(h_codes=np.zeros((b, t, self.artifact.hidden_size), np.int64),
                             logits=np.zeros((b, 2), np.int64), seconds=np.zeros(b))


def _board_process(artifact, null: bool, window: int, folder, ready, stop) -> None:
    """The board side in its own process (as on a real board: no GIL shared with the sender)."""
    backend = (_NullBackend if null else GoldenBackend)(artifact=artifact)
    with SequenceServer(handler=BackendHandler(backend=backend), token="bench", window=window,
                        results_path=None if folder is None else Path(folder) / "board.jsonl") as server:
        ready.put(server.address)
        stop.wait()


def bench_stream(n: int) -> None:
    import multiprocessing

    artifact = random_artifact(input_size=2048, hidden_size=16, num_layers=1, num_classes=2, seed=1)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(n, 16, artifact.input_size)).astype(np.float32)
    ids = [f"v{i}" for i in range(n)]
    rows = []
    run_backend(GoldenBackend(artifact=artifact), x[:4], batch=4)  # warm-up
    start = time.perf_counter()
    run_backend(GoldenBackend(artifact=artifact), x, batch=64)
    rows.append(("golden in process (no stream)", (time.perf_counter() - start) / n, ""))
    ctx = multiprocessing.get_context("fork")
    for label, null, kind, window, logs in (
            ("stream int8 codes, null board, window 8", True, PayloadKind.CODES_I8, 8, True),
            ("stream int8 codes, null board, window 8, no logs", True, PayloadKind.CODES_I8, 8, False),
            ("stream int8 codes, null board, window 1", True, PayloadKind.CODES_I8, 1, True),
            ("stream float16 features, null board", True, PayloadKind.FEATURES_F16, 8, True),
            ("stream int8 codes, golden board, window 8", False, PayloadKind.CODES_I8, 8, True)):
        payloads = prepare_payloads(artifact, x, kind)
        with tempfile.TemporaryDirectory() as tmp:
            ready, stop = ctx.Queue(), ctx.Event()
            board = ctx.Process(target=_board_process, args=(artifact, null, window, tmp if logs else None, ready, stop))
            board.start()
            address = ready.get(timeout=60)
            sender = SequenceSender(address=address, token="bench", kind=kind,
                                    results_path=Path(tmp) / "host.jsonl" if logs else None)
            start = time.perf_counter()
            report = sender.run(iter_pairs(ids, payloads))
            elapsed = time.perf_counter() - start
            stop.set()
            board.join(timeout=30)
        assert len(report.results) == n
        mbps = payloads[0].nbytes * n / elapsed / 1e6
        note = "board log fsync'd per batch" if logs else "no result logs"
        rows.append((label, elapsed / n, f"{mbps:.1f} MB/s payload, {note}"))
    table(f"feature stream over loopback, board in another process: T=16 x D=2048, {n} sequences "
          "(baseline: golden in process)", rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequences", type=int, default=200)
    parser.add_argument("--skip-rtl", action="store_true")
    args = parser.parse_args()
    bench_backends(args.sequences, args.skip_rtl)
    bench_stream(args.sequences)


if __name__ == "__main__":
    main()
