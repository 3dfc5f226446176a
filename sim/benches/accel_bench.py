"""cocotb bench of the whole accelerator (``lstm_accel``) driven over its AXI ports.

Reads a job (see :mod:`lstmfpga.sim.verilator`): weight images, input packets and the expected
output packets of the integer golden, plus fault scenarios.  Normal runs go through cocotbext-axi
AxiStreamSource/Sink with random pause generators and AxiLiteMaster; fault runs drive the input
stream by hand to place TLAST wrongly.  Writes per-run results to ``result_path``.

Every run has a deadline derived from the cycle model (:func:`deadline_cycles`); a run that
outlives it ends the job with ``deadline`` in the results naming STATUS, ERROR and the beats
accepted and sent, instead of hanging the simulation.
"""

from __future__ import annotations

import json
import os
import random

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge, with_timeout
from cocotbext.axi import (AxiLiteBus, AxiLiteMaster, AxiStreamBus, AxiStreamFrame, AxiStreamSink,
                           AxiStreamSource)

from lstmfpga.foundation.hw import stream_format
from lstmfpga.foundation.hw.config import AcceleratorConfig
from lstmfpga.foundation.hw.register_map import DEFAULT_TIMEOUT, HASH_WORDS, Ctrl, Reg, Status, hash_offset
from lstmfpga.sim.verilator import JOB_ENV, read_job

CLOCK_NS = 10
#: A run may take this many times its stall-free cycles (stretched by the streams' pauses) plus
#: :data:`DEADLINE_SLACK` before the bench ends it: a hung core is reported, never waited on.
DEADLINE_MARGIN = 4
DEADLINE_SLACK = 20_000


class DeadlineExceeded(Exception):
    """A run outlived its deadline; the message names the core's state."""


def deadline_cycles(config, job, timesteps: int) -> int:
    """Cycles a run of ``timesteps`` steps (or a weight load) may take, from the cycle model."""
    from lstmfpga.foundation.hw.weight_image import image_words
    from lstmfpga.hw.cycle_model import estimate

    pause = max(job.get("input_pause", 0.0), job.get("output_pause", 0.0))
    work = max(image_words(config), estimate(config, max(1, min(timesteps, config.max_timesteps))).run_cycles)
    return int(DEADLINE_MARGIN * work / (1.0 - pause)) + DEADLINE_SLACK


def _pauses(rng: random.Random, probability: float):
    while True:
        yield rng.random() < probability


