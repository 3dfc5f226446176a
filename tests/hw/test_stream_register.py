"""StreamRegister (Amaranth simulator): drawn payload widths and random TVALID/TREADY on both
sides; every beat comes out once, in order, a cycle late at the earliest; a stream that never
stalls moves a beat a cycle; neither port's handshake reaches the other in the same cycle; a
reset drops what it holds."""

import random

import pytest
from amaranth import ResetInserter, Signal, Value
from amaranth.sim import Simulator

from lstmfpga.hw import latency
from lstmfpga.hw.rtl.payloads import beat_layout
from lstmfpga.hw.rtl.stream_register import StreamRegister


def _run(bench, design):
    sim = Simulator(design)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()


@pytest.mark.parametrize("seed", range(6))
def test_stream_register_passes_every_beat_in_order(seed):
    rnd = random.Random(seed)
    width = rnd.choice([32, 64, 128, rnd.randint(1, 70)])
    dut = StreamRegister(payload_shape=beat_layout(width) if width in (32, 64, 128) else width)
    beats = [rnd.getrandbits(width + 1 if width in (32, 64, 128) else width) for _ in range(rnd.randint(20, 60))]
    p_valid, p_ready = rnd.uniform(0.2, 1.0), rnd.uniform(0.2, 1.0)
    sent, got = [], []

    def raw(payload):
        return Value.cast(payload)

    async def bench(ctx):
        n, cycle, taken_at = 0, 0, {}
        while len(got) < len(beats):
            offer = n < len(beats) and rnd.random() < p_valid
            ready = rnd.random() < p_ready
            ctx.set(dut.i_stream.valid, offer)
            if offer:
                ctx.set(raw(dut.i_stream.payload), beats[n])
            # the input's TREADY is a flip-flop: the output's TREADY this cycle does not move it
            ctx.set(dut.o_stream.ready, 0)
            ready_if_stalled = ctx.get(dut.i_stream.ready)
            ctx.set(dut.o_stream.ready, 1)
            assert ctx.get(dut.i_stream.ready) == ready_if_stalled
            ctx.set(dut.o_stream.ready, ready)
            # and the output's TVALID does not follow the input's TVALID in the same cycle
            valid_out = ctx.get(dut.o_stream.valid)
            ctx.set(dut.i_stream.valid, not offer)
            assert ctx.get(dut.o_stream.valid) == valid_out
            ctx.set(dut.i_stream.valid, offer)
            if valid_out and ready:
                value = ctx.get(raw(dut.o_stream.payload))
                assert cycle - taken_at[len(got)] >= latency.STREAM_REGISTER
                got.append(value)
            if offer and ctx.get(dut.i_stream.ready):
                sent.append(beats[n])
                taken_at[n] = cycle
                n += 1
            await ctx.tick()
            cycle += 1
            assert cycle < 20 * len(beats) + 100, "the register stopped moving beats"

    _run(bench, dut)
    assert got == beats == sent


def test_stream_register_moves_a_beat_every_cycle_without_stalls():
    dut = StreamRegister(payload_shape=16)
    out = []

    async def bench(ctx):
        ctx.set(dut.o_stream.ready, 1)
        for cycle in range(40):
            ctx.set(dut.i_stream.valid, cycle < 30)
            ctx.set(dut.i_stream.payload, cycle)
            if cycle < 30:
                assert ctx.get(dut.i_stream.ready)
            if ctx.get(dut.o_stream.valid):
                out.append((cycle, ctx.get(dut.o_stream.payload)))
            await ctx.tick()

    _run(bench, dut)
    assert out == [(c + latency.STREAM_REGISTER, c) for c in range(30)]


def test_stream_register_reset_drops_its_beats():
    dut = StreamRegister(payload_shape=8)
    clear = Signal()
    top = ResetInserter(clear)(dut)
    out = []

    async def bench(ctx):
        ctx.set(dut.i_stream.valid, 1)
        for value in (1, 2):          # the output stalled: one in the payload register, one in the skid
            ctx.set(dut.i_stream.payload, value)
            await ctx.tick()
        ctx.set(dut.i_stream.valid, 0)
        assert not ctx.get(dut.i_stream.ready)
        ctx.set(clear, 1)
        await ctx.tick()
        ctx.set(clear, 0)
        assert ctx.get(dut.i_stream.ready) and not ctx.get(dut.o_stream.valid)
        ctx.set(dut.i_stream.valid, 1)
        ctx.set(dut.i_stream.payload, 3)
        ctx.set(dut.o_stream.ready, 1)
        await ctx.tick()
        ctx.set(dut.i_stream.valid, 0)
        for _ in range(3):
            if ctx.get(dut.o_stream.valid):
                out.append(ctx.get(dut.o_stream.payload))
            await ctx.tick()

    _run(bench, top)
    assert out == [3]


@pytest.mark.parametrize("seed", range(4))
def test_gated_stream_register_takes_beats_only_while_accepting(seed):
    """Random ``accept`` spells: TREADY only while accepting; the beats delivered are the beats
    taken, in order, less those held when a spell ended; the cycle after a spell ends the slice
    is empty; within a spell nothing is lost."""
    rnd = random.Random(seed)
    dut = StreamRegister(payload_shape=12, gated=True)
    p_ready = rnd.uniform(0.3, 1.0)
    log = {"taken": [], "got": [], "dropped": 0}

    async def bench(ctx):
        held, counter, accept_before = [], 0, False
        for _ in range(600):
            accept = rnd.random() < 0.9 if accept_before else rnd.random() < 0.2
            ctx.set(dut.accept, accept)
            if not accept_before:
                # the cycle after a spell ended (or before the first), the slice holds nothing
                assert not ctx.get(dut.o_stream.valid)
                log["dropped"] += len(held)
                held = []
            offer = rnd.random() < 0.7
            ready = rnd.random() < p_ready
            ctx.set(dut.i_stream.valid, offer)
            ctx.set(dut.i_stream.payload, counter)
            ctx.set(dut.o_stream.ready, ready)
            if not accept:
                assert not ctx.get(dut.i_stream.ready)
            if ctx.get(dut.o_stream.valid) and ready:
                value = ctx.get(dut.o_stream.payload)
                assert value == held.pop(0)
                log["got"].append(value)
            if offer and ctx.get(dut.i_stream.ready):
                held.append(counter)
                log["taken"].append(counter)
                counter += 1
            assert len(held) <= 2
            accept_before = accept
            await ctx.tick()

    _run(bench, dut)
    assert log["got"] and log["dropped"] and len(log["got"]) + log["dropped"] <= len(log["taken"])
