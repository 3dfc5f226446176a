"""On-chip memories of the core."""

from __future__ import annotations

from amaranth.lib import memory


def ram(*, shape, depth: int) -> memory.Memory:
    """An uninitialised memory of at least ``depth`` words (loaded at run time).

    A one-word memory would get a zero-width address, which Verilator refuses; it gets two words.
    """
    return memory.Memory(shape=shape, depth=max(int(depth), 2), init=[])


def address_bits(depth: int) -> int:
    """Address width of :func:`ram` (``depth``)."""
    return (max(int(depth), 2) - 1).bit_length()
