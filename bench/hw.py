"""Hardware planning bench: lane utilisation, time per step, simulation speed and Yosys resources.

    python bench/hw.py [--timesteps 16] [--sim small,mid,full|none] [--cocotb small,mid] [--cache-dir DIR]
                       [--no-sweep] [--rounds 3] [--opt -O1,-O2 [--opt-core small|mid]]

For H=512, I=2048, 4-bit weights (the seed's smallest LSTM on ResNet-50 features) it prints:

1. for P from 16 up to the lane count ``lstmfpga plan`` picks for ZCU104 (full mode): the cycle
   model's MAC-lane utilisation (ideal 4·H·(I+H)/P ÷ compute cycles), µs per timestep and per
   sequence at ZCU104's planned clock, speed-up against P=16 measured in the same run, and the
   estimated resources (Yosys-measured logic extrapolated in P + memory model);
2. Verilator simulations of a small, a mid-size and the full-size configuration on both simulators,
   the compiled C++ harness and cocotb, side by side: build time, measured CYCLES against the cycle
   model, bit-exactness, simulated cycles per second, sequences per second and the harness's speed-up;
3. the Yosys runs behind the resource numbers (measured cells at the proxy lane counts).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
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


SIM_SHAPES = {"small": (32, 16, 16), "mid": (256, 64, 64)}
#: Sequences of the two timed jobs per simulator (the difference is the marginal speed; cocotb's
#: n is large enough that its extra sequences outweigh the noise of its simulator's start-up,
#: about 2 CPU s, on a loaded machine: at n=8 the small core's marginal work was a fifth of it).
SIM_COUNTS = {"cocotb": (1, 24), "harness": (1, 200)}
FULL_COUNTS = (1, 3)
#: Rounds of the small and mid measurements, the two simulators alternating within each round so
#: that a change of the machine's load falls on both; the table gives each simulator's median.
SIM_ROUNDS = 3
#: Lanes of the full-size core when the sweep is skipped: what ``lstmfpga plan`` picks for ZCU104.
FULL_LANES = 1024


def _cpu_seconds() -> float:
    """CPU time of this process and of its reaped children (the simulators, the harness workers)."""
    import resource

    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


@dataclasses.dataclass
class _SimJobs:
    """One simulator's built core and its prepared jobs of ``counts`` sequences (golden outputs
    computed ahead: the reference model is not part of either simulator's speed)."""

    simulator: str
    config: object
    built: Path
    build_s: object
    image_beats: int
    jobs: dict
    golden_s_per_seq: float
    measured: list = dataclasses.field(default_factory=list)


def _prepare(simulator: str, config, art, counts, timesteps: int, cache_dir: Path) -> _SimJobs:
    import numpy as np

    from lstmfpga.foundation.hw.weight_image import build_weight_image, image_lanes
    from lstmfpga.sim import verilator
    from lstmfpga.sim.rtl_check import Sequence, build_job, golden_packets, random_codes

    started, wall_started = time.perf_counter(), time.time()
    built = (verilator.build_harness if simulator == "harness" else verilator.build)(config, cache_dir)
    build_s = time.perf_counter() - started
    if simulator == "harness" and (Path(built).parent / "harness.json").stat().st_mtime < wall_started:
        build_s = f"{verilator.harness_build_seconds(built):.0f} (cached)"  # the time recorded when it was built
    image = image_lanes(config, build_weight_image(art, config))
    rng = np.random.default_rng(0)
    jobs, golden_s, golden_n = {}, 0.0, 0
    for count in counts:
        codes = [random_codes(art, rng, timesteps) for _ in range(count)]
        started = time.process_time()
        if simulator == "harness":
            jobs[count] = (image, [(*golden_packets(config, art, x), timesteps) for x in codes])
        else:
            jobs[count] = build_job(config, [art], [Sequence(0, x) for x in codes], input_pause=0.0, output_pause=0.0)
        golden_s, golden_n = golden_s + time.process_time() - started, golden_n + count
    return _SimJobs(simulator, config, Path(built), build_s, int(image.size), jobs, golden_s / golden_n)


