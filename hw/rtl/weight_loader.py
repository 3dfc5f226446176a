"""The weight loader: checks a weight image's header and checksum while it writes the weight rows
into the weight memory and the parameters into the tail unit."""

from __future__ import annotations

from amaranth import Array, Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

from lstmfpga.foundation.hw import weight_image
from lstmfpga.foundation.hw.register_map import Error
from lstmfpga.hw.rtl.payloads import beat_layout
from lstmfpga.hw.rtl.ram import address_bits
from lstmfpga.hw.rtl.tail_unit import load_port_shapes


def image_sections(config) -> list[tuple[str, int, int]]:
    """(kind, layer, words) of the weight image after the header, in order."""
    sections = []
    for layer in range(config.num_layers):
        for kind, words in weight_image.layer_words(config, layer).items():
            sections.append((kind, layer, words))
    for kind, words in weight_image.classifier_words(config).items():
        sections.append(("cls_" + kind, 0, words))
    sections.append(("checksum", 0, 1))
    return sections


def _rotate_xor(checksum, word):
    """One step of the image checksum (:func:`~lstmfpga.foundation.hw.weight_image.checksum`)."""
    return Cat(checksum[31], checksum[:31]) ^ word


class WeightLoader(wiring.Component):
    """Consumes the words of one weight image (header, sections, checksum) from ``i_stream``.

    The image's 32-bit words are read one per cycle, lane 0 of a beat first, except the header's
    words and the checksum word, which take two (compared in the first, the compare registered):
    a beat of ``stream_width`` bits is held until its last lane is read (``ready`` follows the
    lane count and the loader's phase, registers, never the data).  A weight load is not part of
    a run, so its time does not enter the cycle model.

    ``begin`` starts a new image.  Each word is checked as it arrives; the word that decides the
    load's end decides the verdict, reported the cycle after its beat was accepted (registered: the
    header and checksum compares stay off the run controller's paths): ``finish`` pulses with
    ``fault`` and ``finish_last`` (the beat's TLAST) valid, and in that cycle the loader takes no
    beat.  The words after the deciding one in its beat (padding after the checksum word) are
    ignored.  ``fault`` holds the error bits to report: zero when the image was
    whole and its checksum matched, then ``image_hash`` is the artifact hash from the header.  A
    beat with TLAST that ends before the checksum word ends the load with
    ``Error.WEIGHT_LENGTH``; so does a checksum word whose beat has no TLAST.  ``in_header`` is
    set while the header is being read, ``in_packet`` once the image's first word has arrived.

    Weight rows (``row_words`` words each) go to ``weight_write`` the cycle after their last word,
    every other section to the tail unit's parameter ports (``tail_write``, names of
    :func:`~lstmfpga.hw.rtl.tail_unit.load_port_shapes`) as its words arrive.

    Parameters
    ----------
    config : AcceleratorConfig
    """

    def __init__(self, *, config):
        self.config = config
        P, wb = config.lanes, config.weight_bits
        super().__init__({
            "i_stream": In(stream.Signature(beat_layout(config.stream_width))),
            "begin": In(1),
            "in_header": Out(1), "in_packet": Out(1),
            "finish": Out(1), "fault": Out(16), "finish_last": Out(1), "image_hash": Out(unsigned(256)),
            "weight_write": In(memory.WritePort.Signature(addr_width=address_bits(config.weight_depth),
                                                          shape=unsigned(P * wb))),
            "tail_write": Out(wiring.Signature({name: Out(width)
                                                for name, width in load_port_shapes(config).items()})),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.config
        H, P, wb = cfg.hidden_size, cfg.lanes, cfg.weight_bits
        lanes = cfg.stream_width // 32
        beat = self.i_stream.payload
        # A header word or the checksum word is compared in one cycle (registered) and taken in the
        # next: the 32-bit compares then feed flip-flops, not the verdict's decisions (a weight load
        # is not timed; the header and the checksum are a few words of an image)
        present, arrives = Signal(), Signal()
        looked = Signal()             # the word on the port was compared the cycle before
        slow = Signal()               # the word waits for its compare
        m.d.comb += present.eq(self.i_stream.valid & ~self.finish)
        tail = self.tail_write

        lane = Signal(range(max(lanes, 2)))   # no zero-width signals in the Verilog
        beat_end = Signal()           # the word is its beat's last
        word = Signal(32)
        m.d.comb += [beat_end.eq(lane == lanes - 1), self.i_stream.ready.eq(beat_end & ~self.finish & ~slow),
                     word.eq(beat.data.word_select(lane, 32) if lanes > 1 else beat.data)]
        ended = Signal()              # the load's end was decided by an earlier word of this beat
        ended_fault = Signal(16)
        with m.If(self.begin | (arrives & self.i_stream.ready)):
            m.d.sync += lane.eq(0)
        with m.Elif(arrives):
            m.d.sync += lane.eq(lane + 1)
        last = beat.last              # the packet ends with this word's beat
        packet_end = last & beat_end  # no word follows this one

        sections = image_sections(cfg)
        sec = Signal(range(len(sections) + 1))
        sec_count = Signal(32)
        header_count = Signal(range(weight_image.HEADER_WORDS + 1))
        checksum = Signal(32)
        rw = weight_image.row_words(cfg)
        row_sr = Signal(32 * rw, reset_less=True)
        row_word = Signal(range(rw + 1))
        row_addr = Signal(range(cfg.weight_depth + 1))
        cls_j = Signal(range(H + 1))
        cls_k = Signal(8)

        # in_header (header_count != HEADER_WORDS) and in_packet (header_count != 0 or past the
        # header) are registers kept beside the count: the run controller's watchdog reads them
        in_header = Signal(init=1)
        m.d.comb += self.in_header.eq(in_header)

        # -- header: identity and shape words against this core's, then the hash -------------
        # the expected word and the error its mismatch reports are registers, set a word ahead:
        # the compare reads the data and a flip-flop, not a multiplexer over the header count
        expected = weight_image.header(cfg, "0" * 64)
        checks = [Error.WEIGHT_HEADER if i in weight_image.IDENTITY_WORDS else Error.WEIGHT_SHAPE
                  if i < weight_image.Header.HASH0 else 0 for i in range(weight_image.HEADER_WORDS)]
        expected_words = Array(Const(w, 32) for w in expected + [0])   # the hash words: zeros, unchecked
        check_bits = Array(Const(c, 16) for c in checks + [0])
        expected_word = Signal(32, init=expected[0])
        check = Signal(16, init=checks[0])
        in_hash = Signal()          # the header's hash words are arriving
        bad = Signal(16)
        mismatch, sum_mismatch = Signal(), Signal()     # the compares of the word on the port
        m.d.sync += [mismatch.eq(word != expected_word), sum_mismatch.eq(word != checksum)]
        m.d.comb += bad.eq(Mux(mismatch, check, 0))
        with m.If(in_header & arrives & ~ended):
            m.d.sync += [header_count.eq(header_count + 1), checksum.eq(_rotate_xor(checksum, word)),
                         in_header.eq(header_count != weight_image.HEADER_WORDS - 1), self.in_packet.eq(1),
                         expected_word.eq(expected_words[header_count + 1]), check.eq(check_bits[header_count + 1])]
            with m.If(in_hash):      # the hash words shift in from the top: the first ends in word 0
                m.d.sync += self.image_hash.eq(Cat(self.image_hash[32:], word))
            with m.If(header_count == weight_image.Header.HASH0 - 1):
                m.d.sync += in_hash.eq(1)

        # -- sections ---------------------------------------------------------------------------
        # Where the load stands, as registers set a word ahead: the section's kind and whether the
        # word is its section's or its row's last.  The word strobe into the wide enables (the row
        # shift register, the counters, the writes) then reads flip-flops, not decoders of ``sec``
        # and compares of the counts.
        assert all(words >= 1 for _, _, words in sections)

        def entering(i):
            """(words after the first, first is last, weights, checksum) as section ``i`` begins."""
            kind, _, words = sections[min(i, len(sections) - 1)]
            return words - 1, int(words == 1), int(kind == "weights"), int(kind == "checksum")

        first = entering(0)
        load_word = Signal()
        left = Signal(32, init=first[0])                  # words of the section after this one
        section_end = Signal(init=first[1])               # the word is its section's last
        in_weights = Signal(init=first[2])
        image_end = Signal(init=first[3])
        row_end = Signal(init=rw == 1)                    # the word is its weight row's last
        flags = (left, section_end, in_weights, image_end)
        # the values for the section after section i, at index i (the last one repeated)
        following = [Array(Const(entering(i + 1)[f], flag.shape()) for i in range(len(sections)))
                     for f, flag in enumerate(flags)]
        # (a word past the header and before the checksum is never slow: ``present``, not ``arrives``)
        m.d.comb += load_word.eq(~in_header & present & ~image_end & ~ended)
        m.d.comb += [slow.eq((in_header | image_end) & ~ended & ~looked), arrives.eq(present & ~slow)]
        m.d.sync += looked.eq(present & slow & ~self.begin)
        m.d.comb += [getattr(tail, name).eq(word) for name in load_port_shapes(cfg) if name.endswith("_data")]
        # the row shift register and the row write a cycle behind the word: the strobe's fan-out
        # into the sections' registers then leaves out the row's P·weight_bits flip-flops
        shift, shift_word = Signal(), Signal(32, reset_less=True)
        write_row, write_addr = Signal(), Signal.like(row_addr, reset_less=True)
        m.d.sync += [shift.eq(load_word), shift_word.eq(word),
                     write_row.eq(load_word & in_weights & row_end), write_addr.eq(row_addr)]
        with m.If(shift):
            m.d.sync += row_sr.eq(Cat(row_sr[32:], shift_word))
        m.d.comb += [self.weight_write.addr.eq(write_addr), self.weight_write.en.eq(write_row),
                     self.weight_write.data.eq(Cat(row_sr[32:], shift_word)[:P * wb])]
        with m.Switch(sec):
            for i, (kind, layer, words) in enumerate(sections):
                with m.Case(i):
                    if kind == "bias":
                        m.d.comb += [tail.bias_we.eq(load_word), tail.bias_addr.eq(layer * H + (sec_count >> 2)),
                                     tail.bias_lane.eq(sec_count[:2])]
                    elif kind == "requant":
                        m.d.comb += [tail.param_we.eq(load_word), tail.param_layer.eq(layer),
                                     tail.param_index.eq(sec_count)]
                    elif kind == "gate_tables":
                        m.d.comb += [tail.table_we.eq(load_word), tail.table_gate.eq(sec_count >> cfg.acc_bits),
                                     tail.table_addr.eq((layer << cfg.acc_bits) + sec_count[:cfg.acc_bits])]
                    elif kind == "tanh_c_table":
                        m.d.comb += [tail.tanh_we.eq(load_word),
                                     tail.tanh_addr.eq((layer << cfg.cell_bits) + sec_count)]
                    elif kind == "cls_weights":
                        m.d.comb += [tail.clsw_we.eq(load_word), tail.clsw_addr.eq(cls_j), tail.clsw_lane.eq(cls_k)]
                    elif kind == "cls_bias":
                        m.d.comb += [tail.clsb_we.eq(load_word), tail.clsb_index.eq(sec_count)]
        with m.If(load_word):
            m.d.sync += [sec_count.eq(sec_count + 1), checksum.eq(_rotate_xor(checksum, word)),
                         left.eq(left - 1), section_end.eq(left == 1)]
            m.d.sync += [row_word.eq(row_word + 1), row_end.eq(row_word + 2 == rw)]
            with m.If(in_weights & row_end):
                m.d.sync += [row_word.eq(0), row_end.eq(rw == 1), row_addr.eq(row_addr + 1)]
            m.d.sync += cls_j.eq(cls_j + 1)
            with m.If(cls_j == H - 1):
                m.d.sync += [cls_j.eq(0), cls_k.eq(cls_k + 1)]
            with m.If(section_end):
                m.d.sync += [sec.eq(sec + 1), sec_count.eq(0), row_word.eq(0), row_end.eq(rw == 1), cls_j.eq(0),
                             cls_k.eq(0), *(flag.eq(values[sec]) for flag, values in zip(flags, following))]

        with m.If(self.begin):
            m.d.sync += [*(flag.eq(value) for flag, value in zip(flags, first)), row_end.eq(rw == 1)]
            m.d.sync += [sec.eq(0), sec_count.eq(0), header_count.eq(0), checksum.eq(0), row_word.eq(0),
                         row_addr.eq(0), cls_j.eq(0), cls_k.eq(0), in_header.eq(1), self.in_packet.eq(0),
                         expected_word.eq(expected[0]), check.eq(checks[0]), in_hash.eq(0)]

        # -- verdict of the current word, reported with the last word of its beat --------------------
        decides, verdict = Signal(), Signal(16)
        with m.If(in_header):
            m.d.comb += [decides.eq((bad != 0) | packet_end),
                         verdict.eq(Mux(bad != 0, bad, Error.WEIGHT_LENGTH))]
        with m.Else():
            m.d.comb += [decides.eq(image_end | packet_end),
                         verdict.eq(Mux(image_end, Mux(sum_mismatch, Error.WEIGHT_CHECKSUM, 0) |
                                        Mux(last, 0, Error.WEIGHT_LENGTH), Error.WEIGHT_LENGTH))]
        m.d.sync += [self.finish.eq(arrives & beat_end & (ended | decides) & ~self.begin),
                     self.fault.eq(Mux(ended, ended_fault, verdict)), self.finish_last.eq(last)]
        with m.If(self.begin | (arrives & beat_end)):
            m.d.sync += ended.eq(0)
        with m.Elif(arrives & decides & ~ended):
            m.d.sync += [ended.eq(1), ended_fault.eq(verdict)]
        return m
