"""Analytic cycle model of the accelerator (NumPy/stdlib only).

Schedule (what the RTL does): layers run one after another over all T steps; the layer's h
sequence stays on chip and is the next layer's input.  Per step the MAC engine walks
``groups = ceil(4H/P)`` row groups; per group it streams K columns (the x part — when on chip —
then the h part), one column per cycle to all P lanes.  When a group's last column has been
accumulated, the P accumulators move to a shadow bank and the tail unit (bias, requantizers,
σ/tanh tables, cell update, h requantizer, classifier MAC) drains it at one hidden unit per cycle
while the engine already runs the next group — and the next step's x part, which does not depend
on h_t.  The engine stalls only where a column needs an h value the tail has not written yet
(h-part column k of step t waits for h_{t-1}[k]) or where the shadow bank is still busy.

Per step that costs ``groups·K`` cycles plus ``max(0, D - X - (groups-1)·P/4)`` stall cycles, where
X is the number of x columns of that layer streamed before the h part and D the round trip
engine→tail→h buffer (:data:`ENGINE_LATENCY` + :data:`TAIL_LATENCY`).  A run ends when the tail
has drained the last group.
"""

from __future__ import annotations

import dataclasses

#: Cycles from a column's issue to its accumulation into the shadow bank (issue, read, multiply).
ENGINE_LATENCY = 3
#: Cycles from the shadow bank load to a hidden unit's h code being visible to the engine.
TAIL_LATENCY = 18
#: Fixed cycles around a run (start of compute, classifier bias, done flag).
RUN_OVERHEAD = 3


@dataclasses.dataclass(frozen=True)
class CycleEstimate:
    """Cycle numbers of one run of T steps."""

    timesteps: int
    compute_cycles: int          #: predicted CYCLES register
    ideal_cycles: float          #: 4·H·K/P summed over layers and steps (no padding, no stalls)
    step_cycles: tuple           #: steady-state cycles of one step, per layer
    input_beats: int             #: beats of the input packet
    output_beats: int            #: beats of the output packet
    run_cycles: int              #: predicted RUN_CYCLES at a stall-free stream (input + compute + output)

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


def step_stall(config, layer: int) -> int:
    """Engine stall cycles of one step t > 0 of ``layer`` waiting for h_{t-1}."""
    depth = ENGINE_LATENCY + TAIL_LATENCY
    return max(0, depth - _x_columns(config, layer) - (config.groups - 1) * config.units_per_group)


def group_stall(config, layer: int) -> int:
    """Engine stall per group waiting for the shadow bank (only when K < P/4 + latency)."""
    K = config.on_chip_input_columns(layer)
    return max(0, ENGINE_LATENCY + config.units_per_group + 1 - K)


def estimate(config, timesteps: int) -> CycleEstimate:
    """Predicted cycles of one run of ``timesteps`` steps on a core built for ``config``."""
    from lstmfpga.foundation.hw import stream_format

    T = int(timesteps)
    if not 1 <= T <= config.max_timesteps:
        raise ValueError(f"timesteps must be in [1, {config.max_timesteps}], not {timesteps!r}")
    G, H, P = config.groups, config.hidden_size, config.lanes
    total = 0
    ideal = 0.0
    steps = []
    depth = ENGINE_LATENCY + TAIL_LATENCY
    for layer in range(config.num_layers):
        K = config.on_chip_input_columns(layer)
        per_group = K + group_stall(config, layer)
        # a step after the first waits for h_{t-1} (step_stall) or for the shadow bank, not both
        step = max(G * per_group, G * K + step_stall(config, layer))
        steps.append(step)
        first = G * per_group
        if layer > 0 and T == 1:
            # layer l's x part at t = 0 reads h^{l-1}_0, written by the step just before
            first = max(first, G * K + max(0, depth - (G - 1) * config.units_per_group))
        total += first + (T - 1) * step
        ideal += T * 4 * H * K / P
    last_units = H - (G - 1) * config.units_per_group
    total += ENGINE_LATENCY + last_units + TAIL_LATENCY + RUN_OVERHEAD
    in_beats = stream_format.input_beats(config, T)
    out_beats = stream_format.output_beats(config, T)
    run = in_beats + total + out_beats * (config.bytes_per_word + 2) + 8
    return CycleEstimate(timesteps=T, compute_cycles=int(total), ideal_cycles=ideal,
                         step_cycles=tuple(steps), input_beats=in_beats, output_beats=out_beats,
                         run_cycles=int(run))
