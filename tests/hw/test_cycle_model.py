"""Cycle model: closed-form checks (the RTL comparison lives in tests/sim/test_rtl_accel.py)."""

import pytest

from lstmfpga.hw import cycle_model
from lstmfpga.foundation.hw.config import AcceleratorConfig


@pytest.mark.parametrize("P", [512, 1024])
@pytest.mark.parametrize("mode", ["full", "split"])
def test_full_size_utilization(P, mode):
    cfg = AcceleratorConfig(input_size=2048, hidden_size=512, lanes=P, mode=mode, weight_bits=4, num_classes=2)
    est = cycle_model.estimate(cfg, 24)
    K = 512 if mode == "split" else 2560
    assert est.ideal_cycles == 24 * 4 * 512 * K / P
    assert est.step_cycles == ((4 * 512 // P) * K,)   # no stall per step: the tail overlaps
    assert est.utilization >= 0.95


def test_stalls_when_tail_cannot_hide():
    # one group, split mode: every step waits for the tail round trip
    cfg = AcceleratorConfig(input_size=3, hidden_size=2, lanes=8, mode="split")
    depth = cycle_model.ENGINE_LATENCY + cycle_model.TAIL_LATENCY
    assert cycle_model.step_stall(cfg, 0) == depth
    T = 5
    est = cycle_model.estimate(cfg, T)
    assert est.step_cycles == (2 + depth,)
    assert est.compute_cycles == (cycle_model.group_stall(cfg, 0) + 2 + (T - 1) * (2 + depth)
                                  + cycle_model.ENGINE_LATENCY + 2 + cycle_model.TAIL_LATENCY
                                  + cycle_model.RUN_OVERHEAD)
    assert est.utilization < 0.2


def test_rejects_bad_timesteps():
    cfg = AcceleratorConfig(input_size=3, hidden_size=2, lanes=8, max_timesteps=4)
    with pytest.raises(ValueError, match=r"timesteps must be in \[1, 4\], not 5"):
        cycle_model.estimate(cfg, 5)
