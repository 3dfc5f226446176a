"""The ``golden`` backend: the NumPy integer model, the reference every other backend equals."""

from __future__ import annotations

import time

import numpy as np

from lstmfpga.foundation.integer_lstm import classifier_logits, run_layer
from lstmfpga.host.backends.base import Backend, BackendOutput


class GoldenBackend(Backend):
    """Runs ``lstmfpga.foundation.integer_lstm`` on the whole batch at once."""

    name = "golden"

    def run(self, data: np.ndarray) -> BackendOutput:
        data = self.check_input(data)
        start = time.perf_counter()
        layers = self.artifact.layers
        if self.mode == "split":
            h, _ = run_layer(layers[0], pre=data)
        else:
            h, _ = run_layer(layers[0], data)
        for layer in layers[1:]:
            h, _ = run_layer(layer, h)
        logits = classifier_logits(self.artifact, h[:, -1])
        elapsed = time.perf_counter() - start
        batch = data.shape[0]
        return BackendOutput(h_codes=h, logits=logits, seconds=np.full(batch, elapsed / max(batch, 1)))
