"""Cycle model of the accelerator (stdlib only), exact against the RTL's CYCLES register.

Schedule (what the RTL does): layers run one after another over all T steps; the layer's h
sequence stays on chip and is the next layer's input.  Per step the MAC engine walks
``groups = ceil(4H/R)`` row groups of R = P/S gate rows (S column sets); per group it issues
ceil(X/S) + ceil(H/S) columns (the x part — when on chip — then the h part), one column per cycle,
each set of R lanes taking its own element of the column.  When a group's last column has been
accumulated and the sets' partial sums added, the R row sums move to a shadow bank and the tail
unit (bias, requantizers, σ/tanh tables, cell update, h requantizer, classifier MAC) drains it at
TU = ``config.tail_units`` hidden units per cycle while the engine already runs the next group.

A column waits only for what it reads: h-part column j of step t for the last of
h_{t-1}[jS … jS+S−1], x-part column j of layer l > 0 likewise for h^{l-1}_t, of layer 0 (full
mode, where the run starts with the input packet's first beat) for the beat of its input word;
and a group's last column waits until the shadow bank has been drained (``engine + SHADOW_LOAD +
ceil(R/4/TU)`` cycles after the previous group's last column).  Unit u of a group is visible to
the scheduler :func:`~lstmfpga.hw.latency.round_trip` + u div TU cycles after the group's last column.  The engine's
latency depends on the MAC block and the sets: :func:`~lstmfpga.hw.latency.engine` of
``config.macs_per_dsp`` and ``config.column_sets``.  Within a run of columns issued back to back
from a start cycle s, column i issues at ``i + max(s, max_{j<=i}(r_j - j))`` with r_j the cycle
its operand becomes visible; within a group ``r_j - j`` grows with j, so the model walks groups,
not columns.
"""

from __future__ import annotations

import dataclasses
import functools

from lstmfpga.hw import latency

#: Cycles from the MAC block's done to a hidden unit's h code being visible to the scheduler (the
#: same for every packing).
TAIL_LATENCY = latency.round_trip(1) - latency.engine(1)
#: Fixed cycles after the last h code (classifier, done flag).
RUN_OVERHEAD = latency.RUN_TAIL


def engine_latency(config) -> int:
    """Cycles from a column's issue to the group's sums (weight read, multiply, accumulate, sum
    over the column sets)."""
    return latency.engine(config.macs_per_dsp, config.column_sets)


def _round_trip(config) -> int:
    return latency.round_trip(config.macs_per_dsp, config.column_sets)


