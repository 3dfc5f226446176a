"""Subcommands of the sim stage: ``lstmfpga golden`` (NumPy golden models) and ``lstmfpga verify``."""

from __future__ import annotations


def register(subparsers) -> None:
    """Add this stage's subcommands to the ``lstmfpga`` parser."""
    from lstmfpga.foundation.hw.config import MODES, STREAM_WIDTHS
    from lstmfpga.hw.cli import add_ddr_arguments, add_packing_argument
    from lstmfpga.sim.golden.cli import register as register_golden
    from lstmfpga.sim.rtl_check import SIMULATORS

    register_golden(subparsers)
    p = subparsers.add_parser(
        "verify", help="check the generated RTL bit-exact against the integer golden (Verilator)",
        description="Generate the core for MODEL's shape, build it under Verilator, load MODEL's weight "
                    "image over AXI-Stream and compare every output of N random sequences with the "
                    "integer golden model, under random stream idle and backpressure.")
    p.add_argument("--model", required=True, help="integer artifact (.npz) or Brevitas QONNX file")
    p.add_argument("--lanes", type=int, required=True, help="MAC lanes P (a multiple of 4 x column sets)")
    add_packing_argument(p)
    add_ddr_arguments(p)
    p.add_argument("--stream-width", type=int, choices=STREAM_WIDTHS, default=32,
                   help="AXI-Stream TDATA bits (default 32)")
    p.add_argument("--mode", choices=MODES, default="full")
    p.add_argument("--sequences", type=int, default=20, help="random sequences to run (default 20)")
    p.add_argument("--timesteps", type=int, default=None,
                   help="fixed T for every sequence (default: random in 1..max, including 1 and max)")
    p.add_argument("--max-timesteps", type=int, default=24)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--build-dir", default=None,
                   help="where Verilator builds are cached (default: ~/.cache/lstmfpga/verilator)")
    p.add_argument("--simulator", choices=SIMULATORS, default="harness",
                   help="harness: the compiled C++ harness (default); cocotb: the cocotb bench, Python per clock")
    p.add_argument("--jobs", type=int, default=1,
                   help="harness processes sharing the sequences (independent cores; default 1)")
    p.set_defaults(handler=_verify)


def _report_harness_build(config, cache) -> None:
    """Build (or find) the harness first and say what it cost: full-size cores take minutes."""
    import time

    from lstmfpga.sim import verilator

    started = time.perf_counter()
    library = verilator.build_harness(config, cache)
    took = time.perf_counter() - started
    build = verilator.harness_build_seconds(library)
    if took < build / 2:
        print(f"harness: cached in {library.parent} (built earlier in {build:.0f} s)", flush=True)
    else:
        print(f"harness: built in {took:.0f} s (Verilog {took - build:.0f} s, Verilator + C++ {build:.0f} s), "
              f"cached in {library.parent}", flush=True)


def _verify(args) -> int:
    import tempfile
    import time
    from pathlib import Path

    import numpy as np

    from lstmfpga.foundation.errors import ConfigError, InputError
    from lstmfpga.foundation.hw.config import AcceleratorConfig
    from lstmfpga.hw.cli import ddr_options, fold_options, fold_words
    from lstmfpga.quant.model_file import load_model
    from lstmfpga.sim.rtl_check import Sequence, random_codes, run_sequences, summarize
    from lstmfpga.sim.verilator import DEFAULT_CACHE

    if args.sequences < 1:
        raise InputError(f"--sequences must be at least 1, not {args.sequences}")
    if args.jobs < 1:
        raise InputError(f"--jobs must be at least 1, not {args.jobs}")
    if args.jobs > 1 and args.simulator != "harness":
        raise InputError("--jobs runs harness processes; the cocotb bench runs one simulation")
    artifact = load_model(args.model)
    config = AcceleratorConfig.from_artifact(artifact, lanes=args.lanes, mode=args.mode,
                                             max_timesteps=args.max_timesteps, macs_per_dsp=args.macs_per_dsp,
                                             packing_dsp=args.packing_dsp,
                                             column_sets=args.column_sets, tail_units=args.tail_units,
                                             weight_ports=args.weight_ports, **fold_options(args),
                                             stream_width=args.stream_width, **ddr_options(args))
    if args.timesteps is not None and not 1 <= args.timesteps <= config.max_timesteps:
        raise InputError(f"--timesteps must be in [1, {config.max_timesteps}], not {args.timesteps}")
    rng = np.random.default_rng(args.seed)
    if args.timesteps is not None:
        steps = [args.timesteps] * args.sequences
    else:
        steps = [1, config.max_timesteps] + rng.integers(1, config.max_timesteps + 1, size=args.sequences).tolist()
        steps = steps[: args.sequences]
    sequences = [Sequence(0, random_codes(artifact, rng, int(T))) for T in steps]
    cache = Path(args.build_dir) if args.build_dir else DEFAULT_CACHE
    print(f"building/simulating I={config.input_size} H={config.hidden_size} L={config.num_layers} "
          f"P={config.lanes} macs_per_dsp={config.macs_per_dsp} column_sets={config.column_sets} "
          f"tail_units={config.tail_units} weight_ports={config.weight_ports} "
          + fold_words(config)
          + f"weights={config.weight_residency} "
          f"stream={config.stream_width} mode={config.mode} "
          + (f"batches of up to {config.max_batch} " if config.max_batch > 1 else "")
          + f"({len(sequences)} sequences, "
          f"{args.simulator})...", flush=True)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="lstmfpga-verify-") as work:
        try:
            if args.simulator == "harness":
                _report_harness_build(config, cache)
            results = run_sequences(config, [artifact], sequences, cache_dir=cache, work_dir=Path(work),
                                    seed=args.seed, simulator=args.simulator,
                                    **({"jobs": args.jobs} if args.simulator == "harness" else {}))
        except RuntimeError as exc:
            raise ConfigError(f"Verilator build or simulation failed (build cache {cache}): {exc}") from None
    summary = summarize(results)
    drift = []
    for run in results["runs"]:
        if run["ok"]:
            model = _model_cycles(config, run)
            drift.append(abs(run["cycles"] - model) / model)
    print(f"sequences: {summary['total']}  bit-exact: {summary['passed']}  mismatched: {summary['failed']}")
    if drift:
        what = "the DDR schedule (stall-free input assumed)" if config.ddr_weights else "cycle model"
        print(f"CYCLES vs {what}: worst deviation {max(drift):.2%}")
    for run in results["runs"]:
        if not run["ok"]:
            what = f"batch {run['index']} (T={run['T']}, B={run['B']})" if run.get("B", 1) > 1 else \
                f"sequence {run['index']} (T={run['T']})"
            print(f"  {what}: mismatch, ERROR=0x{run['error']:x}")
    print(f"wall time {time.perf_counter() - started:.1f} s (build included)")
    print("PASS" if summary["failed"] == 0 else "FAIL")
    return 0 if summary["failed"] == 0 else 1


def _model_cycles(config, run: dict) -> int:
    """CYCLES the model gives a verified run: the on-chip core's (with the input's arrivals), or
    with weights in DDR the DDR schedule's against the harness's default memory."""
    if not config.ddr_weights:
        from lstmfpga.hw.cycle_model import for_run

        return for_run(config, run).compute_cycles
    from lstmfpga.hw.ddr_schedule import estimate_ddr
    from lstmfpga.sim.harness.simulated_ddr import SimulatedDdr

    return estimate_ddr(config, run["T"], residency=config.weight_residency, batch=run.get("B", 1),
                        port=SimulatedDdr().port(config)).compute_cycles
