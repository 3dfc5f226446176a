"""The feature stream under hostile load: a good sender's throughput and the board's memory while
100 unauthenticated peers (``lstmfpga.host.hostile_peers``: slow, silent, 16 MiB SEQUENCE before
HELLO, 60 KiB HELLO) hold connections. Prints one table with ratios against the sender alone.

    .venv/bin/python bench/stream_hostile.py [--sequences N] [--peers N]

The board runs in its own process (as on a real board); /proc gives its CPU time during the good
sender's run (the ratio column: what the hostile peers cost the board per good sequence, robust to
a busy machine where wall time is not), its resident size before the load and its high-water mark
during it (reset per case with ``/proc/PID/clear_refs``). Each case runs ``--repeats`` times,
interleaved: the fastest run, the largest memory growth and the fewest peers answered count.
Loopback only.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import time
from pathlib import Path

import numpy as np

from lstmfpga.host.backends.golden import GoldenBackend
from lstmfpga.host.board_handler import BackendHandler
from lstmfpga.host.hostile_peers import HostileCrowd, process_memory
from lstmfpga.host.payloads import prepare_payloads
from lstmfpga.host.sequence_sender import SequenceSender, iter_pairs
from lstmfpga.host.sequence_server import SequenceServer
from lstmfpga.host.server_limits import ServerLimits
from lstmfpga.host.stream_protocol import PayloadKind
from lstmfpga.sim.golden.random_artifact import random_artifact

MIB = 1 << 20
TOKEN = "bench"


def _board(artifact, limits: ServerLimits, ready, stop) -> None:
    logging.getLogger("lstmfpga.host.sequence_server").setLevel(logging.ERROR)  # one line per refusal otherwise
    handler = BackendHandler(backend=GoldenBackend(artifact=artifact), max_steps=64)
    with SequenceServer(handler=handler, token=TOKEN, limits=limits) as server:
        ready.put(server.address)
        stop.wait()


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _send(address, artifact, ids, payloads) -> float:
    sender = SequenceSender(address=address, token=TOKEN, kind=PayloadKind.CODES_I8, artifact_sha256=artifact.sha256,
                            backoff=0.05, retries=10)
    start = time.perf_counter()
    report = sender.run(iter_pairs(ids, payloads))
    assert len(report.results) == len(ids) and not report.errors
    return time.perf_counter() - start


def run_case(artifact, payloads, *, limits: ServerLimits, peers: int, source: str | None) -> tuple:
    ctx = multiprocessing.get_context("fork")
    ready, stop = ctx.Queue(), ctx.Event()
    board = ctx.Process(target=_board, args=(artifact, limits, ready, stop))
    board.start()
    try:
        address = ready.get(timeout=60)
        n = len(payloads)
        _send(address, artifact, [f"warm{i}" for i in range(16)], payloads[:16])
        Path(f"/proc/{board.pid}/clear_refs").write_text("5")  # restart the high-water mark here
        before = process_memory(board.pid)["VmRSS"]
        crowd = HostileCrowd(address, peers, source=source) if peers else None
        time.sleep(0.5)  # every case starts as long after the warm-up
        cpu = _cpu_seconds(board.pid)
        seconds = _send(address, artifact, [f"v{i}" for i in range(n)], payloads)
        cpu = _cpu_seconds(board.pid) - cpu
        peak = process_memory(board.pid)["VmHWM"]
        answered = sum(m is not None for m in crowd.answers(timeout=limits.handshake_timeout + 5)) if crowd else 0
    finally:
        stop.set()
        board.join(timeout=30)
    return seconds / n, cpu / n, (peak - before) / MIB, answered


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequences", type=int, default=400)
    parser.add_argument("--peers", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3, help="runs of each case, interleaved; the fastest counts")
    args = parser.parse_args()
    artifact = random_artifact(input_size=2048, hidden_size=16, num_layers=1, num_classes=2, seed=1)
    x = np.random.default_rng(1).normal(size=(args.sequences, 16, artifact.input_size)).astype(np.float32)
    payloads = prepare_payloads(artifact, x, PayloadKind.CODES_I8)
    held = ServerLimits(handshake_timeout=20.0, max_connections=args.peers + 8, max_per_peer=args.peers + 8)
    cases = [
        ("good sender alone", ServerLimits(), 0, None),
        (f"+ {args.peers} hostile peers, all admitted and held", held, args.peers, None),
        (f"+ {args.peers} hostile peers from one other host, default caps", ServerLimits(), args.peers, "127.0.0.2"),
    ]
    runs = {name: [] for name, *_ in cases}
    for _ in range(args.repeats):  # interleaved, so a busy spell of the machine hits every case alike
        for name, limits, peers, source in cases:
            runs[name].append(run_case(artifact, payloads, limits=limits, peers=peers, source=source))
    rows = [(name, min(r[0] for r in runs[name]), min(r[1] for r in runs[name]), max(r[2] for r in runs[name]),
             min(r[3] for r in runs[name])) for name in runs]
    base = rows[0][2]
    print(f"\nfeature stream under hostile load: int8 codes T=16 x D=2048, golden board, window 8, "
          f"{args.sequences} sequences (baseline: the good sender alone)")
    print(f"{'case':<58} {'wall µs/seq':>11} {'board CPU µs/seq':>16} {'vs base':>8} "
          f"{'board RSS peak growth':>22} {'peers answered':>15}")
    for name, seconds, cpu, growth, answered in rows:
        print(f"{name:<58} {seconds * 1e6:11.0f} {cpu * 1e6:16.0f} {base / cpu:7.2f}x {growth:18.1f} MiB "
              f"{answered:11d}/{args.peers}")


if __name__ == "__main__":
    main()
