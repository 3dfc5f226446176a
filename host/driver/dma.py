"""DMA channels and buffers behind one small interface, for PYNQ and for the simulated board.

A channel has ``transfer(buffer, nbytes)``, ``wait(timeout_s)`` (raises :class:`DmaTimeout` or
:class:`DmaError`) and ``reset()``. :class:`PynqDmaChannel` adapts a ``pynq.lib.dma`` channel:
PYNQ's own ``wait()`` has no timeout, so this one polls the status register with a deadline and
names the error bits.

One packet is one simple-mode transfer: the AXI DMA raises TLAST at the end of every MM2S
transfer and flags an internal error when an S2MM packet outruns its buffer, so a packet cannot be
split across transfers. A packet longer than the buffer-length register allows is refused up front
(``check_transfer``) with the width the block design needs.

NumPy only.
"""

from __future__ import annotations

import enum
import time
from typing import Protocol

from lstmfpga.foundation.validation import is_integer
from lstmfpga.host.driver.errors import DmaError, DmaLimitError, DmaTimeout

#: PYNQ's assumption when the .hwh does not give ``c_sg_length_width``.
PYNQ_DEFAULT_LENGTH_WIDTH = 14
#: Offset of DMASR (status) from a channel's control register.
DMASR_OFFSET = 0x4


class DmaStatus(enum.IntFlag):
    """AXI DMA status register (DMASR) bits, PG021."""

    HALTED = 1 << 0
    IDLE = 1 << 1
    INTERNAL_ERROR = 1 << 4
    SLAVE_ERROR = 1 << 5
    DECODE_ERROR = 1 << 6
    IOC_IRQ = 1 << 12
    ERR_IRQ = 1 << 14


ERROR_BITS = DmaStatus.INTERNAL_ERROR | DmaStatus.SLAVE_ERROR | DmaStatus.DECODE_ERROR


def max_transfer_bytes(length_width: int) -> int:
    """Largest transfer the buffer-length register (``length_width`` bits) describes."""
    if not is_integer(length_width) or not 8 <= length_width <= 26:
        raise ValueError(f"DMA length width must be an integer in [8, 26], not {length_width!r}")
    return (1 << length_width) - 1


def required_length_width(nbytes: int) -> int:
    return max(int(nbytes).bit_length(), 8)


def check_transfer(nbytes: int, limit: int, what: str) -> None:
    if nbytes > limit:
        raise DmaLimitError(
            f"{what} is {nbytes} bytes, the DMA moves at most {limit} bytes per transfer; rebuild the "
            f"block design with c_sg_length_width >= {required_length_width(nbytes)} (a packet cannot be "
            "split: every MM2S transfer ends with TLAST)")


class DmaChannel(Protocol):
    def transfer(self, buffer, nbytes: int) -> None: ...

    def wait(self, timeout_s: float) -> None: ...

    def reset(self) -> None: ...


class PynqDmaChannel:
    """Adapter for ``pynq.lib.dma.DMA.sendchannel`` / ``.recvchannel``.

    Parameters
    ----------
    channel
        The PYNQ channel object.
    name
        ``"send"`` or ``"recv"``, for messages.
    poll_s
        Sleep between status polls.
    """

    def __init__(self, *, channel, name: str, poll_s: float = 20e-6) -> None:
        self._channel = channel
        self.name = name
        self.poll_s = poll_s

    def _status(self) -> int:
        mmio = getattr(self._channel, "_mmio", None)
        offset = getattr(self._channel, "_offset", None)
        if mmio is None or offset is None:
            idle = DmaStatus.IDLE if self._channel.idle else 0
            return int(idle | (DmaStatus.INTERNAL_ERROR if self._channel.error else 0))
        return int(mmio.read(offset + DMASR_OFFSET))

    def transfer(self, buffer, nbytes: int) -> None:
        self._channel.transfer(buffer, nbytes=nbytes)

    def wait(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            status = self._status()
            if status & ERROR_BITS:
                names = ", ".join(f.name for f in DmaStatus if f & ERROR_BITS and status & f)
                raise DmaError(f"AXI DMA {self.name} channel reported {names} (DMASR={status:#010x})")
            if status & DmaStatus.IDLE:
                return
            if time.monotonic() > deadline:
                raise DmaTimeout(f"AXI DMA {self.name} transfer did not finish within {timeout_s:g} s")
            time.sleep(self.poll_s)

    def reset(self) -> None:
        self._channel.stop()
        self._channel.start()