class Harness:
    def __init__(self, dut, job):
        self.dut = dut
        self.job = job
        self.rng = random.Random(job.get("seed", 0))
        self.source = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_axis"), dut.aclk, dut.aresetn,
                                      reset_active_level=False)
        self.sink = AxiStreamSink(AxiStreamBus.from_prefix(dut, "m_axis"), dut.aclk, dut.aresetn,
                                  reset_active_level=False)
        self.axil = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axi"), dut.aclk, dut.aresetn,
                                  reset_active_level=False)
        for logger in (self.source.log, self.sink.log, self.axil.write_if.log, self.axil.read_if.log):
            logger.setLevel("WARNING")
        self.beats_in = self.beats_out = self.cycle = 0
        #: the cycles of the input beats' handshakes since :meth:`mark_input` (the cycle model's arrivals)
        self.input_cycles: list[int] = []
        #: 32-bit lanes per beat, read from the DUT's TDATA (the job's configuration must agree)
        self.lanes_per_beat = len(dut.s_axis_tdata) // 32
        expected = stream_format.lanes_per_beat(AcceleratorConfig.from_dict(job["config"]))
        if self.lanes_per_beat != expected:
            raise ValueError(f"the DUT has {32 * self.lanes_per_beat}-bit TDATA, the job {32 * expected}-bit")
        cocotb.start_soon(self._count_beats())

    async def _count_beats(self):
        dut = self.dut
        while True:
            await RisingEdge(dut.aclk)
            self.cycle += 1
            if dut.s_axis_tvalid.value and dut.s_axis_tready.value:
                self.beats_in += 1
                self.input_cycles.append(self.cycle)
            self.beats_out += bool(dut.m_axis_tvalid.value and dut.m_axis_tready.value)

    async def state(self) -> str:
        """STATUS, ERROR and the stream beats of the current run, for a deadline message."""
        status, error = await self.read(Reg.STATUS), await self.read(Reg.ERROR)
        flags = "|".join(flag.name for flag in Status if status & flag) or "none"
        return (f"STATUS=0x{status:x} ({flags}), ERROR=0x{error:x}, "
                f"{self.beats_in} input beats accepted, {self.beats_out} output beats sent")

    async def within(self, awaitable, cycles: int, what: str):
        """``awaitable``, or :class:`DeadlineExceeded` after ``cycles`` clock cycles."""
        try:
            return await with_timeout(awaitable, cycles * CLOCK_NS, "ns")
        except cocotb.triggers.SimTimeoutError:
            raise DeadlineExceeded(f"{what} exceeded its deadline of {cycles} cycles: {await self.state()}") from None

    async def reset(self):
        self.dut.aresetn.value = 0
        await ClockCycles(self.dut.aclk, 4)
        self.dut.aresetn.value = 1
        await ClockCycles(self.dut.aclk, 2)

    async def write(self, reg, value):
        await self.axil.write_dword(int(reg), int(value) & 0xFFFFFFFF)

    async def read(self, reg):
        return int(await self.axil.read_dword(int(reg)))

    async def wait_idle(self):
        """STATUS once BUSY clears (the run's deadline bounds the wait)."""
        while True:
            status = await self.read(Reg.STATUS)
            if not status & Status.BUSY:
                return status
            await ClockCycles(self.dut.aclk, 64)

    async def send(self, lanes):
        data = stream_format.to_bytes(lanes)
        self.source.set_pause_generator(_pauses(self.rng, self.job.get("input_pause", 0.0)))
        await self.source.send(AxiStreamFrame(data))
        await self.source.wait()
        self.source.clear_pause_generator()

    async def receive(self, stall=0):
        if not self.dut.m_axis_tvalid.value:
            await RisingEdge(self.dut.m_axis_tvalid)
        if stall:
            self.sink.pause = True
            await ClockCycles(self.dut.aclk, stall)
            self.sink.pause = False
        self.sink.set_pause_generator(_pauses(self.rng, self.job.get("output_pause", 0.0)))
        frame = await self.sink.recv()
        self.sink.clear_pause_generator()
        self.sink.pause = False
        return stream_format.from_bytes(bytes(frame.tdata))

    def beats(self, lanes) -> list[int]:
        """A packet's 32-bit lanes as TDATA values, ``lanes_per_beat`` lanes each, lane 0 in the
        low bits (a partial last beat is zero-padded)."""
        lanes = np.asarray(lanes, dtype=np.uint32).tolist()
        per = self.lanes_per_beat
        return [sum(int(v) << (32 * i) for i, v in enumerate(lanes[b:b + per])) for b in range(0, len(lanes), per)]

    async def drive_raw(self, beats, last_index, *, stop_after=None):
        """Drive ``beats`` (TDATA values, :meth:`beats`) by hand: TLAST only on beat
        ``last_index`` (None = never)."""
        dut = self.dut
        for index, word in enumerate(beats):
            if stop_after is not None and index >= stop_after:
                break
            dut.s_axis_tdata.value = word
            dut.s_axis_tlast.value = int(index == last_index)
            dut.s_axis_tvalid.value = 1
            while True:
                await RisingEdge(dut.aclk)
                if dut.s_axis_tready.value:
                    break
        dut.s_axis_tvalid.value = 0
        dut.s_axis_tlast.value = 0

    async def start(self, timesteps):
        await self.write(Reg.TIMESTEPS, timesteps)
        await self.write(Reg.CTRL, Ctrl.START)

    async def load(self, image):
        await self.write(Reg.CTRL, Ctrl.LOAD_WEIGHTS)
        await self.send(image)
        status = await self.wait_idle()
        error = await self.read(Reg.ERROR)
        return status, error


async def _normal(h: Harness, run, arrays):
    await h.start(run["T"])
    h.input_cycles = []
    await h.send(arrays[run["input"]])
    arrivals = h.input_cycles
    out = await h.receive(stall=run.get("output_stall", 0))
    status = await h.wait_idle()
    return out, status, arrivals


