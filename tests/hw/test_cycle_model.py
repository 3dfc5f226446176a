"""Cycle model: closed-form checks and a column-by-column reference of the scheduler's rules
(the RTL comparison, CYCLES == model, lives in tests/sim/test_rtl_accel.py and the sweep)."""

import random

import pytest

from lstmfpga.foundation.hw.config import AcceleratorConfig
from lstmfpga.hw import cycle_model, latency


def _column_by_column(config, T):
    """CYCLES by issuing every column in turn under the scheduler's three rules (no shortcuts)."""
    G, H, UPG = config.groups, config.hidden_size, config.units_per_group
    visible = {}          # (layer, t, unit) -> first cycle the scheduler sees its h code
    cycle, shadow_free = 0, 0
    for layer in range(config.num_layers):
        K = config.on_chip_input_columns(layer)
        X = K - H
        for t in range(T):
            for g in range(G):
                for k in range(K):
                    if k < X:
                        ready = visible[(layer - 1, t, k)] if layer > 0 else 0
                    else:
                        ready = visible[(layer, t - 1, k - X)] if t > 0 else 0
                    if k == K - 1:
                        ready = max(ready, shadow_free)
                    cycle = max(cycle, ready)
                    issued = cycle
                    cycle += 1
                shadow_free = issued + latency.ENGINE + latency.SHADOW_LOAD + UPG
                for u in range(UPG):
                    if g * UPG + u < H:
                        visible[(layer, t, g * UPG + u)] = issued + latency.ROUND_TRIP + u
    last_unit = H - 1 - (G - 1) * UPG
    return issued + latency.ROUND_TRIP + last_unit + latency.RUN_TAIL


def test_matches_column_reference_on_random_configs():
    rng = random.Random(20261201)
    for _ in range(60):
        H = rng.randint(1, 24)
        cfg = AcceleratorConfig(input_size=rng.randint(1, 40), hidden_size=H, num_layers=rng.randint(1, 3),
                                lanes=4 * rng.randint(1, H + 3), mode=rng.choice(["full", "split"]),
                                max_timesteps=6)
        T = rng.randint(1, 6)
        assert cycle_model.estimate(cfg, T).compute_cycles == _column_by_column(cfg, T), (cfg, T)


def test_partial_group_three_layers():
    # 4H = 28 rows at P = 12: three groups, the last one holding one real unit of three
    cfg = AcceleratorConfig(input_size=23, hidden_size=7, num_layers=3, lanes=12, max_timesteps=24)
    for T in (1, 2, 24):
        assert cycle_model.estimate(cfg, T).compute_cycles == _column_by_column(cfg, T)


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
    # one group, split mode: every step waits for the tail round trip of the step before
    cfg = AcceleratorConfig(input_size=3, hidden_size=2, lanes=8, mode="split")
    T = 5
    est = cycle_model.estimate(cfg, T)
    period = latency.ROUND_TRIP + 2 - 1
    assert est.step_cycles == (period,)
    last_issue = 1 + (T - 1) * period
    assert est.compute_cycles == last_issue + latency.ROUND_TRIP + 1 + latency.RUN_TAIL
    assert est.utilization < 0.2


def test_rejects_bad_timesteps():
    cfg = AcceleratorConfig(input_size=3, hidden_size=2, lanes=8, max_timesteps=4)
    with pytest.raises(ValueError, match=r"timesteps must be in \[1, 4\], not 5"):
        cycle_model.estimate(cfg, 5)
