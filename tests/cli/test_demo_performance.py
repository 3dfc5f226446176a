"""The report's performance chart: measured CPU bars, the GPU reference only where it was measured,
numbers written on the bars, and the FPGA-vs-others sentence."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("matplotlib")

from lstmfpga.cli.demo_performance import (CPU, FPGA, REFERENCE, LatencyBar, LatencyPanel,  # noqa: E402
                                           latency_figure, latency_panel, plot_latency, speedups)
from lstmfpga.cli.lstm_latency import GPU_REFERENCE  # noqa: E402
from lstmfpga.hw.plan import shape_config  # noqa: E402


def test_reference_shape_gets_the_gpu_reference_and_a_measured_cpu(tmp_path):
    panel = latency_panel("deployment", shape_config(input_size=2048, hidden_size=512, num_layers=1, weight_bits=4),
                          (), timesteps=16)
    kinds = [b.kind for b in panel.bars]
    assert kinds == [CPU, REFERENCE, REFERENCE]
    assert [b.us for b in panel.bars[1:]] == [GPU_REFERENCE["fp16 H=512 plain call"],
                                               GPU_REFERENCE["fp16 H=512 CUDA graph"]]
    assert all("not measured here" in b.note for b in panel.bars[1:])
    assert panel.bars[0].us > 0 and "measured" in panel.bars[0].note


@pytest.mark.parametrize("seed", range(3))
def test_other_shapes_get_no_gpu_reference(seed):
    rng = np.random.default_rng(seed)
    shape = {"input_size": int(rng.integers(3, 300)), "hidden_size": int(rng.integers(1, 40)),
             "num_layers": int(rng.integers(1, 3)), "weight_bits": 4}
    panel = latency_panel("other", shape_config(**shape), (), timesteps=int(rng.integers(1, 9)))
    assert [b.kind for b in panel.bars] == [CPU]


def test_chart_writes_every_number_and_the_sentence_compares_with_the_fastest_plan(tmp_path):
    bars = (LatencyBar("FPGA A", 400.0, FPGA, ""), LatencyBar("FPGA B", 100.0, FPGA, ""),
            LatencyBar("CPU", 2500.0, CPU, ""), LatencyBar("GPU graph", 50.0, REFERENCE, ""))
    panels = [LatencyPanel("shape", bars), LatencyPanel("other", bars[2:3])]
    path = plot_latency(panels, tmp_path / "chart.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from matplotlib.image import imread

    assert imread(path).ndim == 3
    figure = latency_figure(panels)
    texts = [[t.get_text() for t in ax.texts] for ax in figure.axes]
    assert texts == [["400.0 µs", "100.0 µs", "2,500.0 µs", "50.0 µs"], ["2,500.0 µs"]]
    legend = [t.get_text() for t in figure.legends[0].get_texts()]
    assert legend == [FPGA, CPU, REFERENCE]
    assert speedups(panels[0]) == ("FPGA B: 25.0× faster than this CPU; 2.0× slower than GPU graph (reference)")
    assert speedups(panels[1]) == "no board holds this model"
