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


def _script(cfg, rnd, h_mem, T, B):
    """The inputs of one run, a dict per cycle from ``clear`` to ``start``: the h codes with random
    gaps, the sequences interleaved at random, ``input_in`` (read by an ``early_output`` sender)
    from a drawn cycle on, and a drawn pause before ``start``."""
    H = cfg.hidden_size
    cycles = [dict(clear=1)]
    left = {b: [(i % H, int(code)) for i, code in enumerate(h_mem[b][:T * H])] for b in range(B)}
    while left:
        b = rnd.choice(sorted(left))
        unit, code = left[b].pop(0)
        if not left[b]:
            del left[b]
        while rnd.random() < 0.3:
            cycles.append({})
        cycles.append(dict(h_valid=1, h_code=code, h_unit=unit, h_sequence=b))
    cycles += [{} for _ in range(rnd.choice([0, 1, rnd.randint(2, 12), rnd.randint(13, 40)]))]
    cycles.append(dict(start=1))
    open_at = rnd.randint(1, len(cycles) - 1)
    for cycle in cycles[open_at:]:
        cycle["input_in"] = 1
    return cycles


def _send(cfg, h_mem, logits, steps, *, ready_ps, abort_at=None, seed=0):
    """Packets the sender emits for ``steps`` ((T, B) each), each run driven by :func:`_script`
    while its beats are taken with TREADY high with probability ``ready_ps[n]`` per cycle;
    ``logits[b]`` are sequence b's.  ``abort_at`` = (packet, cycle from its ``clear``) aborts one
    packet, which then yields None.  Each packet is (beats, ``finished`` count, cycles from
    ``start`` to the last beat or None where the stream stalled after ``start``); a beat is (data,
    last, and what had come before the cycle it was taken: the words of finished steps,
    ``input_in``, ``start``)."""
    dut = OutputSender(config=cfg)
    rnd = random.Random(seed)
    H, C = cfg.hidden_size, max(cfg.num_classes, 1)
    osb = stream_format.output_step_beats(cfg)
    ports = {name: getattr(dut, name) for name in ("clear", "h_valid", "h_code", "h_unit", "h_sequence", "start",
                                                   "input_in", "abort") if hasattr(dut, name)}
    packets = []

    async def bench(ctx):
        ctx.set(dut.logits, sum((int(v) & 0xFFFFFFFF) << (32 * (b * C + i))
                                for b, row in enumerate(logits) for i, v in enumerate(row)))
        for n, ((T, B), ready_p) in enumerate(zip(steps, ready_ps)):
            ctx.set(dut.steps, T)
            if cfg.max_batch > 1:
                ctx.set(dut.batch, B)
            script = _script(cfg, rnd, h_mem, T, B)
            started = len(script) - 1
            words, finished, stalled, done, seen_in = [], 0, False, 0, False
            for cycle in range(started + 20 * B * (T * H + C + 8)):
                inputs = script[cycle] if cycle < len(script) else {}
                for name, port in ports.items():
                    ctx.set(port, inputs.get(name, 0 if name != "input_in" or cycle < len(script) else 1))
                if abort_at == (n, cycle):
                    ctx.set(dut.abort, 1)
                    await ctx.tick()
                    ctx.set(dut.abort, 0)
                    assert not ctx.get(dut.o_stream.valid)
                    packets.append(None)
                    break
                ready = rnd.random() < ready_p
                stalled |= not ready and cycle >= started
                ctx.set(dut.o_stream.ready, ready)
                if ctx.get(dut.o_stream.valid) and ready:
                    words.append((ctx.get(dut.o_stream.payload.data), ctx.get(dut.o_stream.payload.last),
                                  done * osb, seen_in, cycle > started))
                finished += ctx.get(dut.finished)
                await ctx.tick()
                done += inputs.get("h_valid", 0) and inputs["h_unit"] == H - 1
                seen_in |= bool(inputs.get("input_in"))
                if words and words[-1][1]:
                    packets.append((words, finished, None if stalled else cycle - started))
                    break
            else:
                raise AssertionError(f"packet {n}: no last beat")
            ctx.set(dut.start, 0)
            assert not ctx.get(dut.o_stream.valid)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return packets


def _lanes(cfg, beats):
    """The 32-bit lanes of (data, last) beats, lane 0 in the low bits."""
    per = stream_format.lanes_per_beat(cfg)
    return np.array([(beat[0] >> (32 * i)) & 0xFFFFFFFF for beat in beats for i in range(per)], dtype=np.uint32)


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
        assert [beat[1] for beat in words] == [0] * (len(words) - 1) + [1]
        assert finished == 1
        if cfg.early_output:
            # a word after its step's last unit and the run's input; the last beat (the logits
            # too) after the compute's end
            h_words = T * stream_format.output_step_beats(cfg)
            assert all(n < done and seen_in for n, (_, _, done, seen_in, _) in enumerate(words[:h_words]))
            assert all(started for *_, started in words[h_words:] + words[-1:])
        elif cycles is not None:    # a stall-free stream: the pipeline fills, then a beat per cycle
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
