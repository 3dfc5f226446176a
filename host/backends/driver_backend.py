"""A backend that runs through ``LstmCoreDriver``: the board, or the simulated board.

NumPy only.
"""

from __future__ import annotations

import numpy as np

from lstmfpga.host.backends.base import Backend, BackendOutput
from lstmfpga.host.driver.core import LstmCoreDriver


class DriverBackend(Backend):
    """Prepare the core for the artifact (weights loaded if its hash differs), then run batches.

    Parameters
    ----------
    driver
        An ``LstmCoreDriver`` whose registers and DMA reach a core (real or simulated).
    double_buffer
        Pack the next sequence while the core computes the current one.
    """

    name = "driver"

    def __init__(self, *, artifact, driver: LstmCoreDriver, mode: str | None = None,
                 double_buffer: bool = True) -> None:
        weights_loaded = driver.prepare(artifact, mode=mode)
        super().__init__(artifact=artifact, mode=driver.config.mode)
        self.driver = driver
        self.double_buffer = bool(double_buffer)
        self.weights_loaded = weights_loaded
        self.cycles: list[int] = []

    @property
    def config(self):
        return self.driver.config

    def run(self, data: np.ndarray) -> BackendOutput:
        data = self.check_input(data)
        results = self.driver.run(list(data), double_buffer=self.double_buffer)
        self.cycles.extend(r.cycles for r in results)
        logits = None if results[0].logits is None else np.stack([r.logits for r in results])
        return BackendOutput(h_codes=np.stack([r.h_codes for r in results]), logits=logits,
                             seconds=np.array([r.seconds for r in results], dtype=np.float64))

    def close(self) -> None:
        self.driver.close()
