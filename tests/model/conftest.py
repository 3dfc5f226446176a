"""Fixtures of the model-stage tests."""

import pytest


@pytest.fixture()
def one_torch_thread():
    """Tiny heads run several times faster on one thread, and results must not depend on it."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
