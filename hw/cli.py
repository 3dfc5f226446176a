"""Subcommands of the hw stage: ``lstmfpga hdl``, ``plan`` and ``timing``."""

from __future__ import annotations

from lstmfpga.foundation.hw.config import (
    COLUMN_SETS,
    DDR_WIDTHS,
    MODES,
    STREAM_WIDTHS,
    TAIL_UNITS,
    WEIGHT_PORTS,
    WEIGHT_RESIDENCIES,
)
from lstmfpga.foundation.hw.packed_mac_model import DSP_SHAPES
from lstmfpga.hw.boards import FAMILIES
from lstmfpga.hw.plan_cli import register_plan


def add_core_arguments(parser) -> None:
    """The arguments that fix a core: the model whose shape it takes, lanes, packing, column sets,
    stream width, mode, largest T."""
    parser.add_argument("--model", required=True, help="integer artifact (.npz) or Brevitas QONNX file")
    parser.add_argument("--lanes", type=int, required=True, help="MAC lanes P (a multiple of 4 x column sets)")
    add_packing_argument(parser)
    add_ddr_arguments(parser)
    parser.add_argument("--stream-width", type=int, choices=STREAM_WIDTHS, default=32,
                        help="AXI-Stream TDATA bits (default 32)")
    parser.add_argument("--mode", choices=MODES, default="full",
                        help="full: W_x·x on chip; split: the host streams layer-0 pre-activations")
    parser.add_argument("--max-timesteps", type=int, default=24, help="largest T the core accepts (1-24)")


def add_packing_argument(parser) -> None:
    """``--macs-per-dsp``: gate rows sharing one multiplier (default 1, no packing), laid out for
    ``--packing-dsp`` (default DSP48E2); ``--column-sets``:
    lane sets each taking every S-th column (default 1); ``--tail-units``: hidden units the tail
    finishes a cycle (default 1); ``--weight-ports``: read ports of the weight memory (default 1),
    ``--fold-lanes``/``--fold-rows``: the part of it on both (default all), ``--lutram-upper-lanes``:
    how many folded lanes' other rows sit in LUTs."""
    parser.add_argument("--macs-per-dsp", type=int, default=1,
                        help="gate rows packed into one multiplier (default 1; at most what the "
                             "weight and activation widths allow, e.g. 2 for 4-bit x 8-bit)")
    parser.add_argument("--packing-dsp", choices=tuple(DSP_SHAPES), default="DSP48E2",
                        help="the multiplier the packed rows and the requantizers' partial products are laid out "
                             "for (default DSP48E2, UltraScale+; DSP48E1 for the 7-series, whose 25-bit port a "
                             "DSP48E2 packing overflows; MULT18X18D for the ECP5; what `plan` picks for the board)")
    parser.add_argument("--column-sets", type=int, default=1, metavar=f"{{{COLUMN_SETS[0]}..{COLUMN_SETS[-1]}}}",
                        help="column sets S: the lanes are S sets of P/S gate rows, set s taking every S-th "
                             "column from s, their sums added (default 1; in full mode at most stream width / 8)")
    parser.add_argument("--tail-units", type=int, default=1, choices=TAIL_UNITS,
                        help="hidden units the tail finishes a cycle (default 1; 2 needs --column-sets >= 2 "
                             "and lanes a multiple of 8 x column sets)")
    parser.add_argument("--weight-ports", type=int, default=1, choices=WEIGHT_PORTS,
                        help="read ports of the weight memory (default 1; 2 reads a row's halves through both "
                             "ports of a true-dual-port RAM: twice an UltraRAM's width, what `plan` picks when "
                             "the weight memory is too wide for one port)")
    parser.add_argument("--fold-lanes", type=int, default=0,
                        help="with --weight-ports 2: the lanes whose weights sit on both ports (even; default 0 = "
                             "all), the others' on a one-port RAM")
    parser.add_argument("--fold-rows", type=int, default=0,
                        help="with --weight-ports 2: the rows those lanes hold on both ports (a power of two; "
                             "default 0 = all), the others on a one-port RAM; `plan` folds 2048 rows (half an "
                             "UltraRAM) of the lanes the UltraRAMs hold when the memory is deeper")
    parser.add_argument("--lutram-upper-lanes", type=int, default=0,
                        help="with --weight-ports 2: of the folded lanes' rows past --fold-rows, those of the first N "
                             "lanes (even) in distributed (LUT) RAM (ram_style \"distributed\"; default 0); `plan` "
                             "picks it where the block RAM binds and LUTs are spare")


