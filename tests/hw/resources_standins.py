"""Small Amaranth designs whose Xilinx mapping is known, for the Yosys resource tests."""

from __future__ import annotations

import contextlib
import fcntl
from pathlib import Path

from amaranth import Module, Signal, signed, unsigned
from amaranth.back import verilog
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out


class KnownBank(wiring.Component):
    """Registered signed products a_i × b_i (one DSP slice each when they fit one DSP) and one
    simple-dual-port memory (synchronous write and read) per (depth, width)."""

    def __init__(self, *, widths=(), geometries=()):
        self.widths = tuple(widths)
        self.geometries = tuple(geometries)
        members = {}
        for i, (a, b) in enumerate(self.widths):
            members[f"a{i}"] = In(signed(a))
            members[f"b{i}"] = In(signed(b))
            members[f"p{i}"] = Out(signed(a + b))
        for i, (depth, width) in enumerate(self.geometries):
            members[f"waddr{i}"] = In(range(depth))
            members[f"raddr{i}"] = In(range(depth))
            members[f"we{i}"] = In(1)
            members[f"wdata{i}"] = In(width)
            members[f"rdata{i}"] = Out(width)
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        for i in range(len(self.widths)):
            a, b = Signal.like(getattr(self, f"a{i}")), Signal.like(getattr(self, f"b{i}"))
            m.d.sync += [a.eq(getattr(self, f"a{i}")), b.eq(getattr(self, f"b{i}")),
                         getattr(self, f"p{i}").eq(a * b)]
        for i, (depth, width) in enumerate(self.geometries):
            m.submodules[f"mem{i}"] = mem = memory.Memory(shape=unsigned(width), depth=depth, init=[])
            wr, rd = mem.write_port(), mem.read_port()
            m.d.comb += [wr.addr.eq(getattr(self, f"waddr{i}")), wr.data.eq(getattr(self, f"wdata{i}")),
                         wr.en.eq(getattr(self, f"we{i}")), rd.addr.eq(getattr(self, f"raddr{i}")),
                         getattr(self, f"rdata{i}").eq(rd.data)]
        return m


class MacArray(wiring.Component):
    """P lanes of w × x multiply-accumulate, weights from one P·w-bit wide memory (the shape of
    the accelerator's engine)."""

    def __init__(self, *, lanes, depth, weight_bits=4, act_bits=8, acc_bits=24):
        self.lanes, self.depth, self.weight_bits = lanes, depth, weight_bits
        super().__init__({
            "x": In(signed(act_bits)), "addr": In(range(depth)), "clear": In(1),
            "we": In(1), "waddr": In(range(depth)), "wdata": In(lanes * weight_bits),
            "acc": Out(signed(acc_bits)).array(lanes),
        })

    def elaborate(self, platform):
        m = Module()
        wb = self.weight_bits
        m.submodules.wmem = wmem = memory.Memory(shape=unsigned(self.lanes * wb), depth=self.depth, init=[])
        wr, rd = wmem.write_port(), wmem.read_port()
        m.d.comb += [wr.addr.eq(self.waddr), wr.data.eq(self.wdata), wr.en.eq(self.we), rd.addr.eq(self.addr)]
        x = Signal.like(self.x)
        m.d.sync += x.eq(self.x)
        for p in range(self.lanes):
            product = Signal(signed(wb + len(self.x)), name=f"product{p}")
            m.d.sync += product.eq(rd.data[p * wb:(p + 1) * wb].as_signed() * x)
            with m.If(self.clear):
                m.d.sync += self.acc[p].eq(0)
            with m.Else():
                m.d.sync += self.acc[p].eq(self.acc[p] + product)
        return m


def write_verilog(component, path: Path, *, name: str = "top") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(verilog.convert(component, name=name, emit_src=False))
    return path


@contextlib.contextmanager
def shared_yosys_cache(request, tmp_path_factory, name: str):
    """A Yosys cache folder shared by all pytest-xdist workers of one run, held under a lock, so
    that a session fixture's synthesis runs once per run rather than once per worker."""
    base = tmp_path_factory.getbasetemp()
    if hasattr(request.config, "workerinput"):
        base = base.parent      # the run's common folder above the per-worker ones
    folder = base / name
    folder.mkdir(parents=True, exist_ok=True)
    with open(base / f"{name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield folder
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