def _measure(prepared: _SimJobs) -> None:
    """Run the prepared jobs once; speeds from their difference, per wall second and per CPU
    second of the simulator and driver processes (the machine may be shared: CPU time is what
    the simulator used)."""
    from lstmfpga.sim import verilator
    from lstmfpga.sim.harness.packets import run_packets

    measured = {}
    for count, job in prepared.jobs.items():
        with tempfile.TemporaryDirectory() as work:
            started, cpu = time.perf_counter(), _cpu_seconds()
            if prepared.simulator == "harness":
                image, packets = job
                runs = run_packets(prepared.built, prepared.config, image,
                                   [(lanes, T, expected) for lanes, expected, T in packets])["runs"]
            else:
                runs = verilator.run_job(prepared.built, Path(work), *job)["runs"]
            seconds, cpu = time.perf_counter() - started, _cpu_seconds() - cpu
        measured[count] = (runs, prepared.image_beats + sum(r["run_cycles"] for r in runs), seconds, cpu)
    (runs1, cycles1, wall1, cpu1), (runs_n, cycles_n, wall_n, cpu_n) = measured.values()
    counts = list(measured)
    extra_cpu = max(cpu_n - cpu1, 1e-9)
    prepared.measured.append({
        "cycles": runs_n[0]["cycles"], "ok": all(r["ok"] for r in runs1 + runs_n),
        "run1_s": wall1, "run_n_s": wall_n, "n": counts[1], "cpu_n_s": cpu_n,
        "cycles_per_cpu_s": (cycles_n - cycles1) / extra_cpu, "seq_per_cpu_s": (counts[1] - counts[0]) / extra_cpu,
        "cycles_per_wall_s": cycles_n / wall_n})


