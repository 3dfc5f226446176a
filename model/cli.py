"""Subcommands of the model stage: data and features (``data_cli``), training and search (``train_cli``)."""

from __future__ import annotations

from lstmfpga.model import data_cli, train_cli


def register(subparsers) -> None:
    """Add this stage's subcommands to the ``lstmfpga`` parser."""
    data_cli.register(subparsers)
    train_cli.register(subparsers)
