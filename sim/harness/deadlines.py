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


def work_cycles(config, timesteps, *, pause: float = 0.0) -> int:
    """Stall-free cycles of sequences of ``timesteps`` steps (input, compute, output), stretched by
    ``pause`` (the larger of the two streams' idle probabilities)."""
    from lstmfpga.hw.cycle_model import estimate

    return int(_stretch(pause) * sum(estimate(config, int(T)).run_cycles for T in timesteps))


def deadline_cycles(config, *, pause: float = 0.0) -> int:
    """Cycles allowed for the longest single transaction of ``config``: a weight load or a
    sequence of ``max_timesteps`` steps."""
    longest = max(image_beats(config), work_cycles(config, [config.max_timesteps]))
    return int(DEADLINE_MARGIN * longest * _stretch(pause)) + DEADLINE_SLACK_CYCLES
