"""What of a packed MAC unit a DSP48E2 holds but Yosys's ``-family xcup`` netlist leaves in the fabric.

:class:`~lstmfpga.hw.rtl.packed_mac.PackedMac` is written in the shape of one DSP slice: A and B
registers, the product in M, and the accumulator ``P <= (start ? bias : P) + M`` in P.  On ``xc7``
Yosys's ``xilinx_dsp`` moves all of it into a DSP48E1 (no flip-flop of those names is left).  On
``xcup`` it maps only the multiply into the DSP48E2: the four registers stay flip-flops and the
accumulator's adder stays one LUT per bit of P on a carry chain, though a DSP48E2 has those
registers and its ALU adds P (or C, the bias) to M under a dynamic OPMODE just as a DSP48E1's does.
The plan's logic lines leave out what is counted here, as a DSP48E2 build would.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Mapping

from lstmfpga.hw.xilinx_cells import CARRY_CELLS, FLIP_FLOPS, OUTPUT_PORTS

#: The unit's accumulator (the P register).
DSP_ACCUMULATOR = "p_reg"
#: The unit's registers a DSP slice holds itself: A, B, M and P.
DSP_REGISTERS = ("a_reg", "b_reg", "m_reg", DSP_ACCUMULATOR)


@dataclasses.dataclass(frozen=True)
class DspFabric:
    """Cells of the packed units' DSP work found in the fabric.

    Attributes
    ----------
    ff : int
        Flip-flops whose output is one of :data:`DSP_REGISTERS`.
    lut : int
        LUTs that feed nothing but the accumulator: a P flip-flop's D pin, or a carry cell whose
        sums go to P flip-flops alone (the adder's half-sum LUTs).
    """

    ff: int
    lut: int


def _outputs(cell: Mapping) -> set[str]:
    directions = cell.get("port_directions")
    if directions:
        return {port for port, direction in directions.items() if direction == "output"}
    return set(OUTPUT_PORTS)


def _bits(cell: Mapping, ports) -> list[int]:
    return [bit for port in ports for bit in cell["connections"].get(port, []) if isinstance(bit, int)]


def dsp_fabric(module: Mapping) -> DspFabric:
    """Count :class:`DspFabric` in one flattened module of a Yosys ``write_json`` netlist (its
    ``netnames`` and ``cells``); a register is known by the last component of any of its bit's
    names.  Raises ``KeyError``/``TypeError`` on a module without those fields."""
    names, cells = module["netnames"], module["cells"]
    last = collections.defaultdict(set)
    for name, net in names.items():
        for bit in net["bits"]:
            if isinstance(bit, int):
                last[bit].add(name.rsplit(".", 1)[-1])
    flops = {key: cell for key, cell in cells.items() if cell["type"] in FLIP_FLOPS
             and not last[cell["connections"].get("Q", [None])[0]].isdisjoint(DSP_REGISTERS)}
    accumulator_d = {(key, "D") for key, cell in flops.items()
                     if DSP_ACCUMULATOR in last[cell["connections"]["Q"][0]]}
    sinks = collections.defaultdict(set)
    for key, cell in cells.items():
        outputs = _outputs(cell)
        for port, bits in cell["connections"].items():
            if port not in outputs:
                for bit in bits:
                    if isinstance(bit, int):
                        sinks[bit].add((key, port))
    adders = {key for key, cell in cells.items() if cell["type"] in CARRY_CELLS
              and any(sinks[bit] for bit in _bits(cell, ["O"]))
              and all(sinks[bit] <= accumulator_d for bit in _bits(cell, ["O"]))}
    accumulator_inputs = accumulator_d | {(key, "S") for key in adders}

    def feeds_accumulator_only(cell) -> bool:
        reached = [sinks[bit] for bit in _bits(cell, _outputs(cell))]
        return any(reached) and all(found <= accumulator_inputs for found in reached)

    luts = sum(1 for cell in cells.values() if cell["type"].startswith("LUT") and feeds_accumulator_only(cell))
    return DspFabric(ff=len(flops), lut=luts)
