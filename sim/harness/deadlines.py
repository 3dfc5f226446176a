"""Cycle budgets of harness transactions, from the cycle model with margin.

A weight load or a sequence that takes :data:`DEADLINE_MARGIN` times its stall-free cycles
(stretched by the streams' pause probability), plus :data:`DEADLINE_SLACK_CYCLES`, has failed.
"""

from __future__ import annotations

from lstmfpga.foundation.hw import stream_format
from lstmfpga.foundation.hw.weight_image import image_words

DEADLINE_MARGIN = 4
DEADLINE_SLACK_CYCLES = 20_000


def _stretch(pause: float) -> float:
    return 1.0 / (1.0 - pause)


def image_beats(config) -> int:
    """Beats of the weight image on the input stream."""
    return -(-image_words(config) // stream_format.lanes_per_beat(config))


def run_cycles(config, timesteps: int, ddr=None, batch: int = 1) -> int:
    """Stall-free cycles of one run of ``batch`` sequences (input, compute, output): the on-chip
    core's, or with weights in DDR the DDR schedule's against ``ddr`` (a
    :class:`~lstmfpga.sim.harness.simulated_ddr.SimulatedDdr`; its default when None)."""
    if not config.ddr_weights:
        from lstmfpga.hw.cycle_model import estimate

        return estimate(config, int(timesteps)).run_cycles
    from lstmfpga.hw.ddr_schedule import estimate_ddr
    from lstmfpga.sim.harness.simulated_ddr import SimulatedDdr

    port = (ddr or SimulatedDdr()).port(config)
    return estimate_ddr(config, int(timesteps), residency=config.weight_residency, batch=batch, port=port).run_cycles


def work_cycles(config, timesteps, *, pause: float = 0.0, ddr=None, batches=None) -> int:
    """Stall-free cycles of runs of ``timesteps`` steps (input, compute, output) — of
    ``batches[i]`` sequences each, one when None — stretched by ``pause`` (the larger of the two
    streams' idle probabilities)."""
    batches = batches or [1] * len(timesteps)
    return int(_stretch(pause) * sum(run_cycles(config, T, ddr, B) for T, B in zip(timesteps, batches)))


def deadline_cycles(config, *, pause: float = 0.0, ddr=None) -> int:
    """Cycles allowed for the longest single transaction of ``config``: a weight load or a run of
    ``max_batch`` sequences of ``max_timesteps`` steps."""
    longest = max(image_beats(config), run_cycles(config, config.max_timesteps, ddr, config.max_batch))
    return int(DEADLINE_MARGIN * longest * _stretch(pause)) + DEADLINE_SLACK_CYCLES
