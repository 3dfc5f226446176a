"""The output sender: the last layer's h codes, four per word, then the logits, as one packet."""

from __future__ import annotations

from amaranth import Array, Module, Mux, Signal, signed, unsigned
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

from lstmfpga.foundation.hw import stream_format
from lstmfpga.hw.rtl.payloads import beat_layout
from lstmfpga.hw.rtl.ram import address_bits

#: h codes (bytes) per output word.
BYTES_PER_WORD = 4


class OutputSender(wiring.Component):
    """Sends the output packet of a run of ``steps`` timesteps on ``o_stream``.

    ``start`` begins the packet.  For each step the sender reads the step's h codes from the last
    layer's h buffer (``h_read``, one code per cycle, four per word, zero padding past H) and
    sends the word; then (``num_classes`` > 0) one word per logit.  TLAST marks the packet's final
    word; ``finished`` is set in the cycle that word is accepted.  ``reading`` is set while the
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
            "o_stream": Out(stream.Signature(beat_layout(32))),
            "finished": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.config
        H, C = cfg.hidden_size, cfg.num_classes
        osb = stream_format.output_step_beats(cfg)
        per_step = BYTES_PER_WORD * osb           # bytes of one step, padding included
        T = self.steps
        beat = self.o_stream.payload
        accepted = Signal()
        m.d.comb += [accepted.eq(self.o_stream.valid & self.o_stream.ready & ~self.abort),
                     self.finished.eq(self.o_stream.valid & self.o_stream.ready & beat.last)]

        out_t = Signal(5)
        out_idx = Signal(range(per_step + 1))     # byte of the step
        out_rd = Signal(self.h_read.addr.shape())  # h code read next
        out_byte = Signal(3)                      # byte of the word read next
        out_word = Signal(32)
        out_logit = Signal(8)
        read_valid, read_pos, read_pad = Signal(), Signal(2), Signal()
        m.d.comb += self.h_read.addr.eq(out_rd)
        logits = [self.logits[32 * i:32 * (i + 1)] for i in range(max(C, 1))]

        with m.FSM() as fsm:
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [out_t.eq(0), out_idx.eq(0), out_logit.eq(0), out_byte.eq(0), out_rd.eq(0)]
                    m.next = "READ"

            with m.State("READ"):
                m.d.comb += self.reading.eq(1)
                with m.If(out_byte < BYTES_PER_WORD):
                    m.d.sync += [out_byte.eq(out_byte + 1), out_idx.eq(out_idx + 1), read_valid.eq(1),
                                 read_pos.eq(out_byte[:2]), read_pad.eq(out_idx >= H)]
                    with m.If(out_idx < H):
                        m.d.sync += out_rd.eq(out_rd + 1)
                with m.Else():
                    m.d.sync += read_valid.eq(0)
                with m.If(read_valid):
                    m.d.sync += out_word.word_select(read_pos, 8).eq(Mux(read_pad, 0, self.h_read.data))
                with m.If((out_byte == BYTES_PER_WORD) & ~read_valid):
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
                    m.d.comb += [self.o_stream.valid.eq(1), beat.data.eq(Array(logits)[out_logit]),
                                 beat.last.eq(out_logit == C - 1)]
                    with m.If(accepted):
                        m.d.sync += out_logit.eq(out_logit + 1)
                        with m.If(out_logit == C - 1):
                            m.next = "IDLE"

        with m.If(self.abort):
            m.d.sync += fsm.state.eq(fsm.encoding["IDLE"])
        return m