async def _fault(h: Harness, run, arrays):
    """Returns (status, error) after the fault; no output packet is expected."""
    beats = h.beats(arrays[run["input"]])
    n = len(beats)
    kind = run["kind"]
    await h.start(run["T"])
    if kind == "last_early":
        await h.drive_raw(beats[: n - 2], n - 3)
    elif kind == "last_late":
        extra = beats + beats[:3]
        await h.drive_raw(extra, len(extra) - 1)
    elif kind == "last_missing":
        await h.drive_raw(beats, None)
        await ClockCycles(h.dut.aclk, run["timeout"] + 200)
    elif kind == "reset_mid_input":
        await h.drive_raw(beats, n - 1, stop_after=max(1, n // 2))
        await h.write(Reg.CTRL, Ctrl.SOFT_RESET)
    elif kind == "reset_mid_compute":
        await h.drive_raw(beats, n - 1)
        await ClockCycles(h.dut.aclk, run["reset_after"])
        await h.write(Reg.CTRL, Ctrl.SOFT_RESET)
    elif kind == "input_stall":
        await h.drive_raw(beats, n - 1, stop_after=n // 2)
        await ClockCycles(h.dut.aclk, run["stall"])
        await h.drive_raw(beats[n // 2:], n - 1 - n // 2)
        out = await h.receive()
        return out, await h.wait_idle(), await h.read(Reg.ERROR)
    else:
        raise ValueError(f"unknown fault kind {kind!r}")
    status = await h.wait_idle()
    return None, status, await h.read(Reg.ERROR)


async def _run(h: Harness, run, arrays, entry, loaded):
    """One run of the job, filling ``entry``; returns the index of the image now loaded."""
    if run.get("image") is not None and run["image"] != loaded:
        status, error = await h.load(arrays[f"image_{run['image']}"])
        entry["load_status"], entry["load_error"] = status, error
        loaded = run["image"] if error == 0 else None
        entry["hash"] = [await h.read(hash_offset(i)) for i in range(HASH_WORDS)]
    if "timeout" in run:
        await h.write(Reg.TIMEOUT, run["timeout"])
    if entry["kind"] == "load_only":
        out, status, error = None, entry["load_status"], entry["load_error"]
    elif entry["kind"] == "normal":
        out, status, entry["arrivals"] = await _normal(h, run, arrays)
        error = await h.read(Reg.ERROR)
    elif entry["kind"] == "output_timeout":
        await h.start(run["T"])
        h.sink.pause = True
        await h.send(arrays[run["input"]])
        await ClockCycles(h.dut.aclk, run["stall"])
        status = await h.wait_idle()
        error = await h.read(Reg.ERROR)
        h.sink.pause = False
        out = None
    else:
        out, status, error = await _fault(h, run, arrays)
    if "timeout" in run:
        await h.write(Reg.TIMEOUT, DEFAULT_TIMEOUT)
    entry.update(status=status, error=error, cycles=await h.read(Reg.CYCLES),
                 run_cycles=await h.read(Reg.RUN_CYCLES))
    expected = arrays.get(run.get("expected", ""), None)
    if expected is not None:
        entry["ok"] = out is not None and out.size == expected.size and bool(np.array_equal(out, expected))
        if not entry["ok"]:
            entry["got"] = None if out is None else out.tolist()
            entry["want"] = expected.tolist()
    else:
        entry["ok"] = out is None
    return loaded


@cocotb.test()
async def accel_job(dut):
    job, arrays = read_job(os.environ[JOB_ENV])
    h = Harness(dut, job)
    Clock(dut.aclk, CLOCK_NS, unit="ns").start()
    dut.s_axis_tvalid.value = 0
    dut.s_axis_tlast.value = 0
    await h.reset()
    results = {"id": await h.read(Reg.ID), "runs": []}
    shape = {name: await h.read(Reg[name]) for name in job.get("shape_registers", [])}
    results["shape"] = shape
    config = AcceleratorConfig.from_dict(job["config"])
    loaded = None
    for run in job["runs"]:
        entry = {"index": len(results["runs"]), "kind": run.get("kind", "normal"), "T": run["T"]}
        what = f"run {entry['index']} ({entry['kind']}, T={run['T']})"
        h.beats_in = h.beats_out = 0
        try:
            loaded = await h.within(_run(h, run, arrays, entry, loaded), deadline_cycles(config, job, run["T"]), what)
        except DeadlineExceeded as exc:
            # the core is stuck: report where, and run nothing more on it
            entry.update(ok=False, deadline=str(exc))
            results["runs"].append(entry)
            results["deadline"] = str(exc)
            break
        results["runs"].append(entry)
        await h.write(Reg.CTRL, Ctrl.CLEAR)
    with open(job["result_path"], "w") as handle:
        json.dump(results, handle)
