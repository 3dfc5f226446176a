"""Batch-1 LSTM latency off the FPGA: torch.nn.LSTM measured on this CPU, and the GPU reference.

The GPU figures were measured on an H100 (fp16 cuDNN LSTM, I=2048, batch 1, T=16) and are
recorded in docs/PERFORMANCE.md; wherever they are shown without a GPU they are a reference, not
a measurement of this machine.
"""

from __future__ import annotations

import statistics
import time

#: µs per sequence on an H100, fp16 cuDNN LSTM, I=2048, L=1, T=16, batch 1: a reference.
GPU_REFERENCE = {
    "fp16 H=512 plain call": 350.0,
    "fp16 H=512 CUDA graph": 92.0,
    "fp16 H=2048 CUDA graph": 211.0,
}
#: The shape every :data:`GPU_REFERENCE` figure was measured at (besides its H).
GPU_REFERENCE_SHAPE = {"input_size": 2048, "num_layers": 1, "timesteps": 16}


def median_us(fn, repeats: int, warmup: int = 3) -> float:
    """Median wall time of ``fn()`` in µs over ``repeats`` calls, after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1e6


def cpu_lstm_us(input_size: int, hidden_size: int, num_layers: int, timesteps: int, repeats: int = 30) -> float:
    """Median µs of one batch-1 sequence through ``torch.nn.LSTM`` (fp32) on this CPU."""
    import torch

    lstm = torch.nn.LSTM(input_size, hidden_size, num_layers=num_layers, batch_first=True).eval()
    x = torch.randn(1, timesteps, input_size)
    with torch.inference_mode():
        return median_us(lambda: lstm(x), repeats)


def gpu_reference_us(hidden_size: int) -> dict[str, float]:
    """The reference figures at ``hidden_size`` (name → µs per sequence); empty if none."""
    return {name: us for name, us in GPU_REFERENCE.items() if f"H={hidden_size} " in name}