def _median_round(prepared: _SimJobs) -> dict:
    """The round with the median simulated cycles per CPU second, and the range over rounds."""
    rounds = sorted(prepared.measured, key=lambda r: r["cycles_per_cpu_s"])
    middle = dict(rounds[len(rounds) // 2])
    middle["ok"] = all(r["ok"] for r in rounds)
    middle["range"] = (rounds[0]["cycles_per_cpu_s"], rounds[-1]["cycles_per_cpu_s"])
    return middle


def simulations(names: list[str], timesteps: int, cache_dir: Path, *, cocotb: list[str], full_lanes: int,
                rounds: int = SIM_ROUNDS) -> str:
    """Table 2: both simulators side by side: build time, CYCLES vs the model, simulated cycles/s
    and sequences/s (Verilator builds cached under ``cache_dir``)."""
    from lstmfpga.foundation.hw.config import AcceleratorConfig
    from lstmfpga.hw.cycle_model import estimate
    from lstmfpga.sim.golden.random_artifact import random_artifact

    shapes = dict(SIM_SHAPES, full=(I, H, full_lanes))
    rows = []
    for name in names:
        i, h, p = shapes[name]
        art = random_artifact(input_size=i, hidden_size=h, num_layers=1, num_classes=2, weight_bits=WBITS, seed=1)
        config = AcceleratorConfig.from_artifact(art, lanes=p, mode="full")
        est = estimate(config, timesteps)
        simulators = [s for s in ("cocotb", "harness") if s != "cocotb" or name in cocotb]
        prepared = [_prepare(s, config, art, FULL_COUNTS if name == "full" else SIM_COUNTS[s], timesteps, cache_dir)
                    for s in simulators]
        for _ in range(1 if name == "full" else rounds):
            for jobs in prepared:
                _measure(jobs)
        if "cocotb" not in simulators:
            rows.append([f"{name} I={i} H={h} P={p}", "cocotb"] + ["not run"] * 15)
        results = {jobs.simulator: (jobs, _median_round(jobs)) for jobs in prepared}
        for simulator, (jobs, m) in results.items():
            low, high = m["range"]
            if simulator == "harness" and "cocotb" in results:
                base = results["cocotb"][1]
                ratio = f"{m['cycles_per_cpu_s'] / base['cycles_per_cpu_s']:.1f}x"
                worst = f"{low / base['range'][1]:.1f}x"
            else:
                ratio = worst = "-"
            rows.append([f"{name} I={i} H={h} P={p}", simulator, jobs.build_s, m["cycles"], est.compute_cycles,
                         f"{est.ideal_cycles / m['cycles']:.1%}", "yes" if m["ok"] else "NO", m["run1_s"],
                         f"{m['run_n_s']:.3g} ({m['n']})", m["cpu_n_s"], m["cycles_per_wall_s"],
                         m["cycles_per_cpu_s"], f"{low:.3g}..{high:.3g}", m["seq_per_cpu_s"],
                         1e3 * jobs.golden_s_per_seq, ratio, worst])
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    title = (f"2. Verilator: the compiled C++ harness against cocotb (Python per clock), no backpressure; "
             f"jobs of 1 and n sequences of T={timesteps} after one weight load; simulated cycles = weight-image "
             f"beats + RUN_CYCLES (AXI-Lite traffic not counted). The golden outputs are computed before the "
             f"timed jobs (golden ms/seq, the same for both, is not counted). cycles/s wall: the n-sequence job "
             f"end to end; cycles/s CPU, seq/s CPU: marginal (extra work ÷ extra CPU seconds of simulator and "
             f"driver processes in the n-sequence job: start-up excluded, robust on a shared machine), median of "
             f"{rounds} rounds with the two simulators alternating (range: slowest..fastest round; worst: the "
             f"harness's slowest round ÷ cocotb's fastest); build s = Verilog generation + Verilate + C++ compile "
             f"(cached: the Verilate + compile time recorded at its build); {os.cpu_count()} CPUs, load average {load}")
    header = ["config", "simulator", "build s", "CYCLES", "model", "MAC util", "bit-exact", "run1 s",
              "run n s (n)", "CPU s (n)", "cycles/s wall", "cycles/s CPU", "range", "seq/s CPU",
              "golden ms/seq", "vs cocotb", "worst"]
    return _table(title, header, rows)


def harness_opt_table(name: str, timesteps: int, cache_dir: Path, levels: list[str]) -> str:
    """Table 2b: the harness's C++ optimisation level, build time against simulation speed."""
    import numpy as np

    from lstmfpga.foundation.hw import stream_format
    from lstmfpga.foundation.hw.config import AcceleratorConfig
    from lstmfpga.foundation.hw.weight_image import build_weight_image, image_lanes
    from lstmfpga.sim import verilator
    from lstmfpga.sim.golden.random_artifact import random_artifact
    from lstmfpga.sim.harness.library import Harness
    from lstmfpga.sim.harness.packets import PacketBoard
    from lstmfpga.sim.rtl_check import golden_packets, random_codes

    i, h, p = SIM_SHAPES[name]
    art = random_artifact(input_size=i, hidden_size=h, num_layers=1, num_classes=2, weight_bits=WBITS, seed=1)
    config = AcceleratorConfig.from_artifact(art, lanes=p, mode="full")
    lanes, expected = golden_packets(config, art, random_codes(art, np.random.default_rng(0), timesteps))
    rows, base = [], None
    for opt in levels:
        started = _cpu_seconds()
        library = verilator.build_harness(config, cache_dir, opt=opt)
        build_s = _cpu_seconds() - started
        with Harness(library, lanes_per_beat=stream_format.lanes_per_beat(config)) as harness:
            board = PacketBoard(harness, 10**8)
            board.load(image_lanes(config, build_weight_image(art, config)))
            first = harness.cycle
            started = time.process_time()
            ok = all(board.run(lanes, timesteps, expected)["ok"] for _ in range(16))
            speed = (harness.cycle - first) / (time.process_time() - started)
        base = base or (build_s, speed)
        rows.append([opt, build_s, f"{build_s / base[0]:.2f}x", speed, f"{speed / base[1]:.2f}x",
                     "yes" if ok else "NO"])
    title = (f"2b. Harness C++ optimisation on the {name} core (I={i} H={h} P={p}): build CPU seconds (Verilog "
             f"generation, Verilate, compile; uncached) against simulated cycles per CPU second (16 sequences of T={timesteps}, in process)")
    return _table(title, ["opt", "build CPU s", f"vs {levels[0]}", "cycles/s CPU", f"vs {levels[0]}", "bit-exact"], rows)


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
    parser.add_argument("--sim", default="small,mid,full",
                        help="simulated sizes: any of small,mid,full (full: I=2048, H=512, the plan's P), or none")
    parser.add_argument("--cocotb", default="small,mid",
                        help="sizes also run on cocotb (its full-size run takes minutes per sequence)")
    parser.add_argument("--rounds", type=int, default=SIM_ROUNDS,
                        help="rounds of the small and mid measurements (the simulators alternate; medians shown)")
    parser.add_argument("--opt", default="",
                        help="also compare the harness's C++ optimisation levels, e.g. -O0,-O1,-Os,-O2")
    parser.add_argument("--opt-core", default="small", choices=sorted(SIM_SHAPES),
                        help="the core of the --opt comparison")
    parser.add_argument("--cache-dir", default=None, help="Yosys result cache (default: user cache)")
    parser.add_argument("--sim-cache-dir", default=None,
                        help="Verilator build cache (default: a temporary folder)")
    parser.add_argument("--no-sweep", action="store_true",
                        help=f"skip the lane sweep and Yosys tables (1, 3); the full-size core then has P={FULL_LANES}")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    plan = None
    if not args.no_sweep:
        sweep, plan = lane_sweep(args.timesteps, args.cache_dir)
        print(sweep, end="\n\n", flush=True)
    if args.sim != "none":
        names = [n for n in args.sim.split(",") if n]
        options = {"cocotb": [n for n in args.cocotb.split(",") if n],
                   "full_lanes": plan.lanes if plan else FULL_LANES, "rounds": args.rounds}
        with contextlib.ExitStack() as stack:
            cache = args.sim_cache_dir or stack.enter_context(tempfile.TemporaryDirectory(prefix="lstmfpga-bench-sim-"))
            print(simulations(names, args.timesteps, Path(cache), **options), end="\n\n", flush=True)
    if args.opt:
        levels = [level for level in args.opt.split(",") if level]
        with tempfile.TemporaryDirectory(prefix="lstmfpga-bench-opt-") as tmp:
            print(harness_opt_table(args.opt_core, args.timesteps, Path(tmp), levels), end="\n\n", flush=True)
    if plan is not None:
        print(yosys_table(plan))
    print(f"\nbench wall time {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
