"""The DDR row fetcher: fills a double buffer of weight rows from DDR, one row group at a time,
in the order the column scheduler consumes them (residencies ``stream`` and ``all`` of
:mod:`lstmfpga.hw.ddr_schedule`), through an
:class:`~lstmfpga.hw.rtl.axi_weight_reader.AxiWeightReader`.

DDR layout: :mod:`lstmfpga.foundation.hw.ddr_image` (the on-chip weight memory's rows, each
padded to whole port beats, layer after layer from offset 0 of the region).
"""

from __future__ import annotations

from amaranth import Array, Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from lstmfpga.foundation.hw.ddr_image import layer_offsets, row_bytes
from lstmfpga.hw.ddr_model import SIZE_BITS
from lstmfpga.hw.rtl.axi_weight_reader import ERROR, REGION, AxiWeightReader, forward_axi, read_port_members
from lstmfpga.hw.rtl.ram import address_bits


def buffer_depth(config) -> int:
    """Rows of the double buffer: two halves of the longest fetch (``config.fetch_half_rows``)."""
    return 2 * config.fetch_half_rows


class DdrRowFetcher(wiring.Component):
    """Fetches every row group of a run of ``steps`` steps into the halves of a double buffer.

    ``start`` begins a run: group by group (layers, then steps, then row groups, as the column
    scheduler walks them) it waits for the next half to be free, reads the group's K_l rows
    (one :class:`AxiWeightReader` request; with an input pass, ``config.input_pass``, a layer's
    groups' X_l rows of W_x once, then per step the groups' H_c rows of W_h unless W_h stays on
    chip (``wx``), each group's X_l rows in DDR before its H_c rows), writes row k of the group to
    ``write`` address
    ``half·K_max + k`` and then sets ``full[half]``.  ``release`` frees the halves in the same
    order, one per pulse (the scheduler pulses it when a group's last column has issued).  After
    the run's last group ``done`` pulses.  A reader error ends the run (``done``, ``error``);
    ``flush`` stops it (the reader drains, no ``done``) and empties the buffer.

    Parameters
    ----------
    config : AcceleratorConfig
    data_width, max_burst, outstanding, timeout_bits :
        The reader's (:class:`AxiWeightReader`, which validates them).
    """

    def __init__(self, *, config, data_width: int = 128, max_burst: int = 64, outstanding: int = 4,
                 timeout_bits: int = 16):
        self.config = config
        self.reader = AxiWeightReader(data_width=data_width, max_burst=max_burst, outstanding=outstanding,
                                      timeout_bits=timeout_bits)
        self.data_width = data_width
        self.row_beats = row_bytes(config, data_width) // (data_width // 8)
        row = config.lanes * config.weight_bits
        super().__init__({
            "start": In(1), "steps": In(5), "flush": In(1), "release": In(1),
            "region": In(REGION), "timeout": In(timeout_bits),
            "full": Out(2), "busy": Out(1), "done": Out(1), "error": Out(ERROR),
            "write": In(memory.WritePort.Signature(addr_width=address_bits(buffer_depth(config)),
                                                    shape=unsigned(row))),
            **read_port_members(data_width),
        })

    def elaborate(self, platform):
        m = Module()
        cfg, reader = self.config, self.reader
        m.submodules.reader = reader
        forward_axi(m, self, reader)
        m.d.comb += [reader.region.eq(self.region), reader.timeout.eq(self.timeout),
                     reader.soft_reset.eq(self.flush), self.error.eq(reader.error)]

        L, G = cfg.num_layers, cfg.groups
        k_max = buffer_depth(cfg) // 2
        rb = row_bytes(cfg, self.data_width)
        passes = cfg.input_pass
        group_bytes = Array(Const(cfg.issued_columns(layer) * rb, SIZE_BITS) for layer in range(L))
        x_bytes = Array(Const(cfg.x_columns(layer) * rb, SIZE_BITS) for layer in range(L))
        h_bytes = Const(cfg.h_columns * rb, SIZE_BITS)
        bases = layer_offsets(cfg, self.data_width)
        layer_base = Array(Const(offset, SIZE_BITS) for offset in bases)

        lyr, t, grp = Signal(range(L + 1)), Signal(5), Signal(range(G + 1))
        inpass = Signal()                       # the layer's W_x rows, once (an input pass)
        last_t = Signal(5)
        offset = Signal(SIZE_BITS)              # the group's first byte in the region
        half, release_half = Signal(), Signal()
        full = Signal(2)
        m.d.comb += self.full.eq(full)
        with m.If(self.release):
            m.d.sync += [release_half.eq(~release_half), full.bit_select(release_half, 1).eq(0)]

        # rows: the reader's words, ``row_beats`` to a row (beat 0 in the low bits)
        word = reader.o_stream
        m.d.comb += word.ready.eq(1)
        beats = Signal(self.data_width * self.row_beats)
        beat = Signal(range(self.row_beats + 1))
        k = Signal(range(k_max + 1))
        assembled = Cat(beats[self.data_width:], word.payload.data) if self.row_beats > 1 else word.payload.data
        row_done = Signal()
        m.d.comb += row_done.eq(word.valid & (beat == self.row_beats - 1))
        with m.If(word.valid):
            m.d.sync += [beats.eq(assembled), beat.eq(beat + 1)]
            with m.If(row_done):
                m.d.sync += beat.eq(0)
        m.d.sync += [self.write.en.eq(row_done), self.write.data.eq(assembled),
                     self.write.addr.eq(Mux(half, k_max + k, k))]
        with m.If(row_done):
            m.d.sync += k.eq(k + 1)

        m.d.comb += [reader.request.offset.eq(offset),
                     reader.request.bytes.eq(Mux(inpass, x_bytes[lyr], h_bytes) if passes else group_bytes[lyr])]
        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.start & ~self.flush):
                    m.d.sync += [lyr.eq(0), t.eq(0), grp.eq(0), offset.eq(0), half.eq(0),
                                 *([inpass.eq(1)] if passes else []),
                                 release_half.eq(0), full.eq(0), last_t.eq(self.steps - 1), self.busy.eq(1)]
                    m.next = "WAIT"
            with m.State("WAIT"):
                # a flushed request may still be draining in the reader
                with m.If(self.flush):
                    m.next = "IDLE"
                with m.Elif(~full.bit_select(half, 1) & ~reader.busy):
                    m.d.comb += reader.start.eq(1)
                    m.d.sync += [k.eq(0), beat.eq(0)]
                    m.next = "FETCH"
            with m.State("FETCH"):
                with m.If(self.flush):
                    m.next = "IDLE"
                with m.Elif(reader.done & (reader.error.as_value() != 0)):
                    m.next = "END"
                with m.Elif(reader.done):
                    m.next = "FILLED"
            with m.State("FILLED"):
                # the group's last row left the write register: its half is full from the next cycle
                m.d.sync += [full.bit_select(half, 1).eq(1), half.eq(~half)]
                with m.If(self.flush):
                    m.next = "IDLE"
                if cfg.resident_h_rows:
                    with m.Elif(grp == G - 1):
                        # W_h is on chip: the next layer's input pass
                        m.d.sync += [grp.eq(0), lyr.eq(lyr + 1), offset.eq(layer_base[lyr + 1])]
                        with m.If(lyr == L - 1):
                            m.next = "END"
                        with m.Else():
                            m.next = "WAIT"
                elif passes:
                    with m.Elif(inpass & (grp == G - 1)):
                        # the recurrence's step 0: each group's W_h rows sit after its W_x rows
                        m.d.sync += [grp.eq(0), inpass.eq(0), offset.eq(layer_base[lyr] + x_bytes[lyr])]
                        m.next = "WAIT"
                with m.Elif(grp == G - 1):
                    m.d.sync += grp.eq(0)
                    with m.If(t == last_t):
                        m.d.sync += [t.eq(0), lyr.eq(lyr + 1), offset.eq(layer_base[lyr + 1]),
                                     *([inpass.eq(1)] if passes else [])]
                        with m.If(lyr == L - 1):
                            m.next = "END"
                        with m.Else():
                            m.next = "WAIT"
                    with m.Else():
                        # the layer's rows again
                        m.d.sync += [t.eq(t + 1),
                                     offset.eq(layer_base[lyr] + x_bytes[lyr] if passes else layer_base[lyr])]
                        m.next = "WAIT"
                with m.Else():
                    m.d.sync += [grp.eq(grp + 1), offset.eq(offset + group_bytes[lyr])]
                    m.next = "WAIT"
            with m.State("END"):
                m.d.comb += self.done.eq(1)
                m.d.sync += self.busy.eq(0)
                m.next = "IDLE"
        with m.If(self.flush):
            m.d.sync += [full.eq(0), self.busy.eq(0)]
        return m
