"""Payload layouts of the core's streams and the widths its blocks share."""

from __future__ import annotations

import enum

from amaranth import signed, unsigned
from amaranth.lib import data

from lstmfpga.foundation.hw import stream_format


class Source(enum.IntEnum):
    """Where a column's broadcast value comes from."""

    INPUT = 0   #: the input buffer (layer 0, x part, full mode)
    HBUF0 = 1   #: h buffer 0 (the h sequences of layers 0 and 2)
    HBUF1 = 2   #: h buffer 1 (the h sequence of layer 1)
    ZERO = 3    #: zero (h_{-1} of the first step)


def _bits_for(n: int) -> int:
    return max(1, (n - 1).bit_length())


def input_buffer_depth(config) -> int:
    """Words of the full-mode input buffer: one input packet of ``max_timesteps`` steps of each of
    ``max_batch`` sequences."""
    return config.max_run_steps * stream_format.input_beats_per_step(config)


def sequence_bits(config) -> int:
    """Width of addresses into the per-run sequences: the h buffers (T·B·H codes) and the input
    buffer (T·B·words per step), with two bits of headroom for the dependency bounds' arithmetic."""
    wps = stream_format.input_beats_per_step(config)
    return _bits_for(config.max_run_steps * max(config.hidden_size, wps) + 1) + 2


def batch_fields(config) -> dict:
    """A batch's sequence index and its first cell-memory word (b·H), on a core with
    ``max_batch`` > 1 (none otherwise)."""
    if config.max_batch == 1:
        return {}
    return {"sequence": range(config.max_batch), "cell_base": range(config.max_batch * config.hidden_size)}


def unit_index_shape(config):
    """A hidden unit's index within its layer, padding units of a partial last group included."""
    return range(config.groups * config.units_per_group + 1)


def beat_layout(width: int = 32) -> data.StructLayout:
    """One AXI-Stream beat: ``width`` data bits and TLAST."""
    return data.StructLayout({"data": unsigned(width), "last": 1})


def byte_select_bits(config) -> int:
    """Width of a byte's index within a beat (and within an input-buffer word)."""
    return _bits_for(config.bytes_per_word)


def gate_sums_layout(config) -> data.ArrayLayout:
    """The four gate accumulators (i, f, g, o) of one hidden unit."""
    return data.ArrayLayout(signed(config.accumulator_bits), 4)


def group_tag_layout(config) -> data.StructLayout:
    """What the tail needs to know about a row group; it travels with the group's last column."""
    return data.StructLayout({
        "layer": 2,
        "step_base": sequence_bits(config),      # h-buffer word of the step's first unit: t·ceil(H/S)
        **_pre_base(config),
        "unit_base": unit_index_shape(config),   # first hidden unit of the group
        "first_step": 1,                         # t = 0: the previous cell state is zero
        "classify": 1,                           # last step of the last layer: feed the classifier
        **_store(config),
        **batch_fields(config),                  # the sequence b of a batch, its cell words b·H
    })


def _pre_base(config) -> dict:
    """The pre-activation slot of the step's first unit, v·``config.pre_stride`` (split mode and
    the input pass)."""
    return {"pre_base": sequence_bits(config)} if config.mode == "split" or config.input_pass else {}


def _store(config) -> dict:
    """The input pass: the group's sums are W_x·x, for the tail's pre-activation memory."""
    return {"store": 1} if config.input_pass else {}


def column_op_layout(config) -> data.StructLayout:
    """One column in the MAC engine: which value to broadcast and where it sits in its group."""
    return data.StructLayout({
        "first": 1, "last": 1,
        "source": 2,     # a :class:`Source`
        "byte": byte_select_bits(config),   # byte of the input-buffer word (layer 0, x part)
        "tag": group_tag_layout(config),
    })


def column_layout(config) -> data.StructLayout:
    """A column the scheduler issues: the addresses to read and the operation."""
    return data.StructLayout({
        "weight_addr": range(config.weight_memory_rows + 1),
        "buffer_addr": sequence_bits(config),    # h buffer slot, or input-buffer word
        "op": column_op_layout(config),
    })


def unit_layout(config) -> data.StructLayout:
    """The accumulators of ``config.tail_units`` consecutive hidden units (``unit``, ``unit`` + 1)
    on their way from the shadow bank to the tail; ``second`` says the second one is a real unit."""
    return data.StructLayout({
        "unit": unit_index_shape(config),
        "sums": data.ArrayLayout(gate_sums_layout(config), config.tail_units),
        **({"second": 1} if config.tail_units > 1 else {}),
        "layer": 2,
        "step_base": sequence_bits(config),
        **_pre_base(config),
        "first_step": 1,
        "classify": 1,
        **_store(config),
        **batch_fields(config),
    })
