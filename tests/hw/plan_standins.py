"""A stated stand-in for the planner's Yosys logic fit, shared by the planner tests."""

from __future__ import annotations

import pytest

from lstmfpga.hw import plan as plan_mod
from lstmfpga.hw.resources import LogicFit


def stand_in_fit(mode, family, *, macs_per_dsp=1, column_sets=1, tail_units=1, lut=(5_000, 70.0),
                  ff=(4_000, 120.0), dsp=(27, 1.0)):
    """A logic fit with the shape Yosys measures on the accelerator (see test_plan_yosys); the DSP
    line is in multipliers, S·ceil(P / S / macs_per_dsp)."""
    return LogicFit(family=family, mode=mode, samples=(),
                    coefficients={"lut": lut, "ff": ff, "dsp": dsp},
                    max_residual={"lut": 0.0, "ff": 0.0, "dsp": 0.0}, macs_per_dsp=macs_per_dsp,
                    column_sets=column_sets, tail_units=tail_units)


class _Calls(list):
    slopes: dict


@pytest.fixture
def stand_in_fits(monkeypatch):
    calls = _Calls()
    slopes = {}

    def fake_fit_logic(config, *, family, sample_lanes, cache_dir=None, progress=False):
        assert all(p % (4 * config.column_sets * config.tail_units) == 0 for p in sample_lanes)
        calls.append((config.mode, family) if config.column_sets == 1 else (config.mode, family, config.column_sets))
        return stand_in_fit(config.mode, family, macs_per_dsp=config.macs_per_dsp, column_sets=config.column_sets,
                             tail_units=config.tail_units, **slopes)

    monkeypatch.setattr(plan_mod, "fit_logic", fake_fit_logic)
    calls.slopes = slopes
    return calls
