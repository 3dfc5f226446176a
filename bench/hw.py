"""Hardware planning bench: lane utilisation, time per step, simulation speed and Yosys resources.

    python bench/hw.py [--timesteps 16] [--sim small,mid|none] [--cache-dir DIR]

For H=512, I=2048, 4-bit weights (the seed's smallest LSTM on ResNet-50 features) it prints:

1. for P from 16 up to the lane count ``lstmfpga plan`` picks for ZCU104 (full mode): the cycle
   model's MAC-lane utilisation (ideal 4·H·(I+H)/P ÷ compute cycles), µs per timestep and per
   sequence at ZCU104's planned clock, speed-up against P=16 measured in the same run, and the
   estimated resources (Yosys-measured logic extrapolated in P + memory model);
2. Verilator simulations of a small and a mid-size configuration (hw-core's cocotb bench): measured
   CYCLES against the cycle model, bit-exactness, and the simulation speed in cycles per second;
3. the Yosys runs behind the resource numbers (measured cells at the proxy lane counts).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

I, H, WBITS = 2048, 512, 4


def _table(title: str, header: list[str], rows: list[list]) -> str:
    cells = [[str(c) for c in header]] + [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = [title, "  ".join(h.rjust(w) for h, w in zip(cells[0], widths)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in cells[1:]]
    return "\n".join(lines)


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
    return str(value)


def lane_sweep(timesteps: int, cache_dir) -> tuple[str, object]:
    from lstmfpga.hw.boards import get_board
    from lstmfpga.hw.cycle_model import estimate
    from lstmfpga.hw.plan import _check, make_plan, shape_config

    board = get_board("zcu104")
    template = shape_config(input_size=I, hidden_size=H, num_layers=1, weight_bits=WBITS)
    plan = make_plan(template, board, mode="full", timesteps=timesteps, cache_dir=cache_dir,
                     progress=True, compare=False)
    fit = plan.check.estimate.fit
    lanes = [16]
    while lanes[-1] * 2 < plan.lanes:
        lanes.append(lanes[-1] * 2)
    lanes.append(plan.lanes)
    rows, base_us = [], None
    for p in lanes:
        config = dataclasses.replace(plan.config, lanes=p)
        cycles = estimate(config, timesteps)
        check = _check(config, fit, board)
        us_step = cycles.compute_cycles / timesteps / plan.clock_mhz
        base_us = base_us or us_step
        used = check.used
        rows.append([p, config.groups, round(cycles.cycles_per_step), f"{cycles.utilization:.1%}",
                     us_step, cycles.run_cycles / plan.clock_mhz, f"{base_us / us_step:.1f}x",
                     used["dsp"], used["lut"], used["ff"], used["bram36"], used["uram"],
                     "yes" if check.fits else "no"])
    title = (f"1. H={H}, I={I}, {WBITS}-bit weights, full mode on ZCU104 at {plan.clock_mhz:g} MHz, "
             f"T={timesteps} (cycle model; resources incl. shell reserve; plan picks P={plan.lanes})")
    header = ["P", "groups", "cyc/step", "MAC util", "µs/step", "µs/seq", "vs P=16", "DSP", "LUT", "FF",
              "BRAM36", "URAM", "fits"]
    return _table(title, header, rows), plan


def simulations(names: list[str], timesteps: int, cache_dir: Path) -> str:
    """Table 2: measured CYCLES vs the model and simulation speed (Verilator builds cached)."""
    import numpy as np

    from lstmfpga.foundation.hw.config import AcceleratorConfig
    from lstmfpga.hw.cycle_model import estimate
    from lstmfpga.foundation.hw.weight_image import build_weight_image, image_lanes
    from lstmfpga.sim import verilator
    from lstmfpga.sim.golden.random_artifact import random_artifact
    from lstmfpga.sim.rtl_check import Sequence, build_job, random_codes

    shapes = {"small": (32, 16, 16), "mid": (256, 64, 64)}
    rows, base_speed = [], None
    for name in names:
        i, h, p = shapes[name]
        art = random_artifact(input_size=i, hidden_size=h, num_layers=1, num_classes=2, weight_bits=WBITS, seed=1)
        config = AcceleratorConfig.from_artifact(art, lanes=p, mode="full")
        rng = np.random.default_rng(0)
        started = time.perf_counter()
        build_dir = verilator.build(config, cache_dir)
        build_s = time.perf_counter() - started
        image_beats = len(image_lanes(config, build_weight_image(art, config)))
        measured = {}
        # one job of 1 sequence and one of 8: the difference is simulator speed without start-up
        for count in (1, 8):
            seqs = [Sequence(0, random_codes(art, rng, timesteps)) for _ in range(count)]
            job, arrays = build_job(config, [art], seqs, input_pause=0.0, output_pause=0.0)
            with tempfile.TemporaryDirectory() as work:
                started = time.perf_counter()
                result = verilator.run_job(build_dir, Path(work), job, arrays)
                seconds = time.perf_counter() - started
            runs = result["runs"]
            measured[count] = (runs, image_beats + sum(r["run_cycles"] for r in runs), seconds)
        runs1, cycles1, seconds1 = measured[1]
        runs8, cycles8, seconds8 = measured[8]
        speed = (cycles8 - cycles1) / max(seconds8 - seconds1, 1e-9)
        base_speed = base_speed or speed
        est = estimate(config, timesteps)
        got = runs8[0]["cycles"]
        rows.append([f"{name} I={i} H={h} P={p}", got, est.compute_cycles,
                     f"{(est.compute_cycles - got) / got:+.2%}", f"{est.ideal_cycles / got:.1%}",
                     "yes" if all(r["ok"] for r in runs1 + runs8) else "NO", build_s, seconds1, seconds8,
                     cycles8, cycles8 / seconds8, speed, f"{speed / base_speed:.2f}x"])
    title = (f"2. Verilator + cocotb (hw-core's bench, no backpressure), jobs of 1 and 8 sequences of "
             f"T={timesteps} after one weight load; simulated cycles = weight-image beats + RUN_CYCLES "
             f"(AXI-Lite traffic not counted); marginal cycles/s = extra cycles ÷ extra seconds of the "
             f"8-sequence job (start-up excluded)")
    header = ["config", "CYCLES", "model", "model err", "MAC util", "bit-exact", "build s", "run1 s", "run8 s",
              "cycles (8)", "cycles/s", "marginal cyc/s", "vs small"]
    return _table(title, header, rows)


def yosys_table(plan) -> str:
    fit = plan.check.estimate.fit
    rows = []
    for s in fit.samples:
        m = s.measured
        rows.append([s.lanes, f"I={s.input_size} H={s.hidden_size}", m.lut, m.lutram, m.ff, m.dsp, m.bram36,
                     m.uram, f"{s.model_bram36:g}", s.seconds, "cached" if s.cached else "run"])
    title = (f"3. Yosys synth_xilinx -family {fit.family} on the generated Verilog (proxies), the source of "
             f"the logic fit: " + "; ".join(f"{k.upper()} {a:.0f} + {b:.2f}·P" for k, (a, b) in fit.coefficients.items()))
    header = ["P", "proxy", "LUT", "LUTRAM", "FF", "DSP", "BRAM36", "URAM", "model BRAM36", "seconds", ""]
    return _table(title, header, rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--timesteps", type=int, default=16)
    parser.add_argument("--sim", default="small,mid", help="simulated sizes: small,mid or none")
    parser.add_argument("--cache-dir", default=None, help="Yosys result cache (default: user cache)")
    parser.add_argument("--sim-cache-dir", default=None,
                        help="Verilator build cache (default: a temporary folder)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    sweep, plan = lane_sweep(args.timesteps, args.cache_dir)
    print(sweep, end="\n\n", flush=True)
    if args.sim != "none":
        names = [n for n in args.sim.split(",") if n]
        if args.sim_cache_dir:
            print(simulations(names, args.timesteps, Path(args.sim_cache_dir)), end="\n\n", flush=True)
        else:
            with tempfile.TemporaryDirectory(prefix="lstmfpga-bench-sim-") as tmp:
                print(simulations(names, args.timesteps, Path(tmp)), end="\n\n", flush=True)
    print(yosys_table(plan))
    print(f"\nbench wall time {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
