"""A register slice for a stream port: both handshake directions from flip-flops."""

from __future__ import annotations

from amaranth import Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from lstmfpga.hw import latency


class StreamRegister(wiring.Component):
    """Passes ``i_stream`` to ``o_stream`` through two payload registers written in turn.

    ``i_stream.ready`` (a register is free) and ``o_stream.valid`` (one holds a beat) follow a
    count, and ``o_stream.payload`` is the older register's value: neither port's handshake
    reaches the other combinationally, which on a core's AXI-Stream ports keeps the bus fabric's
    TREADY/TVALID out of the core's paths.  The payload registers are enabled by the input side
    alone (the receiver's ready moves only the count and the read pointer), so their enable net
    stays short wherever the data's pins are.  A beat leaves
    :data:`~lstmfpga.hw.latency.STREAM_REGISTER` cycle after it was taken at the earliest; a stream
    that never stalls moves a beat every cycle, and nothing is dropped or reordered under
    backpressure.

    With ``gated``, an ``accept`` input: beats are taken only while it is high, and whatever the
    slice holds is dropped the cycle after it is low, so that a receiver that stops wanting beats
    (a packet ended, a fault, a reset) leaves none of the sender's in between.

    Parameters
    ----------
    payload_shape : shape-like
        The beats' payload (a layout, as :func:`~lstmfpga.hw.rtl.payloads.beat_layout` gives).
    gated : bool
        Add the ``accept`` input.
    """

    LATENCY = latency.STREAM_REGISTER

    def __init__(self, *, payload_shape, gated=False):
        self.gated = gated
        super().__init__({
            "i_stream": In(stream.Signature(payload_shape)),
            "o_stream": Out(stream.Signature(payload_shape)),
            **({"accept": In(1)} if gated else {}),
        })

    def elaborate(self, platform):
        m = Module()
        i, o = self.i_stream, self.o_stream
        slots = [Signal.like(i.payload, reset_less=True, name=f"slot{k}") for k in range(2)]
        write, read = Signal(), Signal()      # the slot written next, the slot read
        count = Signal(range(3))
        full = Signal()
        push, pop = Signal(), Signal()
        m.d.comb += [i.ready.eq(~full & (self.accept if self.gated else 1)), o.valid.eq(count != 0),
                     o.payload.eq(Mux(read, slots[1], slots[0])),
                     push.eq(i.valid & i.ready), pop.eq(o.valid & o.ready)]
        for k, slot in enumerate(slots):
            with m.If(push & (write == k)):
                m.d.sync += slot.eq(i.payload)
        m.d.sync += [write.eq(write ^ push), read.eq(read ^ pop), count.eq(count + push - pop),
                     full.eq(count + push - pop == 2)]
        if self.gated:
            with m.If(~self.accept):
                m.d.sync += [count.eq(0), full.eq(0), read.eq(write)]
        return m
