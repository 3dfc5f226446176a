"""Pipeline latencies of the RTL blocks, in clock cycles.

Stdlib only: the cycle model, the manifest and the planner read these numbers without Amaranth.
Each RTL block declares ``LATENCY`` from here, and the tail unit places its stages with
:data:`TAIL_STAGES`, so a block that gains a register moves the cycle model with it.
"""

from __future__ import annotations

#: A synchronous memory read port: address in one cycle, data the next.
MEMORY_READ = 1
#: Memory data are registered before any logic reads them (the block RAM's output register).
MEMORY_OUTPUT = 1
#: The broadcast column's copies in the fabric, one per block of lanes, ahead of the MAC blocks'
#: operand registers (which synthesis moves into the DSPs, each with its own copy).
COLUMN_COPY = 1
#: MAC lanes: operand registers, product register, accumulator (``done`` with the finished sums).
MAC_LANES = 3
#: Requantizer: partial products, their sums per value slice, the product, byte shift, bit shift,
#: rounding decision, round, saturate.
REQUANTIZER = 8
#: Packed MAC: the DSP's A/B, M and P registers, then the row sums (output register).
PACKED_MAC = 4


#: A multiplier's operand registers after a block RAM's output register: without reset, so that
#: synthesis moves them into the DSP (its input registers), leaving one route from the RAM to the
#: DSP in a cycle instead of a route and the multiplier's combinational setup.
OPERAND = 1


def _tail_stages() -> dict[str, int]:
    """The tail unit's stage numbers: each is the previous one plus the blocks in between."""
    stages = {"read": 0}
    stages["bias"] = stages["read"] + MEMORY_READ + MEMORY_OUTPUT  # acc + bias (+ pre-activation)
    stages["gate_rq"] = stages["bias"] + 1                   # gate requantizers start
    stages["gate_table"] = stages["gate_rq"] + REQUANTIZER   # σ/tanh table addresses
    stages["gate_value"] = stages["gate_table"] + MEMORY_READ + MEMORY_OUTPUT  # gate values, c_old
    stages["gate_operand"] = stages["gate_value"] + OPERAND  # f·c, i·g products
    stages["cell_rq"] = stages["gate_operand"] + 1           # cell requantizers start
    stages["cell_sum"] = stages["cell_rq"] + REQUANTIZER     # fc + ig
    stages["cell_bounds"] = stages["cell_sum"] + 1           # fc + ig against the cell bounds
    stages["cell_clamp"] = stages["cell_bounds"] + 1         # c = clamp(fc + ig)
    stages["cell_write"] = stages["cell_clamp"] + 1          # cell write, tanh(c) address
    stages["hidden_tanh"] = stages["cell_write"] + MEMORY_READ + MEMORY_OUTPUT  # tanh(c), o
    stages["tanh_operand"] = stages["hidden_tanh"] + OPERAND  # o·tanh(c) product
    stages["h_rq"] = stages["tanh_operand"] + 1              # h requantizer starts
    stages["h_out"] = stages["h_rq"] + REQUANTIZER           # h code valid
    return stages


#: Stage of each step of the tail unit, counted from the cycle a unit's accumulators arrive.
TAIL_STAGES = _tail_stages()
#: Tail unit: accumulators in to h code out.
TAIL = TAIL_STAGES["h_out"]
#: The classifier after an h code: its weight read (and output register), the multiplier's operand
#: registers, then its product register (all three inside the DSP), before the 32-bit logit
#: accumulation.
CLASSIFIER = MEMORY_READ + MEMORY_OUTPUT + 2

#: Registers between the blocks (:mod:`~lstmfpga.hw.rtl.mac_engine`, :mod:`~lstmfpga.hw.rtl.column_scheduler`).
#: The shadow bank takes the lanes' sums one cycle after ``done``.
SHADOW_LOAD = 1
#: The shadow reader registers each unit's accumulators before the tail.
TAIL_FEED = 1
#: The count of finished units, against which the scheduler checks dependencies, is a register.
UNIT_COUNT = 1
#: The scheduler sees an input word the cycle after the receiver has counted it: its check of the
#: word's address against the count is a register (full mode).
INPUT_COUNT = 1


