"""MacEngine (Amaranth simulator) against NumPy dot products: drawn shapes, widths, packings
(MAC lanes or packed units), column sets, tail units and stream widths, modelled memories, random
columns, sources, gaps and tags; each group's hidden units come out in order (one or two a
cycle) with their four gate sums (``row_sum_bits`` wide, sign-extended) and the group's tags,
padding units dropped."""

import dataclasses
import random

import numpy as np
import pytest
from amaranth.sim import Simulator

from lstmfpga.foundation.hw.config import COLUMN_SETS, STREAM_WIDTHS, AcceleratorConfig
from lstmfpga.foundation.hw.packed_mac_model import max_macs_per_dsp
from lstmfpga.hw.rtl.mac_engine import MacEngine, h_buffer_banks
from lstmfpga.hw.rtl.payloads import Source


def _signed(v, bits):
    v &= (1 << bits) - 1
    return v - (1 << bits) if v >> (bits - 1) else v


def _code(rnd, bits):
    return rnd.randrange(-(1 << (bits - 1)), 1 << (bits - 1))


@pytest.mark.parametrize("seed", range(15))
def test_mac_engine_groups(seed):
    rnd = random.Random(seed)
    rng = np.random.default_rng(seed)
    wb, io = rnd.choice([2, 3, 4, 5, 6, 8]), rnd.choice([4, 5, 6, 8])
    # half the draws packed, up to the most the widths allow (lanes not a multiple of k included)
    k = 1 if seed % 2 == 0 else rnd.randint(2, max_macs_per_dsp(weight_bits=wb, act_bits=io))
    mode, width = rnd.choice(["full", "split"]), rnd.choice(STREAM_WIDTHS)
    # a third of the draws with one column set, the rest any the stream allows
    S = 1 if seed % 3 == 0 else rnd.choice([S for S in COLUMN_SETS[1:] if mode == "split" or S <= width // 8])
    TU = 2 if S % 2 == 0 and seed % 4 in (1, 2) else 1   # two tail units: units in pairs
    cfg = AcceleratorConfig(input_size=rnd.randint(1, 9), hidden_size=rnd.randint(1, 9), num_layers=rnd.randint(1, 3),
                            lanes=4 * S * TU * rnd.randint(1, 5), column_sets=S, tail_units=TU, mode=mode,
                            stream_width=width,
                            weight_bits=wb, io_bits=io, macs_per_dsp=k, max_timesteps=rnd.randint(1, 4))
    if seed % 5 == 4:   # a wider row sum than the shape needs (a resource proxy's)
        cfg = dataclasses.replace(cfg, sum_bits=rnd.randint(cfg.exact_sum_bits, cfg.accumulator_bits))
    dut = MacEngine(config=cfg)
    P, wb, accw, H, UPG = cfg.lanes, cfg.weight_bits, cfg.accumulator_bits, cfg.hidden_size, cfg.units_per_group
    sw = cfg.row_sum_bits
    R = cfg.rows_per_group
    banks = h_buffer_banks(cfg)
    full = cfg.mode == "full"
    wmem = [rnd.getrandbits(P * wb) for _ in range(cfg.weight_depth)]
    words = len(dut.input_read.data) // 8 if full else 0
    xmem = [sum((_code(rnd, io) & 0xFF) << (8 * b) for b in range(words))
            for _ in range(1 << len(dut.input_read.addr))] if full else []
    # an h-buffer word holds S codes, code s in byte s
    hmem = [[[_code(rnd, io) for _ in range(S)] for _ in range(1 << len(dut.h_read[0].addr))] for _ in range(banks)]
    sources = [Source.HBUF0, Source.ZERO] + ([Source.HBUF1] if banks > 1 else []) + ([Source.INPUT] if full else [])

    groups = []
    for _ in range(rnd.randint(2, 5)):
        K = rnd.randint(1, 10)
        cols = []
        for _ in range(K):
            src = rnd.choice(sources)
            cols.append(dict(weight_addr=rnd.randrange(cfg.weight_depth), source=src,
                             byte=rnd.randrange(cfg.bytes_per_word // S) if full else 0,
                             buffer_addr=rnd.randrange(len(xmem) if src == Source.INPUT else len(hmem[0]))))
        tag = dict(layer=rnd.randrange(cfg.num_layers), step_base=rnd.randrange(cfg.max_timesteps) * H,
                   unit_base=rnd.randrange(cfg.groups) * UPG, first_step=rnd.randrange(2), classify=rnd.randrange(2))
        if not full:
            tag["pre_base"] = rnd.randrange(cfg.max_timesteps) * H
        groups.append((cols, tag))

    def values(col):
        """The S values of a column: bytes byte·S … byte·S + S − 1 of an input word, an h word, zeros."""
        if col["source"] == Source.INPUT:
            return [_signed(xmem[col["buffer_addr"]] >> (8 * (col["byte"] * S + s)), 8) for s in range(S)]
        if col["source"] == Source.ZERO:
            return [0] * S
        return hmem[int(col["source"]) - 1][col["buffer_addr"]]

    def weight(col, lane):
        return _signed(int(wmem[col["weight_addr"]]) >> (lane * wb), wb)

    expected = []
    for cols, tag in groups:
        # row r: lane s·R + r of every set, each with its own value; the random columns may make
        # longer rows than the shape's (whose sums always fit), so the sums wrap at row_sum_bits
        # and arrive sign-extended to the tail's width
        sums = [_signed(sum(weight(c, s * R + r) * values(c)[s] for c in cols for s in range(S)), sw)
                for r in range(R)]
        for i in range(UPG):
            u = tag["unit_base"] + i
            if u < H:
                expected.append(dict(unit=u, sums=sums[4 * i:4 * i + 4], layer=tag["layer"],
                                     step_base=tag["step_base"], first_step=tag["first_step"],
                                     classify=tag["classify"],
                                     **({} if full else {"pre_base": tag["pre_base"]})))
    got = []

    async def bench(ctx):
        feed = [(c, k == 0, k == len(cols) - 1, tag) for cols, tag in groups for k, c in enumerate(cols)]
        cycle = 0
        while cycle < 40 * len(feed) + 200:
            item = feed[0] if feed and rnd.random() < 0.7 else None
            if item is not None and item[2] and not ctx.get(dut.shadow_free):
                item = None   # the scheduler holds a group's last column until the shadow bank is free
            ctx.set(dut.i_column.valid, item is not None)
            if item is not None:
                col, first, last, tag = item
                payload = dict(weight_addr=col["weight_addr"], buffer_addr=col["buffer_addr"],
                               op=dict(first=first, last=last, source=int(col["source"]), byte=col["byte"], tag=tag))
                ctx.set(dut.i_column.payload, payload)
                assert ctx.get(dut.i_column.ready)
                feed.pop(0)
            if ctx.get(dut.o_units.valid):
                out = ctx.get(dut.o_units.payload)
                for i in range(TU):
                    if i and not out.second:
                        continue
                    got.append(dict(unit=out.unit + i, sums=[_signed(int(out.sums[i][g]), accw) for g in range(4)],
                                    layer=out.layer, step_base=out.step_base, first_step=out.first_step,
                                    classify=out.classify, **({} if full else {"pre_base": out.pre_base})))
            addrs = (ctx.get(dut.weight_read.addr), ctx.get(dut.input_read.addr) if full else 0,
                     [ctx.get(port.addr) for port in dut.h_read])
            await ctx.tick()
            ctx.set(dut.weight_read.data, int(wmem[addrs[0]]) if addrs[0] < cfg.weight_depth else 0)
            if full:
                ctx.set(dut.input_read.data, xmem[addrs[1]])
            for b, port in enumerate(dut.h_read):
                ctx.set(port.data, sum((code & 0xFF) << (8 * s) for s, code in enumerate(hmem[b][addrs[2][b]])))
            cycle += 1
            if not feed and len(got) == len(expected):
                break

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert got == expected


@pytest.mark.parametrize("k,sets", [(1, 1), (2, 1), (1, 4), (2, 2)])
def test_mac_engine_flush_drops_work_in_flight(k, sets):
    cfg = AcceleratorConfig(input_size=3, hidden_size=4, lanes=8 * sets, macs_per_dsp=k, column_sets=sets,
                            mode="split", max_timesteps=2)
    dut = MacEngine(config=cfg)

    async def bench(ctx):
        for k in range(3):
            ctx.set(dut.i_column.valid, 1)
            ctx.set(dut.i_column.payload, dict(weight_addr=k, buffer_addr=0,
                                               op=dict(first=k == 0, last=k == 2, source=int(Source.ZERO))))
            await ctx.tick()
        ctx.set(dut.i_column.valid, 0)
        ctx.set(dut.flush, 1)
        assert not ctx.get(dut.i_column.ready)
        await ctx.tick()
        ctx.set(dut.flush, 0)
        for _ in range(20):
            assert not ctx.get(dut.o_units.valid)
            assert ctx.get(dut.shadow_free)
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
