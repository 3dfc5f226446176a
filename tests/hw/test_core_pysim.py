"""The whole core (LstmCore, plain stream ports) under Amaranth's simulator for tiny shapes: weight
load, both modes, multi-layer, every stream width, against the integer golden.  Fast, no Verilator."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from lstmfpga.hw import cycle_model
from lstmfpga.foundation.hw import stream_format
from lstmfpga.foundation.hw.config import STREAM_WIDTHS, AcceleratorConfig
from lstmfpga.foundation.hw.register_map import Error
from lstmfpga.hw.rtl.core import LstmCore
from lstmfpga.foundation.hw.weight_image import build_weight_image, image_lanes
from lstmfpga.sim.golden.random_artifact import random_artifact
from lstmfpga.sim.rtl_check import golden_packets, random_codes


#: The core's read-channel outputs a memory samples each cycle.
AXI_SAMPLED = ("m_axi_arvalid", "m_axi_arready", "m_axi_araddr", "m_axi_arlen", "m_axi_arsize", "m_axi_arburst",
               "m_axi_rvalid", "m_axi_rready")


def _beats(lanes, per):
    """A packet's 32-bit lanes as TDATA values, ``per`` lanes a beat, lane 0 in the low bits."""
    lanes = np.asarray(lanes, dtype=np.uint32)
    return [sum(int(v) << (32 * n) for n, v in enumerate(lanes[b:b + per])) for b in range(0, lanes.size, per)]


async def _receive(ctx, dut, per, *, max_cycles, ready=lambda cycle: True, stop=lambda: False):
    """The output packet's lanes, TREADY ``ready(cycle)``, until its TLAST beat, ``stop()`` or
    ``max_cycles``."""
    words = []
    for cycle in range(max_cycles):
        if stop():
            break
        taking = ready(cycle)
        ctx.set(dut.o_stream.ready, taking)
        if ctx.get(dut.o_stream.valid) and taking:
            beat = ctx.get(dut.o_stream.payload.data)
            words.extend((beat >> (32 * n)) & 0xFFFFFFFF for n in range(per))
            if ctx.get(dut.o_stream.payload.last):
                await ctx.tick()
                break
        await ctx.tick()
    return np.array(words, dtype=np.uint32)


