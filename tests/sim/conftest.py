"""Shared Verilator build cache for one pytest session (all xdist workers)."""

import pytest


@pytest.fixture(scope="session")
def verilator_cache(tmp_path_factory):
    base = tmp_path_factory.getbasetemp()
    # xdist workers get <session tmp>/popen-gwN: share builds across workers through the parent
    root = base.parent if base.name.startswith("popen-gw") else base
    path = root / "verilator-builds"
    path.mkdir(exist_ok=True)
    return path
