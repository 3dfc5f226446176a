"""cocotb test module of the simulated board: reset, clock, then the unchanged driver in a
bridge thread. Reads a job written by ``lstmfpga.host.backends.rtl`` and writes the outputs."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
from cocotb.clock import Clock
from cocotb.task import bridge
from cocotb.triggers import ClockCycles

import cocotb
from lstmfpga.host.backends.driver_backend import DriverBackend
from lstmfpga.host.driver.core import LstmCoreDriver
from lstmfpga.host.driver.errors import DriverError
from lstmfpga.host.simboard.board import SimClock, SimDmaChannel, SimMmio, allocate
from lstmfpga.foundation.artifact import LstmArtifact
from lstmfpga.foundation.process_lifetime import die_with_parent
from lstmfpga.sim.verilator import JOB_ENV, read_job

CLOCK_NS = 10


@cocotb.test()
async def board_job(dut):
    die_with_parent()  # the simulator must not outlive the command that launched it
    job, arrays = read_job(os.environ[JOB_ENV])
    Clock(dut.aclk, CLOCK_NS, unit="ns").start()
    dut.s_axis_tvalid.value = 0
    dut.aresetn.value = 0
    await ClockCycles(dut.aclk, 4)
    dut.aresetn.value = 1
    await ClockCycles(dut.aclk, 2)

    mmio = SimMmio(dut)
    send = SimDmaChannel(dut, direction="send", pause=job["input_pause"], seed=job["seed"])
    recv = SimDmaChannel(dut, direction="recv", pause=job["output_pause"], stalled=job["stall_output"],
                         seed=job["seed"] + 1)
    clock = SimClock()
    artifact = LstmArtifact.load(job["artifact"])

    def driver_backend():
        """The driver on the simulated board: simulated time for its deadlines and pauses."""
        driver = LstmCoreDriver(mmio=mmio, sendchannel=send, recvchannel=recv, allocate=allocate,
                                max_transfer_bytes=job["max_transfer_bytes"], timeout_s=job["timeout_s"],
                                watchdog_cycles=job["watchdog_cycles"], poll_s=job["poll_cycles"] * CLOCK_NS * 1e-9,
                                clock=clock.now, sleep=clock.sleep)
        return DriverBackend(artifact=artifact, driver=driver, mode=job["mode"], double_buffer=job["double_buffer"])

    def pynq_backend():
        """The pynq backend itself, unchanged, over a stand-in pynq whose overlay is this simulation."""
        from lstmfpga.host.simboard import fake_pynq

        fake_pynq.install(mmio=mmio, send=send, recv=recv)
        from lstmfpga.host.backends.pynq_board import PynqBackend

        return PynqBackend(artifact=artifact, overlay="simulated.bit", mode=job["mode"],
                           double_buffer=job["double_buffer"], timeout_s=job["wall_timeout_s"])

    def host():
        with (pynq_backend if job["via"] == "pynq" else driver_backend)() as backend:
            wall = time.perf_counter()
            out = backend.run(arrays["inputs"])
            return out.h_codes, out.logits, backend.cycles, list(out.seconds), time.perf_counter() - wall

    out = {}
    summary = {"ok": True}
    try:
        h, logits, cycles, seconds, wall = await bridge(host)()
    except DriverError as exc:
        summary = {"ok": False, "error": type(exc).__name__, "message": str(exc)}
    else:
        out["h_codes"] = h
        if logits is not None:
            out["logits"] = logits
        out["cycles"] = np.array(cycles, dtype=np.int64)
        out["seconds"] = np.array(seconds, dtype=np.float64)  # simulated (driver) or wall (via pynq)
        summary["wall_seconds"] = wall
    np.savez(Path(job["result_path"]).with_suffix(".npz"), **out)
    with open(job["result_path"], "w") as handle:
        json.dump(summary, handle)
