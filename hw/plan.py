"""Board planning: the lane count and partition mode that fit a board, and what they buy.

:func:`make_plan` packs as many gate rows into each DSP as the weight and activation widths allow
(``macs_per_dsp``, :func:`packed_macs_per_dsp`), picks the column sets (``column_sets``: the cycle
model ranks them, the best and one set are sized), searches every MAC lane count P (fastest first by
the cycle model) in ``full`` mode, then ``split`` mode, and keeps the fastest configuration (the fewest lanes among those within
1 % of it) whose estimated resources
(:mod:`lstmfpga.hw.resources`) fit the board's budget after the shell reserve and utilisation
limits, and times it with the cycle model (:mod:`lstmfpga.hw.cycle_model`).  When nothing fits it
raises :class:`NoFitError` naming the binding resource of every mode.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

from lstmfpga.foundation.errors import ConfigError
from lstmfpga.foundation.validation import check_integer, is_finite_number
from lstmfpga.hw.boards import MIB, Board
from lstmfpga.foundation.hw.config import COLUMN_SETS, MODES
from lstmfpga.hw.resources import (DEFAULT_SAMPLE_LANES, RESOURCE_FIELDS, LogicFit, ResourceEstimate,
                                   estimate_resources, fit_logic)

#: Assumed programmable-logic cost of the shell around the core: an AXI DMA (MM2S + S2MM, no
#: scatter-gather) and an AXI interconnect, as Vivado typically reports them.
SHELL_RESERVE = {"lut": 4_000, "ff": 6_000, "dsp": 0, "bram36": 2, "uram": 0}
#: Fraction of each resource a plan may use: past ~85 % LUT/FF, placement and timing closure at
#: the planned clock become unlikely; hard blocks (DSP, BRAM, URAM) can be used to the last one.
UTILIZATION_LIMIT = {"lut": 0.85, "ff": 0.85, "dsp": 1.0, "bram36": 1.0, "uram": 1.0}
RESOURCE_NAMES = {"lut": "LUT", "ff": "FF", "dsp": "DSP", "bram36": "BRAM36", "uram": "URAM"}
MAX_LANES = 4096
#: How a plan with weights in DDR is chosen among the residencies (:func:`make_plan`'s ``rank``).
RANKS = ("latency", "throughput")


class NoFitError(ConfigError):
    """No lane count in any allowed mode fits the board; the message names the binding resource."""


def parse_shape(text: str) -> dict[str, int]:
    """``"I,H,L,WBITS"`` → keyword arguments of :class:`~lstmfpga.foundation.hw.config.AcceleratorConfig`."""
    parts = [p.strip() for p in str(text).split(",")]
    if len(parts) != 4:
        raise ConfigError(f"--shape must be I,H,L,WBITS (four integers), not {text!r}")
    names = ("input_size", "hidden_size", "num_layers", "weight_bits")
    values = {}
    for name, part in zip(names, parts):
        try:
            values[name] = int(part)
        except ValueError:
            raise ConfigError(f"--shape {name} must be an integer, not {part!r}") from None
    return values


def shape_config(*, input_size: int, hidden_size: int, num_layers: int, weight_bits: int,
                 num_classes: int = 2, mode: str = "full"):
    """A configuration template for a bare shape (other widths at their 8-bit defaults)."""
    from lstmfpga.foundation.hw.config import AcceleratorConfig

    return AcceleratorConfig(input_size=input_size, hidden_size=hidden_size, num_layers=num_layers,
                             weight_bits=weight_bits, num_classes=num_classes, lanes=4, mode=mode)


def packed_macs_per_dsp(config, board: Board) -> int:
    """Most gate rows one DSP of ``board`` holds at ``config``'s weight and activation widths, the
    packed fields laid out for that DSP (:func:`board_dsp`)."""
    from lstmfpga.foundation.hw.packed_mac_model import DSP_SHAPES, max_macs_per_dsp

    return max_macs_per_dsp(weight_bits=config.weight_bits, act_bits=config.io_bits,
                            dsp=DSP_SHAPES[board_dsp(board)])


def board_dsp(board: Board) -> str:
    """The ``packing_dsp`` of a core for ``board``: its family's multiplier.  A packing or a
    requantizer slice laid out for a wider one (a DSP48E2's 27-bit port on a 7-series' 25-bit
    DSP48E1) is split over two multipliers by synthesis."""
    from lstmfpga.foundation.hw.packed_mac_model import DSP_OF_FAMILY

    return DSP_OF_FAMILY[board.family].name


def lane_step(column_sets: int, tail_units: int = 1) -> int:
    """The lane counts a core of S column sets and TU tail units can have are the multiples of
    4·S·TU (whole hidden units a set; with two tails, an even number of units a group)."""
    return 4 * column_sets * tail_units


def _with_sets(template, mode: str, column_sets: int):
    """``template`` in ``mode`` with S column sets at its smallest lane count."""
    return dataclasses.replace(template, mode=mode, column_sets=column_sets,
                               lanes=lane_step(column_sets, template.tail_units))


def candidate_lanes(config, timesteps: int) -> list[int]:
    """Every lane count of ``config.column_sets`` S (multiple of :func:`lane_step`, at most 4H·S —
    a lane per gate row and set — and :data:`MAX_LANES`), fastest first by the cycle model, ties
    to the fewer lanes."""
    from lstmfpga.hw.cycle_model import estimate as cycle_estimate

    step = lane_step(config.column_sets, config.tail_units)
    top = min(MAX_LANES, step * config.hidden_size)
    lanes = range(step, top + 1, step)
    cycles = {p: cycle_estimate(dataclasses.replace(config, lanes=p), timesteps).compute_cycles
              for p in lanes}
    return sorted(lanes, key=lambda p: (cycles[p], p))


@dataclasses.dataclass(frozen=True)
class Check:
    """A configuration's resource use against the board (shell reserve included)."""

    config: object
    estimate: ResourceEstimate
    used: dict
    limit: dict

    @property
    def over(self) -> dict[str, float]:
        """resource → used ÷ limit, for the resources over their limit."""
        return {k: self.used[k] / self.limit[k] if self.limit[k] else math.inf
                for k in RESOURCE_FIELDS if self.used[k] > self.limit[k]}

    @property
    def fits(self) -> bool:
        return not self.over


