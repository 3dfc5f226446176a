"""Cycle model of the weights-in-DDR engine: the schedule the planner sizes DDR-resident plans by.

Stdlib only.  The core with ``weight_residency`` ``"stream"``, ``"all"`` or ``"wx"``
(:class:`~lstmfpga.hw.rtl.core.LstmCore` with its
:class:`~lstmfpga.hw.rtl.ddr_row_fetcher.DdrRowFetcher`) runs that residency — one sequence, or
a batch of up to ``max_batch`` — exactly as this model says when the port's ``base`` is the
image's address (tests against a fixed-latency memory in Amaranth's simulator and under
Verilator).
:mod:`lstmfpga.hw.cycle_model` stays the exact model of the on-chip core.

Residency (the same for every layer):

``chip``
    every weight on chip: the core of :mod:`~lstmfpga.hw.cycle_model`, one sequence at a time.
``wx``
    each layer's W_x in DDR, W_h on chip.
``all``
    W_x and W_h in DDR.
``stream``
    every row in DDR, fetched each step: the on-chip core's schedule (a group's x then h columns)
    with each group's rows in the double buffer, used by B passes.  No input pass, so no
    pre-activation buffer: the residency for boards whose memory cannot hold T steps of
    pre-activations; W_x crosses the port T times per batch.

With B sequences in a batch (B ≥ 1, set at run time) a DDR-resident layer runs in two phases.

*Input pass* (W_x in DDR): row group g's W_x rows — X = ceil(I_l/S) columns of P·weight_bits bits,
each padded to whole port beats — are fetched once into one half of a double buffer, then used by
T·B passes, one per step t and sequence b (step-major), each issuing the X columns and writing the
group's R sums to an on-chip pre-activation buffer.  So every W_x row crosses the port once per
batch, not once per step: this is the all-T input projection of the two-phase schedule.  A pass of
layer 0 (full mode) waits for its input words (stall-free stream, sequences interleaved step by
step), a pass of layer l > 0 for the h codes of layer l−1 it reads.

*Recurrence*: per step, the row groups of W_h (ceil(H/S) columns) — fetched once per step into the
double buffer when W_h is in DDR, read from on-chip memory otherwise — each run B passes, one per
sequence, which add the pre-activation in the tail (split mode's path).  Pass b's h columns wait
for sequence b's h codes of the step before, as in the on-chip core; with B > 1 the other
sequences' passes fill those waits.

The fetcher issues one request per group, in the order the engine consumes them (a layer's input
pass groups, then its steps' recurrence groups).  Request i starts when request i−1 has ended (plus
:data:`~lstmfpga.hw.latency.DDR_ROWS_READY`) and the half it fills has been released (the cycle
after the last pass of group i−2 has issued its last column), and takes
:func:`~lstmfpga.hw.ddr_model.approx_request_cycles` of its bytes (at its own address where the
port's ``base`` is known, else as if it started a page); the group's first column may
issue :data:`~lstmfpga.hw.latency.DDR_ROWS_READY` cycles after its last word has left the reader.
Cycle 0 is the first request's start: the core starts the fetcher with the column scheduler
(``compute_start``), the fetcher issues its first request :data:`~lstmfpga.hw.latency.DDR_FIRST_REQUEST`
cycle later, and CYCLES counts from that cycle too.
"""

from __future__ import annotations

import dataclasses
import functools

from lstmfpga.foundation.errors import ConfigError
from lstmfpga.foundation.hw.config import MAX_BATCH
from lstmfpga.foundation.validation import check_integer
from lstmfpga.hw import latency
from lstmfpga.hw.cycle_model import RunCycles, _ready_offset, _round_trip, engine_latency, estimate
from lstmfpga.hw.ddr_model import approx_request_cycles, check_reader_parameters

RESIDENCIES = ("chip", "wx", "all", "stream")
RESIDENCY_NAMES = {"chip": "on chip", "wx": "W_x in DDR (input pass), W_h on chip",
                   "all": "W_x (input pass) and W_h in DDR",
                   "stream": "every weight row streamed from DDR each step (no input pass)"}


