import numpy as np
import pytest

from lstmfpga.sim.golden.random_artifact import random_artifact


@pytest.fixture(scope="session")
def small_artifact():
    """Awkward sizes on purpose: I=37, H=19, two layers, a 2-class head."""
    return random_artifact(input_size=37, hidden_size=19, num_layers=2, num_classes=2, seed=11)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
