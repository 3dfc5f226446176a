"""An AXI4 read master that fetches byte ranges of a weight image in DDR as a word stream.

The building block of weights in DDR (issue #11): the core will point ``region`` at the weight
image's buffer and ask for one weight row range at a time.  The cycle model of a request is
:mod:`lstmfpga.hw.ddr_model`.

Design choices
--------------
- **Credits, no R backpressure.**  ``m_axi_rready`` is tied high.  Every beat goes into an
  output FIFO that holds ``outstanding × max_burst`` words (block RAM with an output register;
  one entry more, as Amaranth's ``SyncFIFOBuffered`` needs), and a burst's AR is issued only
  once the FIFO has room reserved for all its beats (a credit counter: minus the burst's beats
  when its AR is loaded, plus one when a word leaves).  A slow consumer therefore holds back
  new ARs, never the R channel, so the HP port and the interconnect are not blocked by the core.
- **4 KiB.**  Each burst is ``min(beats left, max_burst, beats to the next 4 KiB boundary)``
  long, so INCR bursts never cross a page (the request's address is aligned to the data width,
  so a page holds a whole number of beats).
- **Errors and ``soft_reset`` drain.**  After an SLVERR/DECERR beat or a ``soft_reset``, the
  reader issues no further AR but still takes every beat of the bursts already issued (AXI
  requires it), drops them, empties the FIFO and only then reports ``done`` (after a
  ``soft_reset``, it falls idle without ``done``); a pending AR stays valid until accepted, as
  AXI requires.  The next request is then served from a clean state.  On TIMEOUT the memory is
  taken to be dead: the reader withdraws a pending AR, forgets the outstanding bursts and
  reports at once; whatever drives the HP port must be reset before the next request (beats
  that arrive while idle are taken and dropped).
- No output depends combinationally on an input: the AR channel and ``o_stream.valid`` come
  from registers, ``rready`` is a constant.
"""

from __future__ import annotations

from amaranth import Cat, Module, Mux, Signal, unsigned
from amaranth.hdl import ResetInserter
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from lstmfpga.foundation.validation import check_integer
from lstmfpga.hw import latency
from lstmfpga.hw.ddr_model import ADDRESS_BITS, PAGE_BYTES, SIZE_BITS, ReadError, check_reader_parameters

#: The weight image's buffer: byte address and size.
REGION = data.StructLayout({"base": unsigned(ADDRESS_BITS), "length": unsigned(SIZE_BITS)})
#: One fetch, relative to the region: byte offset and size.
REQUEST = data.StructLayout({"offset": unsigned(SIZE_BITS), "bytes": unsigned(SIZE_BITS)})
#: The ``error`` field, one bit per :class:`~lstmfpga.hw.ddr_model.ReadError` in its order.
ERROR = data.StructLayout({flag.name.lower(): 1 for flag in ReadError})

#: AXI constants (AMBA AXI4: INCR burst, OKAY/EXOKAY have ``rresp[1]`` clear).
BURST_INCR = 0b01
#: Normal non-cacheable bufferable (what Xilinx's masters drive), unprivileged secure data access.
ARCACHE = 0b0011
ARPROT = 0b000


def read_port_members(data_width: int) -> dict:
    """The signature members of an AXI4 read master of ``data_width`` bits, under the Xilinx
    names with the ``m_axi_`` prefix (every block that carries the port up declares these)."""
    return {
        # read address channel
        "m_axi_arid": Out(1),
        "m_axi_araddr": Out(ADDRESS_BITS),
        "m_axi_arlen": Out(8),
        "m_axi_arsize": Out(3),
        "m_axi_arburst": Out(2),
        "m_axi_arcache": Out(4),
        "m_axi_arprot": Out(3),
        "m_axi_arvalid": Out(1),
        "m_axi_arready": In(1),
        # read data channel
        "m_axi_rid": In(1),
        "m_axi_rdata": In(data_width),
        "m_axi_rresp": In(2),
        "m_axi_rlast": In(1),
        "m_axi_rvalid": In(1),
        "m_axi_rready": Out(1),
    }


def forward_axi(m, outer, inner) -> None:
    """Joins the ``m_axi_*`` ports of ``inner`` to the same-named ports of ``outer`` (one level up)."""
    for name, member in inner.signature.members.items():
        if not name.startswith("m_axi_"):
            continue
        if member.flow == Out:
            m.d.comb += getattr(outer, name).eq(getattr(inner, name))
        else:
            m.d.comb += getattr(inner, name).eq(getattr(outer, name))


def word_layout(data_width: int) -> data.StructLayout:
    """Payload of the output stream: one data word and ``last`` on the request's final word."""
    return data.StructLayout({"data": unsigned(data_width), "last": 1})