@dataclasses.dataclass(frozen=True)
class Plan:
    """A configuration that fits a board, with its estimated speed and resources.

    Attributes
    ----------
    config : AcceleratorConfig
        The chosen shape, lanes, packing and mode (what ``lstmfpga hdl`` builds).
    board : Board
    clock_mhz : float
    timesteps : int
        T the timings are for.
    cycles : CycleEstimate
        The cycle model of one run of T steps.
    check : Check
        Estimated resources, used vs limit.
    alternative : str or None
        The best configuration of the other mode, for comparison.
    residency : str
        Where the weights live (:data:`~lstmfpga.hw.ddr_schedule.RESIDENCIES`); ``cycles`` is a
        :class:`~lstmfpga.hw.ddr_schedule.DdrEstimate` when it is not ``"chip"``.
    batch : int
        Sequences run together through each fetched weight row (1 on chip).
    port : DdrPort or None
        The DDR weight port a DDR plan assumes.
    """

    config: object
    board: Board
    clock_mhz: float
    timesteps: int
    cycles: object
    check: Check
    alternative: str | None = None
    residency: str = "chip"
    batch: int = 1
    port: object = None

    @property
    def mode(self) -> str:
        return self.config.mode

    @property
    def lanes(self) -> int:
        return self.config.lanes

    @property
    def us_per_step(self) -> float:
        """Compute time of one timestep (all layers), µs."""
        return self.cycles.compute_cycles / self.timesteps / self.clock_mhz

    @property
    def us_per_sequence(self) -> float:
        """One whole run of T steps including the input and output streams, µs (a batch's, with
        B > 1: each of its sequences waits that long)."""
        return self.cycles.run_cycles / self.clock_mhz

    @property
    def sequences_per_s(self) -> float:
        return self.batch * 1e6 / self.us_per_sequence

    @property
    def used(self) -> dict:
        return self.check.used

    @property
    def macs_per_cycle(self) -> float:
        """Multiply-accumulates the plan does per compute cycle (T·Σ 4H·K over layers ÷ cycles)."""
        return self.cycles.ideal_cycles * self.config.lanes / self.cycles.compute_cycles

    def dsp_bound_fraction(self, macs_per_dsp: int | None = None) -> float:
        """:attr:`macs_per_cycle` ÷ the board's DSP-bound limit (every DSP doing ``macs_per_dsp``
        MACs a cycle; default the plan's own packing)."""
        k = self.config.macs_per_dsp if macs_per_dsp is None else macs_per_dsp
        return self.macs_per_cycle / (self.board.dsp * k)

    def packed_macs_per_dsp(self) -> tuple[int, str]:
        """Most gate rows one of the board's DSPs holds at these widths (:func:`packed_macs_per_dsp`),
        and the DSP's name."""
        return packed_macs_per_dsp(self.config, self.board), board_dsp(self.board)

    def report(self) -> str:
        c, b = self.config, self.board
        lines = [
            f"board {b.name} ({b.device}, {b.family}) at {self.clock_mhz:g} MHz"
            + (" (assumed default clock)" if self.clock_mhz == b.clock_mhz else ""),
            f"model I={c.input_size} H={c.hidden_size} L={c.num_layers} weight_bits={c.weight_bits} "
            f"classes={c.num_classes}",
            f"plan: {c.mode} mode, P={c.lanes} MAC lanes, macs_per_dsp k={c.macs_per_dsp}, "
            f"column_sets S={c.column_sets} ({c.multipliers} multipliers; {c.groups} row groups of "
            f"{c.rows_per_group} rows per step and layer)"
            + (f", tail_units={c.tail_units}" if c.tail_units > 1 else "")
            + (", weight memory on two read ports (halves of a row in one true-dual-port RAM)"
               if c.weight_ports > 1 and not (c.fold_lanes or c.fold_rows) else "")
            + (f", weight memory folded: {c.fold_lanes or c.lanes} lanes' rows below {c.fold_rows} on both ports of"
               f" a true-dual-port RAM, their other rows and the other lanes on one port"
               + (f" (the other rows of {c.lutram_upper_lanes} of them in LUTs: --lutram-upper-lanes)"
                  if c.lutram_upper_lanes else "")
               if c.fold_lanes or c.fold_rows else "")
            + (f", the multiplies laid out for a {c.packing_dsp} (`lstmfpga hdl --packing-dsp {c.packing_dsp}`)"
               if c.packing_dsp != "DSP48E2" else ""),
            f"cycle model T={self.timesteps}: {self.cycles.compute_cycles} compute cycles "
            f"({self.cycles.cycles_per_step:.1f} per step), MAC-lane utilisation "
            f"{self.cycles.utilization:.1%}",
            f"estimated {self.us_per_step:.2f} µs per timestep, {self.us_per_sequence:.1f} µs per "
            f"sequence of T={self.timesteps} (input and output streams of {c.stream_width} bits included)",
        ]
        packed, dsp_name = self.packed_macs_per_dsp()
        k = c.macs_per_dsp
        lines.append(
            f"DSP-bound limit: {self.macs_per_cycle:,.0f} MACs per cycle = {self.dsp_bound_fraction(1):.1%} of "
            f"{b.dsp:,} DSPs × 1 MAC, {self.dsp_bound_fraction(k):.1%} of {b.dsp:,} × {k} (this core)"
            + ("" if packed == k else f", {self.dsp_bound_fraction(packed):.1%} of {b.dsp:,} × {packed}")
            + f" (at most {packed} rows packed per {dsp_name} at {c.weight_bits}-bit weights × "
            f"{c.io_bits}-bit activations)")
        if self.residency != "chip":
            lines.extend(self._ddr_lines())
        if self.clock_mhz == b.clock_mhz:
            lines.append(f"clock: {self.clock_mhz:g} MHz is the board's assumed fabric clock, not a timing "
                         f"result; `lstmfpga timing` places and routes a generated core (nextpnr-ecp5) for Fmax")
        if c.mode == "split":
            lines.append("split mode: the host computes layer 0's W_x·x for all steps (one GEMM) and "
                         "streams int32 pre-activations")
        lines.append("")
        lines.append(resource_table(self.check, b))
        lines.append("")
        lines.append("how the numbers were obtained:")
        lines.extend(f"  - {line}" for line in self.check.estimate.describe())
        note = _split_rows_note(c, self.check.estimate.fit)
        if note:
            lines.append(f"  - {note}")
        lines.append("  - shell reserve (AXI DMA + interconnect, assumed): "
                     + ", ".join(f"{RESOURCE_NAMES[k]} {v}" for k, v in SHELL_RESERVE.items() if v))
        if self.residency != "chip":
            from lstmfpga.hw.plan_ddr import DDR_RESERVE

            lines.append("  - DDR read master, its FIFO and the port's interconnect (assumed): "
                         + ", ".join(f"{RESOURCE_NAMES[k]} {v}" for k, v in DDR_RESERVE.items() if v))
        lines.append("  - limits: " + ", ".join(f"{RESOURCE_NAMES[k]} {v:.0%}" for k, v in UTILIZATION_LIMIT.items())
                     + " of the device")
        if self.alternative:
            lines.append(f"  - for comparison: {self.alternative}")
        return "\n".join(lines)


    def _ddr_lines(self) -> list[str]:
        from lstmfpga.hw.ddr_schedule import RESIDENCY_NAMES
        from lstmfpga.hw.plan_ddr import DDR_EFFICIENCY, DDR_LATENCY_NS

        c, b, port, cycles = self.config, self.board, self.port, self.cycles
        gbps = port.bytes_per_cycle * self.clock_mhz / 1e3
        if port.port_bound:
            limit = "the port's one beat a cycle"
        elif abs(gbps - b.ddr_gbps * DDR_EFFICIENCY) < 1e-6 * gbps:
            limit = f"the DDR's {b.ddr_gbps:g} GB/s peak × {DDR_EFFICIENCY:.0%}"
        else:
            limit = "the DDR rate given"
        return [
            f"weights: {RESIDENCY_NAMES[self.residency]} ({b.name} PS port {port.data_width}-bit, bursts of ≤ "
            f"{port.max_burst} beats, {port.outstanding} in flight, {port.latency:.0f}-cycle latency "
            f"({DDR_LATENCY_NS:g} ns assumed); {gbps:.2f} GB/s sustained: {limit})",
            f"batch B={self.batch}: {self.sequences_per_s:,.0f} sequences/s; each batch reads "
            f"{cycles.ddr_bytes / 1e6:,.2f} MB of weights, {cycles.bound_cycles:,.0f} cycles at that rate = "
            f"{cycles.bandwidth_fraction:.1%} of the batch's {cycles.compute_cycles:,} compute cycles "
            + ("(DDR-bound)" if cycles.ddr_bound else f"(MAC-bound: {cycles.ideal_cycles:,.0f} ideal MAC cycles)")
            + (f"; its phases (input pass, recurrence) bound it at {cycles.phase_bound_cycles:,.0f} cycles = "
               f"{cycles.phase_fraction:.1%}" if cycles.phase_bound_cycles > max(cycles.bound_cycles, cycles.ideal_cycles)
               * 1.01 else ""),
            f"DDR engine: {_DDR_SCHEDULES[self.residency]} (lstmfpga.hw.ddr_schedule); {self._ddr_rtl(port)}",
        ]

    def _ddr_rtl(self, port) -> str:
        """Whether the RTL builds this DDR plan, and how."""
        from lstmfpga.hw.plan_ddr import RTL_RESIDENCIES

        if self.residency in RTL_RESIDENCIES:
            return (f"the RTL builds it: `lstmfpga hdl --weight-residency {self.residency} --ddr-width "
                    f"{port.data_width} --ddr-burst {port.max_burst} --ddr-outstanding {port.outstanding}"
                    + (f" --max-batch {self.batch}`" if self.batch > 1 else "`"))
        return f"schedule model only: the RTL builds residencies {', '.join(RTL_RESIDENCIES)}"


