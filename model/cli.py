"""Subcommands of the model stage: data and features (``data_cli``), training and search (``train_cli``)."""

from __future__ import annotations

import importlib


def register(subparsers) -> None:
    """Add this stage's subcommands to the ``lstmfpga`` parser."""
    for name in ("lstmfpga.model.data_cli", "lstmfpga.model.train_cli"):
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        module.register(subparsers)
