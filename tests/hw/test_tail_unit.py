"""TailUnit (cell update) under Amaranth's simulator against the NumPy cell step."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from lstmfpga.foundation.hw.config import AcceleratorConfig
from lstmfpga.hw.rtl.tail_unit import TailUnit
from lstmfpga.foundation.integer_lstm import cell_step
from lstmfpga.sim.golden.random_artifact import random_artifact


def _param_words(layer):
    words = []
    for rq in (*layer.gate_requant, layer.fc_requant, layer.ig_requant, layer.h_requant):
        words += [rq.multiplier, rq.shift, rq.lo, rq.hi]
    return [w & 0xFFFFFFFF for w in words + [layer.cell_lo, layer.cell_hi]]


@pytest.mark.parametrize("hidden,layers,bits,mode,classes,sets", [
    (7, 2, 8, "full", 3, 1), (5, 1, 6, "split", 0, 1), (7, 2, 8, "full", 3, 4), (5, 1, 6, "split", 0, 2)])
def test_tail_matches_cell_step(hidden, layers, bits, mode, classes, sets):
    art = random_artifact(input_size=3, hidden_size=hidden, num_layers=layers, num_classes=classes,
                          weight_bits=4, act_bits=bits, seed=hidden)
    cfg = AcceleratorConfig.from_artifact(art, lanes=8 * sets, mode=mode, column_sets=sets)
    words = cfg.h_columns   # h-buffer words a step: unit j at word t·words + j div S, byte j mod S
    dut = TailUnit(config=cfg)
    rng = np.random.default_rng(1)
    steps = 3
    L = layers - 1  # exercise the last layer's parameters and memories
    layer = art.layers[L]
    accs = rng.integers(-(1 << 12), 1 << 12, size=(steps, 4, hidden)) * 8
    pre = rng.integers(-(1 << 14), 1 << 14, size=(steps, 4, hidden)) if mode == "split" and L == 0 else 0
    accw = cfg.accumulator_bits
    got = np.zeros((steps, hidden), dtype=np.int64)
    logits_got = []

    async def bench(ctx):
        async def write(pairs):
            for sig, value in pairs:
                ctx.set(sig, value)
            await ctx.tick()

        for l, lay in enumerate(art.layers):
            for i, w in enumerate(_param_words(lay)):
                await write([(dut.param_we, 1), (dut.param_layer, l), (dut.param_index, i), (dut.param_data, w)])
            for g in range(4):
                for e, v in enumerate(lay.gate_tables[g]):
                    await write([(dut.param_we, 0), (dut.table_we, 1), (dut.table_gate, g),
                                 (dut.table_addr, (l << cfg.acc_bits) + e), (dut.table_data, int(v) & 0xFFFFFFFF)])
            for e, v in enumerate(lay.tanh_c_table):
                await write([(dut.table_we, 0), (dut.tanh_we, 1), (dut.tanh_addr, (l << cfg.cell_bits) + e),
                             (dut.tanh_data, int(v) & 0xFFFFFFFF)])
            for j in range(hidden):
                for g in range(4):
                    await write([(dut.tanh_we, 0), (dut.bias_we, 1), (dut.bias_addr, l * hidden + j),
                                 (dut.bias_lane, g), (dut.bias_data, int(lay.bias[g, j]) & 0xFFFFFFFF)])
        ctx.set(dut.bias_we, 0)
        if mode == "split":
            for t in range(steps):
                for j in range(hidden):
                    for g in range(4):
                        await write([(dut.pre_we, 1), (dut.pre_addr, t * hidden + j), (dut.pre_lane, g),
                                     (dut.pre_data, int(pre[t, g, j]) & 0xFFFFFFFF)])
            ctx.set(dut.pre_we, 0)
        if classes:
            for k in range(classes):
                for j in range(hidden):
                    await write([(dut.clsw_we, 1), (dut.clsw_addr, j), (dut.clsw_lane, k),
                                 (dut.clsw_data, int(art.classifier.weight[k, j]) & 0xFFFFFFFF)])
                await write([(dut.clsw_we, 0), (dut.clsb_we, 1), (dut.clsb_index, k),
                             (dut.clsb_data, int(art.classifier.bias[k]) & 0xFFFFFFFF)])
            await write([(dut.clsb_we, 0), (dut.cls_start, 1)])
            ctx.set(dut.cls_start, 0)
        # units back to back; a step starts only after the previous one's h left the pipeline,
        # as the engine guarantees (every group of step t reads all of h_{t-1})
        gap = [None] * TailUnit.LATENCY
        feed = [u for t in range(steps) for u in [(t, j) for j in range(hidden)] + gap]
        for cycle in range(len(feed) + TailUnit.LATENCY + 4):
            if cycle < len(feed) and feed[cycle] is not None:
                t, j = feed[cycle]
                acc = sum((int(accs[t, g, j]) & ((1 << accw) - 1)) << (g * accw) for g in range(4))
                ctx.set(dut.valid, 1)
                ctx.set(dut.layer, L)
                ctx.set(dut.step_base, t * words)
                if mode == "split":
                    ctx.set(dut.pre_base, t * hidden)
                ctx.set(dut.first_step, int(t == 0))
                ctx.set(dut.classify, int(t == steps - 1))
                ctx.set(dut.unit, j)
                ctx.set(dut.acc, acc)
            else:
                ctx.set(dut.valid, 0)
            if ctx.get(dut.h_valid):
                addr, lane = ctx.get(dut.h_addr), ctx.get(dut.h_lane) if sets > 1 else 0
                got[addr // words, addr % words * sets + lane] = ctx.get(dut.h_code)
            await ctx.tick()
        if classes:
            raw = ctx.get(dut.logits)
            logits_got.extend(((raw >> (32 * k)) & 0xFFFFFFFF) for k in range(classes))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()

    c = np.zeros((1, hidden), dtype=np.int64)
    for t in range(steps):
        h, c = cell_step(layer, (accs[t] + layer.bias + (pre[t] if np.ndim(pre) else 0))[None], c)
        np.testing.assert_array_equal(got[t], h[0], err_msg=f"step {t}")
    if classes:
        expect = art.classifier.weight @ h[0] + art.classifier.bias
        np.testing.assert_array_equal(np.array(logits_got, dtype=np.int64),
                                      expect & 0xFFFFFFFF)
