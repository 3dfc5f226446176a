"""Cycle model of one weight fetch through the AXI4 read master
(:class:`~lstmfpga.hw.rtl.axi_weight_reader.AxiWeightReader`) from a DDR behind an HP port.

Stdlib only: the accelerator's cycle model and the planner read it without Amaranth.

The memory of the model answers an AR accepted in cycle ``a`` with its first R beat in cycle
``a + latency`` at the earliest and gives one beat every ``interval`` cycles at most, bursts in
order (one read pipeline): beat ``i`` of a burst comes ``interval`` cycles after beat ``i − 1``,
and a burst's first beat ``interval`` cycles after the previous burst's last beat at the
earliest.  It accepts every AR at once (``arready`` high) and the consumer of the words is
always ready.  Against such a memory :func:`read_schedule` is exact to the cycle; the RTL is
checked against it in ``tests/hw/test_axi_weight_reader.py``.

The reader (cycle 0 is the cycle ``start`` is sampled):

- loads burst ``j``'s AR into its output register in cycle ``load_j`` (the first in cycle
  ``latency.AXI_READ_ISSUE − 1``), at most one per cycle, when fewer than ``outstanding`` bursts
  are in flight and the output FIFO has room reserved for all of the burst's beats (credits);
  the AR is accepted the next cycle;
- pushes each R beat into the output FIFO in the cycle it arrives; the word leaves
  :data:`~lstmfpga.hw.latency.AXI_READ_FIFO` cycles later;
- counts a burst out of flight the cycle after its ``rlast`` beat, and a FIFO word's credit back
  the cycle after it leaves.

So, with ``first_j``/``last_j`` the cycles of burst ``j``'s first/last R beat and ``w(n)`` the
cycle word ``n`` of the request arrives::

    load_0 = AXI_READ_ISSUE − 1
    load_j = max(load_{j−1} + 1,
                 last_{j−outstanding} + 1,                          # bursts in flight
                 w(Σ_{i≤j} beats_i − outstanding·max_burst − 1) + AXI_READ_FIFO + 1)   # credits
    first_j = max(load_j + 1 + latency, last_{j−1} + interval)
    cycles  = w(beats − 1) + AXI_READ_FIFO          # start → the word with ``last``

(a term whose index is negative drops out).  For long requests of full bursts the credits bind
(a burst's credits come back ``AXI_READ_FIFO + 1`` cycles after its last beat, later than its
slot in the in-flight count), so ``outstanding`` bursts take ``1 + latency + (max_burst − 1)·interval
+ AXI_READ_FIFO + 1`` cycles when the memory is not the bound:
:func:`sustained_cycles_per_beat`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from lstmfpga.foundation.errors import ConfigError
from lstmfpga.foundation.hw.config import DDR_WIDTHS
from lstmfpga.foundation.validation import check_integer, is_integer
from lstmfpga.hw import latency as lat

#: AXI4 bursts of the INCR type may not cross a 4 KiB address boundary (AMBA AXI A3.4.1).
PAGE_BYTES = 4096
#: Longest INCR burst in AXI4 (``arlen`` is 8 bits).
MAX_BURST = 256
#: Data widths of the reader: the Zynq-7000 HP ports are 64 bits wide, UltraScale+ HP/HPC 128.
DATA_WIDTHS = DDR_WIDTHS
#: Widths of the control fields: ``base`` is a full AXI address, ``length``/``offset``/``bytes``
#: describe at most 4 GiB.
ADDRESS_BITS = 64
SIZE_BITS = 32


class ReadError(enum.IntFlag):
    """Bits of the reader's ``error`` field, valid from ``done`` until the next ``start``."""

    #: The request is empty, not inside ``[base, base + length)``, or its address or size is not
    #: a multiple of the data width's bytes; refused before any AR.
    OUT_OF_RANGE = 1
    #: An R beat of the request came back SLVERR.
    SLVERR = 2
    #: An R beat of the request came back DECERR.
    DECERR = 4
    #: No AR or R handshake for ``timeout`` cycles while a burst was outstanding.
    TIMEOUT = 8


def check_reader_parameters(*, data_width, max_burst, outstanding) -> None:
    """Raise :class:`ConfigError` for a reader configuration the RTL does not build."""
    if not is_integer(data_width) or data_width not in DATA_WIDTHS:
        raise ConfigError(f"data_width must be 64 or 128, not {data_width!r}")
    check_integer("max_burst", max_burst, low=1, high=MAX_BURST)
    check_integer("outstanding", outstanding, low=1, high=64)


