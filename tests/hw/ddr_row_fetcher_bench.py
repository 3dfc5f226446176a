"""Cycle-level bench of the DDR row fetcher, shared by the Amaranth simulator and the cocotb run of
its generated Verilog (launched by ``test_ddr_row_fetcher.py``).

- :class:`Consumer`: the column scheduler's side — takes the full halves in order, holds each a
  drawn number of cycles, releases it, and keeps what the buffer held.
- :func:`run`: one run through a *port* (``async cycle(inputs) -> outputs``, one clock cycle per
  call, signals named as in the Verilog), against a :class:`ScriptedMemory` it drives or a memory
  model attached to the port (cocotbext-axi's ``AxiRamRead``).
- The cocotb test reads a JSON job (``$DDR_FETCHER_JOB``): the image, its origin, and runs (T, the
  consumer's longest hold, AR/R pause probabilities); records go to ``result_path``.
"""

from __future__ import annotations

import json
import os
import random

from axi_weight_reader_bench import RAM_SIZE, _pauses

JOB_ENV = "DDR_FETCHER_JOB"
#: Fetcher outputs read every cycle (and the AXI signals a scripted memory needs).
OUTPUTS = ("full", "busy", "done", "error", "write__en", "write__addr", "write__data", "m_axi_arvalid",
           "m_axi_arready", "m_axi_araddr", "m_axi_arlen", "m_axi_arsize", "m_axi_arburst", "m_axi_rvalid",
           "m_axi_rready")


def expected_groups(config, image: bytes, data_width: int, steps: int) -> list:
    """The rows of every group of a run, in the scheduler's order: (layer, step, group, rows)."""
    from lstmfpga.foundation.hw.ddr_image import layer_offsets, row_bytes

    rb = row_bytes(config, data_width)
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
    """Takes the full halves in order, holds each ``hold()`` cycles from the cycle it sees it full,
    then releases it, keeping the half's rows as they were (``taken``) and the release cycles."""

    def __init__(self, k_max: int, hold):
        self.k_max, self.hold = k_max, hold
        self.buffer = {}
        self.half, self.until = 0, None
        self.taken, self.released, self.rises = [], [], []

    def step(self, cycle: int, full: int) -> int:
        """Whether to release in ``cycle``, given ``full`` as it reads in ``cycle``."""
        if self.until is None and full >> self.half & 1:
            self.until = cycle + self.hold()
        if self.until is not None and cycle >= self.until:
            base = self.half * self.k_max
            self.taken.append([self.buffer.get(base + k) for k in range(self.k_max)])
            self.half, self.until = 1 - self.half, None
            self.released.append(cycle)
            return 1
        return 0


async def run(port, *, origin: int, size: int, steps: int, consumer: Consumer, memory=None, flush_at=None,
              groups: int = 0, timeout: int = 0, max_cycles: int = 200_000) -> dict:
    """One run, ``start`` in cycle 0: until ``done`` has come and ``consumer`` has taken ``groups``
    groups (or, with ``flush_at``, until the fetcher is idle and the memory has answered every
    read).  Returns done's cycle (None after a flush), the error bits, and the writes counted;
    asserts that no row is written into a full half."""
    region = origin | size << 64
    writes, finished, before, full = 0, None, 0, 0
    for cycle in range(max_cycles):
        release = consumer.step(cycle, full)
        inputs = {"region": region, "steps": steps, "start": int(cycle == 0), "flush": int(cycle == flush_at),
                  "release": release, "timeout": timeout}
        if memory is not None:
            inputs.update(memory.outputs(cycle))
        s = await port.cycle(inputs)
        if memory is not None:
            memory.observe(cycle, s)
        full = s["full"]
        consumer.rises += [cycle] * bin(full & ~before).count("1")
        before = full
        if s["write__en"]:
            address = s["write__addr"]
            half = int(address >= consumer.k_max)
            assert not full >> half & 1, f"cycle {cycle}: a write into full half {half}"
            consumer.buffer[address] = s["write__data"]
            writes += 1
        if s["done"]:
            assert finished is None, f"a second done in cycle {cycle}"
            finished = (cycle, s["error"])
        if finished is not None and len(consumer.taken) >= groups:
            return {"done": finished[0], "error": finished[1], "writes": writes}
        if flush_at is not None and cycle > flush_at + 2 and not s["busy"] and (memory is None or not memory.beats):
            return {"done": None, "error": 0, "writes": writes}
    raise AssertionError(f"the fetcher did not finish within {max_cycles} cycles")


# -- cocotb ----------------------------------------------------------------------------------

class CocotbPort:
    def __init__(self, dut):
        self.dut = dut

    async def cycle(self, inputs: dict) -> dict:
        from cocotb.triggers import ReadOnly, RisingEdge

        for name, value in inputs.items():
            getattr(self.dut, name).value = value
        await ReadOnly()
        out = {name: int(getattr(self.dut, name).value) for name in OUTPUTS}
        await RisingEdge(self.dut.clk)
        return out


async def _fetch_from_axiram(dut):
    import cocotb
    from cocotb.clock import Clock
    from cocotb.triggers import RisingEdge
    from cocotbext.axi import AxiRamRead, AxiReadBus

    with open(os.environ[JOB_ENV]) as handle:
        job = json.load(handle)
    with open(job["image_path"], "rb") as handle:
        image = handle.read()
    rng = random.Random(job["seed"])
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    ram = AxiRamRead(AxiReadBus.from_prefix(dut, "m_axi"), dut.clk, dut.rst, size=RAM_SIZE)
    ram.write(job["origin"] % RAM_SIZE, image)
    dut.rst.value = 1
    for name in ("start", "flush", "release", "steps", "region", "timeout"):
        getattr(dut, name).value = 0     # timeout 0: the watchdog off
    for _ in range(3):
        await RisingEdge(dut.clk)
    dut.rst.value = 0
    await RisingEdge(dut.clk)
    port = CocotbPort(dut)
    results = []
    for case in job["runs"]:
        ram.ar_channel.set_pause_generator(_pauses(rng, case["ar_pause"]))
        ram.r_channel.set_pause_generator(_pauses(rng, case["r_pause"]))
        consumer = Consumer(job["k_max"], lambda: rng.randint(0, case["hold"]))
        record = await run(port, origin=job["origin"], size=len(image), steps=case["steps"], consumer=consumer,
                           groups=case["groups"])
        results.append({**record, "taken": [[hex(v) if v is not None else None for v in rows]
                                            for rows in consumer.taken]})
    with open(job["result_path"], "w") as handle:
        json.dump(results, handle)


try:
    import cocotb
except ImportError:     # imported by pytest for the bench without cocotb installed
    cocotb = None

if cocotb is not None:
    @cocotb.test()
    async def fetcher_axiram(dut):
        await _fetch_from_axiram(dut)
