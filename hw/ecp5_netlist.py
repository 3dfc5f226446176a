"""Reading a Yosys ``synth_ecp5`` JSON netlist: cell parameters, plain flip-flops, and each net's
driver and loads — what the register absorption passes (:mod:`~lstmfpga.hw.ecp5_dsp_registers`,
:mod:`~lstmfpga.hw.ecp5_bram_registers`) edit the netlist by."""

from __future__ import annotations

from collections import defaultdict

FF = "TRELLIS_FF"


def param(cell: dict, name: str) -> str:
    """A cell parameter as a string ("" when unset)."""
    # Yosys JSON marks string parameters that look like bit strings with a trailing space
    return str(cell.get("parameters", {}).get(name, "")).rstrip()


def plain_ff(cell: dict):
    """(clock net, clock-enable bit) of a plain D flip-flop, or None when it has a set/reset."""
    connections = cell["connections"]
    if param(cell, "CLKMUX") not in ("CLK", "") or param(cell, "REGSET") not in ("RESET", ""):
        return None      # an inverted clock, or a set value the block's registers (reset to 0) lack
    if connections.get("LSR", ["0"]) != ["0"] or param(cell, "LSRMUX") not in ("LSR", ""):
        return None      # a set/reset, or an inverted (always active) one
    cemux = param(cell, "CEMUX")
    if cemux == "1" or "CE" not in connections:
        enable = "1"
    elif cemux in ("CE", ""):
        enable = connections["CE"][0]
    else:
        return None
    return connections["CLK"][0], enable


class Netlist:
    """The cells of one module with each net's driver (cell, port) and loads [(cell, port)]; a
    module output counts as a load."""

    def __init__(self, module: dict):
        self.cells = module["cells"]
        self.driver, self.loads = {}, defaultdict(list)
        for name, cell in self.cells.items():
            for port, bits in cell["connections"].items():
                output = cell.get("port_directions", {}).get(port) == "output"
                for bit in bits:
                    if isinstance(bit, int):
                        if output:
                            self.driver[bit] = (name, port)
                        else:
                            self.loads[bit].append((name, port))
        for port in module.get("ports", {}).values():
            if port["direction"] != "input":
                for bit in port["bits"]:
                    self.loads[bit].append(("", "module port"))

    def drop_load(self, bit, load):
        self.loads[bit].remove(load)

    def remove_ff(self, name: str) -> None:
        cell = self.cells.pop(name)
        for port, bits in cell["connections"].items():
            if port != "Q":
                for bit in bits:
                    if isinstance(bit, int):
                        self.drop_load(bit, (name, port))

    def register_after(self, cell: dict, pins) -> dict | None:
        """The register on a cell's output ``pins``: {pin: flip-flop} when every pin that drives
        anything drives exactly one flip-flop's D input, else None (also when none drives)."""
        sinks = {}
        for pin in pins:
            bit = cell["connections"].get(pin, [None])[0]
            loads = self.loads.get(bit, []) if isinstance(bit, int) else []
            if not loads:
                continue
            if len(loads) != 1 or loads[0][1] != "DI" or self.cells.get(loads[0][0], {}).get("type") != FF:
                return None
            sinks[pin] = loads[0][0]
        return sinks or None
