"""The ``lstmfpga demo`` command."""

from __future__ import annotations


def register(subparsers) -> None:
    """Add ``demo`` to the ``lstmfpga`` parser."""