def split_bursts(address: int, nbytes: int, *, beat_bytes: int, max_burst: int) -> list[tuple[int, int]]:
    """The (address, beats) of the INCR bursts the reader issues for ``nbytes`` at ``address``:
    each as long as ``max_burst`` allows without crossing a 4 KiB boundary."""
    bursts = []
    while nbytes > 0:
        to_page = (PAGE_BYTES - address % PAGE_BYTES) // beat_bytes
        beats = min(nbytes // beat_bytes, max_burst, to_page)
        bursts.append((address, beats))
        address += beats * beat_bytes
        nbytes -= beats * beat_bytes
    return bursts


@dataclass(frozen=True)
class ReadSchedule:
    """When each step of one request happens, in cycles after ``start``.

    Attributes
    ----------
    bursts : list of (address, beats)
        The bursts in issue order.
    ar_accepted : list of int
        The cycle each burst's AR handshake happens.
    beats : list of int
        The cycle each R beat arrives (one per word, in order).
    cycles : int
        The cycle the word with ``last`` leaves the reader.
    """

    bursts: list
    ar_accepted: list
    beats: list
    cycles: int


def read_schedule(*, address: int, nbytes: int, data_width: int, max_burst: int, outstanding: int,
                  latency: int, interval: int) -> ReadSchedule:
    """Exact timing of one request against a memory of fixed ``latency`` (AR accepted → first R
    beat) and one beat every ``interval`` cycles (see the module's description).

    Raises
    ------
    ConfigError
        Parameters the reader does not build, a latency or interval below 1, or a request the
        reader would refuse (empty, misaligned).
    """
    check_reader_parameters(data_width=data_width, max_burst=max_burst, outstanding=outstanding)
    check_integer("latency", latency, low=1)
    check_integer("interval", interval, low=1)
    check_integer("nbytes", nbytes, low=1)
    beat_bytes = data_width // 8
    if address % beat_bytes or nbytes % beat_bytes:
        raise ConfigError(f"address {address:#x} and nbytes {nbytes} must be multiples of {beat_bytes}")
    return _schedule(address, nbytes, data_width=data_width, max_burst=max_burst, outstanding=outstanding,
                     latency=latency, interval=interval)


def _schedule(address: int, nbytes: int, *, data_width: int, max_burst: int, outstanding: int, latency: float,
              interval: float) -> ReadSchedule:
    """:func:`read_schedule` without its checks (``latency`` and ``interval`` may be fractional)."""
    beat_bytes = data_width // 8
    bursts = split_bursts(address, nbytes, beat_bytes=beat_bytes, max_burst=max_burst)
    credits = outstanding * max_burst
    credit_back = lat.AXI_READ_FIFO + 1
    beats: list[int] = []
    ar_accepted: list[int] = []
    last: list[int] = []
    load = lat.AXI_READ_ISSUE - 2
    reserved = 0
    for j, (_, n) in enumerate(bursts):
        load += 1
        if j >= outstanding:
            load = max(load, last[j - outstanding] + 1)
        reserved += n
        need = reserved - credits        # words that must have left and been credited back
        if need > 0:
            load = max(load, beats[need - 1] + credit_back)
        ar_accepted.append(load + 1)
        first = load + 1 + latency
        if beats:
            first = max(first, beats[-1] + interval)
        beats.extend(first + i * interval for i in range(n))
        last.append(beats[-1])
    return ReadSchedule(bursts, ar_accepted, beats, beats[-1] + lat.AXI_READ_FIFO)


def request_cycles(**kwargs) -> int:
    """Cycles from ``start`` to the word with ``last`` (:func:`read_schedule`'s ``cycles``)."""
    return read_schedule(**kwargs).cycles


def sustained_cycles_per_beat(*, max_burst: int, outstanding: int, latency: float, interval: float) -> float:
    """Cycles per beat of a long request of full bursts: the memory's ``interval``, or the
    window of ``outstanding`` bursts (one burst's AR load to its credits back) shared by their
    beats, whichever is longer.  ``latency`` and ``interval`` may be fractional here (a DDR's
    sustained bandwidth in beats per cycle)."""
    # AR register, memory, beats, FIFO, credit register
    window = 1 + latency + (max_burst - 1) * interval + lat.AXI_READ_FIFO + 1
    return max(interval, window / (outstanding * max_burst))


def approx_request_cycles(nbytes: int, *, data_width: int, max_burst: int, outstanding: int, latency: float,
                          interval: float, address: int = 0) -> float:
    """The memory term of the accelerator's cycle model: :func:`read_schedule` of ``nbytes``
    (rounded up to whole beats) at ``address`` (default: a page's start), with ``latency`` and
    ``interval`` allowed fractional (a DDR's sustained bandwidth in beats per cycle).  Exact at
    the request's real address; at a page's start for a request whose bursts the 4 KiB pages split
    as they split a page-aligned one, otherwise a burst more or less changes it by about a burst's
    start-up."""
    beat_bytes = data_width // 8
    nbytes = -(-int(nbytes) // beat_bytes) * beat_bytes
    return _schedule(int(address), nbytes, data_width=data_width, max_burst=max_burst, outstanding=outstanding,
                     latency=latency, interval=interval).cycles


def beat_interval(*, clock_hz: float, data_width: int, bandwidth: float) -> float:
    """Cycles per beat when the DDR sustains ``bandwidth`` bytes/s to a port of ``data_width``
    bits clocked at ``clock_hz`` (at least one beat per cycle)."""
    return max(1.0, clock_hz * (data_width // 8) / bandwidth)