def _simulate(config, image, packets, timesteps, *, memory=None, region=(0, 0), timeout=1 << 20,
              soft_reset_after=None, max_cycles=200_000, batches=None):
    """Load ``image``, run each packet of 32-bit lanes (``lanes_per_beat`` lanes a beat, lane 0 in
    the low bits) under output backpressure; returns the output packets as lanes and the flags.

    With weights in DDR, ``memory`` (``memory_for(run)`` → an object with ``outputs(cycle)`` and
    ``observe(cycle, sampled)``, :class:`axi_weight_reader_bench.ScriptedMemory`) answers the
    core's ``m_axi_*`` port from the run's START on, and ``region`` is (DDR_BASE, DDR_LENGTH) or
    ``region(run)``.  ``soft_reset_after(run)`` → N or None: a soft reset N cycles after the
    memory took the run's first AR, once the packet is sent.  ``batches[run]``: the BATCH of a
    run (a core with ``max_batch`` > 1).  A run that ends without output (an error, a soft reset) or
    sends none within ``max_cycles`` gives an empty packet."""
    dut = LstmCore(config=config)
    per = stream_format.lanes_per_beat(config)
    outputs, flags = [], {}
    current = {"memory": None, "cycle": 0, "reset_at": None, "sent": False, "reset": False}

    async def serve(ctx):
        while True:
            mem, cycle = current["memory"], current["cycle"]
            if mem is not None:
                for name, value in mem.outputs(cycle).items():
                    ctx.set(getattr(dut, name), value)
                sampled = {name: ctx.get(getattr(dut, name)) for name in AXI_SAMPLED}
                mem.observe(cycle, sampled)
                if current["reset_at"] is not None and sampled["m_axi_arvalid"] and sampled["m_axi_arready"]:
                    current["reset_at"], current["reset_cycle"] = None, cycle + current["reset_at"]
            reset = current.get("reset_cycle") is not None and current["sent"] and cycle >= current["reset_cycle"]
            ctx.set(dut.soft_reset, reset)
            if reset:
                current.update(reset_cycle=None, reset=True)
            await ctx.tick()
            current["cycle"] += 1

    async def bench(ctx):
        ctx.set(dut.timeout, timeout)

        async def pulse(sig):
            ctx.set(sig, 1)
            await ctx.tick()
            ctx.set(sig, 0)

        async def send(lanes):
            words = _beats(lanes, per)
            for i, w in enumerate(words):
                ctx.set(dut.i_stream.valid, 1)
                ctx.set(dut.i_stream.payload.data, int(w))
                ctx.set(dut.i_stream.payload.last, int(i == len(words) - 1))
                while True:
                    ready = ctx.get(dut.i_stream.ready)
                    await ctx.tick()
                    if ready:
                        break
            ctx.set(dut.i_stream.valid, 0)
            ctx.set(dut.i_stream.payload.last, 0)

        await pulse(dut.load_weights)
        await send(image_lanes(config, image))
        for _ in range(16):           # the loader's verdict on the checksum word, then idle
            if not ctx.get(dut.busy):
                break
            await ctx.tick()
        flags["load_error"] = ctx.get(dut.error)
        flags["weights_valid"] = ctx.get(dut.weights_valid)
        for run, (lanes, T) in enumerate(zip(packets, timesteps)):
            ctx.set(dut.timesteps, T)
            if batches is not None:
                ctx.set(dut.batch, batches[run])
            await ctx.tick()              # START runs TIMESTEPS and BATCH as they were a cycle before
            if memory is not None:
                current["memory"] = memory(run)
                base, length = region(run) if callable(region) else region
                ctx.set(dut.ddr_base, base)
                ctx.set(dut.ddr_length, length)
            current.update(sent=False, reset=False,
                           reset_at=soft_reset_after(run) if soft_reset_after is not None else None)
            await pulse(dut.start)
            await send(lanes)
            current["sent"] = True
            outputs.append(await _receive(
                ctx, dut, per, max_cycles=max_cycles, ready=lambda cycle: cycle % 3 != 0,   # backpressure
                stop=lambda: (ctx.get(dut.done) or current["reset"]) and not ctx.get(dut.busy)))
            flags.setdefault("errors", []).append(ctx.get(dut.error))
            flags.setdefault("cycles", []).append(ctx.get(dut.cycles))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    if config.ddr_weights:
        sim.add_testbench(serve, background=True)
    sim.add_testbench(bench)
    sim.run()
    return outputs, flags


@pytest.mark.parametrize("I,H,L,P,wb,mode,C", [(5, 3, 2, 8, 8, "full", 3), (3, 5, 2, 4, 2, "split", 0),
                                               (6, 2, 3, 12, 4, "full", 1),
                                               # one real unit and two padding units in the one group
                                               (4, 1, 2, 12, 3, "full", 2)])
def test_core_matches_golden(I, H, L, P, wb, mode, C):
    art = random_artifact(input_size=I, hidden_size=H, num_layers=L, num_classes=C, weight_bits=wb, seed=I * H)
    config = AcceleratorConfig.from_artifact(art, lanes=P, mode=mode, max_timesteps=4)
    rng = np.random.default_rng(0)
    steps = [1, 4, 2]
    packets, expected = zip(*(golden_packets(config, art, random_codes(art, rng, T)) for T in steps))
    outputs, flags = _simulate(config, build_weight_image(art, config), packets, steps)
    assert flags["load_error"] == 0 and flags["weights_valid"] == 1
    assert flags["errors"] == [0, 0, 0]
    for got, want, T in zip(outputs, expected, steps):
        np.testing.assert_array_equal(got, want, err_msg=f"T={T}")
        h, _ = stream_format.unpack_output(config, got, T)
        assert h.shape == (T, H)
    model = [cycle_model.estimate(config, T).compute_cycles for T in steps]
    assert flags["cycles"] == model


