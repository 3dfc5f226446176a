"""``lstmfpga bench``: run the benchmark scripts in ``bench/`` and print their tables."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from lstmfpga.foundation.errors import ConfigError

#: Benchmark name → (script, what it measures), in the order ``bench all`` runs them.
BENCHES = {
    "fpga": ("fpga_vs_cpu.py", "FPGA µs per step/sequence at batch 1 vs torch.nn.LSTM on the CPU and a GPU"),
    "hw": ("hw.py", "MAC-lane utilisation, cycle model error, Verilator cycles/s, Yosys resources"),
    "golden": ("golden.py", "integer golden vs Brevitas vs torch.nn.LSTM: agreement and speed"),
    "features": ("features.py", "decode / crop / ResNet-50 frames per second"),
    "search": ("search.py", "one search trial on the cache vs one that re-extracts features"),
    "host": ("host.py", "host backends: sequences/s, double buffering, loopback streaming"),
    "hostile": ("stream_hostile.py", "the feature stream's board CPU and memory under 100 hostile peers"),
}


def bench_dir() -> Path:
    here = Path(__file__).resolve().parents[1] / "bench"
    if not here.is_dir():
        raise ConfigError("the bench/ scripts are not installed with the package: run "
                          "`lstmfpga bench` from a source checkout (pip install -e .)")
    return here


def run_bench(args) -> int:
    names = list(BENCHES) if args.name == "all" else [args.name]
    folder = bench_dir()
    failed = []
    for name in names:
        script, what = BENCHES[name]
        print(f"\n=== bench {name}: {what} ===", flush=True)
        start = time.perf_counter()
        code = subprocess.call([sys.executable, str(folder / script), *args.extra])
        print(f"=== bench {name}: {'ok' if code == 0 else f'FAILED (exit {code})'} in "
              f"{time.perf_counter() - start:.0f} s ===", flush=True)
        if code:
            failed.append(name)
    if failed:
        print(f"failed benchmarks: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


def register(subparsers) -> None:
    """Add ``bench`` to the ``lstmfpga`` parser."""
    p = subparsers.add_parser("bench", help="performance tables (bench/*.py)")
    p.add_argument("name", choices=["all", *BENCHES], help="which benchmark (all: every one in turn)")
    p.add_argument("extra", nargs="*", help="options passed on to a single benchmark script")
    p.set_defaults(handler=run_bench)
