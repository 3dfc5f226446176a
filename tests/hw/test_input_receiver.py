"""InputReceiver (Amaranth simulator): drawn shapes, modes and every stream width, random gaps
between beats; one write per beat, the values land where the host's packer put them, and
``final`` marks the last beat by count."""

import random

import numpy as np
import pytest
from amaranth.sim import Simulator

from lstmfpga.foundation.hw import stream_format
from lstmfpga.foundation.hw.config import STREAM_WIDTHS, AcceleratorConfig
from lstmfpga.hw.rtl.input_receiver import InputReceiver


@pytest.mark.parametrize("seed", range(8))
def test_input_receiver_stores_packets(seed):
    rnd = random.Random(seed)
    mode = ["full", "split"][seed % 2]
    cfg = AcceleratorConfig(input_size=rnd.randint(1, 40), hidden_size=rnd.randint(1, 12), lanes=rnd.choice([4, 8, 12]),
                            mode=mode, max_timesteps=rnd.randint(1, 8), stream_width=STREAM_WIDTHS[seed // 2 % 3])
    per = stream_format.lanes_per_beat(cfg)
    rng = np.random.default_rng(seed)
    dut = InputReceiver(config=cfg)
    packets = []
    for _ in range(3):
        T = rnd.randint(1, cfg.max_timesteps)
        if mode == "full":
            x = rng.integers(-128, 128, size=(T, cfg.input_size))
            packets.append((T, x, stream_format.pack_input(cfg, x)))
        else:
            pre = rng.integers(-(1 << 31), 1 << 31, size=(T, 4, cfg.hidden_size))
            packets.append((T, pre, stream_format.pack_preactivations(cfg, pre)))
    results = []

    async def bench(ctx):
        for T, _, lanes in packets:
            ctx.set(dut.steps, T)
            ctx.set(dut.begin, 1)
            await ctx.tick()
            ctx.set(dut.begin, 0)
            assert not ctx.get(dut.in_packet)
            store, finals = {}, []
            beats = [sum(int(w) << (32 * i) for i, w in enumerate(lanes[b:b + per]))
                     for b in range(0, len(lanes), per)]
            for i, word in enumerate(beats):
                while rnd.random() < 0.3:
                    ctx.set(dut.i_stream.valid, 0)
                    await ctx.tick()
                ctx.set(dut.i_stream.valid, 1)
                ctx.set(dut.i_stream.payload.data, int(word))
                ctx.set(dut.i_stream.payload.last, int(i == len(beats) - 1))
                finals.append(ctx.get(dut.final))
                if mode == "full":
                    assert ctx.get(dut.input_write.en)
                    store[ctx.get(dut.input_write.addr)] = ctx.get(dut.input_write.data)
                else:
                    port = dut.pre_write
                    assert ctx.get(port.pre_we)
                    data = ctx.get(port.pre_data)
                    for n in range(per):
                        key = (ctx.get(port.pre_addr), ctx.get(port.pre_lane) + n)
                        assert key not in store
                        store[key] = (data >> (32 * n)) & 0xFFFFFFFF
                await ctx.tick()
                ctx.set(dut.i_stream.valid, 0)
                assert ctx.get(dut.in_packet)
                assert not ctx.get(dut.input_write.en if mode == "full" else dut.pre_write.pre_we)
            results.append((store, finals))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    for (T, values, lanes), (store, finals) in zip(packets, results):
        assert finals == [0] * (len(lanes) // per - 1) + [1]
        if mode == "full":
            got = np.array([(store[n // per] >> (32 * (n % per))) & 0xFFFFFFFF for n in range(len(lanes))],
                           dtype=np.uint32)
            np.testing.assert_array_equal(stream_format.unpack_input(cfg, got, T), values)
        else:
            H = cfg.hidden_size
            # the tail reads unit j of step t at slot t·H + j, gate g in lane g
            for t in range(T):
                for j in range(H):
                    for g in range(4):
                        assert store[(t * H + j, g)] == int(values[t, g, j]) & 0xFFFFFFFF
