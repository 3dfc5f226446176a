"""ColumnScheduler (Amaranth simulator) against a Python walk of layers, steps, groups and
columns: drawn shapes, stream widths, column sets and tail units, a modelled engine and tail
(random shadow-bank stalls and unit delays, one or two units back a cycle) and input stream
(random beat gaps).  Each column comes out in order with its addresses, source and tags, never
before the h code or the input word it reads has arrived, and ``finished`` only after the run's
last unit.  The same for the two-phase walk of a core with an input pass (residency ``all``), with
the double buffer's halves filled at random."""

import random

import pytest
from amaranth.sim import Simulator

from lstmfpga.foundation.hw import stream_format
from lstmfpga.foundation.hw.config import COLUMN_SETS, STREAM_WIDTHS, AcceleratorConfig
from lstmfpga.hw.rtl.column_scheduler import ColumnScheduler
from lstmfpga.hw.rtl.payloads import Source


def _expected_columns(cfg, T):
    """(fields, index of the unit whose h code the column reads or None), in issue order."""
    H, L, G, UPG = cfg.hidden_size, cfg.num_layers, cfg.groups, cfg.units_per_group
    S, Hc, B = cfg.column_sets, cfg.h_columns, cfg.bytes_per_word
    wps = stream_format.input_beats_per_step(cfg)
    columns, base = [], 0
    for l in range(L):
        X = cfg.x_columns(l)
        K = X + Hc
        for t in range(T):
            for g in range(G):
                for k in range(K):
                    # a column holds elements kS … kS + S − 1 of its part; it waits for the last h code
                    last_unit = min((k + 1 - (X if k >= X else 0)) * S, H) - 1
                    if k < X and l == 0:
                        src, addr, byte, dep = Source.INPUT, t * wps + k // (B // S), k % (B // S), None
                    elif k < X:
                        src, addr, byte, dep = [Source.HBUF0, Source.HBUF1][(l - 1) % 2], t * Hc + k, 0, \
                            (l - 1) * T * H + t * H + last_unit
                    elif t == 0:
                        src, addr, byte, dep = Source.ZERO, None, 0, None
                    else:
                        src, addr, byte, dep = [Source.HBUF0, Source.HBUF1][l % 2], (t - 1) * Hc + k - X, 0, \
                            l * T * H + (t - 1) * H + last_unit
                    fields = dict(weight_addr=base + g * K + k, buffer_addr=addr, source=src, byte=byte,
                                  first=int(k == 0), last=int(k == K - 1), layer=l, step_base=t * Hc,
                                  unit_base=g * UPG, first_step=int(t == 0), classify=int(l == L - 1 and t == T - 1))
                    if cfg.mode == "split":
                        fields["pre_base"] = t * H
                    columns.append((fields, dep))
        base += cfg.weight_rows(l)
    return columns


