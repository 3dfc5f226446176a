"""A stand-in ``pynq`` package whose overlay is the simulated board, so that the ``pynq`` backend
(``Overlay``, ``DefaultIP`` binding by VLNV, ``allocate``, the DMA channel API with its status
register) runs unchanged against the RTL.

Mirrors pynq 3's API boundary: ``DefaultIP`` with the registering metaclass (``bindto`` →
``_ip_drivers``), ``Overlay.ip_dict`` entries with ``type`` (VLNV) and ``parameters``, attribute
access instantiating the bound driver, ``DMA.sendchannel`` / ``.recvchannel`` with ``transfer``,
``stop``, ``start`` and a DMASR register behind ``_mmio`` / ``_offset``.
"""

from __future__ import annotations

import sys
import types

from cocotb.task import resume
from cocotb.triggers import Timer

from lstmfpga.host.driver.dma import DMASR_OFFSET, DmaStatus
from lstmfpga.host.overlay.ip_identity import VLNV
from lstmfpga.host.simboard.board import allocate as sim_allocate

CORE_NAME = "lstm_core_0"
DMA_NAME = "axi_dma_0"
DMA_VLNV = "xilinx.com:ip:axi_dma:7.1"
MM2S_OFFSET, S2MM_OFFSET = 0x00, 0x30
POLL_NS = 160


class _ChannelRegisters:
    """DMASR of one simulated channel; each read lets the simulation run a little."""

    def __init__(self, channel, offset: int) -> None:
        self._channel = channel
        self._offset = offset
        self.read = resume(self._read)

    async def _read(self, offset: int) -> int:
        if offset != self._offset + DMASR_OFFSET:
            raise ValueError(f"the simulated DMA models DMASR only, not offset {offset:#x}")
        await Timer(POLL_NS, "ns")
        task = self._channel._task
        if task is not None and not task.done():
            return 0
        status = DmaStatus.IDLE
        if self._channel._error:
            status |= DmaStatus.INTERNAL_ERROR | DmaStatus.HALTED
        return int(status)


class _PynqChannel:
    def __init__(self, channel, offset: int) -> None:
        self._sim = channel
        self._offset = offset
        self._mmio = _ChannelRegisters(channel, offset)

    def transfer(self, array, start=0, nbytes=0):
        self._sim.transfer(array, nbytes or array.nbytes)

    def stop(self):
        self._sim.reset()

    def start(self):
        pass


def install(*, mmio, send, recv, dma_length_width: int = 23) -> types.ModuleType:
    """Put a ``pynq`` module into ``sys.modules`` whose ``Overlay`` is the simulated board."""
    pynq = types.ModuleType("pynq")
    pynq._ip_drivers = {}

    class RegisterIP(type):
        def __init__(cls, name, bases, attrs):
            if "bindto" in attrs:
                for vlnv in cls.bindto:
                    pynq._ip_drivers[vlnv] = cls
            super().__init__(name, bases, attrs)

    class DefaultIP(metaclass=RegisterIP):
        def __init__(self, description):
            self.description = description
            self.mmio = mmio  # on a board: MMIO(description["phys_addr"], description["addr_range"])

        def read(self, offset=0):
            return self.mmio.read(offset)

        def write(self, offset, value):
            self.mmio.write(offset, value)

    class DMA:
        def __init__(self, description):
            self.description = description
            self.sendchannel = _PynqChannel(send, MM2S_OFFSET)
            self.recvchannel = _PynqChannel(recv, S2MM_OFFSET)

    class Overlay:
        def __init__(self, bitfile, download=True):
            self.bitfile_name = str(bitfile)
            self.ip_dict = {
                CORE_NAME: {"type": VLNV, "phys_addr": 0xA0010000, "addr_range": 0x1000, "parameters": {}},
                DMA_NAME: {"type": DMA_VLNV, "phys_addr": 0xA0000000, "addr_range": 0x10000,
                           "parameters": {"c_sg_length_width": str(dma_length_width), "c_include_sg": "0"}},
            }
            self._ips = {}

        def __getattr__(self, name):
            if name.startswith("_") or name not in self.ip_dict:
                raise AttributeError(name)
            if name not in self._ips:
                description = self.ip_dict[name]
                driver = pynq._ip_drivers.get(description["type"], DMA if name == DMA_NAME else DefaultIP)
                self._ips[name] = driver(description)
            return self._ips[name]

    def allocate(shape, dtype="u4", **kwargs):
        return sim_allocate(shape, dtype)

    pynq.RegisterIP, pynq.DefaultIP, pynq.Overlay, pynq.allocate = RegisterIP, DefaultIP, Overlay, allocate
    pynq.lib = types.SimpleNamespace(dma=types.SimpleNamespace(DMA=DMA))
    sys.modules["pynq"] = pynq
    return pynq
