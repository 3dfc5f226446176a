"""The output sender: the last layer's h codes packed into beat-wide words as the tail produces
them and sent one beat per cycle — with weights on chip as soon as each step's words are written —
with the logits after them, as one packet."""

from __future__ import annotations

from amaranth import Array, Cat, Const, Module, Mux, ResetInserter, Signal, signed, unsigned
from amaranth.lib import fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from lstmfpga.foundation.hw import stream_format
from lstmfpga.hw import latency
from lstmfpga.hw.rtl.payloads import beat_layout, unit_index_shape
from lstmfpga.hw.rtl.ram import ram

#: Beats the send FIFO holds: the read pipeline's depth and one more, so a stall-free stream sends a
#: beat every cycle.
FIFO_DEPTH = latency.OUTPUT_FILL + 1


class OutputSender(wiring.Component):
    """Packs the last layer's h codes into an output word buffer and sends the output packet of a
    run of ``steps`` timesteps on ``o_stream``.

    ``clear`` (a cycle after the run's compute start) rewinds the packer; then each ``h_valid``
    writes (a cycle later) ``h_code`` (of unit ``h_unit``) into byte ``h_unit`` mod W of word ``h_unit`` div W of
    its sequence's current step (W bytes a word), a step's codes in ``output_step_beats`` words, its
    last word only partly written; the step moves on with its last unit (the tail produces a
    sequence's codes unit after unit, step after step).  With two tail units ``h_valid2`` adds
    ``h_code2``, the next unit's code, in the byte after (units come in pairs 2j, 2j + 1, so a pair
    never straddles a word).  With a batch (``config.max_batch`` > 1) sequence b's steps fill the
    words from b·T·``output_step_beats`` on (``h_sequence``).  ``start`` (compute finished) begins
    the packet: for each sequence its words, then its logits (``num_classes`` > 0), ``stream_width
    // 32`` per beat (zero padding past C).  With ``config.early_output`` (weights on chip) the
    packet begins with ``clear`` instead: once ``input_in`` (the run's input packet is in, so no
    input fault can end the run) a word is sent as soon as its step's last unit is in the buffer,
    while later steps compute; the logits, and without a classifier the packet's last word, wait
    for ``start``.  One buffer read per cycle through a registered read
    and its registered data, the bytes past H of a step's last word masked to zero, into a small
    FIFO that drives ``o_stream``, so the first beat is valid
    :data:`~lstmfpga.hw.latency.OUTPUT_FILL` cycles after the first issue and a stall-free stream
    takes a beat every cycle.  TLAST marks the packet's final beat; ``finished`` is set in the cycle
    that beat is accepted.  ``abort`` empties the sender at once; a beat accepted in that cycle
    does not count.

    Parameters
    ----------
    config : AcceleratorConfig
    """

    def __init__(self, *, config):
        self.config = config
        super().__init__({
            "clear": In(1), "h_valid": In(1), "h_code": In(signed(8)), "h_unit": In(unit_index_shape(config)),
            **({"h_valid2": In(1), "h_code2": In(signed(8))} if config.tail_units > 1 else {}),
            **({"h_sequence": In(range(config.max_batch)), "batch": In(range(config.max_batch + 1))}
               if config.max_batch > 1 else {}),
            "start": In(1), "abort": In(1), "steps": In(5),
            **({"input_in": In(1)} if config.early_output else {}),
            "logits": In(unsigned(32 * max(config.num_classes, 1) * config.max_batch)),
            "o_stream": Out(stream.Signature(beat_layout(config.stream_width))),
            "finished": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.config
        H, C = cfg.hidden_size, cfg.num_classes
        osb = stream_format.output_step_beats(cfg)
        bpw = cfg.bytes_per_word
        lanes = stream_format.lanes_per_beat(cfg)
        logit_beats = stream_format.output_logit_beats(cfg)
        B_max = cfg.max_batch
        words = cfg.max_run_steps * osb
        m.submodules.word_buf = word_buf = ram(shape=unsigned(cfg.stream_width), depth=words)
        write = word_buf.write_port(granularity=8)
        read = word_buf.read_port()
        early = cfg.early_output
        assert not (early and cfg.max_batch > 1), "a batch needs weights in DDR"

        # -- packer: the word of each sequence's current step, the unit's word and byte in it -------
        step_word = [Signal(range(words + 1), name=f"step_word{b}") for b in range(B_max)]
        sequence = self.h_sequence if B_max > 1 else Const(0)
        TU = cfg.tail_units
        slots = bpw // TU          # a slot holds TU codes (a pair's second only with h_valid2)
        codes = [self.h_code] + ([self.h_code2] if TU > 1 else [])
        valids = [self.h_valid] + ([self.h_valid2] if TU > 1 else [])
        word_bits = (bpw - 1).bit_length()
        slot = self.h_unit[:word_bits] >> (TU - 1)
        lane = Signal(slots)
        m.d.comb += lane.eq(1 << slot)
        # the write a cycle later, from registers: the address sum stays off the block RAM's ports
        m.d.sync += [write.addr.eq(Array(step_word)[sequence] + (self.h_unit >> word_bits)),
                     write.data.eq(Cat(*codes).as_unsigned().replicate(slots)),
                     write.en.eq(Cat(*[Cat(*[bit & v for v in valids]) for bit in lane]))]
        step_end = Const(1) if H <= TU else self.h_unit >= H - TU   # a constant compare is a lint error
        with m.If(self.clear):
            # sequence b's steps from word b·T·osb on
            m.d.sync += [word.eq(b * osb * self.steps) for b, word in enumerate(step_word)]
        with m.Elif(self.h_valid & step_end):
            for b, word in enumerate(step_word):
                with m.If(sequence == b):
                    m.d.sync += word.eq(word + osb)
        # the words of the finished steps, a cycle behind the count: a step's last write (a register
        # after its h_valid) is in the buffer by the time a read may see it.  Without a classifier
        # the packet's last word is not counted: it waits for the run's end, so that the run
        # controller sees the final beat in OUTPUT.
        written = Signal(range(words + 1))
        if C == 0 and early:
            cap = Signal(range(words + 1))              # T·osb − 1, set with clear
            with m.If(self.clear):
                m.d.sync += cap.eq(self.steps * osb - 1)
            m.d.sync += written.eq(Mux(self.clear, 0, Mux(step_word[0] > cap, cap, step_word[0])))
        else:
            m.d.sync += written.eq(Mux(self.clear, 0, step_word[0]))
        # the run's compute has finished: every word is written, the logits are final
        computed = Signal()
        with m.If(self.start):
            m.d.sync += computed.eq(1)
        with m.Elif(self.clear | self.abort):
            m.d.sync += computed.eq(0)

        # -- send: issue → registered read → FIFO → o_stream ----------------------------------------
        m.submodules.fifo = out_fifo = ResetInserter(self.abort)(
            fifo.SyncFIFO(width=cfg.stream_width + 1, depth=FIFO_DEPTH))
        beat = self.o_stream.payload
        m.d.comb += [self.o_stream.valid.eq(out_fifo.r_rdy), Cat(beat.data, beat.last).eq(out_fifo.r_data),
                     out_fifo.r_en.eq(self.o_stream.ready & ~self.abort),
                     self.finished.eq(self.o_stream.valid & self.o_stream.ready & beat.last)]

        t, w = Signal(5), Signal(range(max(osb, 2)))   # step and word of the h word issued next
        last_t = Signal(5)                             # steps − 1, registered at start
        logit = Signal(range(max(logit_beats, 2)))   # logit beat issued next (no zero-width signals)
        seq = Signal(range(max(B_max, 2)))             # the sequence whose beats are issued
        seq_last = Signal()                            # seq == batch − 1
        batch = self.batch if B_max > 1 else Const(1)
        raddr = Signal(range(words + 1))
        # stage 1: the read is under way; stage 2: its data registered as it leaves the block RAM
        # (no output register there, and its clock-to-out is most of a cycle: no logic before the
        # flip-flop); stage 3: the word masked (the bytes past H of a step's last word, or all of it
        # for a logit beat) or the logit beat, both chosen at issue
        v1, last1 = Signal(), Signal()
        v2, last2, data2 = Signal(), Signal(), Signal(cfg.stream_width, reset_less=True)
        v3, last3, data3 = Signal(), Signal(), Signal(cfg.stream_width)
        in_flight = Signal(range(FIFO_DEPTH + 4))
        m.d.comb += [in_flight.eq(out_fifo.level + v1 + v2 + v3), read.addr.eq(raddr),
                     out_fifo.w_en.eq(v3), out_fifo.w_data.eq(Cat(data3, last3))]
        issue = Signal()
        m.d.sync += [v1.eq(issue), v2.eq(v1), v3.eq(v2), last2.eq(last1), last3.eq(last2)]
        tail_bytes = H - (osb - 1) * bpw
        keep = Const(int.from_bytes(b"\xff" * tail_bytes, "little"), cfg.stream_width)
        mask1, logit_word1 = Signal(cfg.stream_width), Signal(cfg.stream_width)
        mask2, logit_word2 = Signal(cfg.stream_width), Signal(cfg.stream_width)
        m.d.sync += [data2.eq(read.data), mask2.eq(mask1), logit_word2.eq(logit_word1),
                     data3.eq((data2 & mask2) | logit_word2)]
        if C:
            # a sequence's logit beats: its C lanes, zero past them
            logit_lanes = [[self.logits.word_select(b * C + i, 32) if i < C else Const(0, 32)
                            for i in range(logit_beats * lanes)] for b in range(B_max)]
            logit_beat = Array(Array(Cat(*seq_lanes[lanes * n:lanes * (n + 1)]) for n in range(logit_beats))
                               for seq_lanes in logit_lanes)

        room = Signal()
        m.d.comb += room.eq(in_flight < FIFO_DEPTH)
        # whether word raddr is written, from flip-flops: the compares a cycle ahead, for raddr as it
        # is and one past it, chosen by whether a word issued (a compare before the issue's
        # fan-out to the read pipeline's enables set the clock at P = 64: 115.9 MHz)
        here_ok, next_ok, advanced = Signal(), Signal(), Signal()
        m.d.sync += [here_ok.eq(~self.clear & (raddr < written)), next_ok.eq(~self.clear & (raddr + 1 < written)),
                     advanced.eq(0)]
        word_ok = Mux(advanced, next_ok, here_ok)
        begin = [t.eq(0), w.eq(0), logit.eq(0), raddr.eq(0), last_t.eq(self.steps - 1), seq.eq(0),
                 seq_last.eq(batch == 1)]
        with m.FSM() as fsm:
            with m.State("IDLE"):
                if not early:
                    with m.If(self.start):
                        m.d.sync += begin
                        m.next = "WORDS"

            def next_sequence():
                m.d.sync += [seq.eq(seq + 1), seq_last.eq(seq + 2 == batch), t.eq(0), w.eq(0), logit.eq(0)]

            with m.State("WORDS"):
                last_word = (t == last_t) & (w == osb - 1)
                m.d.comb += issue.eq(room & (computed | (self.input_in & word_ok)) if early else room)
                with m.If(issue):
                    m.d.sync += [raddr.eq(raddr + 1), advanced.eq(~self.clear), w.eq(Mux(w == osb - 1, 0, w + 1)),
                                 mask1.eq(Mux(w == osb - 1, keep, ~Const(0, cfg.stream_width))), logit_word1.eq(0),
                                 last1.eq(last_word & seq_last if C == 0 else 0)]
                    with m.If(w == osb - 1):
                        m.d.sync += t.eq(t + 1)
                    with m.If(last_word):
                        if C:
                            m.next = "LOGITS"
                        else:
                            next_sequence()
                            with m.If(seq_last):
                                m.next = "IDLE"

            if C:
                with m.State("LOGITS"):
                    m.d.comb += issue.eq(room & computed)
                    with m.If(issue):
                        m.d.sync += [logit.eq(logit + 1), mask1.eq(0), logit_word1.eq(logit_beat[seq][logit]),
                                     last1.eq((logit == logit_beats - 1) & seq_last)]
                        with m.If(logit == logit_beats - 1):
                            next_sequence()
                            m.next = "WORDS"
                            with m.If(seq_last):
                                m.next = "IDLE"

        if early:
            # a run's packet begins with its clear, in any state: a run that ended on an input fault
            # left the sender waiting for words that never came
            with m.If(self.clear):
                m.d.sync += [*begin, fsm.state.eq(fsm.encoding["WORDS"])]
        with m.If(self.abort):
            m.d.sync += [fsm.state.eq(fsm.encoding["IDLE"]), v1.eq(0), v2.eq(0), v3.eq(0)]
        return m
