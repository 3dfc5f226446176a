"""The DDR row fetcher in the Amaranth simulator, against a scripted AXI4 memory holding a random
weight image: every group of a run lands in its half of the double buffer, rows exact, in the
scheduler's order, a half never overwritten before it is released; reader errors and a flush
end a run and the next run is exact.  Shapes, port widths, bursts, latencies, the consumer's
pace and T are drawn at random (the seed is in each failure's message)."""

from __future__ import annotations

import random

import pytest

pytest.importorskip("amaranth")

from amaranth.lib import data  # noqa: E402
from amaranth.sim import Simulator  # noqa: E402
from axi_weight_reader_bench import DECERR, MEMORY_INPUTS, SLVERR, ScriptedMemory, image_reader  # noqa: E402

from lstmfpga.foundation.hw.config import AcceleratorConfig  # noqa: E402
from lstmfpga.hw import latency  # noqa: E402
from lstmfpga.hw.ddr_model import ReadError, read_schedule  # noqa: E402
from lstmfpga.hw.ddr_schedule import DdrPort, row_bytes  # noqa: E402
from lstmfpga.foundation.hw.ddr_image import layer_offsets  # noqa: E402
from lstmfpga.hw.rtl.ddr_row_fetcher import DdrRowFetcher, buffer_depth  # noqa: E402


@pytest.fixture
def seed():
    return random.randrange(2**32)