@pytest.mark.parametrize("seed", range(14))
def test_column_scheduler_walk(seed):
    rnd = random.Random(seed)
    mode, width = rnd.choice(["full", "split"]), rnd.choice(STREAM_WIDTHS)
    sets = rnd.choice([S for S in COLUMN_SETS if mode == "split" or S <= width // 8])
    TU = rnd.choice([1, 2]) if sets % 2 == 0 else 1
    cfg = AcceleratorConfig(input_size=rnd.randint(1, 40), hidden_size=rnd.randint(1, 19), num_layers=rnd.randint(1, 3),
                            lanes=4 * sets * TU * rnd.randint(1, 6), column_sets=sets, tail_units=TU, mode=mode,
                            stream_width=width, max_timesteps=rnd.randint(1, 4))
    dut = ColumnScheduler(config=cfg)
    H, UPG = cfg.hidden_size, cfg.units_per_group
    runs = [rnd.randint(1, cfg.max_timesteps) for _ in range(2)]
    free_p = rnd.choice([1.0, 0.5, 0.2])
    beat_p = rnd.choice([1.0, 0.3, 0.05])     # full mode: the input packet's beats arrive as they please

    async def bench(ctx):
        for T in runs:
            expected = _expected_columns(cfg, T)
            ctx.set(dut.steps, T)
            if cfg.mode == "full":
                ctx.set(dut.received, 0)      # the receiver starts counting before the run starts
            ctx.set(dut.start, 1)
            await ctx.tick()
            ctx.set(dut.start, 0)
            done, pending, got, cycle, received = 0, [], [], 0, 0
            counted = 0                       # ``received`` as the scheduler saw it a cycle ago
            ctx.set(dut.o_column.ready, 1)
            while cycle < 200 * len(expected) + 500:
                ctx.set(dut.shadow_free, rnd.random() < free_p)
                pulse = sum(1 for at in pending[:TU] if at <= cycle)
                ctx.set(dut.unit_done, pulse)
                if cfg.mode == "full":
                    ctx.set(dut.received, received)
                finished = ctx.get(dut.finished)
                assert finished == (len(got) == len(expected) and done == T * H * cfg.num_layers and not pending)
                if finished:
                    break
                if ctx.get(dut.o_column.valid):
                    col = ctx.get(dut.o_column.payload)
                    fields, dep = expected[len(got)]
                    have = dict(weight_addr=col.weight_addr, buffer_addr=col.buffer_addr, source=col.op.source,
                                byte=col.op.byte, first=col.op.first, last=col.op.last, layer=col.op.tag.layer,
                                step_base=col.op.tag.step_base, unit_base=col.op.tag.unit_base,
                                first_step=col.op.tag.first_step, classify=col.op.tag.classify)
                    if cfg.mode == "split":
                        have["pre_base"] = col.op.tag.pre_base
                    if fields["buffer_addr"] is None:
                        have["buffer_addr"] = None
                    assert have == fields, (len(got), T)
                    assert dep is None or done > dep, (len(got), dep, done)
                    if fields["source"] == Source.INPUT:
                        # counted by the cycle before (latency.INPUT_COUNT)
                        assert fields["buffer_addr"] < counted, (len(got), counted)
                    if fields["last"]:
                        assert ctx.get(dut.shadow_free)
                        # the group's units come back in order after a random delay
                        at = max([cycle + rnd.randint(1, 12)] + [p + 1 for p in pending[-1:]])
                        units = [u for u in range(fields["unit_base"], fields["unit_base"] + UPG) if u < H]
                        pending += [at + i // TU for i in range(len(units))]
                    got.append(fields)
                del pending[:pulse]
                done += pulse
                counted = received
                if cfg.mode == "full" and received < T * stream_format.input_beats_per_step(cfg):
                    received += rnd.random() < beat_p
                await ctx.tick()
                cycle += 1
            assert len(got) == len(expected) and ctx.get(dut.finished)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()


def test_column_scheduler_flush_stops_issuing():
    cfg = AcceleratorConfig(input_size=5, hidden_size=3, num_layers=2, lanes=8, max_timesteps=3)
    dut = ColumnScheduler(config=cfg)

    async def bench(ctx):
        ctx.set(dut.steps, 3)
        ctx.set(dut.received, 3 * stream_format.input_beats_per_step(cfg))   # the whole packet is in
        ctx.set(dut.shadow_free, 1)
        ctx.set(dut.o_column.ready, 1)
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        await ctx.tick().repeat(3)
        assert ctx.get(dut.o_column.valid)
        ctx.set(dut.flush, 1)
        await ctx.tick()
        ctx.set(dut.flush, 0)
        for _ in range(20):
            assert not ctx.get(dut.o_column.valid)
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()


def _expected_input_pass_columns(cfg, T):
    """The walk of a core with an input pass (residency ``all`` or ``wx``): per layer, each group's
    x columns for every step (``store``), then per step each group's h columns; each group's rows in
    the next half of the double buffer, or (``wx``) a recurrence group's on chip after it.
    (fields, unit the column waits for or None, fetched group index or None)."""
    H, L, G, UPG = cfg.hidden_size, cfg.num_layers, cfg.groups, cfg.units_per_group
    S, Hc, B = cfg.column_sets, cfg.h_columns, cfg.bytes_per_word
    wps = stream_format.input_beats_per_step(cfg)
    half_rows, resident = cfg.fetch_half_rows, cfg.resident_h_rows > 0
    columns, fetched = [], 0

    def column(l, t, g, k, count, store, src, addr, byte, dep):
        on_chip = resident and not store
        weight_addr = 2 * half_rows + (l * G + g) * Hc + k if on_chip else fetched % 2 * half_rows + k
        fields = dict(weight_addr=weight_addr, buffer_addr=addr, source=src, byte=byte,
                      first=int(k == 0), last=int(k == count - 1), layer=l, step_base=t * Hc, unit_base=g * UPG,
                      first_step=int(t == 0), classify=int(l == L - 1 and t == T - 1 and not store),
                      pre_base=t * cfg.pre_stride, store=int(store))
        columns.append((fields, dep, None if on_chip else fetched))

    for l in range(L):
        X = cfg.x_columns(l)
        for g in range(G):
            for t in range(T):
                for k in range(X):
                    last_unit = min((k + 1) * S, H) - 1
                    if l == 0:
                        column(l, t, g, k, X, True, Source.INPUT, t * wps + k // (B // S), k % (B // S), None)
                    else:
                        column(l, t, g, k, X, True, [Source.HBUF0, Source.HBUF1][(l - 1) % 2], t * Hc + k, 0,
                               (l - 1) * T * H + t * H + last_unit)
            fetched += 1
        for t in range(T):
            for g in range(G):
                for k in range(Hc):
                    if t == 0:
                        column(l, t, g, k, Hc, False, Source.ZERO, None, 0, None)
                    else:
                        column(l, t, g, k, Hc, False, [Source.HBUF0, Source.HBUF1][l % 2], (t - 1) * Hc + k, 0,
                               l * T * H + (t - 1) * H + min((k + 1) * S, H) - 1)
                fetched += not resident
    return columns, fetched


@pytest.mark.parametrize("seed", range(10))
def test_column_scheduler_input_pass_walk(seed):
    """Residencies ``all`` and ``wx``: the two-phase walk column by column, under random shadow-bank stalls,
    unit delays, input beats and row fetches (a half is filled at random once released): every
    column in order with its addresses and tags, never before its h code, input word or rows, an
    input pass's sums never counted as units, ``rows_release`` once a group, ``finished`` after the
    run's last unit."""
    rnd = random.Random(4000 + seed)
    width = rnd.choice(STREAM_WIDTHS)
    sets = rnd.choice([S for S in COLUMN_SETS if S <= width // 8])
    TU = rnd.choice([1, 2]) if sets % 2 == 0 else 1
    cfg = AcceleratorConfig(input_size=rnd.randint(1, 40), hidden_size=rnd.randint(1, 19), num_layers=rnd.randint(1, 3),
                            lanes=4 * sets * TU * rnd.randint(1, 6), column_sets=sets, tail_units=TU,
                            stream_width=width, max_timesteps=rnd.randint(1, 4),
                            weight_residency=("all", "wx")[seed % 2])
    dut = ColumnScheduler(config=cfg)
    H, UPG = cfg.hidden_size, cfg.units_per_group
    runs = [rnd.randint(1, cfg.max_timesteps) for _ in range(2)]
    free_p, beat_p, fill_p = (rnd.choice([1.0, 0.5, 0.2]), rnd.choice([1.0, 0.3, 0.05]), rnd.choice([1.0, 0.3, 0.05]))

    async def bench(ctx):
        for T in runs:
            expected, groups = _expected_input_pass_columns(cfg, T)
            ctx.set(dut.steps, T)
            ctx.set(dut.received, 0)
            ctx.set(dut.rows_full, 0)
            ctx.set(dut.start, 1)
            await ctx.tick()
            ctx.set(dut.start, 0)
            done, pending, got, cycle, received, counted = 0, [], [], 0, 0, 0
            full, filled, released = [0, 0], 0, 0
            ctx.set(dut.o_column.ready, 1)
            while cycle < 400 * len(expected) + 500:
                ctx.set(dut.shadow_free, rnd.random() < free_p)
                pulse = sum(1 for at in pending[:TU] if at <= cycle)
                ctx.set(dut.unit_done, pulse)
                ctx.set(dut.received, received)
                ctx.set(dut.rows_full, full[0] | full[1] << 1)
                finished = ctx.get(dut.finished)
                assert finished == (len(got) == len(expected) and done == T * H * cfg.num_layers and not pending)
                if finished:
                    break
                release = ctx.get(dut.rows_release)
                if ctx.get(dut.o_column.valid):
                    col = ctx.get(dut.o_column.payload)
                    fields, dep, group = expected[len(got)]
                    have = dict(weight_addr=col.weight_addr, buffer_addr=col.buffer_addr, source=col.op.source,
                                byte=col.op.byte, first=col.op.first, last=col.op.last, layer=col.op.tag.layer,
                                step_base=col.op.tag.step_base, unit_base=col.op.tag.unit_base,
                                first_step=col.op.tag.first_step, classify=col.op.tag.classify,
                                pre_base=col.op.tag.pre_base, store=col.op.tag.store)
                    if fields["buffer_addr"] is None:
                        have["buffer_addr"] = None
                    assert have == fields, (len(got), T)
                    assert dep is None or done > dep, (len(got), dep, done)
                    if group is not None:
                        assert full[group % 2] and released == group, (len(got), group, released, full)
                    if fields["source"] == Source.INPUT:
                        assert fields["buffer_addr"] < counted, (len(got), counted)
                    group_ends = group is not None and fields["last"] and (
                        len(got) + 1 == len(expected) or expected[len(got) + 1][2] != group)
                    assert release == group_ends, (len(got), release)
                    if fields["last"]:
                        assert ctx.get(dut.shadow_free)
                    if fields["last"] and not fields["store"]:
                        at = max([cycle + rnd.randint(1, 12)] + [p + 1 for p in pending[-1:]])
                        units = [u for u in range(fields["unit_base"], fields["unit_base"] + UPG) if u < H]
                        pending += [at + i // TU for i in range(len(units))]
                    got.append(fields)
                else:
                    assert not release
                if release:
                    full[released % 2] = 0
                    released += 1
                elif filled < groups and filled - released < 2 and not full[filled % 2] and rnd.random() < fill_p:
                    full[filled % 2] = 1
                    filled += 1
                del pending[:pulse]
                done += pulse
                counted = received
                if received < T * stream_format.input_beats_per_step(cfg):
                    received += rnd.random() < beat_p
                await ctx.tick()
                cycle += 1
            assert len(got) == len(expected) and ctx.get(dut.finished) and released == groups

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
