"""The weight memory: one P·weight_bits row per issued column, written by the weight loader and
read by the MAC engine, on one read port or split into halves over both ports of a
true-dual-port RAM (``config.weight_ports``)."""

from __future__ import annotations

from amaranth import Cat, Module, Mux, Signal, unsigned
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import Out

from lstmfpga.hw.rtl.ram import address_bits, ram


def weight_memory_shape(config) -> tuple[int, int]:
    """(depth, width) of the weight memory's words.

    One port: ``config.weight_memory_rows`` words of P·weight_bits (at least two, as :func:`ram`
    makes them).  Two ports: words of half a row, row r's low half at word r and its high half
    at word 2^a + r (a = the row address width): the port's address is the row's with one bit
    on top, so no adder sits on the read path.
    """
    width = config.lanes * config.weight_bits
    if config.weight_ports == 1:
        return max(config.weight_memory_rows, 2), width
    return 2 << address_bits(config.weight_memory_rows), width // 2


class WeightMemory(wiring.Component):
    """Rows in through ``write`` (registered on the way: a weight load is not timed, and the
    loader's word strobe stays off the memory's enables), rows out through ``read`` one cycle
    after its address (a synchronous read, as on one port).

    With ``config.weight_ports`` = 2 both ports of the RAM read (or write) the two halves of one
    row in the same cycle: each port's address is the row's, so a write and a read share the
    port, and a port does not read while it writes (``en`` low: the RAM's "no change" mode),
    which is the shape Yosys maps to one true-dual-port UltraRAM per 72 bits of each half
    (Vivado's inference of it is not checked here).  The core never reads while the loader
    writes.

    Parameters
    ----------
    config : AcceleratorConfig
    """

    def __init__(self, *, config):
        self.config = config
        a, row = address_bits(config.weight_memory_rows), config.lanes * config.weight_bits
        super().__init__({
            "write": Out(memory.WritePort.Signature(addr_width=a, shape=unsigned(row))),
            "read": Out(memory.ReadPort.Signature(addr_width=a, shape=unsigned(row))),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.config
        depth, width = weight_memory_shape(cfg)
        m.submodules.mem = mem = ram(shape=unsigned(width), depth=depth)
        addr, data, en = Signal.like(self.write.addr), Signal.like(self.write.data), Signal()
        m.d.sync += [addr.eq(self.write.addr), data.eq(self.write.data), en.eq(self.write.en)]
        if cfg.weight_ports == 1:
            write, read = mem.write_port(), mem.read_port()
            m.d.comb += [write.addr.eq(addr), write.data.eq(data), write.en.eq(en),
                         read.addr.eq(self.read.addr), read.en.eq(self.read.en), self.read.data.eq(read.data)]
            return m
        row = Signal.like(addr)
        m.d.comb += row.eq(Mux(en, addr, self.read.addr))
        halves = []
        for half in range(2):
            write, read = mem.write_port(), mem.read_port()
            port_addr = Cat(row, half)
            m.d.comb += [write.addr.eq(port_addr), write.data.eq(data.word_select(half, width)), write.en.eq(en),
                         read.addr.eq(port_addr), read.en.eq(self.read.en & ~en)]
            halves.append(read.data)
        m.d.comb += self.read.data.eq(Cat(*halves))
        return m
