"""Cycle-level bench of the AXI4 weight reader, shared by the Amaranth simulator and the cocotb
run of its generated Verilog (launched by ``test_axi_weight_reader.py``).

- :class:`ScriptedMemory`: an AXI4 read slave with a fixed latency and one beat every
  ``interval`` cycles, that can answer one chosen beat with SLVERR/DECERR, never answer, or never
  take an AR.  It is written from the AXI rules, not from the cycle model it checks.
- :func:`fetch`: drives one request through a *port* (an object with ``async cycle(inputs) ->
  outputs``, one clock cycle per call, signals named as in the Verilog) and records every AR
  handshake, R beat, output word and ``done``.
- The cocotb tests read a JSON job (``$AXI_READER_JOB``): the memory image, then a list of
  cases; cases with ``"memory": "axiram"`` run against cocotbext-axi's ``AxiRamRead`` with
  random pauses on AR and R, the others against :class:`ScriptedMemory`.  Records go to
  ``result_path`` for pytest to check.
"""

from __future__ import annotations

import json
import os
import random
from collections import deque
from dataclasses import asdict, dataclass, field

JOB_ENV = "AXI_READER_JOB"

#: Reader outputs and the memory-side signals, read every cycle.
OUTPUTS = ("busy", "done", "error", "o_stream__valid", "o_stream__payload", "m_axi_arvalid", "m_axi_araddr",
           "m_axi_arlen", "m_axi_arsize", "m_axi_arburst", "m_axi_arready", "m_axi_rvalid", "m_axi_rready",
           "m_axi_rresp", "m_axi_rlast", "m_axi_rdata")
#: Inputs the memory drives.
MEMORY_INPUTS = ("m_axi_arready", "m_axi_rvalid", "m_axi_rdata", "m_axi_rresp", "m_axi_rlast", "m_axi_rid")

OKAY, SLVERR, DECERR = 0b00, 0b10, 0b11
RAM_SIZE = 2**62


class ScriptedMemory:
    """An AXI4 read slave: an AR accepted in cycle ``a`` is answered from cycle ``a + latency``,
    one beat every ``interval`` cycles at most, bursts in order (INCR only).

    Parameters
    ----------
    read : callable
        ``read(address, nbytes) -> bytes``.
    beat_bytes : int
    latency, interval : int
        At least 1.
    fault : (int, int) or None
        (beat index since the memory was made, rresp) of one beat to answer with an error.
    silent : bool
        Accept ARs and never answer.
    stuck : bool
        Never accept an AR.
    """

    def __init__(self, read, *, beat_bytes, latency=1, interval=1, fault=None, silent=False, stuck=False):
        assert latency >= 1 and interval >= 1
        self.read, self.beat_bytes = read, beat_bytes
        self.latency, self.interval = latency, interval
        self.fault, self.silent, self.stuck = fault, silent, stuck
        self.beats = deque()            # (cycle, address, last, rresp)
        self.next_free = None           # earliest cycle of the next beat
        self.count = 0

    def outputs(self, cycle: int) -> dict:
        out = {"m_axi_arready": int(not self.stuck), "m_axi_rvalid": 0, "m_axi_rdata": 0, "m_axi_rresp": 0,
               "m_axi_rlast": 0, "m_axi_rid": 0}
        if self.beats and self.beats[0][0] <= cycle:
            _, address, last, resp = self.beats[0]
            data = bytes(self.beat_bytes) if resp != OKAY else self.read(address, self.beat_bytes)
            out.update(m_axi_rvalid=1, m_axi_rdata=int.from_bytes(data, "little"), m_axi_rresp=resp,
                       m_axi_rlast=int(last))
        return out

    def observe(self, cycle: int, sampled: dict) -> None:
        """Handshakes of this cycle (``sampled``: the settled signals)."""
        if sampled["m_axi_rvalid"] and sampled["m_axi_rready"]:
            self.beats.popleft()
        if sampled["m_axi_arvalid"] and sampled["m_axi_arready"] and not self.silent:
            assert sampled["m_axi_arburst"] == 0b01 and 1 << sampled["m_axi_arsize"] == self.beat_bytes
            first = cycle + self.latency
            if self.next_free is not None:
                first = max(first, self.next_free)
            n = sampled["m_axi_arlen"] + 1
            for i in range(n):
                resp = OKAY
                if self.fault is not None and self.fault[0] == self.count:
                    resp = self.fault[1]
                self.count += 1
                self.beats.append((first + i * self.interval, sampled["m_axi_araddr"] + i * self.beat_bytes,
                                   i == n - 1, resp))
            self.next_free = first + n * self.interval


