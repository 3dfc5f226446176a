"""MAC-lane utilisation of the accelerator: cycle model at full size, Verilator at a scaled size.

    python bench/hw_utilization.py [--sim-size scaled|full|none] [--timesteps 24]

For H=512, I=2048 (the seed's smallest LSTM on ResNet-50 features), 4-bit weights, P = 512 and
1024 lanes, both modes, prints the cycle model's compute cycles per run of T steps, the ideal
4·H·K/P cycles, the utilisation (ideal ÷ cycles), and a no-overlap baseline computed in the same run
(the tail drains each group before the lanes start the next: the design without the shadow bank).
Then it simulates configurations under Verilator for one T-step sequence (bit-exact check
included) and prints measured CYCLES against the model.  ``--sim-size full`` simulates the full
H=512, I=2048, P=1024 core (a long Verilator build); ``scaled`` keeps the same group structure
(4H/P = 2) at I=256, H=64, P=128.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def _no_overlap_cycles(config, T: int) -> int:
    from lstmfpga.hw import cycle_model as cm

    total = 0
    for layer in range(config.num_layers):
        per_group = config.issued_columns(layer) + cm.engine_latency(config) + config.units_per_group + cm.TAIL_LATENCY
        total += T * config.groups * per_group
    return total


def model_rows(shapes, T: int) -> list[dict]:
    from lstmfpga.foundation.hw.config import AcceleratorConfig
    from lstmfpga.hw.cycle_model import estimate

    rows = []
    for I, H, P, mode in shapes:
        config = AcceleratorConfig(input_size=I, hidden_size=H, lanes=P, mode=mode, weight_bits=4, num_classes=2)
        est = estimate(config, T)
        base = _no_overlap_cycles(config, T)
        rows.append({"I": I, "H": H, "P": P, "mode": mode, "T": T, "ideal": est.ideal_cycles,
                     "model": est.compute_cycles, "utilization": est.utilization,
                     "no_overlap": base, "speedup": base / est.compute_cycles,
                     "per_step": est.cycles_per_step})
    return rows


def simulate_rows(shapes, T: int, cache_dir: Path) -> list[dict]:
    from lstmfpga.foundation.hw.config import AcceleratorConfig
    from lstmfpga.hw.cycle_model import estimate
    from lstmfpga.sim.golden.random_artifact import random_artifact
    from lstmfpga.sim.rtl_check import Sequence, random_codes, run_sequences

    rows = []
    for I, H, P, mode in shapes:
        art = random_artifact(input_size=I, hidden_size=H, num_layers=1, num_classes=2, weight_bits=4, seed=1)
        config = AcceleratorConfig.from_artifact(art, lanes=P, mode=mode)
        seq = Sequence(0, random_codes(art, np.random.default_rng(0), T))
        start = time.perf_counter()
        with tempfile.TemporaryDirectory() as work:
            res = run_sequences(config, [art], [seq], cache_dir=cache_dir, work_dir=Path(work),
                                input_pause=0.0, output_pause=0.0)
        run = res["runs"][0]
        est = estimate(config, T)
        rows.append({"I": I, "H": H, "P": P, "mode": mode, "T": T, "ideal": est.ideal_cycles,
                     "measured": run["cycles"], "model": est.compute_cycles,
                     "model_error": (est.compute_cycles - run["cycles"]) / run["cycles"],
                     "utilization": est.ideal_cycles / run["cycles"], "bit_exact": run["ok"],
                     "wall_s": time.perf_counter() - start})
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--timesteps", type=int, default=24)
    p.add_argument("--sim-size", choices=("scaled", "full", "none"), default="scaled")
    p.add_argument("--cache-dir", default=None, help="Verilator build cache (default: a temporary folder)")
    args = p.parse_args(argv)
    T = args.timesteps

    full = [(2048, 512, P, mode) for P in (512, 1024) for mode in ("full", "split")]
    print(f"cycle model, T={T}, 4-bit weights, 1 layer")
    print(f"{'I':>5} {'H':>4} {'P':>5} {'mode':>6} {'ideal':>9} {'model':>9} {'util':>7} "
          f"{'no-overlap':>10} {'speedup':>7}")
    for r in model_rows(full, T):
        print(f"{r['I']:>5} {r['H']:>4} {r['P']:>5} {r['mode']:>6} {r['ideal']:>9.0f} {r['model']:>9} "
              f"{r['utilization']:>7.2%} {r['no_overlap']:>10} {r['speedup']:>6.2f}x")
    if args.sim_size == "none":
        return 0
    sims = ([(256, 64, 128, "full"), (256, 64, 128, "split")] if args.sim_size == "scaled"
            else [(2048, 512, 1024, "full"), (2048, 512, 1024, "split")])
    cache = Path(args.cache_dir) if args.cache_dir else Path(tempfile.mkdtemp(prefix="lstmfpga-bench-"))
    print(f"\nVerilator, T={T} (CYCLES register vs cycle model)")
    print(f"{'I':>5} {'H':>4} {'P':>5} {'mode':>6} {'ideal':>9} {'measured':>9} {'model':>9} {'model err':>9} "
          f"{'util':>7} {'exact':>5} {'wall s':>7}")
    for shape in sims:  # one row at a time: a full-size build takes long, keep what finished
        r = simulate_rows([shape], T, cache)[0]
        print(f"{r['I']:>5} {r['H']:>4} {r['P']:>5} {r['mode']:>6} {r['ideal']:>9.0f} {r['measured']:>9} "
              f"{r['model']:>9} {r['model_error']:>9.3%} {r['utilization']:>7.2%} {str(r['bit_exact']):>5} "
              f"{r['wall_s']:>7.1f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