class AxiWeightReader(wiring.Component):
    """Reads ``request.bytes`` bytes at ``region.base + request.offset`` over an AXI4 read port
    and sends them out as data-width words, the lowest address first, little-endian within a word.

    A ``start`` pulse while idle takes ``region`` and ``request`` (held by the caller's
    registers): a request that is empty, leaves ``[base, base + length)`` or is not aligned to
    the data width in address or size is refused at once (``done`` the next cycle with
    OUT_OF_RANGE, ``busy`` never rises, no AR).  Otherwise ``busy`` rises, INCR bursts of at most
    ``max_burst`` beats go out (never across 4 KiB, at most ``outstanding`` in flight, each only
    when the FIFO has room for it), and the words leave on ``o_stream`` with ``last`` on the
    final one; ``done`` pulses for one cycle after it and ``busy`` falls.  ``error`` is cleared by
    ``start`` and valid from ``done`` until the next ``start``.

    An SLVERR or DECERR beat ends the request: that beat and every later one are dropped (the
    words already in the FIFO too), the outstanding bursts are drained, then ``done`` with the
    error bit; no word with ``last`` is sent.  ``timeout`` (0 = off) ends it with TIMEOUT after
    that many cycles without an AR or R handshake while a burst is outstanding.  ``soft_reset``
    stops a fetch the same way as an error but ends it without ``done``: ``busy`` falls once the
    outstanding bursts are drained.  ``start`` while busy, or with ``soft_reset``, is ignored.

    Parameters
    ----------
    data_width : int
        Bits of ``rdata`` and of an output word: 64 or 128.
    max_burst : int
        Longest burst in beats, 1–256.
    outstanding : int
        Bursts in flight at most, 1–64; the output FIFO holds ``outstanding × max_burst`` words.
    timeout_bits : int
        Width of the ``timeout`` input, 1–32.

    Attributes
    ----------
    beat_bytes : int
        Bytes per beat (``data_width // 8``).
    credits : int
        Words the output FIFO holds (``outstanding × max_burst``).

    Raises
    ------
    ConfigError
        A parameter out of range.
    """

    ISSUE_LATENCY = latency.AXI_READ_ISSUE
    FIFO_LATENCY = latency.AXI_READ_FIFO

    def __init__(self, *, data_width: int, max_burst: int = 64, outstanding: int = 4, timeout_bits: int = 16):
        check_reader_parameters(data_width=data_width, max_burst=max_burst, outstanding=outstanding)
        check_integer("timeout_bits", timeout_bits, low=1, high=32)
        self.data_width = data_width
        self.max_burst = max_burst
        self.outstanding = outstanding
        self.timeout_bits = timeout_bits
        self.beat_bytes = data_width // 8
        self.credits = outstanding * max_burst
        super().__init__({
            "region": In(REGION),
            "request": In(REQUEST),
            "start": In(1),
            "soft_reset": In(1),
            "timeout": In(timeout_bits),
            "busy": Out(1),
            "done": Out(1),
            "error": Out(ERROR),
            "o_stream": Out(stream.Signature(word_layout(data_width))),
            **read_port_members(data_width),
        })

    def elaborate(self, platform):
        m = Module()
        shift = (self.beat_bytes - 1).bit_length()
        page_beats = PAGE_BYTES // self.beat_bytes
        region, request = self.region, self.request

        # -- the request check (in the cycle of ``start``) ---------------------------------
        first_addr = Signal(ADDRESS_BITS + 1)
        region_end = Signal(ADDRESS_BITS + 1)
        request_end = Signal(SIZE_BITS + 1)
        in_range = Signal()
        m.d.comb += [
            first_addr.eq(region.base + request.offset),
            region_end.eq(region.base + region.length),
            request_end.eq(request.offset + request.bytes),
            in_range.eq((request.bytes != 0) & (request_end <= region.length) & (region_end <= 2**ADDRESS_BITS)
                        & (first_addr[:shift] == 0) & (request.bytes[:shift] == 0)),
        ]

        # -- issue side ----------------------------------------------------------------------
        addr = Signal(ADDRESS_BITS)                          # next burst's address
        left = Signal(SIZE_BITS - shift)                     # beats not yet requested
        inflight = Signal(range(self.outstanding + 1))       # bursts loaded, rlast not seen
        credits = Signal(range(self.credits + 1), init=self.credits)
        page_left = Signal(range(page_beats + 1))
        cap = Signal(range(self.max_burst + 1))
        burst = Signal(range(self.max_burst + 1))
        m.d.comb += [
            page_left.eq(page_beats - addr[shift:12]),
            cap.eq(Mux(page_left < self.max_burst, page_left, self.max_burst)),
            burst.eq(Mux(left < cap, left, cap)),
        ]

        arvalid = self.m_axi_arvalid
        ar_fire = arvalid & self.m_axi_arready
        issuing = Signal()
        load = Signal()
        m.d.comb += load.eq(issuing & (left != 0) & (~arvalid | self.m_axi_arready)
                            & (inflight < self.outstanding) & (credits >= burst))
        m.d.comb += [
            self.m_axi_arid.eq(0),
            self.m_axi_arsize.eq(shift),
            self.m_axi_arburst.eq(BURST_INCR),
            self.m_axi_arcache.eq(ARCACHE),
            self.m_axi_arprot.eq(ARPROT),
        ]
        with m.If(load):
            m.d.sync += [arvalid.eq(1), self.m_axi_araddr.eq(addr), self.m_axi_arlen.eq(burst - 1),
                         addr.eq(addr + (burst << shift)), left.eq(left - burst)]
        with m.Elif(ar_fire):
            m.d.sync += arvalid.eq(0)

        # -- receive side ----------------------------------------------------------------------
        r_fire = self.m_axi_rvalid        # rready is tied high: credits leave room for every beat
        r_bad = r_fire & self.m_axi_rresp[1]
        r_end = r_fire & self.m_axi_rlast & (inflight != 0)
        m.d.comb += self.m_axi_rready.eq(1)
        m.d.sync += inflight.eq(inflight + load - r_end)

        flush = Signal()
        # one entry more than the credits: SyncFIFOBuffered refuses a write while its inner
        # memory is full even in a cycle that moves a word to its output register, so with
        # ``credits`` words stored it could refuse a beat the credits had room for; at least 3
        # (an inner memory of one word has a zero-width address, which Verilator refuses)
        words = fifo.SyncFIFOBuffered(width=self.data_width + 1, depth=max(self.credits + 1, 3))
        m.submodules.fifo = ResetInserter({"sync": flush})(words)
        rx_left = Signal.like(left)                          # beats of the request not yet received
        accepting = Signal()
        push = Signal()
        m.d.comb += [
            push.eq(accepting & r_fire & ~r_bad),
            words.w_en.eq(push),
            words.w_data.eq(Cat(self.m_axi_rdata, rx_left == 1)),
        ]
        with m.If(push):
            m.d.sync += rx_left.eq(rx_left - 1)

        sending = Signal()
        o = self.o_stream
        pop = o.valid & o.ready
        m.d.comb += [
            o.valid.eq(sending & words.r_rdy),
            o.payload.eq(words.r_data),
            words.r_en.eq(sending & o.ready),
        ]
        m.d.sync += credits.eq(credits - Mux(load, burst, 0) + pop)

        # -- timeout: cycles without a handshake while a burst is outstanding -----------------
        quiet = Signal(self.timeout_bits)
        waiting = Signal()
        expired = Signal()
        m.d.comb += expired.eq(waiting & ~ar_fire & ~r_fire & (self.timeout != 0) & (quiet == self.timeout - 1))
        with m.If(waiting & ~ar_fire & ~r_fire):
            m.d.sync += quiet.eq(quiet + 1)
        with m.Else():
            m.d.sync += quiet.eq(0)

        # -- control -----------------------------------------------------------------------------
        aborted = Signal()
        m.d.sync += self.done.eq(0)
        errors = Signal(ERROR)
        m.d.comb += [
            errors.slverr.eq(r_fire & (self.m_axi_rresp == 0b10)),
            errors.decerr.eq(r_fire & (self.m_axi_rresp == 0b11)),
        ]

        def give_up():
            # a dead memory: withdraw the pending AR and forget the outstanding bursts
            m.d.comb += flush.eq(1)
            m.d.sync += [self.error.timeout.eq(1), self.done.eq(~aborted & ~self.soft_reset), arvalid.eq(0),
                         inflight.eq(0), credits.eq(self.credits)]
            m.next = "IDLE"

        with m.FSM(name="reader"):
            with m.State("IDLE"):
                with m.If(self.start & ~self.soft_reset):
                    m.d.sync += self.error.eq(0)
                    with m.If(in_range):
                        m.d.sync += [addr.eq(first_addr), left.eq(request.bytes >> shift),
                                     rx_left.eq(request.bytes >> shift), aborted.eq(0)]
                        m.next = "RUN"
                    with m.Else():
                        m.d.sync += [self.error.out_of_range.eq(1), self.done.eq(1)]
            with m.State("RUN"):
                m.d.comb += [self.busy.eq(1), issuing.eq(1), accepting.eq(1), sending.eq(1), waiting.eq(inflight != 0)]
                with m.If(pop & o.payload.last):
                    m.d.sync += self.done.eq(1)
                    m.next = "IDLE"
                with m.Elif(r_bad | self.soft_reset):
                    m.d.sync += [self.error.slverr.eq(errors.slverr), self.error.decerr.eq(errors.decerr),
                                 aborted.eq(self.soft_reset)]
                    m.next = "DRAIN"
                with m.Elif(expired):
                    give_up()
            with m.State("DRAIN"):
                m.d.comb += [self.busy.eq(1), flush.eq(1), waiting.eq(inflight != 0)]
                m.d.sync += [self.error.slverr.eq(self.error.slverr | errors.slverr),
                             self.error.decerr.eq(self.error.decerr | errors.decerr)]
                with m.If(self.soft_reset):
                    m.d.sync += aborted.eq(1)
                with m.If(inflight == 0):
                    m.d.sync += [self.done.eq(~aborted & ~self.soft_reset), credits.eq(self.credits)]
                    m.next = "IDLE"
                with m.Elif(expired):
                    give_up()
        return m