def add_ddr_arguments(parser) -> None:
    """``--weight-residency`` (weights on chip, or in DDR through an AXI4 master) and the
    read port's ``--ddr-width``, ``--ddr-burst``, ``--ddr-outstanding``, and ``--max-batch``."""
    parser.add_argument("--weight-residency", choices=WEIGHT_RESIDENCIES, default="chip",
                        help="chip: every weight row in on-chip memory (default); stream: every row in DDR, "
                             "fetched through the m_axi read port each step into a double buffer of two row "
                             "groups; all: every row in DDR, each layer's W_x fetched once a run for an input "
                             "pass over all steps, W_h each step; wx: the same input pass, W_h on chip (all and wx "
                             "in full mode; what `plan --residency X` sizes)")
    parser.add_argument("--ddr-width", type=int, choices=DDR_WIDTHS, default=128,
                        help="m_axi data bits (default 128; 64 on the Zynq-7000 HP ports)")
    parser.add_argument("--ddr-burst", type=int, default=16,
                        help="longest m_axi burst in beats (1-256; default 16, the AXI3 limit of Zynq-7000)")
    parser.add_argument("--ddr-outstanding", type=int, default=8, help="m_axi bursts in flight (1-64; default 8)")
    parser.add_argument("--max-batch", type=int, default=1,
                        help="most sequences one run holds (BATCH register, 1..this), each fetched row group "
                             "serving them all: DDR traffic per sequence falls by the batch (weights in DDR; "
                             "default 1)")


def ddr_options(args) -> dict:
    """The :class:`AcceleratorConfig` fields of :func:`add_ddr_arguments`."""
    return {"weight_residency": args.weight_residency, "ddr_width": args.ddr_width, "ddr_burst": args.ddr_burst,
            "ddr_outstanding": args.ddr_outstanding, "max_batch": args.max_batch}


def fold_options(args) -> dict:
    """The weight memory's fold fields of :func:`add_packing_argument`."""
    return {"fold_lanes": args.fold_lanes, "fold_rows": args.fold_rows, "lutram_upper_lanes": args.lutram_upper_lanes}


def fold_words(config) -> str:
    """The fold fields of ``config`` as the commands print them ("" when the memory is not folded)."""
    folded = config.fold_lanes or config.fold_rows
    words = f"fold_lanes={config.fold_lanes} fold_rows={config.fold_rows} " if folded else ""
    return words + (f"lutram_upper_lanes={config.lutram_upper_lanes} " if config.lutram_upper_lanes else "")


def core_config(args):
    """(artifact, AcceleratorConfig) of the arguments :func:`add_core_arguments` added."""
    from lstmfpga.foundation.hw.config import AcceleratorConfig
    from lstmfpga.quant.model_file import load_model

    artifact = load_model(args.model)
    return artifact, AcceleratorConfig.from_artifact(artifact, lanes=args.lanes, mode=args.mode,
                                                     max_timesteps=args.max_timesteps,
                                                     macs_per_dsp=args.macs_per_dsp, packing_dsp=args.packing_dsp,
                                                     column_sets=args.column_sets, tail_units=args.tail_units,
                                                     weight_ports=args.weight_ports, **fold_options(args),
                                                     stream_width=args.stream_width, **ddr_options(args))


def register(subparsers) -> None:
    """Add this stage's subcommands to the ``lstmfpga`` parser."""
    p = subparsers.add_parser(
        "hdl", help="generate the accelerator's Verilog and manifest for a model's shape",
        description="Write lstm_accel.v and manifest.json (parameters, register map, stream formats, "
                    "cycle model) for the shape of MODEL. Weights are loaded at run time.")
    add_core_arguments(p)
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--weight-image", action="store_true",
                   help="also write weights.bin, the model's weight image (little-endian 32-bit words)")
    p.set_defaults(handler=_hdl)
    register_plan(subparsers)
    t = subparsers.add_parser(
        "timing", help="place and route the core on an ECP5 (open tools) and print Fmax and the critical path",
        description="Generate the core for MODEL's shape, run Yosys synth_ecp5 and nextpnr-ecp5 "
                    "(--85k --package CABGA381) and print the achieved Fmax and the critical path; "
                    "also Yosys synth_xilinx cell counts for a Xilinx family.")
    add_core_arguments(t)
    t.add_argument("--family", choices=(*FAMILIES, "none"), default="xcup",
                   help="Yosys synth_xilinx family for the cell counts ('none' skips them)")
    t.add_argument("--out", help="keep the Verilog, logs and nextpnr report in this folder")
    t.add_argument("--fabric-registers", action="store_true",
                   help="leave the multipliers' operand and product registers in the fabric (by default they"
                        " move into the MULT18X18D, as Lattice's synthesis places them)")
    t.add_argument("--fabric-ram-registers", action="store_true",
                   help="leave the registers after block RAM reads in the fabric (by default they become the"
                        " DP16KD's output registers, as Lattice's synthesis places them)")
    t.set_defaults(handler=_timing)


