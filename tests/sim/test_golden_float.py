"""Float golden model against torch.nn.LSTM with the same weights."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from lstmfpga.foundation.errors import InputError
from lstmfpga.sim.golden.float_lstm import FloatLayer, run_float


def _layers_from_torch(lstm: torch.nn.LSTM) -> list[FloatLayer]:
    sd = {k: v.detach().numpy() for k, v in lstm.state_dict().items()}
    return [FloatLayer(w_ih=sd[f"weight_ih_l{l}"], w_hh=sd[f"weight_hh_l{l}"],
                       b_ih=sd[f"bias_ih_l{l}"], b_hh=sd[f"bias_hh_l{l}"])
            for l in range(lstm.num_layers)]


@settings(max_examples=60, deadline=None)
@given(I=st.integers(1, 96), H=st.integers(1, 96), T=st.integers(1, 24), B=st.integers(1, 8),
       L=st.integers(1, 3), seed=st.integers(0, 2**31 - 1), scale=st.sampled_from([0.1, 1.0, 5.0]))
def test_float_golden_matches_torch_lstm(I, H, T, B, L, seed, scale):
    torch.manual_seed(seed)
    lstm = torch.nn.LSTM(I, H, num_layers=L, batch_first=True)
    x = torch.randn(B, T, I) * scale
    with torch.no_grad():
        ref, _ = lstm(x)
    ours = run_float(_layers_from_torch(lstm), x.numpy())
    assert len(ours) == L
    assert ours[-1].shape == (B, T, H)
    assert np.abs(ours[-1] - ref.numpy()).max() <= 1e-5


def test_float_golden_rejects_bad_input():
    lstm = torch.nn.LSTM(3, 2, batch_first=True)
    layers = _layers_from_torch(lstm)
    with pytest.raises(InputError, match="NaN"):
        run_float(layers, np.full((1, 2, 3), np.nan))
    with pytest.raises(InputError, match="expects 3 features"):
        run_float(layers, np.zeros((1, 2, 4)))
    with pytest.raises(InputError, match=r"\[batch, time, features\]"):
        run_float(layers, np.zeros((2, 3)))
