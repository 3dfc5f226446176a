"""Weights in DDR, measured: the generated core with its weights in DDR (``weight_residency``
``stream``: every row each step; ``all``: W_x once a run for an input pass, W_h each step;
``wx``: the input pass, W_h on chip) on the
compiled harness against the same core with its weights on chip, over memories of several
latencies and idle rates.

    python bench/ddr_core.py [--input 256 --hidden 64 --layers 2 --steps 8 --weight-bits 4]
                             [--lanes 64] [--sequences 4] [--latencies 1,24,100] [--batches 1,2,4,8]
                             [--residencies stream,all,wx] [--cache-dir DIR]

For each residency and memory it prints the measured CYCLES of a T-step sequence (mean over the
sequences), the DDR schedule's estimate (``estimate_ddr`` at the image's address) and its error, the on-chip core's
measured CYCLES in the same run and the ratio, the DDR bytes a sequence reads and the bandwidth
that is at 250 MHz, and the harness's simulated cycles per wall second.  Then batches: a core
built with ``max_batch`` = the largest B, run through the unchanged driver on the simulated board
(64-bit port, the slowest latency), for each B the CYCLES of a batch, its model, the cycles and
DDR bytes per sequence, and the speed-up per sequence over B = 1 measured in the same run.  Every
run is checked bit-exact against the integer golden.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from shape_args import add_shape_arguments

CLOCK_MHZ = 250


def _table(header: list[str], rows: list[list]) -> str:
    cells = [header] + [[f"{c:.3g}" if isinstance(c, float) and abs(c) < 100 else
                         f"{c:,.0f}" if isinstance(c, float) else str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = ["  ".join(h.rjust(w) for h, w in zip(cells[0], widths)), "  ".join("-" * w for w in widths)]
    return "\n".join(lines + ["  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in cells[1:]])


def _measure(config, artifact, sequences, cache, *, ddr=None):
    from lstmfpga.sim import verilator
    from lstmfpga.sim.rtl_check import run_sequences

    verilator.build_harness(config, cache)           # built (or found) before the clock starts
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as work:
        options = {"ddr": ddr} if ddr is not None else {}
        results = run_sequences(config, [artifact], sequences, cache_dir=cache, work_dir=Path(work),
                                simulator="harness", input_pause=0.0, output_pause=0.0, **options)
    seconds = time.perf_counter() - started
    runs = results["runs"]
    if not all(run["ok"] and run["error"] == 0 for run in runs):
        sys.exit(f"a run differs from the golden or reports an error: {[(r['ok'], r['error']) for r in runs]}")
    cycles = sum(run["cycles"] for run in runs) / len(runs)
    return cycles, sum(run["run_cycles"] for run in runs) / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_shape_arguments(parser)
    parser.set_defaults(input=256, hidden=64, layers=2, steps=8)
    parser.add_argument("--lanes", type=int, default=64)
    parser.add_argument("--sequences", type=int, default=4)
    parser.add_argument("--latencies", default="1,24,100", help="memory latencies in cycles, comma-separated")
    parser.add_argument("--batches", default="1,2,4,8", help="batch sizes B, comma-separated")
    parser.add_argument("--residencies", default="stream,all,wx",
                        help="DDR residencies, comma-separated (stream, all, wx)")
    parser.add_argument("--cache-dir", default=None, help="Verilator build cache (default: a temporary folder)")
    args = parser.parse_args()
    residencies = args.residencies.split(",")
    if not residencies or any(r not in ("stream", "all", "wx") for r in residencies):
        parser.error(f"--residencies takes stream, all and/or wx, not {args.residencies!r}")

    import dataclasses

    import numpy as np

    from lstmfpga.foundation.hw.config import AcceleratorConfig
    from lstmfpga.hw.ddr_schedule import estimate_ddr
    from lstmfpga.sim.golden.random_artifact import random_artifact
    from lstmfpga.sim.harness.simulated_ddr import SimulatedDdr
    from lstmfpga.sim.rtl_check import Sequence, random_codes

    artifact = random_artifact(input_size=args.input, hidden_size=args.hidden, num_layers=args.layers,
                               num_classes=2, weight_bits=args.weight_bits, act_bits=args.act_bits, seed=1)
    chip = AcceleratorConfig.from_artifact(artifact, lanes=args.lanes, max_timesteps=args.steps, stream_width=64)
    rng = np.random.default_rng(0)
    sequences = [Sequence(0, random_codes(artifact, rng, args.steps)) for _ in range(args.sequences)]
    with tempfile.TemporaryDirectory() as scratch:
        cache = Path(args.cache_dir or scratch)
        print(f"I={args.input} H={args.hidden} L={args.layers} T={args.steps} P={args.lanes} "
              f"w{args.weight_bits}a{args.act_bits}, full mode, 64-bit streams; {args.sequences} sequences a row",
              flush=True)
        base_cycles, base_rate = _measure(chip, artifact, sequences, cache)
        rows = [["on chip", "-", "-", base_cycles, "-", "-", 1.0, "-", "-", base_rate]]
        for residency in residencies:
            for width in (64, 128):
                config = dataclasses.replace(chip, weight_residency=residency, ddr_width=width, ddr_burst=16,
                                             ddr_outstanding=8)
                for latency in (int(v) for v in args.latencies.split(",")):
                    for pause in (0.0, 0.5):
                        ddr = SimulatedDdr(latency=latency, r_pause=pause)
                        cycles, rate = _measure(config, artifact, sequences, cache, ddr=ddr)
                        model = estimate_ddr(config, args.steps, residency=residency, port=ddr.port(config))
                        nbytes = model.ddr_bytes
                        gbps = nbytes / (cycles / (CLOCK_MHZ * 1e6)) / 1e9
                        rows.append([f"{residency} {width}-bit", latency, pause, cycles, model.compute_cycles,
                                     f"{(model.compute_cycles - cycles) / cycles:+.2%}", cycles / base_cycles,
                                     f"{nbytes / 1e3:.1f}", f"{gbps:.2f}", rate])
                        print(f"  {residency} {width}-bit, latency {latency}, R idle {pause:.0%}: {cycles:,.0f} cycles",
                              flush=True)
        latency = max(int(v) for v in args.latencies.split(","))
        batch_rows = [row for residency in residencies
                      for row in _batches(chip, artifact, cache, args, latency=latency, residency=residency)]
    print()
    print(_table(["weights", "latency", "R idle", "CYCLES", "model", "model err", "x on chip", "kB/seq",
                  f"GB/s @{CLOCK_MHZ}MHz", "sim cyc/s"], rows))
    print()
    print(_table(["weights", "B", "CYCLES/batch", "model", "model err", "cycles/seq", "x B=1 per seq", "kB/seq"],
                 batch_rows))


def _batches(chip, artifact, cache, args, *, latency: int, residency: str) -> list[list]:
    """Batches of B sequences on a core of ``max_batch`` = max B, through the driver."""
    import numpy as np

    from lstmfpga.host.backends.golden import GoldenBackend
    from lstmfpga.host.backends.rtl import RtlBackend
    from lstmfpga.hw.ddr_schedule import estimate_ddr
    from lstmfpga.sim.harness.simulated_ddr import SimulatedDdr
    from lstmfpga.sim.rtl_check import random_codes

    sizes = sorted({1, *(int(v) for v in args.batches.split(","))})
    ddr = SimulatedDdr(latency=latency)
    rng = np.random.default_rng(1)
    rows, per_sequence = [], {}
    with RtlBackend(artifact=artifact, lanes=chip.lanes, max_steps=chip.max_timesteps, stream_width=64,
                    weight_residency=residency, ddr_width=64, max_batch=sizes[-1], ddr=ddr, cache_dir=cache,
                    work_dir=cache) as rtl:
        config = rtl.config
        for B in sizes:
            codes = np.stack([random_codes(artifact, rng, args.steps) for _ in range(B)])
            before = len(rtl.cycles)
            got = rtl.run(codes)
            want = GoldenBackend(artifact=artifact).run(codes)
            if not (np.array_equal(got.h_codes, want.h_codes) and np.array_equal(got.logits, want.logits)):
                sys.exit(f"a batch of {B} differs from the golden")
            cycles = rtl.cycles[before]
            model = estimate_ddr(config, args.steps, residency=residency, batch=B, port=ddr.port(config))
            per_sequence[B] = cycles / B
            nbytes = model.ddr_bytes
            rows.append([residency, B, cycles, model.compute_cycles, f"{(model.compute_cycles - cycles) / cycles:+.2%}",
                         cycles / B, per_sequence[1] / (cycles / B), f"{nbytes / B / 1e3:.1f}"])
            print(f"  {residency}, batch of {B}: {cycles:,} cycles", flush=True)
    return rows


if __name__ == "__main__":
    main()
