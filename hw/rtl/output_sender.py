"""The output sender: the last layer's h codes, a beat's worth of bytes per beat, then the logits,
as one packet."""

from __future__ import annotations

from amaranth import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

from lstmfpga.foundation.hw import stream_format
from lstmfpga.hw.rtl.payloads import beat_layout, byte_select_bits
from lstmfpga.hw.rtl.ram import address_bits


class OutputSender(wiring.Component):
    """Sends the output packet of a run of ``steps`` timesteps on ``o_stream``.

    ``start`` begins the packet.  For each step the sender reads the step's h codes from the last
    layer's h buffer (``h_read``, one code per cycle, ``stream_width // 8`` per beat, zero padding
    past H) and sends the beat; then (``num_classes`` > 0) the logits, ``stream_width // 32`` per
    beat (zero padding past C).  TLAST marks the packet's final beat; ``finished`` is set in the
    cycle that beat is accepted.  ``reading`` is set while the
    sender owns the h buffers' read address (the engine is idle then).  ``abort`` returns the
    sender to idle at once; a word accepted in that cycle does not advance it.

    Parameters
    ----------
    config : AcceleratorConfig
    """

    def __init__(self, *, config):
        self.config = config
        super().__init__({
            "start": In(1), "abort": In(1), "steps": In(5),
            "h_read": In(memory.ReadPort.Signature(
                addr_width=address_bits(config.max_timesteps * config.hidden_size), shape=signed(8))),
            "logits": In(unsigned(32 * max(config.num_classes, 1))),
            "reading": Out(1),
            "o_stream": Out(stream.Signature(beat_layout(config.stream_width))),
            "finished": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.config
        H, C = cfg.hidden_size, cfg.num_classes
        osb = stream_format.output_step_beats(cfg)
        bpw = cfg.bytes_per_word
        per_step = bpw * osb                      # bytes of one step, padding included
        lanes = stream_format.lanes_per_beat(cfg)
        logit_beats = stream_format.output_logit_beats(cfg)
        T = self.steps
        beat = self.o_stream.payload
        accepted = Signal()
        m.d.comb += [accepted.eq(self.o_stream.valid & self.o_stream.ready & ~self.abort),
                     self.finished.eq(self.o_stream.valid & self.o_stream.ready & beat.last)]

        out_t = Signal(5)
        out_idx = Signal(range(per_step + 1))     # byte of the step
        out_rd = Signal(self.h_read.addr.shape())  # h code read next
        out_byte = Signal(range(bpw + 1))         # byte of the beat read next
        out_word = Signal(cfg.stream_width)
        out_logit = Signal(range(max(logit_beats, 2)))   # logit beat (no zero-width signals in the Verilog)
        read_valid, read_pos, read_pad = Signal(), Signal(byte_select_bits(cfg)), Signal()
        m.d.comb += self.h_read.addr.eq(out_rd)
        logit_lanes = [self.logits[32 * i:32 * (i + 1)] if i < C else Const(0, 32) for i in range(logit_beats * lanes)]
        logit_beat = [Cat(*logit_lanes[lanes * b:lanes * (b + 1)]) for b in range(logit_beats)]

        with m.FSM() as fsm:
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [out_t.eq(0), out_idx.eq(0), out_logit.eq(0), out_byte.eq(0), out_rd.eq(0)]
                    m.next = "READ"

            with m.State("READ"):
                m.d.comb += self.reading.eq(1)
                with m.If(out_byte < bpw):
                    m.d.sync += [out_byte.eq(out_byte + 1), out_idx.eq(out_idx + 1), read_valid.eq(1),
                                 read_pos.eq(out_byte), read_pad.eq(out_idx >= H)]
                    with m.If(out_idx < H):
                        m.d.sync += out_rd.eq(out_rd + 1)
                with m.Else():
                    m.d.sync += read_valid.eq(0)
                with m.If(read_valid):
                    m.d.sync += out_word.word_select(read_pos, 8).eq(Mux(read_pad, 0, self.h_read.data))
                with m.If((out_byte == bpw) & ~read_valid):
                    m.next = "SEND"

            with m.State("SEND"):
                m.d.comb += [self.reading.eq(1), self.o_stream.valid.eq(1), beat.data.eq(out_word)]
                last_h_word = (out_t == T - 1) & (out_idx == per_step)
                if C == 0:
                    m.d.comb += beat.last.eq(last_h_word)
                with m.If(accepted):
                    m.d.sync += [out_byte.eq(0), out_word.eq(0)]
                    with m.If(out_idx == per_step):
                        m.d.sync += [out_idx.eq(0), out_t.eq(out_t + 1)]
                        with m.If(out_t == T - 1):
                            if C == 0:
                                m.next = "IDLE"
                            else:
                                m.next = "LOGITS"
                        with m.Else():
                            m.next = "READ"
                    with m.Else():
                        m.next = "READ"

            if C:
                with m.State("LOGITS"):
                    m.d.comb += [self.o_stream.valid.eq(1), beat.data.eq(Array(logit_beat)[out_logit]),
                                 beat.last.eq(out_logit == logit_beats - 1)]
                    with m.If(accepted):
                        m.d.sync += out_logit.eq(out_logit + 1)
                        with m.If(out_logit == logit_beats - 1):
                            m.next = "IDLE"

        with m.If(self.abort):
            m.d.sync += fsm.state.eq(fsm.encoding["IDLE"])
        return m
