"""The weight memory: one P·weight_bits row per issued column, written by the weight loader and
read by the MAC engine, on one read port or folded over both ports of a true-dual-port RAM
(``config.weight_ports``, ``config.fold_lanes``, ``config.fold_rows``)."""

from __future__ import annotations

import dataclasses

from amaranth import Cat, Module, Mux, Signal, unsigned
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import Out

from lstmfpga.hw.rtl.ram import address_bits, ram


@dataclasses.dataclass(frozen=True)
class WeightBank:
    """One RAM of the weight memory: the submodule ``name``, ``depth`` words of ``width`` bits read
    through ``read_ports`` ports, in LUTs when ``distributed``."""

    name: str
    depth: int
    width: int
    read_ports: int
    distributed: bool = False


def folded_rows(config) -> int:
    """Rows whose folded lanes sit on both ports: ``fold_rows``, at most the power of two the row
    address spans (all rows when ``fold_rows`` is 0)."""
    every = 1 << address_bits(config.weight_memory_rows)
    return min(config.fold_rows or every, every)


def weight_banks(config) -> tuple[WeightBank, ...]:
    """The RAMs of the weight memory.

    One port: ``mem``, ``config.weight_memory_rows`` words of P·weight_bits (at least two, as
    :func:`ram` makes them).  Two ports, with L = ``fold_lanes`` (or P) and F = :func:`folded_rows`:
    ``mem`` holds the first L lanes' weights of rows below F in words of half of them, row r's low
    half at word r and its high half at word F + r (F is a power of two: the port's address is the
    row's low bits with one bit on top, so no adder sits on the read path); the same lanes' rows from
    F on, at word r − F, in ``upper_rows_lutram`` (the first ``config.lutram_upper_lanes`` of them,
    in LUTs) and ``upper_rows`` (the others); ``one_port_lanes`` the other lanes' weights of every row.
    """
    rows, row = config.weight_memory_rows, config.lanes * config.weight_bits
    if config.weight_ports == 1:
        return (WeightBank("mem", max(rows, 2), row, 1),)
    folded = (config.fold_lanes or config.lanes) * config.weight_bits
    F = folded_rows(config)
    banks = [WeightBank("mem", 2 * F, folded // 2, 2)]
    if rows > F:
        in_luts = min(config.lutram_upper_lanes * config.weight_bits, folded)
        if in_luts:
            banks.append(WeightBank("upper_rows_lutram", max(rows - F, 2), in_luts, 1, True))
        if in_luts < folded:
            banks.append(WeightBank("upper_rows", max(rows - F, 2), folded - in_luts, 1))
    if folded < row:
        banks.append(WeightBank("one_port_lanes", max(rows, 2), row - folded, 1))
    return tuple(banks)


class WeightMemory(wiring.Component):
    """Rows in through ``write`` (registered on the way: a weight load is not timed, and the
    loader's word strobe stays off the memory's enables), rows out through ``read`` one cycle
    after its address (a synchronous read, as on one port).

    With ``config.weight_ports`` = 2 both ports of the folded RAM read (or write) the two halves of
    its part of one row in the same cycle: each port's address is the row's, so a write and a read
    share the port, and a port does not read while it writes (``en`` low: the RAM's "no change"
    mode), which is the shape Yosys maps to one true-dual-port UltraRAM per 72 bits of each half
    (Vivado's inference of it is not checked here).  The rows past the fold come from their own
    RAM through a multiplexer whose select is registered beside the read.  The core never reads
    while the loader writes.

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
        banks = {bank.name: bank for bank in weight_banks(cfg)}
        mems = {name: ram(shape=unsigned(bank.width), depth=bank.depth, distributed=bank.distributed)
                for name, bank in banks.items()}
        for name, mem in mems.items():
            m.submodules[name] = mem
        addr, data, en = Signal.like(self.write.addr), Signal.like(self.write.data), Signal()
        m.d.sync += [addr.eq(self.write.addr), data.eq(self.write.data), en.eq(self.write.en)]
        if cfg.weight_ports == 1:
            m.d.comb += self.read.data.eq(_one_port(m, mems["mem"], write_to=(addr, data, en),
                                                    read_from=(self.read.addr, self.read.en)))
            return m
        F, half_width = folded_rows(cfg), banks["mem"].width
        f = F.bit_length() - 1
        row = Signal.like(addr)
        m.d.comb += row.eq(Mux(en, addr, self.read.addr))
        halves = []
        for half in range(2):
            write, read = mems["mem"].write_port(), mems["mem"].read_port()
            port_addr = Cat(row[:f], half)
            m.d.comb += [write.addr.eq(port_addr), write.data.eq(data.word_select(half, half_width)),
                         write.en.eq(en & (addr[f:] == 0)),
                         read.addr.eq(port_addr), read.en.eq(self.read.en & ~en)]
            halves.append(read.data)
        folded = Cat(*halves)
        upper_banks = [name for name in ("upper_rows_lutram", "upper_rows") if name in mems]
        if upper_banks:
            # rows F and up at word r − F: F's one bit is above the row's low f bits
            upper, upper_data, low = Signal(), [], 0
            for name in upper_banks:
                width = banks[name].width
                upper_data.append(_one_port(
                    m, mems[name], write_to=(Cat(addr[:f], addr[f:] - 1), data[low:low + width], en & (addr[f:] != 0)),
                    read_from=(Cat(self.read.addr[:f], self.read.addr[f:] - 1), self.read.en)))
                low += width
            with m.If(self.read.en):
                m.d.sync += upper.eq(self.read.addr[f:] != 0)
            folded = Mux(upper, Cat(*upper_data), folded)
        parts = [folded]
        if "one_port_lanes" in mems:
            parts.append(_one_port(m, mems["one_port_lanes"], write_to=(addr, data[2 * half_width:], en),
                                   read_from=(self.read.addr, self.read.en)))
        m.d.comb += self.read.data.eq(Cat(*parts))
        return m


def _one_port(m: Module, mem, *, write_to, read_from):
    """Wire one write port (address, data, enable) and one read port (address, enable) of ``mem``;
    return the read data."""
    write, read = mem.write_port(), mem.read_port()
    (waddr, wdata, wen), (raddr, ren) = write_to, read_from
    m.d.comb += [write.addr.eq(waddr), write.data.eq(wdata), write.en.eq(wen),
                 read.addr.eq(raddr), read.en.eq(ren)]
    return read.data
