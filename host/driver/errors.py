"""Specific exceptions of the accelerator driver. NumPy-free."""

from __future__ import annotations

from lstmfpga.foundation.errors import ArtifactError, LstmfpgaError


class DriverError(LstmfpgaError):
    """Anything the accelerator or its DMA reported or failed to do."""


class BitstreamMismatch(DriverError, ArtifactError):
    """The loaded bitstream is not an lstmfpga core, has another version, or cannot run this artifact's shape."""


class WeightLoadError(DriverError):
    """The core rejected the weight image (header, shape, length, checksum) or reports another hash."""


class CoreStreamError(DriverError):
    """The core flagged a stream error (TLAST early or late, refused START, ...)."""

    def __init__(self, message: str, *, error_bits: int = 0) -> None:
        super().__init__(message)
        self.error_bits = error_bits


class StreamTimeout(CoreStreamError, TimeoutError):
    """The core's watchdog fired: its input or output stream stalled."""


class DdrReadError(CoreStreamError):
    """Weights in DDR: the core's weight fetch failed (a read outside DDR_BASE/DDR_LENGTH, SLVERR,
    DECERR, or a memory that stopped answering); the run ended without output."""


class DmaError(DriverError):
    """The AXI DMA reported an internal, slave or decode error."""


class DmaTimeout(DriverError, TimeoutError):
    """A DMA transfer or the core did not finish within the driver's timeout."""


class DmaLimitError(DriverError):
    """A packet is longer than the DMA's buffer-length register can describe."""
