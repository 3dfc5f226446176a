"""Board pieces backed by the compiled harness (:mod:`lstmfpga.sim.harness`): registers, DMA
channels and simulated time, so that ``LstmCoreDriver`` runs unchanged at compiled speed.

Each blocking call clocks the Verilated core inside C++ until its transaction is done; the driver's
deadlines and pauses are simulated seconds at :data:`CLOCK_NS` per cycle, as on the cocotb board.
A core with weights in DDR reads the board's memory: every buffer the driver allocates lies at a
bus address of the harness's AXI4 read slave (:class:`HarnessMemory`), as ``pynq.allocate``
buffers lie in the board's DDR.
"""

from __future__ import annotations

import math

import numpy as np

from lstmfpga.host.driver.core import LstmCoreDriver
from lstmfpga.host.driver.errors import DmaError, DmaTimeout
from lstmfpga.host.simboard.buffers import allocate
from lstmfpga.sim.harness.library import Harness, StreamOverrun

#: Clock period of the simulated board (100 MHz, as the cocotb board).
CLOCK_NS = 10


def cycles_in(seconds: float) -> int:
    """Whole clock cycles in ``seconds`` of simulated time (at least one)."""
    return max(math.ceil(seconds / (CLOCK_NS * 1e-9)), 1)


class HarnessMmio:
    """AXI4-Lite register access."""

    def __init__(self, harness: Harness) -> None:
        self.read = harness.read
        self.write = harness.write


class HarnessDmaChannel:
    """One direction of a simple-mode AXI DMA: a transfer is one AXI-Stream packet.

    Parameters
    ----------
    harness
        The simulated core.
    direction
        ``"send"`` (MM2S into ``s_axis``) or ``"recv"`` (S2MM from ``m_axis``).
    """

    def __init__(self, harness: Harness, *, direction: str) -> None:
        if direction not in ("send", "recv"):
            raise ValueError(f"direction must be 'send' or 'recv', not {direction!r}")
        self.harness = harness
        self.name = direction
        self._open = False

    def transfer(self, buffer, nbytes: int) -> None:
        if self.name == "send":
            self.harness.send(buffer, nbytes)
        else:
            self.harness.receive(buffer, nbytes)
        self._open = True

    def wait(self, timeout_s: float) -> None:
        if not self._open:
            return
        wait = self.harness.wait_send if self.name == "send" else self.harness.wait_receive
        try:
            done = wait(cycles_in(timeout_s))
        except StreamOverrun as exc:
            self._open = False
            raise DmaError(f"simulated DMA {self.name} channel: INTERNAL_ERROR ({exc})") from None
        if not done:
            raise DmaTimeout(f"simulated DMA {self.name} transfer did not finish within {timeout_s:g} s "
                             f"({self.harness.describe()})")
        self._open = False

    def reset(self) -> None:
        self.harness.stop(send=self.name == "send", receive=self.name == "recv")
        self._open = False


class HarnessMemory:
    """The simulated board's DDR: ``allocate`` gives buffers at increasing bus addresses (4 KiB
    apart at least, from ``ddr.base``), each mapped into the harness's memory, so the core reads a
    buffer in place; ``ddr`` (a :class:`~lstmfpga.sim.harness.simulated_ddr.SimulatedDdr`) times
    the answers."""

    def __init__(self, harness: Harness, ddr) -> None:
        self.harness = harness
        self.next_address = ddr.base
        harness.configure_ddr(latency=ddr.latency, ar_pause=ddr.ar_pause, r_pause=ddr.r_pause)

    def allocate(self, shape, dtype=np.uint32):
        buf = allocate(shape, dtype)
        buf.physical_address = self.next_address
        self.harness.map_ddr(self.next_address, buf)
        self.next_address += max(-(-buf.nbytes // 4096), 1) * 4096
        return buf


class HarnessClock:
    """Simulated seconds, and a pause that lets the clock run."""

    def __init__(self, harness: Harness) -> None:
        self.harness = harness

    def now(self) -> float:
        return self.harness.cycle * CLOCK_NS * 1e-9

    def sleep(self, seconds: float) -> None:
        self.harness.run(cycles_in(seconds))


def harness_driver(harness: Harness, *, timeout_s: float, watchdog_cycles: int, poll_cycles: int,
                   max_transfer_bytes: int, ddr=None) -> LstmCoreDriver:
    """``LstmCoreDriver`` on the harness: simulated time for its deadlines and pauses; on a core with
    weights in DDR, buffers in the harness's memory timed by ``ddr`` (its default when None)."""
    from lstmfpga.sim.harness.simulated_ddr import SimulatedDdr

    clock = HarnessClock(harness)
    memory = allocate if not harness.has_weight_port else HarnessMemory(harness, ddr or SimulatedDdr()).allocate
    return LstmCoreDriver(mmio=HarnessMmio(harness), sendchannel=HarnessDmaChannel(harness, direction="send"),
                          recvchannel=HarnessDmaChannel(harness, direction="recv"), allocate=memory,
                          max_transfer_bytes=max_transfer_bytes, timeout_s=timeout_s,
                          watchdog_cycles=watchdog_cycles, poll_s=poll_cycles * CLOCK_NS * 1e-9,
                          clock=clock.now, sleep=clock.sleep)
