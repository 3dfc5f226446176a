"""Fixtures shared by every stage's tests."""

from __future__ import annotations

import os

import numpy as np
import pytest

from lstmfpga.sim.verilator import HARNESS_OPT_ENV

# The suite builds about a hundred small cores and runs each briefly: -O1 compiles a third faster
# than the harness's -O3 (docs/PERFORMANCE.md, "Test suite"); a caller's own setting wins.
os.environ.setdefault(HARNESS_OPT_ENV, "-O1")


def make_qat_artifact(out_dir, *, input_size=37, hidden_size=19, num_layers=2, weight_bits=4,
                      act_bits=8, seed=0):
    """A small head trained by the real QAT path and exported by ``lstmfpga export``'s code.

    Trained on a task whose answer is in the frame order (does feature 0 rise over time?), so
    its weights are a trained model's, not random ones.
    """
    import torch

    from lstmfpga.quant.cli import export_checkpoint
    from lstmfpga.quant.head import QuantHeadConfig, QuantLstmHead
    from lstmfpga.quant.qat import QatConfig, qat_train, save_qat_checkpoint

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    head = QuantLstmHead(QuantHeadConfig(input_size=input_size, hidden_size=hidden_size,
                                         num_layers=num_layers, weight_bits=weight_bits,
                                         act_bits=act_bits))
    x = rng.normal(size=(48, 8, input_size)).astype(np.float32)
    y = (x[:, 4:, 0].mean(1) > x[:, :4, 0].mean(1)).astype(np.int64)
    qat_train(head, x, y, config=QatConfig(epochs=2, lr=3e-3, batch_size=16, seed=seed), progress=False)
    head.set_normalization(rng.normal(size=input_size) * 0.1, rng.uniform(0.8, 1.2, size=input_size))
    ckpt = save_qat_checkpoint(head, out_dir / "qat_head.pt")
    _, artifact_path = export_checkpoint(ckpt, out_dir, timesteps=8)
    return artifact_path


@pytest.fixture(scope="session")
def qat_artifact_path(tmp_path_factory):
    """Path of a QAT-trained, exported artifact (I=37, H=19, 2 layers, 4-bit weights)."""
    return make_qat_artifact(tmp_path_factory.mktemp("qat_artifact"))


@pytest.fixture(scope="session")
def verilator_cache(tmp_path_factory):
    """One Verilator build folder for the session, shared by all xdist workers (tests/sim and
    tests/host build the same cores); builds are keyed by the Verilog's hash and file-locked."""
    base = tmp_path_factory.getbasetemp()
    root = base.parent if base.name.startswith("popen-gw") else base
    path = root / "verilator-builds"
    path.mkdir(exist_ok=True)
    return path
