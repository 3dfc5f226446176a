"""Registered copies of a signal that many lanes read, one copy per block of lanes.

A single register driving every lane's multiplier or accumulator enable is one net with hundreds
of loads: at P = 64 it is the engine's longest route.  Each block of :data:`LANES_PER_COPY` lanes
reads its own copy instead.  The copies are identical, so synthesis would merge them back into one;
they carry the ``keep`` attribute, which Vivado honours on registers, and the Yosys flows of this
project (:data:`KEEP_REGISTERS`) move it onto the flip-flop cells, where ``opt_merge`` honours it.
"""

from __future__ import annotations

from amaranth import Signal

#: Lanes that read one copy.
LANES_PER_COPY = 16

#: Yosys commands, after ``read_verilog``: the flip-flops behind ``keep`` registers get ``keep``
#: themselves (on the wire alone it does not stop ``opt_merge``).
KEEP_REGISTERS = "proc\nsetattr -set keep 1 a:keep %ci1:+$dff[Q] t:$dff %i\n"


#: Attributes of a register stage that must stay flip-flops: ``keep`` (the flows above put it on the
#: cells, and Yosys's shift-register mapping passes over kept cells) and Vivado's own
#: ``shreg_extract``.
FLIP_FLOPS = {"keep": 1, "shreg_extract": "no"}


def copies(lanes: int) -> int:
    """Copies for ``lanes`` lanes: one per :data:`LANES_PER_COPY`, at least one."""
    return max(1, -(-lanes // LANES_PER_COPY))


def block_of(lane: int) -> int:
    """The copy lane ``lane`` reads."""
    return lane // LANES_PER_COPY


def kept(like, *, count: int, name: str) -> list[Signal]:
    """``count`` signals shaped like ``like``, named ``name``, ``name_1``…, marked ``keep``."""
    return [Signal.like(like, name=name if i == 0 else f"{name}_{i}", attrs={"keep": 1}) for i in range(count)]
