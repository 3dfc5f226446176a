"""Subcommands of the sim stage."""

from __future__ import annotations


def register(subparsers) -> None:
    """Add this stage's subcommands to the ``lstmfpga`` parser."""
