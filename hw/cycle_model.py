"""Cycle model of the accelerator (stdlib only), exact against the RTL's CYCLES register.

Schedule (what the RTL does): layers run one after another over all T steps; the layer's h
sequence stays on chip and is the next layer's input.  Per step the MAC engine walks
``groups = ceil(4H/P)`` row groups; per group it issues K columns (the x part — when on chip —
then the h part), one column per cycle to all P lanes.  When a group's last column has been
accumulated, the P accumulators move to a shadow bank and the tail unit (bias, requantizers,
σ/tanh tables, cell update, h requantizer, classifier MAC) drains it at one hidden unit per cycle
while the engine already runs the next group.

A column waits only for what it reads: an h-part column k of step t for h_{t-1}[k], an x-part
column k of layer l > 0 for h^{l-1}_t[k]; and a group's last column waits until the shadow bank
has been drained (``engine + SHADOW_LOAD + P/4`` cycles after the previous group's last column).
Unit u of a group is visible to the scheduler :func:`~lstmfpga.hw.latency.round_trip` + u cycles
after the group's last column.  The engine's latency depends on the MAC block:
:func:`~lstmfpga.hw.latency.engine` of ``config.macs_per_dsp`` (the lanes, or the packed units).
Within a run of columns issued back to back from a start cycle s, column i issues at
``i + max(s, max_{j<=i}(r_j - j))`` with r_j the cycle its operand becomes visible; as every group's units are visible one per cycle, ``r_j - j`` depends only on the group,
so the model walks groups, not columns.
"""

from __future__ import annotations

import dataclasses

from lstmfpga.hw import latency

#: Cycles from the MAC block's done to a hidden unit's h code being visible to the scheduler (the
#: same for every packing).
TAIL_LATENCY = latency.round_trip(1) - latency.engine(1)
#: Fixed cycles after the last h code (classifier, done flag).
RUN_OVERHEAD = latency.RUN_TAIL


def engine_latency(config) -> int:
    """Cycles from a column's issue to the MAC block's done (weight read, multiply, accumulate)."""
    return latency.engine(config.macs_per_dsp)


@dataclasses.dataclass(frozen=True)
class CycleEstimate:
    """Cycle numbers of one run of T steps."""

    timesteps: int
    compute_cycles: int          #: predicted CYCLES register
    ideal_cycles: float          #: 4·H·K/P summed over layers and steps (no padding, no stalls)
    step_cycles: tuple           #: cycles of the layer's last step (its steady state), per layer
    input_beats: int             #: beats of the input packet
    output_beats: int            #: beats of the output packet
    run_cycles: int              #: predicted RUN_CYCLES at a stall-free stream (input + compute + output), exact

    @property
    def utilization(self) -> float:
        """MAC-lane utilisation: ideal ÷ predicted compute cycles."""
        return self.ideal_cycles / self.compute_cycles

    @property
    def cycles_per_step(self) -> float:
        return self.compute_cycles / self.timesteps

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["step_cycles"] = list(self.step_cycles)
        d["utilization"] = self.utilization
        d["cycles_per_step"] = self.cycles_per_step
        return d


def _x_columns(config, layer: int) -> int:
    return config.on_chip_input_columns(layer) - config.hidden_size


def _step(config, layer: int, start: int, shadow_free: int, x_ready, h_ready):
    """Issue cycles of one step's groups.

    ``start`` is the first cycle the engine is free, ``shadow_free`` the first cycle a last column
    may issue; ``x_ready`` / ``h_ready`` are the offsets ``max_j(r_j - j)`` of the step's x and h
    operands (None where a part has no dependency).  Returns (last-column cycle per group, the
    offset ``max_j(r_j - j)`` of this step's h codes).
    """
    G, H, UPG = config.groups, config.hidden_size, config.units_per_group
    X, K = _x_columns(config, layer), config.on_chip_input_columns(layer)
    drain = engine_latency(config) + latency.SHADOW_LOAD + UPG
    lasts = []
    t = start
    for g in range(G):
        if x_ready is not None:
            t = max(t, x_ready)
        t += X
        if h_ready is not None:
            t = max(t, h_ready)
        last = max(t + H - 1, shadow_free)
        lasts.append(last)
        shadow_free = last + drain
        t = last + 1
        if (g + 1 < G and K >= drain and (x_ready is None or t >= x_ready)
                and (h_ready is None or t + X >= h_ready)):
            # free-running from here on: the rest of the step's groups follow every K cycles
            lasts.extend(last + K * n for n in range(1, G - g))
            break
    ready = max(last - g * UPG for g, last in enumerate(lasts)) + latency.round_trip(config.macs_per_dsp)
    return lasts, ready


def estimate(config, timesteps: int) -> CycleEstimate:
    """Predicted cycles of one run of ``timesteps`` steps on a core built for ``config``."""
    from lstmfpga.foundation.hw import stream_format

    T = int(timesteps)
    if not 1 <= T <= config.max_timesteps:
        raise ValueError(f"timesteps must be in [1, {config.max_timesteps}], not {timesteps!r}")
    G, H, P = config.groups, config.hidden_size, config.lanes
    start, shadow_free = 0, 0
    previous_layer = None     # h offsets of the layer below, per step
    steps = []
    ideal = 0.0
    for layer in range(config.num_layers):
        K = config.on_chip_input_columns(layer)
        offsets = []
        step_start = start
        for t in range(T):
            step_start = start
            x_ready = previous_layer[t] if layer > 0 else None
            h_ready = offsets[-1] if t > 0 else None
            lasts, ready = _step(config, layer, start, shadow_free, x_ready, h_ready)
            offsets.append(ready)
            start = lasts[-1] + 1
            shadow_free = lasts[-1] + engine_latency(config) + latency.SHADOW_LOAD + config.units_per_group
        steps.append(start - step_start)
        previous_layer = offsets
        ideal += T * 4 * H * K / P
    last_unit = H - 1 - (G - 1) * config.units_per_group
    total = (start - 1) + latency.round_trip(config.macs_per_dsp) + last_unit + RUN_OVERHEAD
    in_beats = stream_format.input_beats(config, T)
    out_beats = stream_format.output_beats(config, T)
    # the output packet: the sender's read pipeline fills, then a beat per cycle
    run = in_beats + total + latency.OUTPUT_FILL + out_beats + latency.RUN_CONTROL
    return CycleEstimate(timesteps=T, compute_cycles=int(total), ideal_cycles=ideal,
                         step_cycles=tuple(steps), input_beats=in_beats, output_beats=out_beats,
                         run_cycles=int(run))