def mac(macs_per_dsp: int) -> int:
    """The MAC block of a core with ``macs_per_dsp`` rows per multiplier: the column's copies, then
    the lanes (1) or the packed units (more)."""
    if not isinstance(macs_per_dsp, int) or isinstance(macs_per_dsp, bool) or macs_per_dsp < 1:
        raise ValueError(f"macs_per_dsp must be a positive integer, not {macs_per_dsp!r}")
    return COLUMN_COPY + (MAC_LANES if macs_per_dsp == 1 else PACKED_MAC)


def set_sum(column_sets: int) -> int:
    """The adder tree over the column sets' partial sums: a registered level per halving, an odd
    one out registered beside the pairs (none for one set)."""
    if not isinstance(column_sets, int) or isinstance(column_sets, bool) or not 1 <= column_sets <= 16:
        raise ValueError(f"column_sets must be an integer in [1, 16], not {column_sets!r}")
    return (column_sets - 1).bit_length()


def engine(macs_per_dsp: int, column_sets: int = 1) -> int:
    """Cycles from a column's issue until the engine's group sums are ready (weight read and its
    output register, the lanes or the packed units, the sum over the column sets)."""
    return MEMORY_READ + MEMORY_OUTPUT + mac(macs_per_dsp) + set_sum(column_sets)


def round_trip(macs_per_dsp: int, column_sets: int = 1) -> int:
    """Cycles from a group's last column issue until its first unit's h code is visible to the
    scheduler."""
    return engine(macs_per_dsp, column_sets) + SHADOW_LOAD + TAIL_FEED + TAIL + UNIT_COUNT


#: Output sender, cycles from its first word-buffer read to its first beat on the stream: the read,
#: its registered data, the masked word (or logit beat), the FIFO write.  Then a beat per cycle on a
#: stall-free stream.
OUTPUT_FILL = MEMORY_READ + MEMORY_OUTPUT + 2
#: Output sender with weights on chip, a step's last h code to the first cycle its words may be
#: read: the packer's registered write, the count of written words, then its compare with the read
#: address (registers all).
OUTPUT_WRITE = 3
#: A register slice on a stream port (:mod:`~lstmfpga.hw.rtl.stream_register`): a beat leaves it
#: the cycle after it was taken.
STREAM_REGISTER = 1
#: The core's two stream ports each have a register slice: a run's first input beat reaches the
#: run controller, and its last output beat the bus, a slice later.
STREAM_PORTS = 2 * STREAM_REGISTER
#: Run control outside the streams and the compute, as RUN_CYCLES counts it from the cycle the core
#: takes START (registered: the cycle the write's BVALID rises) when the host sends its first beat
#: as soon as it sees the response: one cycle.
RUN_CONTROL = 1
#: Cycles after the last h code before the run is done (the classifier's last accumulate and the
#: done flag).
RUN_TAIL = CLASSIFIER + 2

#: AXI4 weight reader (:mod:`lstmfpga.hw.rtl.axi_weight_reader`, model in
#: :mod:`lstmfpga.hw.ddr_model`): ``start`` sampled to the first ``arvalid`` (the request is
#: checked and latched, then the first burst's AR is loaded into the output register).
AXI_READ_ISSUE = 2
#: An R beat pushed into the reader's output FIFO to the word leaving it (a block-RAM FIFO with
#: an output register).
AXI_READ_FIFO = 2
#: DDR row fetcher (:mod:`lstmfpga.hw.rtl.ddr_row_fetcher`): a group's last word leaving the reader
#: to its half reading full (the row's write register, the reader's ``done``, the full flag), which
#: is also the first cycle the next group's request may start.
DDR_ROWS_READY = 3
#: The fetcher's ``start`` to its first request's ``start``.
DDR_FIRST_REQUEST = 1
