"""DMA buffers of the simulated boards: memory is coherent, flush/invalidate only count. NumPy only."""

from __future__ import annotations

import numpy as np


class SimBuffer(np.ndarray):
    """A DMA buffer: on the simulated board memory is coherent, flush/invalidate only count."""

    def flush(self):
        self.flushes = getattr(self, "flushes", 0) + 1

    def invalidate(self):
        self.invalidates = getattr(self, "invalidates", 0) + 1


def allocate(shape, dtype=np.uint32):
    return np.zeros(shape, dtype=dtype).view(SimBuffer)