def _hdl(args) -> int:
    from pathlib import Path

    from lstmfpga.hw.cycle_model import estimate
    from lstmfpga.hw.generate import generate_verilog
    from lstmfpga.hw.manifest import TOP_NAME

    artifact, config = core_config(args)
    manifest = generate_verilog(config, args.out, artifact=artifact)
    if args.weight_image:
        from lstmfpga.foundation.hw.weight_image import build_weight_image

        (Path(args.out) / "weights.bin").write_bytes(build_weight_image(artifact, config).astype("<u4").tobytes())
    est = estimate(config, config.max_timesteps)
    print(f"wrote {manifest.parent / (TOP_NAME + '.v')} and {manifest}")
    print(f"shape I={config.input_size} H={config.hidden_size} L={config.num_layers} P={config.lanes} "
          f"macs_per_dsp={config.macs_per_dsp} packing_dsp={config.packing_dsp} mode={config.mode} "
          f"column_sets={config.column_sets} "
          f"tail_units={config.tail_units} weight_ports={config.weight_ports} "
          + fold_words(config)
          + f"stream_width={config.stream_width} weight_bits={config.weight_bits} classes={config.num_classes}")
    if config.ddr_weights:
        from lstmfpga.foundation.hw.ddr_image import layer_offsets

        print(f"weights in DDR ({config.weight_residency}): {config.ddr_width}-bit m_axi, bursts <= {config.ddr_burst}, "
              f"{config.ddr_outstanding} in flight; DDR image {layer_offsets(config, config.ddr_width)[-1]:,} bytes "
              f"(the driver places it and writes DDR_BASE/DDR_LENGTH)"
              + (f"; batches of up to {config.max_batch} sequences (BATCH)" if config.max_batch > 1 else ""))
    print(f"cycle model T={est.timesteps}: {est.compute_cycles} compute cycles "
          f"({est.cycles_per_step:.1f}/step), MAC utilisation {est.utilization:.1%}"
          + (" with an ideal memory (a lower bound; `lstmfpga plan --residency` times a board's DDR)"
             if config.ddr_weights else ""))
    return 0


def _timing(args) -> int:
    import tempfile
    from pathlib import Path

    from lstmfpga.hw.timing import ECP5_DSP, core_timing

    _, config = core_config(args)
    with tempfile.TemporaryDirectory(prefix="lstmfpga-timing-") as scratch:
        out = args.out or scratch
        result = core_timing(config, work_dir=out, keep_dir=args.out, dsp_registers=not args.fabric_registers,
                             ram_registers=not args.fabric_ram_registers)
        print(f"shape I={config.input_size} H={config.hidden_size} L={config.num_layers} P={config.lanes} "
              f"macs_per_dsp={config.macs_per_dsp} column_sets={config.column_sets} tail_units={config.tail_units} "
              f"mode={config.mode} "
              f"weight_bits={config.weight_bits}, laid out for the ECP5's {ECP5_DSP}")
        print("\n".join(result.describe()))
        if args.family != "none":
            from lstmfpga.foundation.hw.packed_mac_model import DSP_OF_FAMILY
            from lstmfpga.hw.yosys_synth import synthesize_core

            synth = synthesize_core(config, family=args.family, work_dir=Path(out) / args.family)
            r = synth.resources
            print(f"synth_xilinx -family {args.family}, laid out for its {DSP_OF_FAMILY[args.family].name}: "
                  f"{r.dsp} DSP, {r.lut} LUT, {r.ff} FF, {r.bram36:g} BRAM36, "
                  f"{r.uram} URAM ({synth.seconds:.0f} s{', cached' if synth.cached else ''})")
    return 0

