"""The ``lstmfpga bench`` command."""

from __future__ import annotations


def register(subparsers) -> None:
    """Add ``bench`` to the ``lstmfpga`` parser."""
