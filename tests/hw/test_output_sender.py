"""OutputSender (Amaranth simulator) against the host's unpacker: drawn shapes, stream widths and
batches, h codes packed in with random gaps (a batch's sequences interleaved at random), random
backpressure, the stall-free beat timing, and an abort mid-packet."""

import random

import numpy as np
import pytest
from amaranth.sim import Simulator

from lstmfpga.foundation.hw import stream_format
from lstmfpga.foundation.hw.config import STREAM_WIDTHS, AcceleratorConfig
from lstmfpga.hw import latency
from lstmfpga.hw.rtl.output_sender import OutputSender


def _draw(seed):
    rnd = random.Random(seed)
    L = rnd.randint(1, 3)
    max_batch = rnd.choice([1, 1, 2, rnd.randint(2, 5)])
    cfg = AcceleratorConfig(input_size=rnd.randint(1, 20), hidden_size=rnd.choice([1, 3, 4, 5, 8, rnd.randint(2, 40)]),
                            num_layers=L, lanes=rnd.choice([4, 8, 12, 16]), num_classes=rnd.choice([0, 1, 3, 5]),
                            max_timesteps=rnd.randint(1, 6), stream_width=rnd.choice(STREAM_WIDTHS),
                            max_batch=max_batch, weight_residency="chip" if max_batch == 1 else "stream")
    return rnd, cfg


def _send(cfg, h_mem, logits, steps, *, ready_ps, abort_at=None, seed=0):
    """Packets the sender emits for ``steps`` ((T, B) each): before each, the run's h codes
    (``h_mem[b]`` of sequence b, step after step) are packed in with random gaps, the sequences
    interleaved at random, then the packet is sent with TREADY high with probability
    ``ready_ps[n]`` per cycle; ``logits[b]`` are sequence b's.
    ``abort_at`` = (packet, cycle) aborts one packet, which then yields None.  Each packet comes
    with the cycles from ``start`` to its last beat (None unless the stream never stalls)."""
    dut = OutputSender(config=cfg)
    rnd = random.Random(seed)
    H, C = cfg.hidden_size, max(cfg.num_classes, 1)
    packets = []

    async def bench(ctx):
        ctx.set(dut.logits, sum((int(v) & 0xFFFFFFFF) << (32 * (b * C + i))
                                for b, row in enumerate(logits) for i, v in enumerate(row)))
        for n, ((T, B), ready_p) in enumerate(zip(steps, ready_ps)):
            ctx.set(dut.steps, T)
            if cfg.max_batch > 1:
                ctx.set(dut.batch, B)
            ctx.set(dut.clear, 1)
            await ctx.tick()
            ctx.set(dut.clear, 0)
            left = {b: [(i % H, int(code)) for i, code in enumerate(h_mem[b][:T * H])] for b in range(B)}
            while left:
                b = rnd.choice(sorted(left))
                unit, code = left[b].pop(0)
                if not left[b]:
                    del left[b]
                while rnd.random() < 0.3:
                    await ctx.tick()
                ctx.set(dut.h_valid, 1)
                ctx.set(dut.h_code, code)
                ctx.set(dut.h_unit, unit)
                if cfg.max_batch > 1:
                    ctx.set(dut.h_sequence, b)
                await ctx.tick()
                ctx.set(dut.h_valid, 0)
            ctx.set(dut.start, 1)
            await ctx.tick()
            ctx.set(dut.start, 0)
            words, finished, aborted, stalled = [], 0, False, False
            for cycle in range(20 * B * (T * H + C + 8)):
                ready = rnd.random() < ready_p
                stalled |= not ready
                ctx.set(dut.o_stream.ready, ready)
                if abort_at == (n, cycle):
                    ctx.set(dut.abort, 1)
                    aborted = True
                if ctx.get(dut.o_stream.valid) and ready and not aborted:
                    words.append((ctx.get(dut.o_stream.payload.data), ctx.get(dut.o_stream.payload.last)))
                finished += ctx.get(dut.finished) and not aborted
                await ctx.tick()
                if aborted:
                    ctx.set(dut.abort, 0)
                    break
                if words and words[-1][1]:
                    break
            assert not ctx.get(dut.o_stream.valid)
            packets.append(None if aborted else (words, finished, None if stalled else cycle + 1))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return packets


def _lanes(cfg, beats):
    """The 32-bit lanes of (data, last) beats, lane 0 in the low bits."""
    per = stream_format.lanes_per_beat(cfg)
    return np.array([(data >> (32 * i)) & 0xFFFFFFFF for data, _ in beats for i in range(per)], dtype=np.uint32)


@pytest.mark.parametrize("seed", range(10))
def test_output_sender_packets(seed):
    rnd, cfg = _draw(seed)
    rng = np.random.default_rng(seed)
    H, C, Bm = cfg.hidden_size, cfg.num_classes, cfg.max_batch
    h_mem = rng.integers(-128, 128, size=(Bm, cfg.max_timesteps * H))
    logits = rng.integers(-(1 << 31), 1 << 31, size=(Bm, C))
    steps = [(rnd.randint(1, cfg.max_timesteps), rnd.randint(1, Bm)) for _ in range(2)] + [(cfg.max_timesteps, Bm)]
    packets = _send(cfg, h_mem, logits, steps, ready_ps=[1.0, *(rnd.uniform(0.2, 1) for _ in steps[1:])], seed=seed)
    assert packets[0][2] is not None
    for (T, B), (words, finished, cycles) in zip(steps, packets):
        lanes = _lanes(cfg, words)
        assert [last for _, last in words] == [0] * (len(words) - 1) + [1]
        assert finished == 1
        if cycles is not None:      # a stall-free stream: the pipeline fills, then a beat per cycle
            assert cycles == latency.OUTPUT_FILL + B * stream_format.output_beats(cfg, T)
        h, got_logits = stream_format.unpack_batch_output(cfg, lanes, T, B)
        np.testing.assert_array_equal(h, h_mem[:B, :T * H].reshape(B, T, H))
        if C:
            np.testing.assert_array_equal(got_logits, logits[:B])
        # padding bytes are zero
        np.testing.assert_array_equal(lanes, stream_format.pack_batch_output(cfg, h, logits[:B] if C else None))


@pytest.mark.parametrize("seed", range(3))
def test_output_sender_abort_then_restart(seed):
    rnd, cfg = _draw(100 + seed)
    rng = np.random.default_rng(seed)
    T, B = cfg.max_timesteps, cfg.max_batch
    h_mem = rng.integers(-128, 128, size=(B, T * cfg.hidden_size))
    logits = rng.integers(-1000, 1000, size=(B, cfg.num_classes))
    packets = _send(cfg, h_mem, logits, [(T, B)] * 2, ready_ps=[0.5, 0.5], abort_at=(0, rnd.randint(0, 3 * T)),
                    seed=seed)
    assert packets[0] is None
    words, finished, _ = packets[1]
    lanes = _lanes(cfg, words)
    np.testing.assert_array_equal(lanes, stream_format.pack_batch_output(
        cfg, h_mem.reshape(B, T, -1), logits if cfg.num_classes else None))
