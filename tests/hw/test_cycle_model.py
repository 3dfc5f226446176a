"""Cycle model: closed-form checks and a column-by-column reference of the scheduler's rules
(the RTL comparison, CYCLES == model, lives in tests/sim/test_rtl_accel.py and the sweep)."""

import random

import pytest

from lstmfpga.foundation.hw import stream_format
from lstmfpga.foundation.hw.config import COLUMN_SETS, STREAM_WIDTHS, TAIL_UNITS, AcceleratorConfig
from lstmfpga.foundation.hw.packed_mac_model import max_macs_per_dsp
from lstmfpga.hw import cycle_model, latency


def _column_by_column(config, T, arrivals=None):
    """CYCLES by issuing every column in turn under the scheduler's rules (no shortcuts): a column
    of S elements waits for the last of them (an h code, or in full mode its input word's beat:
    ``arrivals``, None: one beat a cycle, seen ``INPUT_COUNT`` cycles later), a group's last column
    for the shadow bank, and the tail finishes TU units a cycle."""
    G, H, UPG = config.groups, config.hidden_size, config.units_per_group
    S, TU = config.column_sets, config.tail_units
    engine = latency.engine(config.macs_per_dsp, S)
    round_trip = latency.round_trip(config.macs_per_dsp, S)
    wps = stream_format.input_beats_per_step(config)
    if arrivals is None:
        arrivals = range(T * wps)
    visible = {}          # (layer, t, unit) -> first cycle the scheduler sees its h code
    cycle, shadow_free = 0, 0
    for layer in range(config.num_layers):
        X, Hc = config.x_columns(layer), config.h_columns
        X_elements = config.on_chip_input_columns(layer) - H
        for t in range(T):
            for g in range(G):
                for k in range(X + Hc):
                    if k < X and layer == 0:
                        word = t * wps + k // (config.bytes_per_word // S)
                        ready = arrivals[word] - arrivals[0] + latency.INPUT_COUNT if config.mode == "full" else 0
                    elif k < X:
                        ready = max(visible[(layer - 1, t, e)] for e in range(k * S, min(k * S + S, X_elements)))
                    else:
                        j = k - X
                        ready = max(visible[(layer, t - 1, u)] for u in range(j * S, min(j * S + S, H))) if t else 0
                    if k == X + Hc - 1:
                        ready = max(ready, shadow_free)
                    cycle = max(cycle, ready)
                    issued = cycle
                    cycle += 1
                shadow_free = issued + engine + latency.SHADOW_LOAD + -(-UPG // TU)
                for u in range(UPG):
                    if g * UPG + u < H:
                        visible[(layer, t, g * UPG + u)] = issued + round_trip + u // TU
    last_unit = (H - 1 - (G - 1) * UPG) // TU
    return issued + round_trip + last_unit + latency.RUN_TAIL


def test_matches_column_reference_on_random_configs():
    rng = random.Random(20261201)
    packed = 0
    for _ in range(80):
        H = rng.randint(1, 24)
        wb, io = rng.randint(2, 8), rng.randint(4, 8)
        k = rng.randint(1, max_macs_per_dsp(weight_bits=wb, act_bits=io))
        packed += k > 1
        cfg = AcceleratorConfig(input_size=rng.randint(1, 40), hidden_size=H, num_layers=rng.randint(1, 3),
                                lanes=4 * rng.randint(1, H + 3), mode=rng.choice(["full", "split"]),
                                weight_bits=wb, io_bits=io, macs_per_dsp=k, max_timesteps=6)
        T = rng.randint(1, 6)
        assert cycle_model.estimate(cfg, T).compute_cycles == _column_by_column(cfg, T), (cfg, T)
    assert packed >= 30


def test_column_sets_and_tail_units_match_column_reference():
    rng = random.Random(20261203)
    tails = 0
    for _ in range(120):
        H = rng.randint(1, 40)
        S = rng.choice(COLUMN_SETS)
        TU = rng.choice(TAIL_UNITS) if S % 2 == 0 else 1
        mode, width = rng.choice(["full", "split"]), rng.choice(STREAM_WIDTHS)
        if mode == "full":
            S = min(S, width // 8)
            TU = TU if S % 2 == 0 else 1
        cfg = AcceleratorConfig(input_size=rng.randint(1, 60), hidden_size=H, num_layers=rng.randint(1, 3),
                                lanes=4 * S * TU * rng.randint(1, 5), column_sets=S, tail_units=TU, mode=mode,
                                stream_width=width, weight_bits=4, macs_per_dsp=rng.randint(1, 2), max_timesteps=6)
        T = rng.randint(1, 6)
        assert cycle_model.estimate(cfg, T).compute_cycles == _column_by_column(cfg, T), (cfg, T)
        tails += TU > 1
    assert tails >= 30


def test_input_arrivals_match_column_reference():
    """Full mode starts with the input packet's first beat: random beat gaps (some longer than a
    step) delay exactly the columns that read late words."""
    rng = random.Random(20261202)
    slowed = 0
    for _ in range(60):
        H = rng.randint(1, 16)
        cfg = AcceleratorConfig(input_size=rng.randint(1, 70), hidden_size=H, num_layers=rng.randint(1, 3),
                                lanes=4 * rng.randint(1, H + 3), stream_width=rng.choice(STREAM_WIDTHS),
                                max_timesteps=6)
        T = rng.randint(1, 6)
        gap = rng.choice([1, 2, 8, 60])
        arrivals = [rng.randint(0, 10_000)]
        for _ in range(T * stream_format.input_beats_per_step(cfg) - 1):
            arrivals.append(arrivals[-1] + rng.randint(1, gap))
        est = cycle_model.estimate(cfg, T, tuple(arrivals))
        assert est.compute_cycles == _column_by_column(cfg, T, arrivals), (cfg, T, arrivals)
        free = cycle_model.estimate(cfg, T)
        assert est.compute_cycles >= free.compute_cycles
        slowed += est.compute_cycles > free.compute_cycles
        consecutive = tuple(range(arrivals[0], arrivals[0] + len(arrivals)))
        assert cycle_model.estimate(cfg, T, consecutive) == free
    assert slowed >= 10
    with pytest.raises(ValueError, match="2 steps take 4 input beats; 3 arrival cycles given"):
        cycle_model.estimate(AcceleratorConfig(input_size=8, hidden_size=2, lanes=8, max_timesteps=4), 2, (0, 1, 2))


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


@pytest.mark.parametrize("k", [1, 2])
def test_stalls_when_tail_cannot_hide(k):
    # one group, split mode: every step waits for the tail round trip of the step before
    cfg = AcceleratorConfig(input_size=3, hidden_size=2, lanes=8, mode="split", macs_per_dsp=k)
    T = 5
    est = cycle_model.estimate(cfg, T)
    round_trip = latency.round_trip(k)
    period = round_trip + 2 - 1
    assert est.step_cycles == (period,)
    last_issue = 1 + (T - 1) * period
    assert est.compute_cycles == last_issue + round_trip + 1 + latency.RUN_TAIL
    assert est.utilization < 0.2


def test_packing_costs_the_packed_units_extra_stage_per_round_trip_only():
    assert latency.engine(1) == latency.MEMORY_READ + latency.MEMORY_OUTPUT + latency.COLUMN_COPY + latency.MAC_LANES
    extra = latency.PACKED_MAC - latency.MAC_LANES
    for k in (2, 3, 5):
        assert latency.engine(k) - latency.engine(1) == latency.round_trip(k) - latency.round_trip(1) == extra
    # a dependency-bound run (one group, split) pays it every step; a throughput-bound one only at the end
    bound = [AcceleratorConfig(input_size=3, hidden_size=2, lanes=8, mode="split", macs_per_dsp=k) for k in (1, 2)]
    assert cycle_model.estimate(bound[1], 6).compute_cycles - cycle_model.estimate(bound[0], 6).compute_cycles == 6 * extra
    free = [AcceleratorConfig(input_size=2048, hidden_size=512, lanes=512, weight_bits=4, macs_per_dsp=k) for k in (1, 2)]
    assert cycle_model.estimate(free[1], 16).compute_cycles - cycle_model.estimate(free[0], 16).compute_cycles == extra
    with pytest.raises(ValueError, match="macs_per_dsp must be a positive integer, not 0"):
        latency.engine(0)


def test_rejects_bad_timesteps():
    cfg = AcceleratorConfig(input_size=3, hidden_size=2, lanes=8, max_timesteps=4)
    with pytest.raises(ValueError, match=r"timesteps must be in \[1, 4\], not 5"):
        cycle_model.estimate(cfg, 5)
