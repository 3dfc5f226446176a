"""On-chip memories of the core."""

from __future__ import annotations

from amaranth.lib import memory


#: Yosys's memory attribute for "a read and a write of one word in one cycle never happen": without
#: it, synthesis emulates the old-data read of such a collision in the fabric (an address compare
#: and a multiplexer after the block RAM's output, whose clock-to-out is already most of a cycle).
NO_COLLISIONS = {"no_rw_check": 1}
#: The attribute Yosys and Vivado both read as "map this memory to LUTs".
DISTRIBUTED = {"ram_style": "distributed"}


def ram(*, shape, depth: int, distributed: bool = False) -> memory.Memory:
    """An uninitialised memory of at least ``depth`` words (loaded at run time).

    A one-word memory would get a zero-width address, which Verilator refuses; it gets two words.
    No read meets a write of the same word in the same cycle (:data:`NO_COLLISIONS`): tables,
    biases and weights are written only by a load; the input, h and output buffers and the cell
    state are read only after the word was written, by the scheduler's dependencies; a DDR row
    half is written only after the engine has released it.  ``distributed``: in LUTs
    (:data:`DISTRIBUTED`), whatever the synthesis tool's cost model would pick.
    """
    attrs = {**NO_COLLISIONS, **(DISTRIBUTED if distributed else {})}
    return memory.Memory(shape=shape, depth=max(int(depth), 2), init=[], attrs=attrs)


def address_bits(depth: int) -> int:
    """Address width of :func:`ram` (``depth``)."""
    return (max(int(depth), 2) - 1).bit_length()
