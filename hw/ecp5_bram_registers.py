"""Flip-flops after ECP5 block RAMs moved into the RAMs' own output registers.

Yosys ``synth_ecp5`` maps every memory to ``DP16KD`` blocks with ``REGMODE`` NOREG and leaves the
register that follows a synchronous read in the fabric, so a placed core pays the block's slow
clock-to-out (5.8 ns on the LFE5U-85F's default grade, most of an 8.3 ns cycle at 120 MHz) plus a
route to that register.  Lattice's own synthesis packs such a register into the block (``REGMODE``
OUTREG: the data leaves a flip-flop inside the block); :func:`absorb_bram_output_registers` does
the same on the Yosys JSON netlist between ``synth_ecp5`` and nextpnr, which times the ``DP16KD``
by its register mode.

A read port's register moves in only when every data bit the port drives has one load, a
flip-flop, and those flip-flops share the port's clock and one clock enable (which becomes the
port's output clock enable ``OCE``), and either have no set/reset or share one synchronous reset
without a clock enable (which becomes the port's ``RST``, the block's reset mode synchronous): the
output register's reset and enable are then those flip-flops' own.  A reset moves in only while
the block's other port does not use its ``RST``.
"""

from __future__ import annotations

import dataclasses

from lstmfpga.hw.ecp5_netlist import Netlist, param, plain_ff

BRAM = "DP16KD"


@dataclasses.dataclass(frozen=True)
class AbsorbedRam:
    """What :func:`absorb_bram_output_registers` moved: read ports given their output register,
    and the fabric flip-flops freed."""

    ports: int
    flip_flops_removed: int


def _reset_ff(cell: dict):
    """(clock net, reset net) of a flip-flop with a synchronous reset to 0 and no clock enable,
    or None."""
    connections = cell["connections"]
    lsr = connections.get("LSR", ["0"])[0]
    if not isinstance(lsr, int) or param(cell, "LSRMUX") not in ("LSR", "") or param(cell, "SRMODE") != "LSR_OVER_CE":
        return None
    if param(cell, "CLKMUX") not in ("CLK", "") or param(cell, "REGSET") not in ("RESET", ""):
        return None
    if not (param(cell, "CEMUX") == "1" or "CE" not in connections):
        return None
    return connections["CLK"][0], lsr


def absorb_bram_output_registers(netlist: dict) -> AbsorbedRam:
    """Give every ``DP16KD`` read port of a Yosys JSON ``netlist`` (modified in place) the register
    that follows it; see the module docstring for which registers qualify."""
    ports = removed = 0
    for module in netlist.get("modules", {}).values():
        net = Netlist(module)
        for name in sorted(n for n, c in module["cells"].items() if c["type"] == BRAM):
            cell = module["cells"][name]
            params, pins = cell.setdefault("parameters", {}), cell["connections"]
            for port, other in (("A", "B"), ("B", "A")):
                if param(cell, f"REGMODE_{port}") not in ("NOREG", ""):
                    continue
                group = net.register_after(cell, [f"DO{port}{i}" for i in range(18)])
                if group is None or pins.get(f"OCE{port}", ["1"]) != ["1"] or pins.get(f"RST{port}", ["0"]) != ["0"]:
                    continue
                if param(cell, f"CLK{port}MUX") not in (f"CLK{port}", ""):
                    continue
                clock = pins.get(f"CLK{port}", [None])[0]
                plain = [plain_ff(net.cells[ff]) for ff in group.values()]
                reset = [_reset_ff(net.cells[ff]) for ff in group.values()]
                if all(plain) and len(set(plain)) == 1 and plain[0][0] == clock:
                    enable, reset_net = plain[0][1], None
                elif (all(reset) and len(set(reset)) == 1 and reset[0][0] == clock
                      and pins.get(f"RST{other}", ["0"]) == ["0"]):
                    enable, reset_net = "1", reset[0][1]
                else:
                    continue
                for pin, ff in group.items():
                    q = net.cells[ff]["connections"]["Q"][0]
                    pins[pin] = [q]
                    net.driver[q] = (name, pin)
                    net.remove_ff(ff)
                    removed += 1
                params[f"REGMODE_{port}"] = "OUTREG"
                pins[f"OCE{port}"] = [enable]
                if reset_net is not None:
                    pins[f"RST{port}"] = [reset_net]
                    params["RESETMODE"] = "SYNC"
                ports += 1
    return AbsorbedRam(ports, removed)