@dataclasses.dataclass(frozen=True, kw_only=True)
class DdrPort:
    """The AXI4 read port the weights come through, and the DDR behind it.

    Parameters
    ----------
    data_width :
        Port width in bits (64 or 128).
    max_burst, outstanding :
        The reader's burst length limit (16 on the AXI3 ports of Zynq-7000) and bursts in flight.
    latency :
        Cycles from an accepted AR to its first R beat.
    interval :
        Cycles per beat the DDR sustains (≥ 1: one beat a cycle is the port's own limit).
    base :
        The weight image's bus address, where it is known (a simulated DDR): each request is then
        timed at its own address, its bursts split at the 4 KiB pages where the reader splits
        them.  None (a plan): every request timed as if it started a page.
    """

    data_width: int = 128
    max_burst: int = 256
    outstanding: int = 8
    latency: float = 50.0
    interval: float = 1.0
    base: int | None = None

    def __post_init__(self) -> None:
        check_reader_parameters(data_width=self.data_width, max_burst=self.max_burst, outstanding=self.outstanding)
        if not self.latency >= 1:
            raise ConfigError(f"DDR latency must be at least one cycle, not {self.latency!r}")
        if not self.interval >= 1:
            raise ConfigError(f"DDR beat interval must be at least one cycle, not {self.interval!r}")
        if self.base is not None:
            check_integer("base", self.base, low=0, high=(1 << 64) - 1)
            if self.base % self.beat_bytes:
                raise ConfigError(f"the DDR image's base {self.base:#x} is not a multiple of the port's "
                                  f"{self.beat_bytes}-byte beats")

    @property
    def beat_bytes(self) -> int:
        return self.data_width // 8

    @property
    def bytes_per_cycle(self) -> float:
        """Sustained bytes a cycle (the port width, or the DDR where it is slower)."""
        return self.beat_bytes / self.interval

    @property
    def port_bound(self) -> bool:
        """Whether the port (one beat a cycle), not the DDR, is what limits the bandwidth."""
        return self.interval <= 1.0

    def request_cycles(self, nbytes: int, offset: int = 0) -> float:
        """Cycles of a request of ``nbytes`` at ``offset`` into the image (the offset counts only
        with a known :attr:`base`)."""
        return approx_request_cycles(nbytes, data_width=self.data_width, max_burst=self.max_burst,
                                     outstanding=self.outstanding, latency=self.latency, interval=self.interval,
                                     address=0 if self.base is None else self.base + offset)


def row_bytes(config, port: DdrPort) -> int:
    """Bytes of one weight row in DDR: P·weight_bits bits padded to whole port beats
    (:func:`lstmfpga.foundation.hw.ddr_image.row_bytes`)."""
    from lstmfpga.foundation.hw import ddr_image

    return ddr_image.row_bytes(config, port.data_width)


@dataclasses.dataclass(frozen=True)
class DdrEstimate(RunCycles):
    """Cycle numbers of one batch of B sequences of T steps.

    Attributes
    ----------
    compute_cycles :
        From the first input beat to the batch's last h code and logit.
    run_cycles :
        With the input (split mode) and output packets of all B sequences.
    ideal_cycles :
        The MACs of the batch on P lanes, no stalls.
    ddr_bytes :
        Weight bytes read from DDR for the batch.
    bound_cycles :
        ``ddr_bytes`` at the port's sustained rate: no schedule of these reads is faster.
    phase_bound_cycles :
        The sum over the schedule's phases (each layer's input pass, then its recurrence) of the
        larger of the phase's MAC cycles on P lanes and the DDR bytes it reads at the port's rate,
        less the two groups the double buffer may fetch before the phase starts: the engine runs
        the phases one after another, so a plan whose input pass is bound by the MACs and whose
        recurrence is bound by the port is held to this bound, not to either alone.
    """

    residency: str
    batch: int
    timesteps: int
    compute_cycles: int
    run_cycles: int
    ideal_cycles: float
    ddr_bytes: int
    bound_cycles: float
    phase_bound_cycles: float

    @property
    def bandwidth_fraction(self) -> float:
        """The DDR bound ÷ compute cycles: how close a DDR-bound plan runs to its bandwidth."""
        return self.bound_cycles / self.compute_cycles

    @property
    def phase_fraction(self) -> float:
        """The phase bound ÷ compute cycles: how close a plan runs to the bound its phases set."""
        return self.phase_bound_cycles / self.compute_cycles

    @property
    def ddr_bound(self) -> bool:
        """Whether the DDR reads, not the MACs, set the pace."""
        return self.bound_cycles > self.ideal_cycles


