"""Flip-flops around ECP5 multipliers moved into the multipliers' own registers.

Yosys ``synth_ecp5`` maps a multiply to a ``MULT18X18D`` with every register bypassed and leaves
the operand and product registers in the fabric (it absorbs DSP registers for Xilinx and Nexus,
not for ECP5), so a placed core pays a route from each fabric register into the DSP and out of
it again.  Lattice's own synthesis packs those registers into the block's input and output
registers; :func:`absorb_dsp_registers` does the same on the Yosys JSON netlist between
``synth_ecp5`` and nextpnr, which times the ``MULT18X18D`` by its register configuration.

A register group moves in only when it is a plain D flip-flop bank on one clock, with one clock
enable (or none) and no set/reset: the datapath registers of the MAC lanes are ``reset_less`` for
this reason.  The two operand registers move in together or not at all: nextpnr-ecp5 does not
support a block with one input registered and times it as if neither were.  Operand registers that also feed other logic are copied into the block and stay in
the fabric for their other loads; a product bit with any load besides its register keeps the
whole product register in the fabric.
"""

from __future__ import annotations

import dataclasses

from lstmfpga.hw.ecp5_netlist import FF, Netlist, param, plain_ff

MULT = "MULT18X18D"
#: Operand letter → the block's register name; the product register is OUTPUT.
_REGISTERS = {"A": "INPUTA", "B": "INPUTB", "P": "OUTPUT"}


@dataclasses.dataclass(frozen=True)
class Absorbed:
    """What :func:`absorb_dsp_registers` moved: register groups and the fabric flip-flops freed."""

    multipliers: int
    operand_groups: int
    output_groups: int
    flip_flops_removed: int


def _clocking(groups) -> tuple | None:
    """The one clock net of ``groups`` (each a list of (clock, enable)), or None."""
    clocks = {clock for group in groups for clock, _ in group}
    return clocks.pop() if len(clocks) == 1 else None


def _operand(net: Netlist, name: str, cell: dict, letter: str):
    """The flip-flops driving operand ``letter``: {pin: ff name}, or None when not all are plain."""
    sources = {}
    for pin in (f"{letter}{i}" for i in range(18)):
        bit = cell["connections"].get(pin, ["0"])[0]
        if not isinstance(bit, int):
            continue
        driver = net.driver.get(bit)
        if driver is None or driver[1] != "Q" or net.cells[driver[0]]["type"] != FF:
            return None
        sources[pin] = driver[0]
    return sources or None


def _used(cell: dict, letter: str) -> bool:
    """Whether operand ``letter`` of a multiplier reads any net (not only constants)."""
    return any(isinstance(cell["connections"].get(f"{letter}{i}", ["0"])[0], int) for i in range(18))


def absorb_dsp_registers(netlist: dict) -> Absorbed:
    """Move operand and product registers into every ``MULT18X18D`` of a Yosys JSON ``netlist``
    (modified in place); see the module docstring for which registers qualify."""
    multipliers = operand_groups = output_groups = removed = 0
    for module in netlist.get("modules", {}).values():
        net = Netlist(module)
        for name in sorted(n for n, c in module["cells"].items() if c["type"] == MULT):
            cell = module["cells"][name]
            if any(param(cell, f"REG_{reg}_CLK") not in ("", "NONE") for reg in _REGISTERS.values()):
                continue
            groups = {letter: _operand(net, name, cell, letter) for letter in "AB"}
            groups["P"] = net.register_after(cell, [f"P{i}" for i in range(36)])
            styles = {key: [plain_ff(net.cells[ff]) for ff in g.values()] for key, g in groups.items() if g}
            styles = {key: s for key, s in styles.items()
                      if all(s) and len({enable for _, enable in s}) == 1}
            if any(_used(cell, letter) and letter not in styles for letter in "AB"):
                # nextpnr times a block with one input register as if it had none (it warns of
                # "unsupported mixed input register modes"), a false path through the multiplier:
                # both operand registers move in, or neither
                styles = {key: s for key, s in styles.items() if key == "P"}
            clock = _clocking(styles.values())
            if clock is None:
                continue
            multipliers += 1
            params, connections = cell.setdefault("parameters", {}), cell["connections"]
            directions = cell.setdefault("port_directions", {})
            enables = []
            for key, style in styles.items():
                enable = style[0][1]
                if enable not in enables:
                    enables.append(enable)
                ce = f"CE{enables.index(enable)}"      # three groups at most: CE0..CE2
                reg = _REGISTERS[key]
                params.update({f"REG_{reg}_CLK": "CLK0", f"REG_{reg}_CE": ce, f"REG_{reg}_RST": "RST0"})
                group = groups[key]
                if key == "P":
                    output_groups += 1
                    for pin, ff in group.items():
                        q = net.cells[ff]["connections"]["Q"][0]
                        connections[pin] = [q]
                        net.driver[q] = (name, pin)      # a later multiplier may read it as an operand
                        net.remove_ff(ff)
                        removed += 1
                    continue
                operand_groups += 1
                for pin, ff in group.items():
                    q = net.cells[ff]["connections"]["Q"][0]
                    d = net.cells[ff]["connections"]["DI"][0]
                    net.drop_load(q, (name, pin))
                    connections[pin] = [d]
                    net.loads[d].append((name, pin))
                for ff in set(group.values()):
                    if ff in net.cells and not net.loads[net.cells[ff]["connections"]["Q"][0]]:
                        net.remove_ff(ff)
                        removed += 1
            for i, enable in enumerate(enables):
                connections[f"CE{i}"] = [enable]
                directions[f"CE{i}"] = "input"
            connections.update(CLK0=[clock], RST0=["0"])
            directions.update(CLK0="input", RST0="input")
    return Absorbed(multipliers, operand_groups, output_groups, removed)
