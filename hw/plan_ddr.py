"""Plans with weights in DDR: the residency, lanes and batch that fit a board when its on-chip
memory cannot hold the weights.

The engine is the one :mod:`lstmfpga.hw.ddr_schedule` times (its DDR path is specified there and
being built; see that module).  What stays on chip: a double buffer of two row groups' DDR rows,
W_h for residency ``wx``, a pre-activation buffer for the input pass, and B copies of every
per-sequence memory (h buffers, cell state, input and output buffers).  More lanes do not shorten
a DDR-bound plan but widen the double buffer, which leaves less memory for the batch, so the
planner looks for the batch, not the most lanes: it keeps the configurations whose one sequence is
within :data:`BATCH_TOLERANCE` of the fastest and, of those, the one whose largest batch at that
latency moves the most sequences a second (:func:`make_ddr_plan`); the faster residency wins.
"""

from __future__ import annotations

import dataclasses

from lstmfpga.foundation.errors import ConfigError
from lstmfpga.foundation.validation import is_finite_number
from lstmfpga.hw.boards import Board
from lstmfpga.hw.ddr_model import beat_interval
from lstmfpga.hw.ddr_schedule import MAX_BATCH, DdrPort, demand, estimate_ddr
from lstmfpga.hw.memory_map import MemorySpec, memories_at

#: Fraction of a DDR's peak transfer rate that long sequential read bursts sustain (70–85 % is
#: what Zynq HP-port measurements report; the low end of it, stated in every DDR plan).
DDR_EFFICIENCY = 0.75
#: Assumed read latency through the PS interconnect and DDR controller (AR accepted → first R
#: beat), in ns.
DDR_LATENCY_NS = 200.0
#: Bursts the weight reader keeps in flight.
READ_OUTSTANDING = 8
#: Assumed logic of the AXI4 read master, its FIFO and the port's interconnect, added to the shell
#: reserve of a DDR plan.
DDR_RESERVE = {"lut": 1_500, "ff": 2_500, "dsp": 0, "bram36": 1, "uram": 0}
#: A batch of B sequences may take this much longer than one sequence alone.
BATCH_TOLERANCE = 0.05
DDR_RESIDENCIES = ("wx", "all", "stream")
#: The DDR residencies the RTL builds (`plan --residency rtl` chooses among these): all of them.
RTL_RESIDENCIES = ("wx", "all", "stream")


def board_port(board: Board, clock_mhz: float, ddr_gbps: float | None = None) -> DdrPort:
    """The board's weight port at ``clock_mhz``: its PS port's width and bursts, the DDR's sustained
    rate (``ddr_gbps`` GB/s, default the peak × :data:`DDR_EFFICIENCY`) and :data:`DDR_LATENCY_NS`."""
    sustained = board.ddr_gbps * DDR_EFFICIENCY if ddr_gbps is None else ddr_gbps
    if not is_finite_number(sustained) or not sustained > 0:
        raise ConfigError(f"--ddr-gbps must be a positive number of GB/s, not {ddr_gbps!r}")
    interval = beat_interval(clock_hz=clock_mhz * 1e6, data_width=board.hp_width, bandwidth=sustained * 1e9)
    return DdrPort(data_width=board.hp_width, max_burst=board.hp_max_burst, outstanding=READ_OUTSTANDING,
                   latency=max(1.0, DDR_LATENCY_NS * clock_mhz / 1000), interval=interval)


#: Memories that hold one sequence's state or stream data: a batch needs B of them.
PER_SEQUENCE = ("h_buf", "cell_mem", "input_buf", "word_buf", "pre_mem")


