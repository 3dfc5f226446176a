"""The PYNQ binding: ``LstmCoreIP`` is a ``pynq.DefaultIP`` bound to the core's VLNV when pynq is
importable, and the same class on a plain base otherwise (for the simulated board and tests).

``Overlay("lstm.bit").lstm_core_0`` then is an ``LstmCoreIP``; ``.driver(dma)`` builds the
``LstmCoreDriver`` that runs sequences through that overlay's AXI DMA.

NumPy only (plus pynq when present).
"""

from __future__ import annotations

import warnings

from lstmfpga.host.driver.core import LstmCoreDriver
from lstmfpga.host.driver.dma import PYNQ_DEFAULT_LENGTH_WIDTH, PynqDmaChannel, max_transfer_bytes
from lstmfpga.host.overlay.ip_identity import VLNV

try:
    from pynq import DefaultIP as _Base
except ImportError:  # no pynq (not a board, or pynq not installed): same logic on a plain base
    _Base = None


def dma_length_width(dma) -> int:
    """``c_sg_length_width`` of a PYNQ DMA from its .hwh parameters (PYNQ's 14 bits if absent)."""
    params = (getattr(dma, "description", None) or {}).get("parameters", {})
    for key in ("c_sg_length_width", "C_SG_LENGTH_WIDTH"):
        if key in params:
            return int(params[key])
    warnings.warn(f"the DMA's .hwh gives no c_sg_length_width; assuming PYNQ's {PYNQ_DEFAULT_LENGTH_WIDTH} bits "
                  f"({max_transfer_bytes(PYNQ_DEFAULT_LENGTH_WIDTH)} bytes per transfer)")
    return PYNQ_DEFAULT_LENGTH_WIDTH


class _LstmCoreLogic:
    """What the IP object adds to PYNQ's register access (``read`` / ``write``)."""

    def driver(self, dma, *, allocate=None, length_width: int | None = None, **kwargs) -> LstmCoreDriver:
        """An ``LstmCoreDriver`` using this IP's registers and ``dma``'s two channels."""
        if allocate is None:
            from pynq import allocate
        width = dma_length_width(dma) if length_width is None else length_width
        return LstmCoreDriver(
            mmio=self,
            sendchannel=PynqDmaChannel(channel=dma.sendchannel, name="send"),
            recvchannel=PynqDmaChannel(channel=dma.recvchannel, name="recv"),
            allocate=allocate,
            max_transfer_bytes=max_transfer_bytes(width),
            **kwargs,
        )


if _Base is not None:

    class LstmCoreIP(_Base, _LstmCoreLogic):
        """PYNQ driver of the lstmfpga core; PYNQ instantiates it for every IP with this VLNV."""

        bindto = [VLNV]

        def __init__(self, description):
            super().__init__(description=description)

else:

    class LstmCoreIP(_LstmCoreLogic):
        """The same driver without pynq: registers through any ``mmio`` with read/write."""

        bindto = [VLNV]

        def __init__(self, description=None, *, mmio=None):
            if mmio is None:
                raise ImportError("pynq is not installed: pass mmio= (an object with read/write)")
            self.description = description or {}
            self.mmio = mmio

        def read(self, offset=0):
            return self.mmio.read(offset)

        def write(self, offset, value):
            self.mmio.write(offset, value)