@functools.lru_cache(maxsize=4096)
def _group_offsets(config) -> tuple:
    """Per group g, ``max_j(r_j − j) − last_g − round_trip`` over the columns j whose operand is
    made by group g (None where no column waits on the group).

    Column j reads units jS … jS + S − 1 and waits for the last of them, U_j = min((j+1)S, H) − 1;
    unit u of group g is visible ``round_trip + (u − g·UPG) div TU`` cycles after the group's last
    column (TU tail units).
    Within a group r_j − j grows with j, so the group's last such column is the one that counts.
    """
    H, S, UPG, TU = config.hidden_size, config.column_sets, config.units_per_group, config.tail_units
    offsets = []
    for g in range(config.groups):
        low, high = g * UPG, min((g + 1) * UPG, H) - 1
        j = config.h_columns - 1 if high == H - 1 else (high + 1) // S - 1
        u = min((j + 1) * S, H) - 1
        offsets.append((u - low) // TU - j if low <= high and j >= 0 and u >= low else None)
    return tuple(offsets)


def _ready_offset(config, lasts) -> int:
    """``max_j(r_j - j)`` over the columns j that read a step's h codes, given the last-column
    cycle of each of the step's groups (:func:`_group_offsets`)."""
    offsets = _group_offsets(config)
    return max(last + extra for last, extra in zip(lasts, offsets) if extra is not None) + _round_trip(config)


class RunCycles:
    """What every cycle estimate derives from its ``compute_cycles``, ``ideal_cycles`` and
    ``timesteps``."""

    @property
    def utilization(self) -> float:
        """MAC-lane utilisation: ideal ÷ predicted compute cycles."""
        return self.ideal_cycles / self.compute_cycles

    @property
    def cycles_per_step(self) -> float:
        return self.compute_cycles / self.timesteps


@dataclasses.dataclass(frozen=True)
class CycleEstimate(RunCycles):
    """Cycle numbers of one run of T steps."""

    timesteps: int
    compute_cycles: int          #: predicted CYCLES register
    ideal_cycles: float          #: 4·H·K/P summed over layers and steps (no padding, no stalls)
    step_cycles: tuple           #: cycles of the layer's last step (its steady state), per layer
    input_beats: int             #: beats of the input packet
    output_beats: int            #: beats of the output packet
    #: predicted RUN_CYCLES (input, compute and output; full mode overlaps the first two), exact on
    #: stall-free streams
    run_cycles: int

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["step_cycles"] = list(self.step_cycles)
        d["utilization"] = self.utilization
        d["cycles_per_step"] = self.cycles_per_step
        return d


def _step(config, layer: int, start: int, shadow_free: int, x_ready, h_ready):
    """Issue cycles of one step's groups.

    ``start`` is the first cycle the engine is free, ``shadow_free`` the first cycle a last column
    may issue; ``x_ready`` / ``h_ready`` are the offsets ``max_j(r_j - j)`` of the step's x and h
    operands (None where a part has no dependency).  Returns (last-column cycle per group, the
    offset ``max_j(r_j - j)`` of this step's h codes).
    """
    G = config.groups
    X, Hc = config.x_columns(layer), config.h_columns
    K = X + Hc
    drain = engine_latency(config) + latency.SHADOW_LOAD + config.tail_cycles_per_group
    lasts = []
    t = start
    for g in range(G):
        if x_ready is not None:
            t = max(t, x_ready)
        t += X
        if h_ready is not None:
            t = max(t, h_ready)
        last = max(t + Hc - 1, shadow_free)
        lasts.append(last)
        shadow_free = last + drain
        t = last + 1
        if (g + 1 < G and K >= drain and (x_ready is None or t >= x_ready)
                and (h_ready is None or t + X >= h_ready)):
            # free-running from here on: the rest of the step's groups follow every K cycles
            lasts.extend(last + K * n for n in range(1, G - g))
            break
    return lasts, _ready_offset(config, lasts)


def _input_ready(config, T: int, arrivals) -> list:
    """Per step t (layer 0, full mode), ``max_j(r_j - j)`` over the step's x columns.

    Column j of step t reads input word ``t·wps + j // c`` (c columns per word), which the
    scheduler may issue from the run's cycle ``a_n`` — its beat's arrival, counted from the first
    beat's — plus :data:`~lstmfpga.hw.latency.INPUT_COUNT`.  The earliest column of each word is
    the one that counts.
    """
    from lstmfpga.foundation.hw import stream_format

    wps = stream_format.input_beats_per_step(config)
    chunks = config.bytes_per_word // config.column_sets
    X = config.x_columns(0)
    if arrivals is None:
        return [t * wps + latency.INPUT_COUNT for t in range(T)]
    if len(arrivals) < T * wps:
        raise ValueError(f"{T} steps take {T * wps} input beats; {len(arrivals)} arrival cycles given")
    first = arrivals[0]
    return [max(arrivals[t * wps + i] - first - i * chunks for i in range(wps) if i * chunks < X) + latency.INPUT_COUNT
            for t in range(T)]


@functools.lru_cache(maxsize=65536)
def estimate(config, timesteps: int, arrivals: tuple | None = None) -> CycleEstimate:
    """Predicted cycles of one run of ``timesteps`` steps on a core built for ``config``.

    In full mode the core computes while the input packet streams in; ``arrivals`` are the cycles
    its beats were accepted (any origin; a tuple), None for a stall-free stream (one beat a cycle).
    Split mode starts once the packet is in, so the arrivals do not matter there.
    """
    from lstmfpga.foundation.hw import stream_format

    T = int(timesteps)
    if not 1 <= T <= config.max_timesteps:
        raise ValueError(f"timesteps must be in [1, {config.max_timesteps}], not {timesteps!r}")
    overlap = config.mode == "full"
    input_ready = _input_ready(config, T, arrivals) if overlap else None
    G, H, P = config.groups, config.hidden_size, config.lanes
    start, shadow_free = 0, 0
    previous_layer = None     # h offsets of the layer below, per step
    steps = []
    step_ends = []            # the last layer's steps: the cycle of each one's last column
    ideal = 0.0
    for layer in range(config.num_layers):
        K = config.on_chip_input_columns(layer)
        offsets = []
        step_start = start
        for t in range(T):
            step_start = start
            x_ready = previous_layer[t] if layer > 0 else input_ready[t] if overlap else None
            h_ready = offsets[-1] if t > 0 else None
            lasts, ready = _step(config, layer, start, shadow_free, x_ready, h_ready)
            offsets.append(ready)
            if layer == config.num_layers - 1:
                step_ends.append(lasts[-1])
            start = lasts[-1] + 1
            shadow_free = lasts[-1] + engine_latency(config) + latency.SHADOW_LOAD + config.tail_cycles_per_group
        steps.append(start - step_start)
        previous_layer = offsets
        ideal += T * 4 * H * K / P
    last_unit = (H - 1 - (G - 1) * config.units_per_group) // config.tail_units
    total = (start - 1) + _round_trip(config) + last_unit + RUN_OVERHEAD
    in_beats = stream_format.input_beats(config, T)
    out_beats = stream_format.output_beats(config, T)
    if config.early_output:
        # the input's last beat (full mode; split mode starts after it)
        input_in = (in_beats if arrivals is None else arrivals[-1] - arrivals[0] + 1) if overlap else 0
        last_issue = _early_output_issue(config, T, step_ends, last_unit, input_in, total)
    else:
        last_issue = total + out_beats
    # the input packet before the computation (split mode; full mode overlaps it), the output
    # packet: the sender's read pipeline fills, then a beat per cycle
    run = ((0 if overlap else in_beats) + last_issue + latency.OUTPUT_FILL + latency.RUN_CONTROL
           + latency.STREAM_PORTS)
    return CycleEstimate(timesteps=T, compute_cycles=int(total), ideal_cycles=ideal,
                         step_cycles=tuple(steps), input_beats=in_beats, output_beats=out_beats,
                         run_cycles=int(run))


def _early_output_issue(config, T: int, step_ends, last_unit: int, input_in: int, total: int) -> int:
    """The cycle the output sender issues its last beat, with ``early_output``: a step's words from
    :data:`~lstmfpga.hw.latency.OUTPUT_WRITE` cycles after the h code of its last unit (which
    leaves the tail ``round_trip`` + ``last_unit`` cycles after the step's last column, as the run's
    last one does :data:`RUN_OVERHEAD` cycles before ``total``), once the input packet is in
    (``input_in``), a word a cycle; the logits (or, without a classifier, the last word) from the
    cycle after the computation's end, as without it."""
    from lstmfpga.foundation.hw import stream_format

    words = stream_format.output_step_beats(config)
    h_code = _round_trip(config) + last_unit
    done = total + 1
    issue = None
    for t in range(T):
        ready = max(step_ends[t] + h_code + latency.OUTPUT_WRITE, input_in)
        for w in range(words):
            if config.num_classes == 0 and t == T - 1 and w == words - 1:
                ready = max(ready, done)
            issue = ready if issue is None else max(issue + 1, ready)
    for _ in range(stream_format.output_logit_beats(config) if config.num_classes else 0):
        issue = max(issue + 1, done)
    return issue


def for_run(config, run: dict) -> CycleEstimate:
    """The estimate of one simulated run: a bench result with ``T`` and, from benches that record
    them, ``arrivals`` (the input beats' cycles; in full mode they decide when columns may issue)."""
    arrivals = run.get("arrivals") if config.mode == "full" else None
    return estimate(config, run["T"], None if arrivals is None else tuple(arrivals))