@dataclass
class Record:
    """What one request did, cycles counted from ``start``."""

    ars: list = field(default_factory=list)       # (cycle, araddr, arlen)
    beats: list = field(default_factory=list)     # (cycle, rresp, rlast)
    words: list = field(default_factory=list)     # (cycle, data, last)
    done: list = field(default_factory=list)      # cycles with done
    error: int = 0                                # error at the first done
    busy_cycles: int = 0
    end: int = 0                                  # cycle busy fell (or done, for a refusal)
    late: list = field(default_factory=list)      # anything seen after the end


def pack(fields: dict, widths: dict) -> int:
    value, pos = 0, 0
    for name, width in widths.items():
        value |= fields[name] << pos
        pos += width
    return value


REGION_FIELDS = {"base": 64, "length": 32}
REQUEST_FIELDS = {"offset": 32, "bytes": 32}


async def fetch(port, *, region: dict, request: dict, data_width: int, memory=None, ready=None, abort_at=None,
                timeout: int = 0, max_cycles: int = 100_000, tail: int = 4, restarts=()) -> Record:
    """One request: ``start`` in cycle 0 (and in the cycles ``restarts``, which must be ignored
    while busy), ``soft_reset`` pulsed in cycle ``abort_at``, ``ready()``
    drawn each cycle for ``o_stream.ready``; runs until ``done`` (or, after an abort, ``busy``
    low), then ``tail`` more cycles that must be quiet."""
    rec = Record()
    finished_at = None
    constant = {"region": pack(region, REGION_FIELDS), "request": pack(request, REQUEST_FIELDS),
                "timeout": timeout}
    for cycle in range(max_cycles):
        inputs = dict(constant, start=int(cycle == 0 or cycle in restarts), soft_reset=int(cycle == abort_at),
                      o_stream__ready=int(ready() if ready else 1))
        if memory is not None:
            inputs.update(memory.outputs(cycle))
        s = await port.cycle(inputs)
        if memory is not None:
            memory.observe(cycle, s)
        events = []
        if s["m_axi_arvalid"] and s["m_axi_arready"]:
            events.append(("ar", s["m_axi_araddr"], s["m_axi_arlen"]))
            rec.ars.append((cycle, s["m_axi_araddr"], s["m_axi_arlen"]))
        if s["m_axi_rvalid"] and s["m_axi_rready"]:
            rec.beats.append((cycle, s["m_axi_rresp"], s["m_axi_rlast"]))
        if s["o_stream__valid"] and inputs["o_stream__ready"]:
            word = s["o_stream__payload"]
            last = word >> data_width
            events.append(("word", last))
            rec.words.append((cycle, word & ((1 << data_width) - 1), last))
        if s["done"]:
            events.append(("done",))
            if not rec.done:
                rec.error = s["error"]
            rec.done.append(cycle)
        rec.busy_cycles += s["busy"]
        if finished_at is None:
            if cycle > 0 and not s["busy"] and (rec.done or (abort_at is not None and cycle > abort_at)):
                finished_at = rec.end = cycle
        elif events:
            rec.late.append((cycle, *events))
        if finished_at is not None and cycle >= finished_at + tail:
            return rec
    raise AssertionError(f"the reader did not finish within {max_cycles} cycles")


