"""A relative build folder (``make demo`` passes ``demo_out/verilator``) names the same place for
every tool: Verilator and make run in folders of their own, so the cache hands out absolute paths."""

from __future__ import annotations

import numpy as np

from lstmfpga.foundation.hw.config import AcceleratorConfig
from lstmfpga.sim.verilator import _cached_verilog


def test_a_relative_cache_folder_gives_absolute_build_paths(tmp_path, monkeypatch):
    rng = np.random.default_rng()
    hidden = int(rng.integers(1, 9))
    config = AcceleratorConfig(input_size=int(rng.integers(1, 40)), hidden_size=hidden, num_layers=1,
                               weight_bits=int(rng.integers(2, 9)), num_classes=2, lanes=4 * int(rng.integers(1, hidden + 1)))
    monkeypatch.chdir(tmp_path)
    build_dir, text, key = _cached_verilog(config, "out/verilator")
    assert build_dir.is_absolute()
    assert build_dir.parent == tmp_path / "out" / "verilator"
    assert key in build_dir.name and "module" in text
    monkeypatch.chdir(tmp_path / "out")  # another working folder: the same cache, found again
    again, _, _ = _cached_verilog(config, str(tmp_path / "out" / "verilator"))
    assert again == build_dir