def test_core_rejects_corrupt_image():
    art = random_artifact(input_size=4, hidden_size=2, num_layers=1, num_classes=0, weight_bits=4)
    config = AcceleratorConfig.from_artifact(art, lanes=4, max_timesteps=2)
    image = build_weight_image(art, config)
    image[-2] ^= 0x10
    _, flags = _simulate(config, image, [], [])
    assert flags["load_error"] == Error.WEIGHT_CHECKSUM and flags["weights_valid"] == 0


@pytest.mark.parametrize("seed", range(6))
def test_core_drawn_shape_matches_golden_and_cycle_model(seed):
    """The joined blocks on a drawn small shape, each mode at each stream width, the weight memory
    on one read port or folded over two: outputs bit-exact, CYCLES exact."""
    import random

    rnd = random.Random(seed)
    art = random_artifact(input_size=rnd.randint(1, 9), hidden_size=rnd.randint(1, 6), num_layers=rnd.randint(1, 3),
                          num_classes=rnd.choice([0, 1, 3]), weight_bits=rnd.choice([2, 3, 4, 8]), seed=100 + seed)
    lanes, ports = rnd.choice([4, 8, 12, 16, 24]), rnd.choice([1, 2])
    folded = ports == 2 and seed % 3 != 2   # part of the lanes and rows on both ports, the rest on one
    config = AcceleratorConfig.from_artifact(art, lanes=lanes,
                                             mode=["full", "split"][seed % 2], max_timesteps=rnd.randint(1, 4),
                                             stream_width=STREAM_WIDTHS[seed // 2 % len(STREAM_WIDTHS)],
                                             weight_ports=ports,
                                             fold_lanes=2 * rnd.randint(1, lanes // 2) if folded else 0,
                                             fold_rows=1 << rnd.randint(0, 5) if folded else 0)
    rng = np.random.default_rng(seed)
    steps = [rnd.randint(1, config.max_timesteps) for _ in range(2)]
    packets, expected = zip(*(golden_packets(config, art, random_codes(art, rng, T)) for T in steps))
    outputs, flags = _simulate(config, build_weight_image(art, config), packets, steps)
    assert flags["load_error"] == 0 and flags["weights_valid"] == 1
    assert flags["errors"] == [0] * len(steps)
    for got, want in zip(outputs, expected):
        np.testing.assert_array_equal(got, want)
    assert flags["cycles"] == [cycle_model.estimate(config, T).compute_cycles for T in steps]


@pytest.mark.parametrize("seed", range(4))
def test_core_two_tail_units_match_golden_and_cycle_model(seed):
    """Two tail units (units 2j and 2j + 1 side by side) on drawn shapes: odd H (the last pair
    half empty), several groups, a classifier split over both tails' logits, either mode."""
    import random

    rnd = random.Random(700 + seed)
    S = rnd.choice([2, 4])
    art = random_artifact(input_size=rnd.randint(1, 9), hidden_size=rnd.choice([1, 3, 5, 6, 9]),
                          num_layers=rnd.randint(1, 3), num_classes=rnd.choice([1, 3]),
                          weight_bits=rnd.choice([2, 4, 8]), seed=200 + seed)
    config = AcceleratorConfig.from_artifact(art, lanes=8 * S * rnd.randint(1, 2), column_sets=S, tail_units=2,
                                             mode=["full", "split"][seed % 2], max_timesteps=3,
                                             stream_width=rnd.choice([s for s in STREAM_WIDTHS if s >= 8 * S]),
                                             weight_ports=rnd.choice([1, 2]))
    rng = np.random.default_rng(seed)
    steps = [config.max_timesteps, 1]
    packets, expected = zip(*(golden_packets(config, art, random_codes(art, rng, T)) for T in steps))
    outputs, flags = _simulate(config, build_weight_image(art, config), packets, steps)
    assert flags["load_error"] == 0 and flags["errors"] == [0] * len(steps)
    for got, want in zip(outputs, expected):
        np.testing.assert_array_equal(got, want)
    assert flags["cycles"] == [cycle_model.estimate(config, T).compute_cycles for T in steps]


@pytest.mark.parametrize("seed", range(3))
def test_beats_pushed_between_a_soft_reset_and_the_dma_reset_never_reach_the_next_run(seed):
    """The driver's recovery: SOFT_RESET mid-packet while the DMA keeps offering the packet's beats
    until its own reset. The core takes none of them after the reset (its input slice reads only
    while run control does, and drops what it held), and the next run is bit-exact and
    cycle-exact."""
    import random

    rnd = random.Random(seed)
    art = random_artifact(input_size=rnd.randint(2, 9), hidden_size=rnd.randint(1, 5), num_layers=rnd.randint(1, 2),
                          num_classes=rnd.choice([0, 2]), weight_bits=rnd.choice([2, 4, 8]), seed=300 + seed)
    config = AcceleratorConfig.from_artifact(art, lanes=rnd.choice([4, 8, 12]), mode=["full", "split"][seed % 2],
                                             max_timesteps=4, stream_width=rnd.choice(STREAM_WIDTHS))
    per = stream_format.lanes_per_beat(config)
    rng = np.random.default_rng(seed)
    (cut, _), (lanes, expected) = (golden_packets(config, art, random_codes(art, rng, 4)) for _ in range(2))
    dut = LstmCore(config=config)
    result = {}

    async def bench(ctx):
        ctx.set(dut.timeout, 1 << 20)

        async def pulse(sig):
            ctx.set(sig, 1)
            await ctx.tick()
            ctx.set(sig, 0)

        async def offer(words, *, cycles=None):
            """Offer ``words`` in order (TLAST on the last); returns how many the core took. With
            ``cycles``, stop offering after that many cycles."""
            taken = 0
            for cycle in range(cycles if cycles is not None else 100 * len(words)):
                if taken == len(words):
                    break
                ctx.set(dut.i_stream.valid, 1)
                ctx.set(dut.i_stream.payload.data, words[taken])
                ctx.set(dut.i_stream.payload.last, int(taken == len(words) - 1))
                ready = ctx.get(dut.i_stream.ready)
                await ctx.tick()
                taken += ready
            ctx.set(dut.i_stream.valid, 0)
            return taken

        await pulse(dut.load_weights)
        await offer(_beats(image_lanes(config, build_weight_image(art, config)), per))
        await ctx.tick().repeat(16)
        ctx.set(dut.timesteps, 4)
        await ctx.tick()
        await pulse(dut.start)
        words = _beats(cut, per)
        half = max(1, len(words) // 2)
        await offer(words[:half])
        # the soft reset while the rest of the packet is still offered, then the DMA's reset
        ctx.set(dut.soft_reset, 1)
        ctx.set(dut.i_stream.valid, 1)
        ctx.set(dut.i_stream.payload.data, words[half % len(words)])
        await ctx.tick()
        ctx.set(dut.soft_reset, 0)
        result["taken_after_reset"] = await offer(words[half:] or words[:1], cycles=20)
        await ctx.tick().repeat(4)
        result["busy"] = ctx.get(dut.busy)
        await pulse(dut.start)
        await offer(_beats(lanes, per))
        out = await _receive(ctx, dut, per, max_cycles=20_000)
        for _ in range(100):
            if not ctx.get(dut.busy):
                break
            await ctx.tick()
        result.update(out=out, error=ctx.get(dut.error), cycles=ctx.get(dut.cycles))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert result["taken_after_reset"] == 0 and result["busy"] == 0
    assert result["error"] == 0
    np.testing.assert_array_equal(result["out"], expected)
    assert result["cycles"] == cycle_model.estimate(config, 4).compute_cycles   # (beats back to back)