def _draw_config(rng) -> AcceleratorConfig:
    while True:
        S = rng.choice((1, 1, 2, 4))
        H = rng.randint(2, 12)
        try:       # mostly several row groups a step: rows per group 4·r for r up to H/2
            return AcceleratorConfig(input_size=rng.randint(1, 30), hidden_size=H, num_layers=rng.randint(1, 3),
                                     lanes=4 * S * rng.randint(1, H // 2), column_sets=S,
                                     mode=rng.choice(("full", "split")), weight_bits=rng.randint(2, 8),
                                     stream_width=128)
        except Exception:
            continue


def expected_groups(config, image: bytes, data_width: int, steps: int) -> list:
    """The rows of every group of a run, in the scheduler's order: (layer, step, group, rows)."""
    rb = row_bytes(config, DdrPort(data_width=data_width))
    mask = (1 << config.lanes * config.weight_bits) - 1
    offsets = layer_offsets(config, data_width)
    groups = []
    for layer in range(config.num_layers):
        K = config.issued_columns(layer)
        for t in range(steps):
            for g in range(config.groups):
                first = offsets[layer] + g * K * rb
                rows = [int.from_bytes(image[first + k * rb:first + (k + 1) * rb], "little") & mask for k in range(K)]
                groups.append((layer, t, g, rows))
    return groups


class Consumer:
    """The scheduler's side: takes the full halves in order, holds each a drawn number of cycles
    (its columns), then releases it; checks what the buffer holds at release."""

    def __init__(self, rng, k_max: int, hold):
        self.rng, self.k_max, self.hold = rng, k_max, hold
        self.buffer = {}
        self.half, self.until, self.taken, self.released = 0, None, [], []

    def step(self, cycle: int, full: int) -> int:
        """Whether to release this cycle."""
        if self.until is None and full >> self.half & 1:
            self.until = cycle + self.hold()
        if self.until is not None and cycle >= self.until:
            base = self.half * self.k_max
            self.taken.append([self.buffer.get(base + k) for k in range(self.k_max)])
            self.half, self.until = 1 - self.half, None
            self.released.append(cycle)
            return 1
        return 0


async def run(ctx, dut, *, image: bytes, origin: int, steps: int, memory: ScriptedMemory, consumer: Consumer,
              flush_at=None, groups=0, max_cycles=200_000):
    """One run: ``start`` in cycle 0; returns (cycle of done or None, error bits, writes seen) once
    ``done`` has come and the consumer has taken ``groups`` groups."""
    region = origin | len(image) << 64
    writes, finished, before = 0, None, 0
    consumer.rises = []
    for cycle in range(max_cycles):
        ctx.set(dut.region.as_value(), region)
        ctx.set(dut.steps, steps)
        ctx.set(dut.start, int(cycle == 0))
        ctx.set(dut.flush, int(cycle == flush_at))
        for name, value in memory.outputs(cycle).items():
            ctx.set(getattr(dut, name), value)
        sampled = {name: ctx.get(getattr(dut, name)) for name in
                   ("m_axi_arvalid", "m_axi_arready", "m_axi_araddr", "m_axi_arlen", "m_axi_arsize", "m_axi_arburst",
                    "m_axi_rvalid", "m_axi_rready")}
        full = ctx.get(dut.full)
        consumer.rises += [cycle] * bin(full & ~before).count("1")
        before = full
        release = consumer.step(cycle, full)
        ctx.set(dut.release, release)
        if ctx.get(dut.write.en):
            address = ctx.get(dut.write.addr)
            half = int(address >= consumer.k_max)
            assert not full >> half & 1, f"cycle {cycle}: a write into full half {half}"
            consumer.buffer[address] = ctx.get(dut.write.data)
            writes += 1
        done, error = ctx.get(dut.done), ctx.get(dut.error.as_value())
        await ctx.tick()
        memory.observe(cycle, sampled)
        if done:
            assert finished is None, f"a second done in cycle {cycle}"
            finished = (cycle, error)
        if finished is not None and len(consumer.taken) >= groups:
            return (*finished, writes)
        if flush_at is not None and cycle > flush_at + 2 and not ctx.get(dut.busy) and not memory.beats:
            return None, 0, writes       # flushed, and the reader has taken every beat it asked for
    raise AssertionError(f"the fetcher did not finish within {max_cycles} cycles")


def simulate(dut, jobs):
    results = []

    async def bench(ctx):
        for job in jobs:
            results.append(await run(ctx, dut, **job))
            for name in MEMORY_INPUTS:
                ctx.set(getattr(dut, name), 0)
            for _ in range(8):
                await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return results


def _image(rng, config, data_width):
    size = layer_offsets(config, data_width)[-1]
    return bytes(rng.getrandbits(8) for _ in range(size))


def test_every_group_arrives_in_order_exact_and_when_the_model_says(seed):
    rng = random.Random(seed)
    for trial in range(3):
        config = _draw_config(rng)
        data_width = rng.choice((64, 128))
        dut = DdrRowFetcher(config=config, data_width=data_width, max_burst=rng.choice((1, 2, 4, 16)),
                            outstanding=rng.randint(1, 4), timeout_bits=8)
        image = _image(rng, config, data_width)
        origin = rng.randrange(0, 2**40) // 4096 * 4096 + rng.randrange(0, 4096 // 16) * 16
        steps = rng.randint(1, 4) if trial else rng.randint(2, 4)
        k_max = buffer_depth(config) // 2
        memory = ScriptedMemory(image_reader(image, origin), beat_bytes=data_width // 8,
                                latency=rng.randint(1, 12), interval=rng.randint(1, 3))
        consumer = Consumer(rng, k_max, lambda: rng.randint(0, 3 * k_max))
        expected = expected_groups(config, image, data_width, steps)
        ((done, error, writes),) = simulate(dut, [dict(image=image, origin=origin, steps=steps, memory=memory,
                                                       consumer=consumer, groups=len(expected))])
        why = f"seed {seed} trial {trial}: {config}, width {data_width}, T={steps}"
        assert done is not None and error == 0, why
        assert writes == sum(len(rows) for *_, rows in expected), why
        assert len(consumer.taken) == len(expected), why
        for (layer, t, g, rows), taken in zip(expected, consumer.taken):
            assert taken[:len(rows)] == rows, f"{why}: layer {layer} step {t} group {g}"
        assert consumer.rises == model_ready_cycles(config, dut, origin, memory, expected, consumer.released), why


def model_ready_cycles(config, dut, origin, memory, groups, released) -> list:
    """When each group's half reads full by the schedule of :mod:`lstmfpga.hw.ddr_schedule`, with
    each request timed exactly by :func:`~lstmfpga.hw.ddr_model.read_schedule` (cycle 0: the
    fetcher's ``start``)."""
    rb = row_bytes(config, DdrPort(data_width=dut.data_width))
    offsets = layer_offsets(config, dut.data_width)
    ready, end = [], None
    for i, (layer, _, g, rows) in enumerate(groups):
        start = latency.DDR_FIRST_REQUEST if end is None else end + latency.DDR_ROWS_READY
        if i >= 2:
            start = max(start, released[i - 2] + 1)
        end = start + read_schedule(address=origin + offsets[layer] + g * len(rows) * rb, nbytes=len(rows) * rb,
                                    data_width=dut.data_width, max_burst=dut.reader.max_burst,
                                    outstanding=dut.reader.outstanding, latency=memory.latency,
                                    interval=memory.interval).cycles
        ready.append(end + latency.DDR_ROWS_READY)
    return ready


def test_errors_and_flush_end_the_run_and_the_next_is_exact(seed):
    rng = random.Random(seed)
    config = _draw_config(rng)
    data_width = 64
    dut = DdrRowFetcher(config=config, data_width=data_width, max_burst=4, outstanding=2, timeout_bits=8)
    image = _image(rng, config, data_width)
    origin = 0x1000_0000
    k_max = buffer_depth(config) // 2

    def job(**memory_options):
        memory = ScriptedMemory(image_reader(image, origin), beat_bytes=8, latency=rng.randint(1, 6), **memory_options)
        return memory, Consumer(rng, k_max, lambda: rng.randint(0, k_max))

    total_beats = layer_offsets(config, data_width)[-1] // 8
    bad_memory, c1 = job(fault=(rng.randrange(total_beats), rng.choice((SLVERR, DECERR))))
    flushed, c2 = job()
    good, c3 = job()
    results = simulate(dut, [
        dict(image=image, origin=origin, steps=1, memory=bad_memory, consumer=c1),
        dict(image=image, origin=origin, steps=2, memory=flushed, consumer=c2, flush_at=rng.randint(1, 40)),
        dict(image=image, origin=origin, steps=2, memory=good, consumer=c3,
             groups=len(expected_groups(config, image, data_width, 2))),
    ])
    why = f"seed {seed}: {config}"
    done, error, _ = results[0]
    assert done is not None and error & (ReadError.SLVERR | ReadError.DECERR), why
    assert results[1][0] is None, why           # flushed: no done
    done, error, writes = results[2]
    expected = expected_groups(config, image, data_width, 2)
    assert done is not None and error == 0 and writes == sum(len(rows) for *_, rows in expected), why
    assert len(c3.taken) == len(expected), why
    for (layer, t, g, rows), taken in zip(expected, c3.taken):
        assert taken[:len(rows)] == rows, f"{why}: layer {layer} step {t} group {g}"