def ddr_memories(config, residency: str, batch: int) -> tuple[MemorySpec, ...]:
    """The on-chip memories of ``config`` with weights resident as ``residency`` and ``batch``
    sequences: the weight memory holds the double buffer (and W_h for ``wx``), each tail's
    pre-activation memory (T·4H int32 per sequence over the tails, four gate sums a word) joins
    where there is an input pass, and each per-sequence memory is ``batch`` deep copies: the
    memories of the core the RTL generates with ``max_batch`` = B."""
    one_port = dataclasses.replace(config, weight_ports=1, fold_lanes=0, fold_rows=0, lutram_upper_lanes=0)
    layers = range(config.num_layers)
    if residency == "stream":
        x_max, double = 0, 2 * max(config.issued_columns(layer) for layer in layers)
    else:
        x_max = max(config.x_columns(layer) for layer in layers)
        double = 2 * max(x_max, config.h_columns if residency == "all" else 0)
    resident_h = config.num_layers * config.groups * config.h_columns if residency == "wx" else 0
    width = config.lanes * config.weight_bits
    # a memory is at least two words deep, so one sequence's depth is half that of a core of two
    pair = {m.name: m for m in memories_at(dataclasses.replace(one_port, weight_residency="stream", max_batch=2))}
    result = []
    for m in memories_at(one_port):
        path = m.name.split("/")
        if "weight_mem" in path:
            m = dataclasses.replace(m, depth=max(2, double + resident_h), width=width, read_ports=1)
        elif any(path[-1].startswith(name) for name in PER_SEQUENCE):
            m = dataclasses.replace(m, depth=max(2, pair[m.name].depth // 2 * batch))
        result.append(m)
    if x_max:
        # each tail's: B·T steps of its own units' four int32 sums (the input pass's, ``input_pass``)
        depth = max(2, config.max_timesteps * batch * -(-config.hidden_size // config.tail_units))
        result += [MemorySpec(f"core/{name}/pre_mem", depth, 128, granularity=32)
                   for name in ("tail", "tail2")[:config.tail_units]]
    return tuple(result)


def _ddr_check(config, fit, board: Board, residency: str, batch: int):
    from lstmfpga.hw.plan import SHELL_RESERVE, _check

    reserve = {k: SHELL_RESERVE[k] + DDR_RESERVE[k] for k in SHELL_RESERVE}
    return _check(config, fit, board, reserve=reserve, memories=ddr_memories(config, residency, batch))


def _bisect(low: int, high: int, ok) -> int | None:
    """The largest n in [low, high] with ``ok(n)``, for an ``ok`` that holds up to some n and not
    after; None when ``ok(low)`` does not."""
    best = None
    while low <= high:
        middle = (low + high) // 2
        if ok(middle):
            best, low = middle, middle + 1
        else:
            high = middle - 1
    return best


def _fits(config, fit, board: Board, residency: str, batch: int) -> bool:
    from lstmfpga.hw.plan import _logic_fits

    if config.multipliers > board.dsp or (fit is not None and not _logic_fits(fit, board, config.lanes)):
        return False
    return _ddr_check(config, fit, board, residency, batch).fits


#: Lane counts tried per column-set count: a geometric ladder from the smallest to the most that fit.
LANE_LADDER = 12


def _lane_ladder(base, board: Board, residency: str, fit=None) -> list:
    """Configurations of ``base`` at up to :data:`LANE_LADDER` lane counts, geometrically spaced
    from the lane step to the most whose memories and multipliers (and the logic of ``fit``, when
    given) fit at B = 1."""
    from lstmfpga.hw.plan import MAX_LANES, lane_step

    step = lane_step(base.column_sets, base.tail_units)
    top = min(MAX_LANES, 4 * base.hidden_size * base.column_sets) // step
    most = _bisect(1, top, lambda n: _fits(dataclasses.replace(base, lanes=n * step), fit, board, residency, 1))
    if most is None:
        return []
    ratio = most ** (1 / max(1, LANE_LADDER - 1))
    counts = sorted({max(1, round(ratio ** i)) for i in range(LANE_LADDER)} | {most})
    return [dataclasses.replace(base, lanes=n * step) for n in counts]


@dataclasses.dataclass(frozen=True)
class _Candidate:
    config: object
    batch: int
    cycles: int

    @property
    def throughput(self) -> float:
        return self.batch / self.cycles


def _candidates(template, board: Board, residency: str, timesteps: int, port: DdrPort, column_sets,
                fits: dict | None = None) -> list:
    """Every (column sets, lanes) of the ladder whose one sequence is within :data:`BATCH_TOLERANCE`
    of the fastest, each with the largest batch that stays there and fits on memory, best
    throughput first (ties: fewer lanes).  With ``fits`` (logic fits by column-set count) only
    those counts are tried, their ladders bounded by the fitted logic as well."""
    from lstmfpga.hw.plan import _with_sets, column_set_choices

    mode = "full"
    choices = column_set_choices(template, mode) if column_sets == "auto" else (column_sets,)
    if fits is not None:
        choices = [S for S in choices if S in fits]
    configs = [c for S in choices for c in _lane_ladder(_with_sets(template, mode, S), board, residency,
                                                        None if fits is None else fits[S])]
    if not configs:
        return []

    def cycles(config, batch):
        return estimate_ddr(config, timesteps, residency=residency, batch=batch, port=port).compute_cycles

    def lower_bound(config, batch):
        ideal, nbytes = demand(config, timesteps, residency=residency, batch=batch, port=port)
        return max(ideal, nbytes / port.bytes_per_cycle)

    # the schedule is walked only where its lower bound can still beat the fastest walked so far
    alone, fastest = {}, float("inf")
    for config in sorted(configs, key=lambda c: lower_bound(c, 1)):
        if lower_bound(config, 1) > fastest * (1 + BATCH_TOLERANCE):
            break
        alone[config] = cycles(config, 1)
        fastest = min(fastest, alone[config])
    limit = fastest * (1 + BATCH_TOLERANCE)
    result = []
    for config in (c for c in alone if alone[c] <= limit):
        most = min(MAX_BATCH, max(1, int(limit // demand(config, timesteps, residency=residency, port=port)[0])))
        fit = None if fits is None else fits[config.column_sets]
        batch = _bisect(1, most, lambda b: cycles(config, b) <= limit and _fits(config, fit, board, residency, b))
        result.append(_Candidate(config, batch, cycles(config, batch)))
    return sorted(result, key=lambda c: (-c.throughput, c.config.lanes))


def make_ddr_plan(template, board: Board, *, residency: str, clock_mhz: float, timesteps: int,
                  ddr_gbps: float | None = None, column_sets="auto", batch="auto", sample_lanes=(8, 16),
                  cache_dir=None, progress: bool = False):
    """The DDR-resident plan of ``template`` on ``board`` (full mode: the FPGA runs every layer),
    or None when nothing fits.

    Every column-set count S the stream allows, at a ladder of lane counts up to the most whose
    memories and multipliers fit, is timed by the DDR cycle model at B = 1; among those within
    :data:`BATCH_TOLERANCE` of the fastest, each takes the largest batch that keeps that latency and
    fits, and the best throughput wins once the Yosys logic fit of its S confirms it (``batch``:
    a fixed B instead).  When the logic fits refuse every candidate (the ladder is sized on memory
    and ideal multipliers alone), the search runs again over the fitted S, their ladders bounded by
    the fitted logic.
    """
    from lstmfpga.hw.plan import Plan, _logic_fits, _with_sets, fit_logic, sample_lanes_for

    if residency not in DDR_RESIDENCIES:
        raise ConfigError(f"a DDR residency is one of {', '.join(DDR_RESIDENCIES)}, not {residency!r}")
    port = board_port(board, clock_mhz, ddr_gbps)
    fits = {}
    for measured in (None, fits):
        for candidate in _candidates(template, board, residency, timesteps, port, column_sets, measured):
            config = candidate.config
            S = config.column_sets
            if S not in fits:
                base = _with_sets(template, "full", S)
                fits[S] = fit_logic(base, family=board.family, cache_dir=cache_dir, progress=progress,
                                    sample_lanes=sample_lanes_for(sample_lanes, S, base.tail_units))
            chosen = candidate.batch if batch == "auto" else batch
            if config.multipliers > board.dsp or not _logic_fits(fits[S], board, config.lanes):
                continue
            check = _ddr_check(config, fits[S], board, residency, chosen)
            if not check.fits:
                continue
            cycles = estimate_ddr(config, timesteps, residency=residency, batch=chosen, port=port)
            return Plan(config, board, float(clock_mhz), timesteps, cycles, check, residency=residency,
                        batch=chosen, port=port)
    return None
