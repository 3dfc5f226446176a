"""Heads and losses against independent computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lstmfpga.foundation.errors import ConfigError
from lstmfpga.model.heads import FrameAverageHead, RecurrentHead, build_head
from lstmfpga.model.losses import FocalLoss, make_loss
from lstmfpga.sim.golden.float_lstm import FloatLayer, run_float

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _numpy_lstm_last_hidden(rnn: torch.nn.LSTM, x: np.ndarray) -> np.ndarray:
    """The NumPy float golden LSTM (itself checked against torch.nn.LSTM) on the head's weights: h_T."""
    sd = {k: v.detach().numpy() for k, v in rnn.state_dict().items()}
    layers = [FloatLayer(w_ih=sd[f"weight_ih_l{l}"], w_hh=sd[f"weight_hh_l{l}"],
                         b_ih=sd[f"bias_ih_l{l}"], b_hh=sd[f"bias_hh_l{l}"]) for l in range(rnn.num_layers)]
    return run_float(layers, x)[-1][:, -1].astype(np.float64)


@pytest.mark.parametrize("batch,t,d,hidden,layers", [(1, 1, 1, 1, 1), (3, 7, 5, 4, 2), (2, 9, 33, 17, 3)])
def test_lstm_head_classifies_the_last_hidden_state(batch, t, d, hidden, layers):
    torch.manual_seed(batch * 100 + t)
    head = build_head("lstm", input_size=d, hidden=hidden, layers=layers, dropout=0.4).eval()
    x = np.random.default_rng(t).normal(size=(batch, t, d)).astype(np.float32)
    h_t = _numpy_lstm_last_hidden(head.rnn, x)
    weight = head.classifier.weight.detach().double().numpy()
    bias = head.classifier.bias.detach().double().numpy()
    expected = h_t @ weight.T + bias
    np.testing.assert_allclose(head(torch.from_numpy(x)).detach().numpy(), expected, atol=1e-5)


def test_bilstm_uses_forward_end_and_backward_start():
    torch.manual_seed(3)
    head = RecurrentHead(kind="bilstm", input_size=6, hidden_size=5, num_layers=2).eval()
    x = torch.randn(4, 7, 6)
    out, _ = head.rnn(x)
    features = torch.cat((out[:, -1, :5], out[:, 0, 5:]), dim=-1)
    torch.testing.assert_close(head(x), head.classifier(features))
    assert head.classifier.in_features == 10


def test_gru_head_shapes_and_reversal_sensitivity():
    torch.manual_seed(4)
    head = build_head("gru", input_size=3, hidden=8, layers=2).eval()
    x = torch.randn(5, 6, 3)
    assert head(x).shape == (5, 2)
    assert not torch.allclose(head(x), head(x.flip(1)))


def test_frame_average_is_blind_to_frame_order():
    torch.manual_seed(5)
    head = FrameAverageHead(input_size=11, hidden_size=7, dropout=0.3).eval()
    x = torch.randn(3, 9, 11)
    permuted = x[:, torch.randperm(9)]
    torch.testing.assert_close(head(x), head(permuted), atol=1e-6, rtol=1e-6)
    expected = head.classifier(torch.relu(head.mlp[1](x.mean(dim=1))))
    torch.testing.assert_close(head(x), expected)


def test_head_arguments_are_checked():
    with pytest.raises(ConfigError, match="head must be one of"):
        build_head("transformer", input_size=3, hidden=2)
    with pytest.raises(ValueError, match="hidden_size must be a positive integer, not 0"):
        RecurrentHead(kind="lstm", input_size=3, hidden_size=0)
    with pytest.raises(ValueError, match=r"dropout must be in \[0, 1\), not 1.0"):
        FrameAverageHead(input_size=3, hidden_size=2, dropout=1.0)


def test_losses_against_hand_computed_values():
    logits = torch.tensor([[2.0, 0.0], [0.5, 1.5], [0.0, 0.0]])
    target = torch.tensor([0, 1, 1])
    p = torch.softmax(logits, dim=-1).numpy().astype(np.float64)
    p_t = np.array([p[0, 0], p[1, 1], p[2, 1]])
    ce = -np.log(p_t)
    assert float(make_loss("CrossEntropyLoss")(logits, target)) == pytest.approx(ce.mean(), rel=1e-6)
    assert float(make_loss("focal", focal_gamma=2.0)(logits, target)) == pytest.approx(
        ((1 - p_t) ** 2 * ce).mean(), rel=1e-6)
    one_hot = np.array([[1, 0], [0, 1], [0, 1]])
    assert float(make_loss("MSE")(logits, target)) == pytest.approx(((p - one_hot) ** 2).mean(), rel=1e-6)
    # the third sample sits at p = 0.5: focal weight (1 - 0.5)^2 = 0.25 of its cross-entropy ln 2
    single = FocalLoss(gamma=2.0)(logits[2:], target[2:])
    assert float(single) == pytest.approx(0.25 * math.log(2), rel=1e-6)


def test_focal_with_gamma_zero_is_cross_entropy_on_random_logits():
    torch.manual_seed(6)
    logits = torch.randn(13, 2)
    target = torch.randint(0, 2, (13,))
    torch.testing.assert_close(FocalLoss(gamma=0.0)(logits, target), F.cross_entropy(logits, target))
