"""Timing evidence: the generated core placed and routed on an ECP5 with the open tools.

    python bench/timing.py [--lanes 16 64] [--input-size 64] [--hidden-size 32] [--family xcup]
                           [--fabric-registers] [--fabric-ram-registers] [--seed N]

For each lane count: Yosys ``synth_ecp5`` + nextpnr-ecp5 (``--85k --package CABGA381``) on the
generated core (4-bit weights, 8-bit activations, two classes; its multiplies laid out for the
MULT18X18D, their operand and product registers moved into it and each block RAM read's register
into the DP16KD's output register, as Lattice's synthesis does, unless ``--fabric-registers`` /
``--fabric-ram-registers``), the achieved Fmax, its ratio to the 120 MHz goal and to the first row's
Fmax (same run), the critical path's logic/routing split and endpoints, and Yosys
``synth_xilinx`` cell counts of the core laid out for the family's DSP (DSP48E2 per MAC lane at
one MAC per DSP).
"""

from __future__ import annotations

import argparse
import tempfile

GOAL_MHZ = 120.0


def main() -> None:
    from lstmfpga.foundation.hw.config import AcceleratorConfig
    from lstmfpga.hw.boards import FAMILIES
    from lstmfpga.hw.timing import core_timing
    from lstmfpga.hw.yosys_synth import synthesize_core

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lanes", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--input-size", type=int, default=64)
    parser.add_argument("--hidden-size", type=int, default=32)
    parser.add_argument("--family", choices=(*FAMILIES, "none"), default="xcup")
    parser.add_argument("--seed", type=int, default=1, help="nextpnr placement seed")
    parser.add_argument("--fabric-registers", action="store_true",
                        help="leave the multipliers' registers in the fabric (Yosys synth_ecp5 as it maps them)")
    parser.add_argument("--fabric-ram-registers", action="store_true",
                        help="leave the registers after block RAM reads in the fabric (Yosys synth_ecp5 as it maps them)")
    args = parser.parse_args()

    rows = []
    for lanes in args.lanes:
        config = AcceleratorConfig(input_size=args.input_size, hidden_size=args.hidden_size, lanes=lanes,
                                   weight_bits=4, num_classes=2)
        with tempfile.TemporaryDirectory(prefix="lstmfpga-timing-bench-") as work:
            result = core_timing(config, work_dir=work, seed=args.seed, dsp_registers=not args.fabric_registers,
                                 ram_registers=not args.fabric_ram_registers)
            cells = None
            if args.family != "none":
                cells = synthesize_core(config, family=args.family, work_dir=f"{work}/{args.family}").resources
        rows.append((config, result, cells))
        print(f"\n# I={config.input_size} H={config.hidden_size} P={lanes}")
        print("\n".join(result.describe()))

    first = rows[0][1].fmax_mhz
    print(f"\n| I | H | P | Fmax MHz | ÷ {GOAL_MHZ:.0f} MHz goal | ÷ first row | path ns (logic + routing) "
          f"| DSP | LUT | FF | P&R s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for config, result, cells in rows:
        dsp, lut, ff = (cells.dsp, cells.lut, cells.ff) if cells else ("-", "-", "-")
        print(f"| {config.input_size} | {config.hidden_size} | {config.lanes} | {result.fmax_mhz:.1f} "
              f"| {result.fmax_mhz / GOAL_MHZ:.2f} | {result.fmax_mhz / first:.2f} "
              f"| {result.logic_ns + result.routing_ns:.2f} ({result.logic_ns:.2f} + {result.routing_ns:.2f}) "
              f"| {dsp} | {lut} | {ff} | {result.seconds:.0f} |")


if __name__ == "__main__":
    main()
