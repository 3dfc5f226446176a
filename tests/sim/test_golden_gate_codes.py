"""The golden's one-pass gate requantizer equals the four scalar Requants (both paths)."""

import numpy as np
import pytest

from lstmfpga.foundation.integer_lstm import gate_codes
from lstmfpga.sim.golden.random_artifact import random_artifact


@pytest.mark.parametrize("seed", range(4))
def test_vectorised_gate_codes_equal_per_gate_requant(seed):
    layer = random_artifact(input_size=11, hidden_size=7, seed=seed, act_bits=4 + seed).layers[0]
    rng = np.random.default_rng(seed)
    acc = rng.integers(-(1 << 20), 1 << 20, size=(33, 4, 7))
    expected = np.stack([layer.gate_requant[g].apply(acc[:, g]) for g in range(4)], axis=1)
    np.testing.assert_array_equal(gate_codes(layer, acc), expected)
    huge = acc * (1 << 34)  # forces the exact slow path
    expected = np.stack([layer.gate_requant[g].apply(huge[:, g]) for g in range(4)], axis=1)
    np.testing.assert_array_equal(gate_codes(layer, huge), expected)