def demand(config, timesteps: int, *, residency: str, batch: int = 1, port: DdrPort = DdrPort()) -> tuple[float, int]:
    """(MAC-bound cycles, DDR bytes) of one batch: what :func:`estimate_ddr` reports as
    ``ideal_cycles`` and ``ddr_bytes``, without walking the schedule — the two lower bounds a
    planner can rank configurations by (the batch takes at least the larger of the MAC cycles and
    the bytes at the port's rate)."""
    _check(config, timesteps, residency, batch)
    T, B, G = int(timesteps), int(batch), config.groups
    ideal = sum(B * T * 4 * config.hidden_size * config.on_chip_input_columns(l) / config.lanes
                for l in range(config.num_layers))
    if residency == "chip":
        return ideal, 0
    rb = row_bytes(config, port)
    rows = 0
    for layer in range(config.num_layers):
        if residency == "stream":
            rows += T * G * config.issued_columns(layer)
        else:
            rows += G * config.x_columns(layer) + (T * G * config.h_columns if residency == "all" else 0)
    return ideal, rows * rb


class _Fetcher:
    """Request i starts when request i−1 has ended (its last word has left the reader, plus the
    fetcher's :data:`~lstmfpga.hw.latency.DDR_ROWS_READY`) and group i−2 has released its half;
    the group's columns may issue :data:`~lstmfpga.hw.latency.DDR_ROWS_READY` cycles after its
    last word.  An ideal memory (no port) costs nothing: a fetch is done when its half is free."""

    def __init__(self, port: DdrPort | None) -> None:
        self.port = port
        self.end = None
        self.released: list[float] = [0.0, 0.0]
        self.cycles: dict = {}

    def ready(self, nbytes: int, offset: int) -> int:
        """The fetch of ``nbytes`` at ``offset`` in the image."""
        key = (nbytes, offset if self.port is not None and self.port.base is not None else 0)
        if key not in self.cycles:
            self.cycles[key] = self.port.request_cycles(*key) if self.port is not None else 0
        cycles = self.cycles[key]
        gap = latency.DDR_ROWS_READY if cycles else 0
        start = max(0.0 if self.end is None else self.end + gap, self.released[-2])
        self.end = start + cycles
        return int(-(-self.end // 1)) + gap

    def release(self, cycle: int) -> None:
        self.released.append(cycle)


def _check(config, timesteps: int, residency: str, batch: int) -> None:
    if residency not in RESIDENCIES:
        raise ConfigError(f"residency must be one of {', '.join(RESIDENCIES)}, not {residency!r}")
    check_integer("batch", batch, low=1, high=MAX_BATCH)
    check_integer("timesteps", timesteps, low=1, high=config.max_timesteps)
    if residency == "chip" and batch != 1:
        raise ConfigError("an on-chip core runs one sequence at a time (batch 1)")


@functools.lru_cache(maxsize=4096)
def estimate_ddr(config, timesteps: int, *, residency: str, batch: int = 1,
                 port: DdrPort | None = DdrPort()) -> DdrEstimate:
    """Cycles of one batch of ``batch`` sequences of ``timesteps`` steps with weights resident as
    ``residency`` (see the module's description; stall-free input and output streams).
    ``port=None``: an ideal memory, every fetch done the cycle it may start (rows padded to 128
    bits), so only the schedule's own waits remain."""
    from lstmfpga.foundation.hw import ddr_image, stream_format

    _check(config, timesteps, residency, batch)
    T, B = int(timesteps), int(batch)
    if residency == "chip":
        base = estimate(config, T)
        return DdrEstimate(residency, 1, T, base.compute_cycles, base.run_cycles, base.ideal_cycles, 0, 0.0,
                           base.ideal_cycles)

    G, H, P, Hc = config.groups, config.hidden_size, config.lanes, config.h_columns
    rb = row_bytes(config, port or DdrPort())
    layers = range(config.num_layers)
    per_step = residency == "stream"
    x_pass = {l: not per_step and config.x_columns(l) > 0 for l in layers}   # split: layer 0's W_x is the host's
    h_bytes = {l: (config.issued_columns(l) if per_step else Hc if residency == "all" else 0) * rb for l in layers}
    x_bytes = {l: config.x_columns(l) * rb for l in layers}
    group_stride = {l: config.issued_columns(l) * rb for l in layers}
    fetcher = _Fetcher(port)
    layer_base = ddr_image.layer_offsets(config, (port or DdrPort()).data_width)
    to_tail = engine_latency(config) + latency.SHADOW_LOAD + config.tail_cycles_per_group
    wps = stream_format.input_beats_per_step(config)

    rate = port.bytes_per_cycle if port is not None else float("inf")
    issue, shadow_free, ideal, ddr_bytes, phase_bound = 0, 0, 0.0, 0, 0.0
    below = None              # [b][t] offsets of the layer below's h codes
    lasts_b: list = []
    for layer in layers:
        X = config.x_columns(layer)

        def x_ready(t: int, b: int) -> int:
            if layer:
                return below[b][t]
            return (t * B + b) * wps + latency.INPUT_COUNT if config.mode == "full" else 0

        ideal += B * T * 4 * H * config.on_chip_input_columns(layer) / P
        macs = B * T * 4 * H / P
        x_macs = macs * (config.on_chip_input_columns(layer) - H)
        if x_pass[layer]:
            phase_bound += max(x_macs, max(0, G - 2) * x_bytes[layer] / rate)
            for g in range(G):
                # (a group's rows in the image: its X W_x rows, then its H_c W_h rows)
                issue = max(issue, fetcher.ready(x_bytes[layer], layer_base[layer] + g * group_stride[layer]))
                ddr_bytes += x_bytes[layer]
                for t in range(T):
                    for b in range(B):
                        last = max(max(issue, x_ready(t, b)) + X - 1, shadow_free)
                        shadow_free = last + to_tail
                        issue = last + 1
                fetcher.release(issue)
            # (no wait for the last group's sums: the tail stores them before any unit of the
            # recurrence, behind them in its pipeline, reads its slot)
        columns = X if per_step else 0
        phase_bound += max(macs * H + (x_macs if per_step else 0), max(0, T * G - 2) * h_bytes[layer] / rate)
        offsets = [[] for _ in range(B)]
        for t in range(T):
            lasts_b = [[] for _ in range(B)]
            for g in range(G):
                if h_bytes[layer]:
                    issue = max(issue, fetcher.ready(h_bytes[layer], layer_base[layer] + g * group_stride[layer]
                                                     + (0 if per_step else x_bytes[layer])))
                    ddr_bytes += h_bytes[layer]
                for b in range(B):
                    start = max(issue, x_ready(t, b)) + columns if columns else issue
                    if t:
                        start = max(start, offsets[b][-1])
                    last = max(start + Hc - 1, shadow_free)
                    shadow_free = last + to_tail
                    issue = last + 1
                    lasts_b[b].append(last)
                if h_bytes[layer]:
                    fetcher.release(issue)
            for b in range(B):
                offsets[b].append(_ready_offset(config, lasts_b[b]))
        below = offsets

    last_unit = (H - 1 - (G - 1) * config.units_per_group) // config.tail_units
    total = lasts_b[-1][-1] + _round_trip(config) + last_unit + latency.RUN_TAIL
    in_beats = B * stream_format.input_beats(config, T)
    out_beats = B * stream_format.output_beats(config, T)
    run = ((0 if config.mode == "full" else in_beats) + total + latency.OUTPUT_FILL + out_beats + latency.RUN_CONTROL
           + latency.STREAM_PORTS)
    bound = ddr_bytes / rate
    return DdrEstimate(residency, B, T, int(total), int(run), ideal, ddr_bytes, bound,
                       max(phase_bound, bound, ideal))
