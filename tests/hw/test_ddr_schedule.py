"""The weights-in-DDR cycle model (:mod:`lstmfpga.hw.ddr_schedule`) against a column-by-column
reference of the same rules, against the on-chip cycle model where the two schedules coincide, and
its bounds.  Configurations, residencies, batches and ports are drawn at random."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from lstmfpga.foundation.errors import ConfigError
from lstmfpga.foundation.hw.config import AcceleratorConfig
from lstmfpga.hw import latency
from lstmfpga.hw.cycle_model import engine_latency
from lstmfpga.hw.cycle_model import estimate as chip_estimate
from lstmfpga.hw.ddr_schedule import DdrPort, demand, estimate_ddr, row_bytes

DDR = ("wx", "all", "stream")


def _draw_config(rng, *, max_hidden=40, max_input=100) -> AcceleratorConfig:
    while True:
        S = int(rng.integers(1, 17))
        TU = int(rng.choice([1, 2])) if S % 2 == 0 else 1
        H, I = int(rng.integers(1, max_hidden + 1)), int(rng.integers(1, max_input + 1))
        step = 4 * S * TU
        P = step * int(rng.integers(1, max(1, 4 * H * S // step) + 2))
        try:
            return AcceleratorConfig(input_size=I, hidden_size=H, num_layers=int(rng.integers(1, 4)), lanes=P,
                                     column_sets=S, tail_units=TU, macs_per_dsp=int(rng.integers(1, 3)),
                                     mode=str(rng.choice(["full", "split"])), weight_bits=int(rng.integers(2, 9)),
                                     stream_width=int(rng.choice([32, 64, 128])))
        except ConfigError:
            continue     # a column-set count the stream cannot feed in full mode


def _draw_port(rng) -> DdrPort:
    return DdrPort(data_width=int(rng.choice([64, 128])), max_burst=int(rng.choice([1, 4, 16, 256])),
                   outstanding=int(rng.integers(1, 9)), latency=float(rng.integers(1, 80)),
                   interval=float(rng.choice([1.0, 1.5, 2.0, 3.25])))


def _reference(config, T: int, residency: str, B: int, port: DdrPort | None) -> int:
    """Compute cycles of the batch, issuing one column at a time.

    Each column issues at the earliest cycle after the previous one at which everything it reads is
    there: its input word (layer 0, full mode: word n of the step-major batch packet arrives in
    cycle n), or the h codes of the units it reads (unit u of a group is visible round-trip +
    (u − first unit) div TU cycles after the group's last column), and its group's rows (the
    fetcher's DDR_ROWS_READY after the fetch ends; no wait for an ideal memory).  A pass's last
    column also waits for the shadow bank.  Fetch i starts DDR_ROWS_READY after fetch i−1 has
    ended, once group i−2 has released its half (the cycle after its last pass's last column).
    """
    H, S, G, UPG, TU = (config.hidden_size, config.column_sets, config.groups, config.units_per_group,
                        config.tail_units)
    trip = latency.round_trip(config.macs_per_dsp, S)
    to_tail = engine_latency(config) + latency.SHADOW_LOAD + config.tail_cycles_per_group
    rb = row_bytes(config, port or DdrPort())
    chunks = config.bytes_per_word // S
    from lstmfpga.foundation.hw import stream_format

    wps = stream_format.input_beats_per_step(config)
    visible: dict = {}
    state = {"prev": -1, "shadow": 0, "fetch_end": None, "released": [0, 0]}

    def fetch(nbytes: int) -> int:
        cycles = port.request_cycles(nbytes) if port is not None else 0
        gap = latency.DDR_ROWS_READY if cycles else 0
        start = max(0 if state["fetch_end"] is None else state["fetch_end"] + gap, state["released"][-2])
        state["fetch_end"] = start + cycles
        return math.ceil(state["fetch_end"]) + gap

    def units_ready(key, first: int, count: int) -> int:
        return max(visible[key + (u,)] for u in range(first, min(first + count, H)))

    def run_pass(columns, ready, floor) -> int:
        last = None
        for n, needs in enumerate(columns):
            cycle = max(state["prev"] + 1, floor, needs)
            if n == len(columns) - 1:
                cycle = max(cycle, state["shadow"])
            state["prev"] = last = cycle
        state["shadow"] = last + to_tail
        return last

    for layer in range(config.num_layers):
        X = config.x_columns(layer)

        def x_needs(t, b):
            if layer:
                return [units_ready((layer - 1, t, b), j * S, S) for j in range(X)]
            if config.mode == "full":
                return [(t * B + b) * wps + j // chunks + latency.INPUT_COUNT for j in range(X)]
            return [0] * X

        if residency != "stream" and X:
            for g in range(G):
                ready = fetch(X * rb)
                for t in range(T):
                    for b in range(B):
                        run_pass(x_needs(t, b), ready, ready)
                state["released"].append(state["prev"] + 1)
            # (the recurrence's first column does not wait for the input pass's last sums: the
            # tail stores them before any unit behind them reads its slot)
        for t in range(T):
            for g in range(G):
                per_group = (config.issued_columns(layer) if residency == "stream"
                             else config.h_columns if residency == "all" else 0) * rb
                ready = fetch(per_group) if per_group else 0
                for b in range(B):
                    h_needs = [units_ready((layer, t - 1, b), j * S, S) if t else 0 for j in range(config.h_columns)]
                    columns = (x_needs(t, b) if residency == "stream" else []) + h_needs
                    last = run_pass(columns, ready, ready)
                    for u in range(g * UPG, min((g + 1) * UPG, H)):
                        visible[(layer, t, b, u)] = last + trip + (u - g * UPG) // TU
                if per_group:
                    state["released"].append(state["prev"] + 1)
    final = max(visible[(config.num_layers - 1, T - 1, b, u)] for b in range(B) for u in range(H))
    return final + latency.RUN_TAIL


def test_streaming_from_an_ideal_memory_is_the_on_chip_schedule():
    """Residency ``stream`` with weights that arrive at once walks exactly the on-chip core's
    schedule: same compute cycles as the exact cycle model, on 40 drawn cores, and the run cycles
    of a core whose output starts after the computation (weights in DDR: no early output)."""
    rng = np.random.default_rng()
    for _ in range(40):
        config, T = _draw_config(rng), int(rng.integers(1, 25))
        chip, ddr = chip_estimate(config, T), estimate_ddr(config, T, residency="stream", port=None)
        late = chip_estimate(dataclasses.replace(config, weight_residency="stream", weight_ports=1), T)
        assert not late.run_cycles < chip.run_cycles
        assert (ddr.compute_cycles, ddr.run_cycles, ddr.ideal_cycles) == \
            (chip.compute_cycles, late.run_cycles, chip.ideal_cycles), (config, T)


def test_walk_equals_the_column_by_column_reference():
    rng = np.random.default_rng()
    for _ in range(40):
        config = _draw_config(rng, max_hidden=12, max_input=24)
        T, B = int(rng.integers(1, 6)), int(rng.integers(1, 4))
        residency = str(rng.choice(DDR))
        port = None if rng.random() < 0.2 else _draw_port(rng)
        got = estimate_ddr(config, T, residency=residency, batch=B, port=port)
        assert got.compute_cycles == _reference(config, T, residency, B, port), (config, T, residency, B, port)


def test_demand_is_what_the_walk_counts_and_both_bounds_hold():
    rng = np.random.default_rng()
    for _ in range(40):
        config = _draw_config(rng)
        T, B, residency, port = int(rng.integers(1, 25)), int(rng.integers(1, 5)), str(rng.choice(DDR)), _draw_port(rng)
        got = estimate_ddr(config, T, residency=residency, batch=B, port=port)
        ideal, nbytes = demand(config, T, residency=residency, batch=B, port=port)
        assert (got.ideal_cycles, got.ddr_bytes) == (pytest.approx(ideal), nbytes)
        assert got.bound_cycles == pytest.approx(nbytes * port.interval / port.beat_bytes)
        assert got.compute_cycles >= got.phase_bound_cycles >= max(got.ideal_cycles, got.bound_cycles)
        assert 0 <= got.bandwidth_fraction <= got.phase_fraction <= 1 and 0 < got.utilization <= 1


def test_phase_bound_is_each_phase_at_its_own_limit():
    """The phases' bound sums, per layer, the input pass and the recurrence each at the larger of
    its MAC cycles and its reads (less the two groups the double buffer may hold before the phase
    starts) — reckoned here from the shape and the byte counts of :func:`demand`."""
    rng = np.random.default_rng()
    for _ in range(40):
        config = _draw_config(rng)
        T, B, residency, port = int(rng.integers(1, 25)), int(rng.integers(1, 5)), str(rng.choice(DDR)), _draw_port(rng)
        x_only = {r: demand(config, T, residency=r, batch=B, port=port)[1] for r in ("wx", "all")}
        G, H, rate = config.groups, config.hidden_size, port.bytes_per_cycle
        x_bytes = [G * config.x_columns(layer) * row_bytes(config, port) for layer in range(config.num_layers)]
        assert sum(x_bytes) == x_only["wx"]
        h_total = (x_only["all"] - x_only["wx"]) // config.num_layers      # the same W_h bytes every layer
        expected = 0.0
        for layer in range(config.num_layers):
            x_macs = B * T * 4 * H * (config.on_chip_input_columns(layer) - H) / config.lanes
            h_macs = B * T * 4 * H * H / config.lanes
            group_x, group_h = x_bytes[layer] / G, h_total / (T * G)
            if residency == "stream":
                expected += max(x_macs + h_macs, max(0, T * G - 2) * (group_x + group_h) / rate)
                continue
            if x_bytes[layer]:
                expected += max(x_macs, max(0, G - 2) * group_x / rate)
            expected += max(h_macs, max(0, T * G - 2) * group_h / rate if residency == "all" else 0.0)
        got = estimate_ddr(config, T, residency=residency, batch=B, port=port)
        assert got.phase_bound_cycles == pytest.approx(max(expected, got.bound_cycles, got.ideal_cycles))


def test_ddr_bytes_per_batch_follow_the_residency():
    """W_x crosses the port once per batch with an input pass, T times without; W_h once per step;
    every row padded to whole beats."""
    rng = np.random.default_rng()
    config = dataclasses.replace(_draw_config(rng), mode="full", column_sets=1, tail_units=1)
    config = dataclasses.replace(config, lanes=4 * int(rng.integers(1, config.hidden_size + 1)))
    port = _draw_port(rng)
    T, B = int(rng.integers(2, 25)), int(rng.integers(1, 5))
    G, rb = config.groups, -(-config.lanes * config.weight_bits // port.data_width) * port.data_width // 8
    x_rows = sum(G * config.x_columns(layer) for layer in range(config.num_layers))
    h_rows = config.num_layers * G * config.h_columns
    bytes_of = {r: estimate_ddr(config, T, residency=r, batch=B, port=port).ddr_bytes for r in DDR}
    assert bytes_of == {"wx": x_rows * rb, "all": (x_rows + T * h_rows) * rb, "stream": T * (x_rows + h_rows) * rb}


def test_a_batch_shares_every_fetch():
    """B sequences through each fetched group: the batch reads the bytes one sequence reads."""
    rng = np.random.default_rng()
    config, port = _draw_config(rng), _draw_port(rng)
    for residency in DDR:
        one = estimate_ddr(config, 8, residency=residency, batch=1, port=port)
        four = estimate_ddr(config, 8, residency=residency, batch=4, port=port)
        assert four.ddr_bytes == one.ddr_bytes and four.ideal_cycles == pytest.approx(4 * one.ideal_cycles)
        assert one.compute_cycles <= four.compute_cycles


def test_bad_requests_are_refused_with_the_field_named():
    config = AcceleratorConfig(input_size=5, hidden_size=3, lanes=4)
    with pytest.raises(ConfigError, match=r"residency must be one of chip, wx, all, stream, not 'ddr'"):
        estimate_ddr(config, 4, residency="ddr")
    with pytest.raises(ConfigError, match=r"batch must be an integer in \[1, 64\], not 0"):
        estimate_ddr(config, 4, residency="all", batch=0)
    with pytest.raises(ConfigError, match=r"an on-chip core runs one sequence at a time \(batch 1\)"):
        estimate_ddr(config, 4, residency="chip", batch=2)
    with pytest.raises(ConfigError, match=r"timesteps must be an integer in \[1, 24\], not 25"):
        estimate_ddr(config, 25, residency="all")
    with pytest.raises(ConfigError, match=r"DDR latency must be at least one cycle, not 0"):
        DdrPort(latency=0)
    with pytest.raises(ConfigError, match=r"DDR beat interval must be at least one cycle, not nan"):
        DdrPort(interval=float("nan"))
    with pytest.raises(ConfigError, match=r"data_width must be 64 or 128, not 32"):
        DdrPort(data_width=32)
    chip = estimate_ddr(config, 4, residency="chip")
    assert (chip.compute_cycles, chip.ddr_bytes) == (chip_estimate(config, 4).compute_cycles, 0)