_DDR_SCHEDULES = {
    "wx": "each row group's W_x fetched once per batch into a double buffer and used by an input pass over "
          "all T steps of all B sequences, then the recurrence on chip, B passes a group",
    "all": "each row group's W_x fetched once per batch for an input pass over all T steps of all B "
           "sequences, then the recurrence with each group's W_h fetched once per step, B passes a group",
    "stream": "each row group's rows fetched once per step into a double buffer, B passes a group",
}


def _split_rows_note(config, fit: LogicFit | None) -> str | None:
    """What the proxies miss when the real rows outrun the packing and theirs do not: the packed
    units' per-row accumulators in fabric."""
    from lstmfpga.foundation.hw.packed_mac_model import plan_packing

    if fit is None or config.macs_per_dsp == 1 or not fit.samples:
        return None
    run = plan_packing(weight_bits=config.weight_bits, act_bits=config.io_bits, macs_per_dsp=config.macs_per_dsp,
                       dsp=config.packing_shape).run
    longest = max(config.issued_columns(layer) for layer in range(config.num_layers))   # a set's run
    proxy = fit.samples[0]
    S = config.column_sets
    proxy_longest = -(-proxy.input_size // S) + -(-proxy.hidden_size // S)
    if longest <= run or proxy_longest > run:
        return None
    return (f"rows of {longest} columns outrun the packing's {run}-product DSP run, the proxies' "
            f"{proxy_longest} do not: the per-row accumulators in fabric (a sum-wide adder and register "
            f"per lane) are not in the LUT/FF lines above")


def resource_table(check: Check, board: Board) -> str:
    rows = [f"{'resource':<9}{'used':>10}{'available':>11}{'%':>8}   {'source'}"]
    sources = {"lut": "Yosys logic (extrapolated) + LUTRAM (model)",
               "ff": "Yosys (extrapolated)" + (", the MAC units' DSP48E2 registers out" if board.family == "xcup" else ""),
               "dsp": "Yosys (extrapolated)", "bram36": "memory model (Yosys-checked)",
               "uram": "memory model"}
    for key in RESOURCE_FIELDS:
        used, avail = check.used[key], board.budget()[key]
        pct = f"{100 * used / avail:.1f}" if avail else ("—" if not used else "inf")
        rows.append(f"{RESOURCE_NAMES[key]:<9}{used:>10g}{avail:>11}{pct:>8}   {sources[key]}")
    return "\n".join(rows)


def _check(config, fit: LogicFit | None, board: Board, *, reserve: dict | None = None,
           memories=None) -> Check:
    """``config`` against ``board`` (``fit=None``: memories only, logic counted as zero;
    ``reserve``: the shell's, default :data:`SHELL_RESERVE`; ``memories``: instead of the core's)."""
    reserve = SHELL_RESERVE if reserve is None else reserve
    limit = {k: max(0.0, board.budget()[k] * UTILIZATION_LIMIT[k] - reserve[k])
             for k in RESOURCE_FIELDS}
    estimate = estimate_resources(config, fit, family=board.family, bram36_budget=limit["bram36"],
                                  uram_budget=int(limit["uram"]), memories=memories)
    used = {k: v + reserve[k] for k, v in estimate.totals.items()}
    limit = {k: v + reserve[k] for k, v in limit.items()}
    return Check(config, estimate, used, limit)


#: Among fitting configurations within this fraction of the fastest, the fewest lanes win: a
#: larger P that only trims a few stall cycles is not worth its DSPs and memory.
CYCLE_TOLERANCE = 0.01


def _fastest_fit(base, fit: LogicFit | None, board: Board, timesteps: int,
                 max_multipliers: float = math.inf) -> Check | None:
    """The fitting lane count with the fewest lanes among those within :data:`CYCLE_TOLERANCE` of
    the fastest fitting one (by the cycle model), or None (``fit=None``: memory alone, and at most
    ``max_multipliers`` multipliers).  A lane count whose weight memory does not fit on one read
    port is tried again with two (:func:`_with_weight_ports`)."""
    from lstmfpga.hw.cycle_model import estimate as cycle_estimate

    best_cycles, chosen = None, None
    for lanes in candidate_lanes(base, timesteps):
        config = dataclasses.replace(base, lanes=lanes)
        if config.multipliers > max_multipliers:
            continue
        if best_cycles is not None:
            if cycle_estimate(config, timesteps).compute_cycles > best_cycles * (1 + CYCLE_TOLERANCE):
                break
            if lanes > chosen.estimate.lanes:
                continue
        if fit is not None and not _logic_fits(fit, board, lanes):
            continue
        check = _check(config, fit, board)
        if not check.fits and board.uram:
            check = _check(_with_weight_ports(config, 2), fit, board)
        memory_bound = not check.fits and board.uram and set(check.over) <= {"bram36", "uram"}
        for folded in (_weight_folds(config, board) if memory_bound else ()):
            check = _check(folded, fit, board)
            if check.fits:
                break
        if check.fits:
            if best_cycles is None:
                best_cycles = cycle_estimate(config, timesteps).compute_cycles
            chosen = check
    return chosen


def _with_weight_ports(config, ports: int):
    """``config`` with its weight memory on ``ports`` read ports: two double an UltraRAM's width
    (a true-dual-port tile reads two 72-bit words a cycle), which is what limits a wide, shallow
    weight memory; the logic it adds (an address multiplexer) is left to the fit's margin."""
    return dataclasses.replace(config, weight_ports=ports)


#: Fold widths :func:`_weight_folds` tries below the widest, in UltraRAMs.
FOLD_STEPS = 4
#: Parts of the folded lanes whose rows past the fold :func:`_weight_folds` tries in LUTs.
LUTRAM_STEPS = 8


def _weight_folds(config, board: Board) -> list:
    """``config`` with part of its weight rows folded over both ports, the widest fold first.

    A weight memory of more than 2,048 rows (half an UltraRAM) folded whole needs two UltraRAMs
    per 144 bits, each half empty; folding the rows below 2,048 of as many lanes as the UltraRAMs
    hold (two 72-bit columns each) and leaving those lanes' other rows and the other lanes to
    one-port memories fills them.  Tried at the board's UltraRAM count and :data:`FOLD_STEPS`
    below it (the other memories may need some), then each again with the rows past 2,048 of the
    first 1/:data:`LUTRAM_STEPS`, 2/:data:`LUTRAM_STEPS`, … of the folded lanes in LUTs
    (``lutram_upper_lanes``: a few hundred rows take block RAM 512 deep), fewest first."""
    from lstmfpga.hw.memory_map import URAM_DEPTH, URAM_WIDTH

    half = URAM_DEPTH // 2
    if config.weight_memory_rows <= half or config.weight_residency != "chip":
        return []
    lanes_per_uram = 2 * URAM_WIDTH / config.weight_bits
    widest = min(board.uram, math.ceil(config.lanes / lanes_per_uram))
    folds = []
    for urams in range(widest, max(0, widest - FOLD_STEPS), -1):
        lanes = 2 * int(urams * lanes_per_uram // 2)
        lanes = 0 if lanes >= config.lanes else lanes   # 0: every lane
        if (lanes or urams == widest) and lanes not in {f.fold_lanes for f in folds}:
            folds.append(dataclasses.replace(config, weight_ports=2, fold_lanes=lanes, fold_rows=half))
    in_luts = [dataclasses.replace(fold, lutram_upper_lanes=2 * ((fold.fold_lanes or fold.lanes) * step
                                                                 // (2 * LUTRAM_STEPS)))
               for step in range(1, LUTRAM_STEPS + 1) for fold in folds]
    return folds + [fold for fold in in_luts if fold.lutram_upper_lanes]


def _logic_fits(fit: LogicFit, board: Board, lanes: int) -> bool:
    """Whether the extrapolated logic alone (no memory) stays within the limits at ``lanes``."""
    for key, value in fit.logic_at(lanes).items():
        if value + SHELL_RESERVE[key] > board.budget()[key] * UTILIZATION_LIMIT[key]:
            return False
    return True


def _memory_summary(config) -> str:
    parts = []
    for layer in range(config.num_layers):
        H, wb = config.hidden_size, config.weight_bits
        w_x = 4 * H * config.layer_input_size(layer) * wb / MIB
        w_h = 4 * H * H * wb / MIB
        if layer == 0 and config.mode == "split":
            parts.append(f"layer {layer} W_h {w_h:.1f} Mib (W_x on the host)")
        else:
            parts.append(f"layer {layer} W_x {w_x:.1f} + W_h {w_h:.1f} Mib")
    return "; ".join(parts)


def _why(check: Check) -> str:
    """The over-limit resources of ``check``, worst first."""
    over = sorted(check.over.items(), key=lambda kv: kv[1], reverse=True)
    pieces = [f"{RESOURCE_NAMES[key]} {check.used[key]:g} > {check.limit[key]:g} allowed"
              for key, _ in over]
    scope = " (memory alone; no lane count fits it)" if check.estimate.fit is None else ""
    return f"{check.estimate.mode} mode at P={check.estimate.lanes}{scope}: " + ", ".join(pieces)


def column_set_choices(template, mode: str) -> tuple[int, ...]:
    """The column sets a core of ``template``'s stream width (and tail units) can have in ``mode``."""
    return tuple(S for S in COLUMN_SETS
                 if lane_step(S, template.tail_units) <= MAX_LANES
                 and (mode == "split" or S <= template.stream_width // 8) and (template.tail_units == 1 or S % 2 == 0))


#: Column-set counts a chip plan fits logic for at most (each fit is two Yosys runs the first time).
MAX_SET_FITS = 4


def _set_bounds(template, mode: str, column_sets, board: Board, timesteps: int, dsp_reserve: int = 0) -> dict:
    """Per column-set count S (every one the stream allows, or ``column_sets``): the compute
    cycles of its fastest lane count on memory and multipliers alone, one multiplier per DSP of
    those ``dsp_reserve`` leaves (the cycle model ranks them without synthesis).  No logic fit of
    S runs faster."""
    from lstmfpga.hw.cycle_model import estimate as cycle_estimate

    choices = column_set_choices(template, mode) if column_sets == "auto" else (column_sets,)
    bounds = {}
    for S in choices:
        check = _fastest_fit(_with_sets(template, mode, S), None, board, timesteps,
                             max_multipliers=board.dsp - dsp_reserve)
        if check is not None:
            bounds[S] = cycle_estimate(check.config, timesteps).compute_cycles
    return bounds


def _sets_in_order(bounds: dict) -> list[int]:
    """Column-set counts by their bounds: the fewest sets within :data:`CYCLE_TOLERANCE` of the
    fastest first, then the rest fastest first (ties: fewer sets)."""
    best = min(bounds.values())
    first = min(S for S, c in bounds.items() if c <= best * (1 + CYCLE_TOLERANCE))
    return [first] + sorted((S for S in bounds if S != first), key=lambda S: (bounds[S], S))


def sample_lanes_for(sample_lanes: Sequence[int], column_sets: int, tail_units: int = 1) -> tuple[int, ...]:
    """The proxies' lane counts for S column sets: ``sample_lanes`` times S/2 (half the rows per
    set of one set's proxies, as a proxy's Yosys time grows with its lanes), rounded up to
    multiples of :func:`lane_step`, kept distinct (a count that rounds onto the one before moves
    up a step)."""
    step = lane_step(column_sets, tail_units)
    lanes: list[int] = []
    for p in sorted(set(sample_lanes)):
        q = -(-p * max(1, column_sets // 2) // step) * step
        lanes.append(max(q, lanes[-1] + step) if lanes else q)
    return tuple(lanes)


def make_plan(template, board: Board, *, clock_mhz: float | None = None, mode: str = "auto",
              timesteps: int = 16, macs_per_dsp: int | str = "auto", column_sets: int | str = "auto",
              tail_units: int = 1, sample_lanes: Sequence[int] = DEFAULT_SAMPLE_LANES,
              cache_dir=None, progress: bool = False, compare: bool = True, residency: str = "auto",
              batch: int | str = "auto", ddr_gbps: float | None = None, rank: str = "latency") -> Plan:
    """The fastest configuration of ``template``'s shape that fits ``board``.

    Parameters
    ----------
    template : AcceleratorConfig
        The model's shape and widths (its ``lanes``, ``mode`` and ``macs_per_dsp`` are ignored).
    board : Board
    clock_mhz :
        Fabric clock; default the board's assumed clock.
    mode :
        ``"full"``, ``"split"`` or ``"auto"`` (full when it fits, else split).
    timesteps :
        T for the timings (1 to ``template.max_timesteps``).
    macs_per_dsp :
        Gate rows per DSP; ``"auto"`` (default): the most the widths allow on the board's DSPs
        (:func:`packed_macs_per_dsp`), so that a DSP-bound board gets that many times the lanes.
    column_sets :
        Column sets S of the core; ``"auto"`` (default): the cycle model ranks every S the stream
        allows on memory and multipliers alone (the fewest sets within 1 % of the fastest first),
        and they get the logic fit in that order, ranked again with the fitted constant DSPs
        reserved, until no bound left can beat the fastest fit by more than 1 % (at most
        :data:`MAX_SET_FITS` fits).
    tail_units :
        Hidden units the tail finishes a cycle (1 or 2; two need S ≥ 2 and bind split-mode
        steps less, at the cost of a second tail's DSPs and memories).
    sample_lanes :
        Lane counts of the Yosys proxy runs (for S column sets: :func:`sample_lanes_for`).
    cache_dir :
        Yosys result cache (default: the user cache folder).
    compare :
        When full mode is chosen automatically, also size split mode for a comparison line
        (two more Yosys runs the first time).
    residency :
        ``"chip"``, ``"wx"``, ``"all"`` (:data:`~lstmfpga.hw.ddr_schedule.RESIDENCIES`) or
        ``"auto"`` (default): on chip when the weights fit there, else the faster DDR residency
        (:func:`~lstmfpga.hw.plan_ddr.make_ddr_plan`; full mode); ``"rtl"``: the same among the
        residencies the RTL builds (:data:`~lstmfpga.hw.plan_ddr.RTL_RESIDENCIES`).
    batch :
        Sequences per fetched weight row of a DDR plan; ``"auto"``: the most that keep one
        sequence's latency (:func:`~lstmfpga.hw.plan_ddr.largest_batch`).
    ddr_gbps :
        Sustained DDR read bandwidth, GB/s (default: the board's peak × the planner's efficiency).
    rank :
        How the DDR residencies' plans are ranked: ``"latency"`` (default: the fastest sequence) or
        ``"throughput"`` (the most sequences a second, which may be a larger batch at a longer
        latency).  A shape whose weights fit on chip stays there either way.

    Raises
    ------
    NoFitError
        Nothing fits; the message names each mode's binding resource.
    ConfigError
        A bad mode, clock or T.
    """
    from lstmfpga.hw.ddr_schedule import MAX_BATCH, RESIDENCIES
    from lstmfpga.hw.plan_ddr import DDR_RESIDENCIES, RTL_RESIDENCIES

    if residency not in (*RESIDENCIES, "auto", "rtl"):
        raise ConfigError(f"residency must be one of {', '.join((*RESIDENCIES, 'auto', 'rtl'))}, not {residency!r}")
    if batch != "auto":
        check_integer("batch", batch, low=1, high=1 if residency == "chip" else MAX_BATCH)
    if ddr_gbps is not None and not (is_finite_number(ddr_gbps) and ddr_gbps > 0):
        raise ConfigError(f"ddr_gbps must be a positive number of GB/s, not {ddr_gbps!r}")
    if rank not in RANKS:
        raise ConfigError(f"rank must be one of {', '.join(RANKS)}, not {rank!r}")
    chip_error = None
    if residency in ("chip", "auto", "rtl"):
        try:
            return _chip_plan(template, board, clock_mhz=clock_mhz, mode=mode, timesteps=timesteps,
                              macs_per_dsp=macs_per_dsp, column_sets=column_sets, tail_units=tail_units,
                              sample_lanes=sample_lanes, cache_dir=cache_dir, progress=progress, compare=compare)
        except NoFitError as exc:
            if residency == "chip":
                raise
            chip_error = exc
    return _ddr_plan(template, board, chip_error, clock_mhz=clock_mhz, mode=mode, timesteps=timesteps,
                     macs_per_dsp=macs_per_dsp, column_sets=column_sets, tail_units=tail_units,
                     sample_lanes=sample_lanes, cache_dir=cache_dir, progress=progress,
                     residencies={"auto": DDR_RESIDENCIES, "rtl": RTL_RESIDENCIES}.get(residency, (residency,)),
                     batch=batch, ddr_gbps=ddr_gbps, rank=rank)


def _settings(template, board: Board, clock_mhz, timesteps, macs_per_dsp, column_sets, tail_units):
    """The validated clock and the template with its packing, column sets and tail units set."""
    clock = board.clock_mhz if clock_mhz is None else clock_mhz
    if not is_finite_number(clock) or not 0 < clock <= 1000:
        raise ConfigError(f"clock_mhz must be in (0, 1000], not {clock_mhz!r}")
    check_integer("timesteps", timesteps, low=1, high=template.max_timesteps)
    # the planner lays out the weight memory for each lane count itself: a plan's own config (folded
    # at its lanes) plans again from the plain layout
    template = dataclasses.replace(template, weight_ports=1, fold_lanes=0, fold_rows=0, lutram_upper_lanes=0)
    if macs_per_dsp == "auto":
        macs_per_dsp = packed_macs_per_dsp(template, board)
    template = dataclasses.replace(template, macs_per_dsp=macs_per_dsp,
                                   packing_dsp=board_dsp(board))   # validated by the config
    check_integer("tail_units", tail_units, low=1)
    if tail_units > 1:
        S = 2 if column_sets == "auto" else column_sets
        template = dataclasses.replace(template, column_sets=S, tail_units=tail_units,
                                       lanes=lane_step(S, tail_units))   # validated by the config

    if column_sets != "auto":
        check_integer("column_sets", column_sets, low=1)
        template = _with_sets(template, template.mode, column_sets)   # validated by the config
    return float(clock), template


def _ddr_plan(template, board: Board, chip_error, *, clock_mhz, mode, timesteps, macs_per_dsp, column_sets,
              tail_units, sample_lanes, cache_dir, progress, residencies, batch, ddr_gbps, rank) -> Plan:
    """The best of ``residencies``' DDR plans by ``rank`` (the fastest sequence, or the most
    sequences a second); :class:`NoFitError` when none fits."""
    from lstmfpga.hw.plan_ddr import make_ddr_plan

    if mode == "split":
        raise ConfigError("a DDR-resident plan runs every layer on the FPGA: use --mode full or auto")
    clock, template = _settings(template, board, clock_mhz, timesteps, macs_per_dsp, column_sets, tail_units)
    plans = [make_ddr_plan(template, board, residency=r, clock_mhz=clock, timesteps=timesteps, ddr_gbps=ddr_gbps,
                           column_sets=column_sets, batch=batch, sample_lanes=sample_lanes, cache_dir=cache_dir,
                           progress=progress) for r in residencies]
    plans = [p for p in plans if p is not None]
    if not plans:
        lines = [str(chip_error)] if chip_error is not None else []
        lines.append(f"nothing fits {board.name} with weights in DDR either (residency "
                     f"{' or '.join(residencies)}: not even the double buffer of two row groups and one "
                     f"sequence's state fit)")
        raise NoFitError("\n".join(lines))
    if rank == "throughput":
        best = max(plans, key=lambda p: (p.sequences_per_s, -p.us_per_sequence))
    else:
        best = min(plans, key=lambda p: p.us_per_sequence)
    if chip_error is not None:
        why = str(chip_error).splitlines()[-1]
        best = dataclasses.replace(best, alternative=f"on chip: {why}")
    return best


def _chip_plan(template, board: Board, *, clock_mhz, mode, timesteps, macs_per_dsp, column_sets, tail_units,
               sample_lanes, cache_dir, progress, compare) -> Plan:
    """The fastest on-chip configuration (:func:`make_plan` with ``residency="chip"``)."""
    from lstmfpga.hw.cycle_model import estimate as cycle_estimate

    if mode not in (*MODES, "auto"):
        raise ConfigError(f"mode must be one of {', '.join((*MODES, 'auto'))}, not {mode!r}")
    clock, template = _settings(template, board, clock_mhz, timesteps, macs_per_dsp, column_sets, tail_units)
    modes = MODES if mode == "auto" else (mode,)
    found: dict[str, Check] = {}
    found_config: dict[str, object] = {}
    failures: dict[str, Check] = {}
    for m in modes:
        bounds = _set_bounds(template, m, column_sets, board, timesteps)
        if not bounds:
            # no lane count fits even on memory alone: no need to synthesize anything
            S = column_set_choices(template, m)[0] if column_sets == "auto" else column_sets
            failures[m] = _check(_with_sets(template, m, S), None, board)
            continue
        # Fit the column-set counts best bound first, until the next bound cannot beat the best
        # fit by more than the tolerance.  A fit's constant DSPs (the tail's multipliers) are
        # every count's, so the bounds are taken again with them reserved.
        tried, reserve = [], 0
        while len(tried) < MAX_SET_FITS:
            order = [S for S in _sets_in_order(bounds) if S not in tried] if bounds else []
            if not order or (m in found and min(bounds[S] for S in order) * (1 + CYCLE_TOLERANCE)
                             >= cycle_estimate(found_config[m], timesteps).compute_cycles):
                break
            S = order[0] if not tried else _likeliest_sets(order, bounds, template, m, fit, board, timesteps)
            tried.append(S)
            base = _with_sets(template, m, S)
            fit = fit_logic(base, family=board.family, sample_lanes=sample_lanes_for(sample_lanes, S, base.tail_units),
                            cache_dir=cache_dir, progress=progress)
            found_check = _fastest_fit(base, fit, board, timesteps)
            if found_check is not None:
                config = found_check.config
                if m not in found or _faster(config, found_config[m], timesteps):
                    found[m], found_config[m] = found_check, config
            if m not in found:
                failures[m] = _check(base, fit, board)
            fixed = max(0, math.ceil(fit.coefficients["dsp"][0]))
            if fixed > reserve:
                reserve = fixed
                bounds = _set_bounds(template, m, column_sets, board, timesteps, dsp_reserve=reserve)
        if found:
            break

    if not found:
        lines = [f"nothing fits {board.name} ({board.device}: {board.bram36} BRAM36 + {board.uram} URAM = "
                 f"{board.on_chip_mib:.1f} Mib on chip, {board.dsp} DSP, {board.lut} LUT)"]
        binding = []
        for m, check in failures.items():
            lines.append("  " + _why(check))
            lines.append(f"    on-chip memory {check.estimate.memory_bits / MIB:.1f} Mib in total; weights: "
                         f"{_memory_summary(dataclasses.replace(template, mode=m))}")
            binding.append((max(check.over.items(), key=lambda kv: kv[1])[0], m))
        names = {"bram36": "BRAM36 (on-chip memory)", "uram": "URAM (on-chip memory)"}
        by_resource: dict[str, list[str]] = {}
        for key, m in binding:
            by_resource.setdefault(names.get(key, RESOURCE_NAMES[key]), []).append(m)
        lines.append("binding resource: " + "; ".join(
            f"{name} in {' and '.join(ms)} mode" for name, ms in by_resource.items()))
        raise NoFitError("\n".join(lines))

    chosen_mode = "full" if "full" in found else "split"
    check = found[chosen_mode]
    config = found_config[chosen_mode]
    cycles = cycle_estimate(config, timesteps)
    alternative = None
    if mode == "auto" and chosen_mode == "full" and compare:
        alternative = _alternative(template, board, clock, timesteps, sample_lanes, cache_dir)
    elif mode == "auto" and chosen_mode == "split":
        alternative = f"full mode does not fit: {_why(failures['full'])}"
    return Plan(config, board, float(clock), timesteps, cycles, check, alternative)


def _likeliest_sets(order: list[int], bounds: dict, template, mode: str, fit: LogicFit, board: Board,
                    timesteps: int) -> int:
    """The column-set count of ``order`` to fit next: the lowest of its memory bound and its cycles
    at the most lanes the logic lines of ``fit`` allow (another count's lines, which are close to
    any count's).  Where the logic binds first the memory bounds alone say little."""
    from lstmfpga.hw.cycle_model import estimate as cycle_estimate

    def key(S):
        base = _with_sets(template, mode, S)
        borrowed = dataclasses.replace(fit, column_sets=S, samples=())
        step = lane_step(S, base.tail_units)
        lanes = min(MAX_LANES, step * base.hidden_size) // step * step
        while lanes > step and not _logic_fits(borrowed, board, lanes):
            lanes -= step
        return max(bounds[S], cycle_estimate(dataclasses.replace(base, lanes=lanes), timesteps).compute_cycles), S

    return min(order, key=key)


def _faster(a, b, timesteps: int) -> bool:
    """Whether configuration ``a`` runs fewer compute cycles than ``b`` by more than
    :data:`CYCLE_TOLERANCE`."""
    from lstmfpga.hw.cycle_model import estimate as cycle_estimate

    cycles = [cycle_estimate(config, timesteps).compute_cycles for config in (a, b)]
    return cycles[0] * (1 + CYCLE_TOLERANCE) < cycles[1]


def _alternative(template, board, clock, timesteps, sample_lanes, cache_dir) -> str | None:
    """One line on the best split-mode configuration."""
    from lstmfpga.hw.cycle_model import estimate as cycle_estimate

    base = _with_sets(template, "split", template.column_sets)
    fit = fit_logic(base, family=board.family,
                    sample_lanes=sample_lanes_for(sample_lanes, base.column_sets, base.tail_units), cache_dir=cache_dir)
    check = _fastest_fit(base, fit, board, timesteps)
    if check is None:
        return "split mode does not fit either"
    lanes = check.estimate.lanes
    cycles = cycle_estimate(check.config, timesteps)
    return (f"split mode would fit with P={lanes}: {cycles.compute_cycles / timesteps / clock:.2f} µs "
            f"per timestep on the FPGA, the host computing layer 0's W_x·x")
