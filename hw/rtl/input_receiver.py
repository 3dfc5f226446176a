"""The input receiver: stores one run's input packet where the engine (full mode) or the tail
(split mode) reads it."""

from __future__ import annotations

from amaranth import Module, Signal, unsigned
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

from lstmfpga.foundation.hw import stream_format
from lstmfpga.hw.rtl.payloads import beat_layout, input_buffer_depth
from lstmfpga.hw.rtl.ram import address_bits
from lstmfpga.hw.rtl.tail_unit import preactivation_port_shapes


class InputReceiver(wiring.Component):
    """Counts the beats of an input packet of ``steps`` timesteps and stores them in order, one
    beat per cycle (a batch of B sequences of T steps is a packet of T·B steps, step t of
    sequence b the packet's step t·B + b).

    ``begin`` (with ``steps``) starts a packet.  Full mode: beat n goes to ``input_write`` at
    address n (the input buffer, one ``stream_width``-bit word per beat).  Split mode: beat n
    holds the 32-bit lanes m = n·B … n·B + B − 1 (B = ``stream_width // 32``), lane m being gate
    lane m mod 4 of pre-activation slot m div 4; a beat never spans two slots, as B divides 4
    (``pre_write``, the tail's ports of
    :func:`~lstmfpga.hw.rtl.tail_unit.preactivation_port_shapes`).  ``final`` is set while the
    next beat is the packet's last by count; ``in_packet`` once the first beat has arrived;
    ``received`` counts the beats stored (full mode: the input-buffer words the engine may read).
    Whether TLAST agrees with the count is the run controller's to judge.

    Parameters
    ----------
    config : AcceleratorConfig
    """

    def __init__(self, *, config):
        self.config = config
        ports = {
            "i_stream": In(stream.Signature(beat_layout(config.stream_width), always_ready=True)),
            "begin": In(1), "steps": In(max(8, config.max_run_steps.bit_length() + 2)),
            "in_packet": Out(1), "final": Out(1),
        }
        if config.mode == "full":
            ports["received"] = Out(range(input_buffer_depth(config) + 1))
        if config.mode == "split":
            ports["pre_write"] = Out(wiring.Signature({name: Out(width) for name, width
                                                       in preactivation_port_shapes(config).items()}))
        else:
            depth = input_buffer_depth(config)
            ports["input_write"] = In(memory.WritePort.Signature(addr_width=address_bits(depth),
                                                                 shape=unsigned(config.stream_width)))
        super().__init__(ports)

    def elaborate(self, platform):
        m = Module()
        wps = stream_format.input_beats_per_step(self.config)
        word = self.i_stream.payload.data
        arrives = self.i_stream.valid

        # final and in_packet are registers, computed a beat ahead: they decide the controller's
        # TLAST check, whose verdict reaches the engine and the scheduler in the same cycle
        total = self.config.max_run_steps * wps
        word_count = Signal(range(total + 1))
        left = Signal(range(total + 1))          # beats after the next one
        with m.If(self.begin):
            m.d.sync += [word_count.eq(0), left.eq(self.steps * wps - 1), self.in_packet.eq(0),
                         self.final.eq(self.steps * wps == 1)]
        with m.Elif(arrives):
            m.d.sync += [word_count.eq(word_count + 1), left.eq(left - 1), self.in_packet.eq(1),
                         self.final.eq(left == 1)]

        if self.config.mode == "split":
            pre = self.pre_write
            per_slot = (4 * 32 // self.config.stream_width).bit_length() - 1   # log2(beats per slot)
            m.d.comb += [pre.pre_we.eq(arrives), pre.pre_addr.eq(word_count >> per_slot), pre.pre_data.eq(word)]
            if per_slot:
                m.d.comb += pre.pre_lane.eq(word_count[:per_slot] << (2 - per_slot))
        else:
            m.d.comb += [self.input_write.addr.eq(word_count), self.input_write.data.eq(word),
                         self.input_write.en.eq(arrives), self.received.eq(word_count)]
        return m