# -- cocotb ----------------------------------------------------------------------------------

class CocotbPort:
    def __init__(self, dut, drive_memory: bool):
        self.dut = dut
        self.drive_memory = drive_memory

    async def cycle(self, inputs: dict) -> dict:
        from cocotb.triggers import ReadOnly, RisingEdge

        for name, value in inputs.items():
            if self.drive_memory or name not in MEMORY_INPUTS:
                getattr(self.dut, name).value = value
        await ReadOnly()
        out = {name: int(getattr(self.dut, name).value) for name in OUTPUTS}
        await RisingEdge(self.dut.clk)
        return out


def _pauses(rng: random.Random, probability: float):
    while True:
        yield int(rng.random() < probability)


async def _reset(dut, drive_memory: bool):
    import cocotb
    from cocotb.clock import Clock
    from cocotb.triggers import RisingEdge

    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.rst.value = 1
    for name in ("start", "soft_reset", "o_stream__ready", "timeout", "region", "request"):
        getattr(dut, name).value = 0
    if drive_memory:
        for name in MEMORY_INPUTS:
            getattr(dut, name).value = 0
    for _ in range(3):
        await RisingEdge(dut.clk)
    dut.rst.value = 0
    await RisingEdge(dut.clk)


def _load_job():
    with open(os.environ[JOB_ENV]) as handle:
        job = json.load(handle)
    with open(job["image_path"], "rb") as handle:
        image = handle.read()
    return job, image


def image_reader(image: bytes, origin: int):
    def read(address: int, nbytes: int) -> bytes:
        lo = address - origin
        assert 0 <= lo and lo + nbytes <= len(image), f"read outside the image at {address:#x}"
        return image[lo:lo + nbytes]
    return read


async def _run_cases(dut, memory_kind: str):
    job, image = _load_job()
    assert len(dut.m_axi_rdata) == job["data_width"], "job built for another data width"
    rng = random.Random(job["seed"])
    drive = memory_kind == "scripted"
    ram = None
    if not drive:
        from cocotbext.axi import AxiRamRead, AxiReadBus

        # SparseMemory's size must fit an index: the model wraps addresses modulo its size, the
        # reader's own 64-bit addresses are checked on the AR channel
        ram = AxiRamRead(AxiReadBus.from_prefix(dut, "m_axi"), dut.clk, dut.rst, size=RAM_SIZE)
        ram.write(job["image_origin"] % RAM_SIZE, image)
    await _reset(dut, drive)
    port = CocotbPort(dut, drive)
    results = []
    for case in job["cases"]:
        if (case["memory"] == "axiram") != (not drive):
            continue
        memory = None
        if drive:
            memory = ScriptedMemory(image_reader(image, job["image_origin"]), beat_bytes=job["data_width"] // 8,
                                    **case["scripted"])
        else:
            ram.ar_channel.set_pause_generator(_pauses(rng, case["ar_pause"]))
            ram.r_channel.set_pause_generator(_pauses(rng, case["r_pause"]))
        stall = case.get("stall", 0.0)
        rec = await fetch(port, region=case["region"], request=case["request"], data_width=job["data_width"],
                          memory=memory, ready=lambda: rng.random() >= stall, abort_at=case.get("abort_at"),
                          timeout=case.get("timeout", 0), max_cycles=case.get("max_cycles", 100_000))
        results.append({"name": case["name"], **asdict(rec)})
    with open(job["result_path"] + f".{memory_kind}", "w") as handle:
        json.dump(results, handle)


try:
    import cocotb
except ImportError:     # imported by pytest for ScriptedMemory and fetch without cocotb installed
    cocotb = None

if cocotb is not None:
    @cocotb.test()
    async def reader_axiram(dut):
        await _run_cases(dut, "axiram")

    @cocotb.test()
    async def reader_scripted(dut):
        await _run_cases(dut, "scripted")
