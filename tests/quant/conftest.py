"""Brevitas heads for the quant tests: calibrated random weights, float-trained, or QAT-trained."""

from __future__ import annotations

import functools

import numpy as np
import pytest


def _temporal_task(rng, n, t, i):
    """Does feature 0 rise over the sequence? Only a model that reads the order can tell."""
    x = rng.normal(size=(n, t, i)).astype(np.float32)
    y = (x[:, t // 2:, 0].mean(1) > x[:, :t // 2, 0].mean(1)).astype(np.int64)
    return x, y


def _train_float(head, rng, steps=25):
    """Train a float nn.LSTM + Linear of the head's shape, then load it into the head."""
    import torch

    c = head.config
    lstm = torch.nn.LSTM(c.input_size, c.hidden_size, num_layers=c.num_layers, batch_first=True)
    linear = torch.nn.Linear(c.hidden_size, max(c.num_classes, 1))
    opt = torch.optim.Adam(list(lstm.parameters()) + list(linear.parameters()), lr=1e-2)
    x, y = _temporal_task(rng, 64, 9, c.input_size)
    for _ in range(steps):
        out, _ = lstm(torch.from_numpy(x))
        loss = torch.nn.functional.cross_entropy(linear(out[:, -1]), torch.from_numpy(y))
        opt.zero_grad()
        loss.backward()
        opt.step()
    head.load_float_lstm(lstm)
    if head.classifier is not None:
        with torch.no_grad():
            head.classifier.weight.copy_(linear.weight)
            head.classifier.bias.copy_(linear.bias)


@functools.lru_cache(maxsize=None)
def _make_head(*, input_size, hidden_size, num_layers=1, num_classes=2, weight_bits=4, act_bits=8,
               seed=0, trained=False, normalization=False):
    """``trained``: False (random weights), ``"float"`` (float-trained, then calibrated) or
    ``"qat"`` (a few epochs of quantization-aware training)."""
    import torch

    from lstmfpga.quant.head import QuantHeadConfig, QuantLstmHead
    from lstmfpga.quant.qat import QatConfig, calibrate, qat_train

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    head = QuantLstmHead(QuantHeadConfig(input_size=input_size, hidden_size=hidden_size,
                                         num_layers=num_layers, num_classes=num_classes,
                                         weight_bits=weight_bits, act_bits=act_bits))
    if trained == "float":
        _train_float(head, rng)
    if trained == "qat":
        x, y = _temporal_task(rng, 32, 6, input_size)
        qat_train(head, x, y, config=QatConfig(epochs=2, lr=3e-3, batch_size=16, seed=seed),
                  progress=False)
    else:
        x = rng.normal(size=(48, 9, input_size)).astype(np.float32)
        calibrate(head, x, batches=4, batch_size=12)
    if normalization:
        head.set_normalization(rng.normal(size=input_size), rng.uniform(0.5, 2.0, size=input_size))
    head.eval()
    return head


@pytest.fixture(scope="session")
def make_head():
    return _make_head
