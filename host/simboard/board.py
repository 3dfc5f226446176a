"""Board pieces backed by a cocotb simulation: registers, DMA channels, buffers, time.

The driver runs in a ``cocotb.task.bridge`` thread; every blocking call here hands control to the
simulator through ``resume`` and returns when the AXI transaction is done, so simulated time only
advances while the driver waits, exactly as on a board.
"""

from __future__ import annotations

import numpy as np
from cocotb.task import resume
from cocotb.triggers import SimTimeoutError, Timer, with_timeout
from cocotb.utils import get_sim_time
from cocotbext.axi import AxiLiteBus, AxiLiteMaster, AxiStreamBus, AxiStreamFrame, AxiStreamSink, AxiStreamSource

import cocotb
from lstmfpga.host.driver.errors import DmaError, DmaTimeout
from lstmfpga.host.simboard.buffers import SimBuffer, allocate  # noqa: F401 (the board's allocate)


def _pauses(rng: np.random.Generator, probability: float):
    while True:
        yield bool(rng.random() < probability)


class SimMmio:
    """AXI4-Lite register access through cocotbext-axi."""

    def __init__(self, dut) -> None:
        self.master = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axi"), dut.aclk, dut.aresetn,
                                    reset_active_level=False)
        self.master.write_if.log.setLevel("WARNING")
        self.master.read_if.log.setLevel("WARNING")
        self.read = resume(self._read)
        self.write = resume(self._write)

    async def _read(self, offset: int) -> int:
        return int(await self.master.read_dword(int(offset)))

    async def _write(self, offset: int, value: int) -> None:
        await self.master.write_dword(int(offset), int(value) & 0xFFFFFFFF)


class SimDmaChannel:
    """One direction of a simple-mode AXI DMA: a transfer is one AXI-Stream packet.

    Parameters
    ----------
    dut
        The simulated top level.
    direction
        ``"send"`` (MM2S into ``s_axis``) or ``"recv"`` (S2MM from ``m_axis``).
    pause
        Probability of an idle cycle per beat (random backpressure on this side).
    stalled
        Never accept output (``m_axis_tready`` held low): for timeout tests.
    """

    def __init__(self, dut, *, direction: str, pause: float = 0.0, stalled: bool = False, seed: int = 0) -> None:
        self.name = direction
        self._task = None
        self._error = None
        rng = np.random.default_rng(seed)
        if direction == "send":
            self.port = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_axis"), dut.aclk, dut.aresetn,
                                        reset_active_level=False)
        else:
            self.port = AxiStreamSink(AxiStreamBus.from_prefix(dut, "m_axis"), dut.aclk, dut.aresetn,
                                      reset_active_level=False)
            self.port.pause = stalled
        self.port.log.setLevel("WARNING")
        if pause:
            self.port.set_pause_generator(_pauses(rng, pause))
        self.transfer = resume(self._transfer)
        self.wait = resume(self._wait)
        self.reset = resume(self._reset)

    async def _transfer(self, buffer, nbytes: int) -> None:
        if self._task is not None and not self._task.done():
            raise DmaError(f"simulated DMA {self.name} channel is busy")
        self._error = None
        if self.name == "send":
            data = np.asarray(buffer).view(np.uint8)[:nbytes].tobytes()
            self._task = cocotb.start_soon(self._send(data))
        else:
            self._task = cocotb.start_soon(self._recv(buffer, nbytes))

    async def _send(self, data: bytes) -> None:
        await self.port.send(AxiStreamFrame(data))
        await self.port.wait()

    async def _recv(self, buffer, nbytes: int) -> None:
        frame = await self.port.recv()
        data = bytes(frame.tdata)
        if len(data) > nbytes:
            self._error = f"S2MM packet of {len(data)} bytes overran the {nbytes}-byte transfer"
            data = data[:nbytes]
        view = np.asarray(buffer).view(np.uint8)
        view[: len(data)] = np.frombuffer(data, dtype=np.uint8)

    async def _wait(self, timeout_s: float) -> None:
        if self._task is None:
            return
        try:
            await with_timeout(self._task, max(int(timeout_s * 1e9), 1), "ns")
        except SimTimeoutError:
            raise DmaTimeout(f"simulated DMA {self.name} transfer did not finish within {timeout_s:g} s") from None
        if self._error:
            raise DmaError(f"simulated DMA {self.name} channel: INTERNAL_ERROR ({self._error})")

    async def _reset(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
        self._task = None
        self.port.clear()


class SimClock:
    """Simulated seconds, and a pause that lets the simulation run."""

    def __init__(self) -> None:
        self.sleep = resume(self._sleep)

    @staticmethod
    def now() -> float:
        return get_sim_time("ns") * 1e-9

    async def _sleep(self, seconds: float) -> None:
        await Timer(max(int(seconds * 1e9), 1), "ns")
