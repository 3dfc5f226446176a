"""W_h kept on chip beside the DDR double buffer (residency ``wx``): the weight image's W_h rows,
picked out of the weight loader's row writes."""

from __future__ import annotations

from amaranth import Array, Const, Module, Signal, unsigned
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from lstmfpga.hw.rtl.ram import address_bits


class ResidentRows(wiring.Component):
    """Writes the W_h rows of the weight image into the weight memory after the double buffer.

    The loader writes the image's rows in order (``image_write``: layer by layer, group by group,
    a group's X_l rows of W_x then its H_c rows of W_h); the W_x rows are dropped (the core fetches
    them from DDR), and the W_h rows go to ``write`` from row 2·``fetch_half_rows`` on, in the same
    order: group g of layer l at 2·``fetch_half_rows`` + (l·G + g)·H_c.  ``begin`` (a weight
    load's start) rewinds the walk.

    Parameters
    ----------
    config : AcceleratorConfig
        A core with ``resident_h_rows``.
    """

    def __init__(self, *, config):
        if not config.resident_h_rows:
            raise ValueError(f"weight_residency {config.weight_residency!r} keeps no W_h rows on chip")
        self.config = config
        row = unsigned(config.lanes * config.weight_bits)
        super().__init__({
            "begin": In(1),
            # (a write port's signature is the memory's side: Out takes writes, In makes them)
            "image_write": Out(memory.WritePort.Signature(addr_width=address_bits(config.weight_depth), shape=row)),
            "write": In(memory.WritePort.Signature(addr_width=address_bits(config.weight_memory_rows), shape=row)),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.config
        L, G = cfg.num_layers, cfg.groups
        x_rows = Array(Const(cfg.x_columns(layer), 16) for layer in range(L))
        k_rows = Array(Const(cfg.issued_columns(layer), 16) for layer in range(L))
        first = 2 * cfg.fetch_half_rows

        lyr = Signal(range(L + 1))
        grp = Signal(range(G + 1))
        k = Signal(range(max(cfg.issued_columns(layer) for layer in range(L)) + 1))
        addr = Signal(range(cfg.weight_memory_rows + 1), init=first)
        m.d.comb += [self.write.addr.eq(addr), self.write.data.eq(self.image_write.data),
                     self.write.en.eq(self.image_write.en & (k >= x_rows[lyr]))]
        with m.If(self.begin):
            m.d.sync += [lyr.eq(0), grp.eq(0), k.eq(0), addr.eq(first)]
        with m.Elif(self.image_write.en):
            m.d.sync += k.eq(k + 1)
            with m.If(self.write.en):
                m.d.sync += addr.eq(addr + 1)
            with m.If(k == k_rows[lyr] - 1):
                m.d.sync += [k.eq(0), grp.eq(grp + 1)]
                with m.If(grp == G - 1):
                    m.d.sync += [grp.eq(0), lyr.eq(lyr + 1)]
        return m
