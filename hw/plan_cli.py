"""The ``lstmfpga plan`` subcommand (registered by :mod:`lstmfpga.hw.cli`)."""

from __future__ import annotations

from lstmfpga.foundation.hw.config import MODES, STREAM_WIDTHS
from lstmfpga.hw.boards import BOARD_KEYS


def register_plan(subparsers) -> None:
    """Add ``plan`` to the ``lstmfpga`` parser."""
    p = subparsers.add_parser(
        "plan", help="pick MAC lanes and partition mode that fit a board; estimate speed and resources",
        description="Choose the lane count P and the mode (full: W_x·x on chip; split: the host "
                    "computes layer 0's W_x·x) that fit BOARD, and print the estimated time per "
                    "timestep and per sequence and the resource table. Logic is measured with Yosys "
                    "on the generated Verilog at small P and extrapolated; memory is computed from the "
                    "design's memories at the real shape. Yosys results are cached.")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="integer artifact (.npz) or Brevitas QONNX file")
    source.add_argument("--shape", metavar="I,H,L,WBITS",
                        help="plan a bare shape instead of a model, e.g. 2048,512,1,4")
    source.add_argument("--sweep-seed", action="store_true",
                        help="plan the study's whole grid (LSTM units × layers of the seed search space, "
                             "I=2048) and time it at each of its sequence lengths")
    p.add_argument("--weight-bits", type=int, default=4, help="weight bits of the --sweep-seed shapes (default 4)")
    p.add_argument("--board", required=True, choices=BOARD_KEYS, type=str.lower)
    p.add_argument("--clock-mhz", type=float, default=None,
                   help="fabric clock (default: the board's assumed clock)")
    p.add_argument("--mode", choices=(*MODES, "auto"), default="auto",
                   help="auto: full when it fits, else split (default)")
    p.add_argument("--timesteps", type=int, default=16, help="T of the per-sequence estimate (default 16)")
    p.add_argument("--macs-per-dsp", default="auto", metavar="K|auto",
                   help="gate rows packed into one DSP (default auto: the most the weight and activation "
                        "widths allow on the board's DSPs)")
    p.add_argument("--column-sets", default="auto", metavar="S|auto",
                   help="column sets of the core (1 to 16; default auto: the cycle model picks among "
                        "those the stream width allows)")
    p.add_argument("--tail-units", type=int, choices=(1, 2), default=1,
                   help="hidden units the tail finishes a cycle (default 1; 2 halves a step's tail time, "
                        "what binds split mode, with column sets >= 2)")
    p.add_argument("--stream-width", type=int, choices=STREAM_WIDTHS, default=None,
                   help="AXI-Stream TDATA bits of the core (default: the width of the board's HP ports, "
                        "128 on Zynq UltraScale+, 64 on Zynq-7000)")
    p.add_argument("--residency", choices=("auto", "rtl", "chip", "wx", "all", "stream"), default="auto",
                   help="where the weights live: chip, wx (W_x in DDR, input pass over all steps), all (W_x and "
                        "W_h in DDR), stream (every row from DDR each step); default auto: on chip when they "
                        "fit, else the DDR residency --rank prefers; rtl: the same among what the RTL builds (today "
                        "every residency)")
    # lstmfpga.hw.plan.RANKS, not imported here: that module loads Amaranth
    p.add_argument("--rank", choices=("latency", "throughput"), default="latency",
                   help="how a DDR plan is chosen among the residencies: latency (default: the fastest "
                        "sequence) or throughput (the most sequences a second: a larger batch may win at a "
                        "longer latency)")
    p.add_argument("--batch", default="auto", metavar="B|auto",
                   help="sequences run through each fetched weight row of a DDR plan (default auto: the most "
                        "that keep one sequence's latency)")
    p.add_argument("--ddr-gbps", type=float, default=None,
                   help="sustained DDR read bandwidth in GB/s (default: the board's peak x 0.75)")
    p.add_argument("--sample-lanes", default="8,16", metavar="P1,P2[,...]",
                   help="lane counts of the Yosys proxy runs (default 8,16)")
    p.add_argument("--cache-dir", default=None, help="Yosys result cache (default: user cache folder)")
    p.add_argument("--no-compare", action="store_true",
                   help="do not size split mode for comparison when full mode is chosen")
    p.set_defaults(handler=_plan)


def _sample_lanes(text: str) -> tuple[int, ...]:
    from lstmfpga.foundation.errors import ConfigError

    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise ConfigError(f"--sample-lanes must be comma-separated integers, not {text!r}") from None


def _int_or_auto(text: str, flag: str) -> int | str:
    from lstmfpga.foundation.errors import ConfigError

    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise ConfigError(f"{flag} must be an integer or auto, not {text!r}") from None


def _plan(args) -> int:
    import dataclasses
    from pathlib import Path

    from lstmfpga.foundation.errors import ConfigError
    from lstmfpga.hw.boards import get_board
    from lstmfpga.hw.plan import make_plan, parse_shape, shape_config

    if args.cache_dir is not None and Path(args.cache_dir).exists() and not Path(args.cache_dir).is_dir():
        # Refused now, not after minutes of synthesis when the first result is cached.
        raise ConfigError(f"--cache-dir {args.cache_dir} is not a folder")
    if args.sweep_seed:
        return _sweep_seed(args)
    if args.model is not None:
        from lstmfpga.foundation.hw.config import AcceleratorConfig
        from lstmfpga.quant.model_file import load_model

        template = AcceleratorConfig.from_artifact(load_model(args.model), lanes=4)
    else:
        template = shape_config(**parse_shape(args.shape))
    board = get_board(args.board)
    template = dataclasses.replace(template, stream_width=args.stream_width or board.hp_width)
    plan = make_plan(template, board, clock_mhz=args.clock_mhz, mode=args.mode,
                     timesteps=args.timesteps, macs_per_dsp=_int_or_auto(args.macs_per_dsp, "--macs-per-dsp"),
                     column_sets=_int_or_auto(args.column_sets, "--column-sets"), tail_units=args.tail_units,
                     sample_lanes=_sample_lanes(args.sample_lanes), residency=args.residency,
                     batch=_int_or_auto(args.batch, "--batch"), ddr_gbps=args.ddr_gbps, rank=args.rank,
                     cache_dir=args.cache_dir, progress=True, compare=not args.no_compare)
    print(plan.report())
    return 0


def _sweep_seed(args) -> int:
    from lstmfpga.foundation.validation import check_integer
    from lstmfpga.hw.boards import get_board
    from lstmfpga.hw.plan_sweep import sweep, sweep_table
    from lstmfpga.model.search_space import SEED_SPACE

    check_integer("--weight-bits", args.weight_bits, low=2, high=8)
    if args.batch != "auto":
        from lstmfpga.foundation.errors import ConfigError

        raise ConfigError("--batch sets one plan's batch; --sweep-seed picks each shape's own")
    board = get_board(args.board)
    rows = sweep(board, units=SEED_SPACE["hidden"], layers=SEED_SPACE["layers"],
                 timesteps=SEED_SPACE["frames"], weight_bits=args.weight_bits, clock_mhz=args.clock_mhz,
                 stream_width=args.stream_width, residency=args.residency, ddr_gbps=args.ddr_gbps,
                 cache_dir=args.cache_dir, progress=True, rank=args.rank)
    print(sweep_table(board, rows))
    return 0
