"""The LSTM accelerator core: weight loader, input receiver, column scheduler + MAC lanes, tail
unit, output sender and the run controller.  Plain valid/ready stream ports; see ``top.py`` for
the AXI wrapper."""

from __future__ import annotations

from amaranth import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from lstmfpga.foundation.hw import stream_format, weight_image
from lstmfpga.foundation.hw.register_map import Error
from lstmfpga.hw.rtl.mac_lanes import MacLanes
from lstmfpga.hw.rtl.ram import ram
from lstmfpga.hw.rtl.tail_unit import TailUnit, _bits_for

SRC_INPUT, SRC_HBUF0, SRC_HBUF1, SRC_ZERO = 0, 1, 2, 3


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


class LstmCore(wiring.Component):
    """The accelerator behind plain stream and control ports.

    Parameters
    ----------
    config : AcceleratorConfig
    """

    def __init__(self, *, config):
        if config.stream_width != 32:
            raise ValueError(f"the RTL supports 32-bit streams only, not {config.stream_width}")
        self.config = config
        super().__init__({
            "s_valid": In(1), "s_ready": Out(1), "s_data": In(32), "s_last": In(1),
            "m_valid": Out(1), "m_ready": In(1), "m_data": Out(32), "m_last": Out(1),
            "start": In(1), "soft_reset": In(1), "load_weights": In(1), "clear": In(1),
            "timesteps": In(8), "timeout": In(32),
            "busy": Out(1), "done": Out(1), "weights_valid": Out(1), "loading": Out(1),
            "error": Out(16), "cycles": Out(32), "run_cycles": Out(32),
            "hash": Out(unsigned(256)),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.config
        H, L, P, T_max = cfg.hidden_size, cfg.num_layers, cfg.lanes, cfg.max_timesteps
        G, UPG = cfg.groups, cfg.units_per_group
        wb, accw = cfg.weight_bits, cfg.accumulator_bits
        split = cfg.mode == "split"
        wps = stream_format.input_beats_per_step(cfg)        # input words per step
        osb = stream_format.output_step_beats(cfg)
        # baddr walks both the h buffers (T·H) and the input buffer (T·words per step).
        seq_bits = _bits_for(T_max * max(H, wps) + 1) + 2

        m.submodules.tail = tail = TailUnit(config=cfg)
        m.submodules.lanes = lanes = MacLanes(lanes=P, weight_bits=wb, column_bits=8, acc_bits=accw)

        # -- memories ------------------------------------------------------------------------
        wmem = ram(shape=unsigned(P * wb), depth=cfg.weight_depth)
        m.submodules.weight_mem = wmem
        wmem_w, wmem_r = wmem.write_port(), wmem.read_port()
        if not split:
            xbuf = ram(shape=unsigned(32), depth=T_max * wps)
            m.submodules.input_buf = xbuf
            xbuf_w, xbuf_r = xbuf.write_port(), xbuf.read_port()
        hbufs = []
        for b in range(2 if L > 1 else 1):
            mem = ram(shape=signed(8), depth=T_max * H)
            m.submodules[f"h_buf{b}"] = mem
            hbufs.append((mem.write_port(), mem.read_port()))

        # -- control state ---------------------------------------------------------------------
        error = Signal(16)
        done = Signal()
        weights_valid = Signal()
        hash_regs = Signal(256)
        cycles = Signal(32)
        run_cycles = Signal(32)
        run_counting = Signal()
        T = Signal(5)
        set_error = Signal(16)
        m.d.comb += [self.error.eq(error), self.done.eq(done), self.weights_valid.eq(weights_valid),
                     self.hash.eq(hash_regs), self.cycles.eq(cycles), self.run_cycles.eq(run_cycles)]
        m.d.sync += error.eq(error | set_error)
        with m.If(run_counting):
            m.d.sync += run_cycles.eq(run_cycles + 1)

        # stream watchdog
        idle_count = Signal(32)
        watch = Signal()      # the FSM is inside a packet and expects progress
        progress = Signal()
        with m.If(~watch | progress):
            m.d.sync += idle_count.eq(0)
        with m.Else():
            m.d.sync += idle_count.eq(idle_count + 1)
        timed_out = watch & (self.timeout != 0) & (idle_count >= self.timeout)

        in_fire = Signal()
        m.d.comb += in_fire.eq(self.s_valid & self.s_ready)
        word_count = Signal(32)
        expected_words = Signal(32)

        # loader state
        sections = image_sections(cfg)
        sec = Signal(range(len(sections) + 1))
        sec_count = Signal(32)
        header_count = Signal(range(weight_image.HEADER_WORDS + 1))
        checksum = Signal(32)
        hash_tmp = Signal(256)
        load_bad = Signal()
        rw = weight_image.row_words(cfg)
        row_sr = Signal(32 * rw)
        row_word = Signal(range(rw + 1))
        row_addr = Signal(range(cfg.weight_depth + 1))
        cls_j = Signal(range(H + 1))
        cls_k = Signal(8)

        # scheduler state
        lyr = Signal(2)
        t = Signal(5)
        grp = Signal(range(G + 1))
        k = Signal(range(max(cfg.on_chip_input_columns(l) for l in range(L)) + 1))
        waddr = Signal(range(cfg.weight_depth + 1))
        lbase = Signal(range(cfg.weight_depth + 1))
        tH = Signal(seq_bits)
        tW = Signal(range(T_max * wps + 1))
        seq_base = Signal(seq_bits)
        TH = Signal(seq_bits)
        baddr = Signal(seq_bits)
        bsel = Signal(2)
        need = Signal(seq_bits)
        issuing = Signal()
        units_done = Signal(seq_bits)
        total_units = Signal(seq_bits)
        cls_pending = Signal(2)

        x_cols = Array(Const(cfg.on_chip_input_columns(l) - H, 16) for l in range(L))
        k_cols = Array(Const(cfg.on_chip_input_columns(l), 16) for l in range(L))
        rows = Array(Const(cfg.weight_rows(l), 24) for l in range(L))

        # -- shadow bank reader: feeds the tail one hidden unit per cycle ---------------------
        sh_data = Signal(P * accw)
        sh_left = Signal(range(UPG + 1))
        sh_unit = Signal(range(G * UPG + 1))
        sh_layer, sh_base, sh_first, sh_cls = Signal(2), Signal(seq_bits), Signal(), Signal()
        tail_in_valid = Signal()
        unit_reg = Signal(range(G * UPG + 1))
        # a partial last group pads past H: drop those units before the tail's narrower unit port
        # would wrap them onto real ones
        m.d.comb += [tail.valid.eq(tail_in_valid & (unit_reg < H)),
                     tail.layer.eq(sh_layer), tail.step_base.eq(sh_base), tail.first_step.eq(sh_first),
                     tail.classify.eq(sh_cls)]
        acc_reg = Signal(4 * accw)
        m.d.comb += [tail.unit.eq(unit_reg), tail.acc.eq(acc_reg)]

        # -- engine pipeline (issue -> read -> output register -> lanes) --------------------
        e1_valid, e1_first, e1_last, e1_src, e1_bsel = Signal(), Signal(), Signal(), Signal(2), Signal(2)
        e1_layer, e1_base, e1_jbase, e1_firststep, e1_cls = Signal(2), Signal(seq_bits), Signal(range(G * UPG + 1)), Signal(), Signal()
        issue = Signal()
        flush = Signal()

        # stage 2: memory outputs registered (block RAM output registers), tags alongside
        e2_valid, e2_first, e2_last, e2_src, e2_bsel = Signal(), Signal(), Signal(), Signal(2), Signal(2)
        e2_layer, e2_base, e2_jbase = Signal(2), Signal(seq_bits), Signal(range(G * UPG + 1))
        e2_firststep, e2_cls = Signal(), Signal()
        e2_weights = Signal(P * wb)
        e2_h = [Signal(signed(8), name=f"e2_h{b}") for b in range(len(hbufs))]
        m.d.sync += [e2_valid.eq(e1_valid & ~flush), e2_first.eq(e1_first), e2_last.eq(e1_last),
                     e2_src.eq(e1_src), e2_bsel.eq(e1_bsel), e2_layer.eq(e1_layer), e2_base.eq(e1_base),
                     e2_jbase.eq(e1_jbase), e2_firststep.eq(e1_firststep), e2_cls.eq(e1_cls),
                     e2_weights.eq(wmem_r.data), *(r.eq(rp.data) for r, (_, rp) in zip(e2_h, hbufs))]
        if not split:
            e2_x = Signal(32)
            m.d.sync += e2_x.eq(xbuf_r.data)

        # the column's source, into the lanes' operand registers
        col = Signal(signed(8))
        with m.Switch(e2_src):
            if not split:
                with m.Case(SRC_INPUT):
                    m.d.comb += col.eq(e2_x.word_select(e2_bsel, 8).as_signed())
            with m.Case(SRC_HBUF0):
                m.d.comb += col.eq(e2_h[0])
            if L > 1:
                with m.Case(SRC_HBUF1):
                    m.d.comb += col.eq(e2_h[1])
            with m.Default():
                m.d.comb += col.eq(0)
        m.d.comb += [lanes.valid.eq(e2_valid & ~flush), lanes.first.eq(e2_first), lanes.last.eq(e2_last),
                     lanes.flush.eq(flush), tail.flush.eq(flush),
                     lanes.column.eq(col), lanes.weights.eq(e2_weights)]
        # group tags travel with the last column: MacLanes.LATENCY stages
        tag_layer = [e2_layer]; tag_base = [e2_base]; tag_jbase = [e2_jbase]
        tag_first = [e2_firststep]; tag_cls = [e2_cls]; tag_last = [e2_last & e2_valid]
        for s in range(MacLanes.LATENCY):
            for chain_, shape in ((tag_layer, 2), (tag_base, seq_bits), (tag_jbase, len(e2_jbase)),
                                  (tag_first, 1), (tag_cls, 1), (tag_last, 1)):
                r = Signal(shape)
                m.d.sync += r.eq(chain_[-1])
                chain_.append(r)
        last_in_flight = Signal()
        m.d.comb += last_in_flight.eq(Cat(*tag_last[:-1]).any() | (e1_last & e1_valid))

        with m.If(lanes.done & ~flush):
            m.d.sync += [sh_data.eq(lanes.sums), sh_left.eq(UPG), sh_unit.eq(tag_jbase[-1]),
                         sh_layer.eq(tag_layer[-1]), sh_base.eq(tag_base[-1]),
                         sh_first.eq(tag_first[-1]), sh_cls.eq(tag_cls[-1])]
        with m.Elif(sh_left != 0):
            m.d.sync += [sh_data.eq(sh_data >> (4 * accw)), sh_left.eq(sh_left - 1), sh_unit.eq(sh_unit + 1)]
        m.d.sync += [tail_in_valid.eq((sh_left != 0) & ~flush), unit_reg.eq(sh_unit),
                     acc_reg.eq(sh_data[:4 * accw])]
        # The tail reads the group tags straight from sh_*: they change only on a shadow load,
        # which the scheduler allows only after the previous group has left the reader.

        # tail h output -> h buffers, units_done
        for b, (wp, _) in enumerate(hbufs):
            m.d.comb += [wp.addr.eq(tail.h_addr), wp.data.eq(tail.h_code),
                         wp.en.eq(tail.h_valid & ((tail.h_layer[0] == b) if len(hbufs) > 1 else 1))]
        with m.If(tail.h_valid):
            m.d.sync += units_done.eq(units_done + 1)

        # -- scheduler --------------------------------------------------------------------------
        in_x = Signal()
        m.d.comb += in_x.eq(k < x_cols[lyr])
        last_col = Signal()
        m.d.comb += last_col.eq(k == k_cols[lyr] - 1)
        dep = Signal()
        m.d.comb += dep.eq(Mux(in_x, lyr != 0, t != 0))
        src = Signal(2)
        with m.If(in_x):
            with m.If(lyr == 0):
                m.d.comb += src.eq(SRC_INPUT)
            with m.Else():
                m.d.comb += src.eq(Mux(lyr[0], SRC_HBUF0, SRC_HBUF1))
        with m.Else():
            m.d.comb += src.eq(Mux(t == 0, SRC_ZERO, Mux(lyr[0], SRC_HBUF1, SRC_HBUF0)))
        can_issue = Signal()
        m.d.comb += can_issue.eq(issuing & (~dep | (units_done >= need)) &
                                 (~last_col | ((sh_left == 0) & ~last_in_flight & ~lanes.done)))
        m.d.comb += issue.eq(can_issue & ~flush)
        m.d.comb += [wmem_r.addr.eq(waddr)]
        if not split:
            m.d.comb += xbuf_r.addr.eq(baddr)

        m.d.sync += [e1_valid.eq(issue), e1_first.eq(k == 0), e1_last.eq(last_col), e1_src.eq(src),
                     e1_bsel.eq(bsel), e1_layer.eq(lyr), e1_base.eq(tH), e1_jbase.eq(grp * UPG),
                     e1_firststep.eq(t == 0), e1_cls.eq((lyr == L - 1) & (t == T - 1))]

        def group_start(layer_v, tH_v, tW_v, seq_v):
            """Column address and dependency bound of the first column of a group."""
            m.d.sync += bsel.eq(0)
            has_x = x_cols[layer_v] != 0
            with m.If(has_x):
                m.d.sync += [baddr.eq(Mux(layer_v == 0, tW_v, tH_v)), need.eq(seq_v - TH + 1)]
            with m.Else():
                m.d.sync += [baddr.eq(tH_v - H), need.eq(seq_v - H + 1)]

        with m.If(issue):
            m.d.sync += [k.eq(k + 1), waddr.eq(waddr + 1), need.eq(need + 1)]
            with m.If(in_x & (lyr == 0)):
                m.d.sync += bsel.eq(bsel + 1)
                with m.If(bsel == 3):
                    m.d.sync += baddr.eq(baddr + 1)
            with m.Else():
                m.d.sync += baddr.eq(baddr + 1)
            with m.If(in_x & (k == x_cols[lyr] - 1)):
                m.d.sync += [baddr.eq(tH - H), bsel.eq(0), need.eq(seq_base - H + 1)]
            with m.If(last_col):
                m.d.sync += [k.eq(0), grp.eq(grp + 1)]
                with m.If(grp == G - 1):
                    m.d.sync += [grp.eq(0), seq_base.eq(seq_base + H)]
                    with m.If(t == T - 1):
                        with m.If(lyr == L - 1):
                            m.d.sync += issuing.eq(0)
                        m.d.sync += [t.eq(0), tH.eq(0), tW.eq(0), lyr.eq(lyr + 1),
                                     lbase.eq(lbase + rows[lyr]), waddr.eq(lbase + rows[lyr])]
                        group_start(lyr + 1, Const(0, seq_bits), Const(0, 16), seq_base + H)
                    with m.Else():
                        m.d.sync += [t.eq(t + 1), tH.eq(tH + H), tW.eq(tW + wps), waddr.eq(lbase)]
                        group_start(lyr, tH + H, tW + wps, seq_base + H)
                with m.Else():
                    group_start(lyr, tH, tW, seq_base)

        # -- input stream ---------------------------------------------------------------------
        if not split:
            m.d.comb += [xbuf_w.addr.eq(word_count), xbuf_w.data.eq(self.s_data)]
        m.d.comb += [tail.pre_addr.eq(word_count >> 2), tail.pre_lane.eq(word_count[:2]),
                     tail.pre_data.eq(self.s_data)]

        # loader datapath (driven in LOAD state)
        load_word = Signal()
        m.d.comb += [tail.param_data.eq(self.s_data), tail.table_data.eq(self.s_data),
                     tail.tanh_data.eq(self.s_data), tail.bias_data.eq(self.s_data),
                     tail.clsw_data.eq(self.s_data), tail.clsb_data.eq(self.s_data),
                     wmem_w.addr.eq(row_addr), wmem_w.data.eq(Cat(row_sr[32:], self.s_data)[:P * wb])]
        section_end = Signal()
        image_end = Signal()
        in_weights = Signal()
        with m.Switch(sec):
            for i, (kind, layer, words) in enumerate(sections):
                with m.Case(i):
                    m.d.comb += section_end.eq(sec_count == words - 1)
                    if kind == "weights":
                        m.d.comb += [wmem_w.en.eq(load_word & (row_word == rw - 1)), in_weights.eq(1)]
                    elif kind == "bias":
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
                    elif kind == "checksum":
                        m.d.comb += image_end.eq(1)
        with m.If(load_word):
            m.d.sync += [sec_count.eq(sec_count + 1), checksum.eq(Cat(checksum[31], checksum[:31]) ^ self.s_data)]
            m.d.sync += [row_sr.eq(Cat(row_sr[32:], self.s_data)), row_word.eq(row_word + 1)]
            with m.If(in_weights & (row_word == rw - 1)):
                m.d.sync += [row_word.eq(0), row_addr.eq(row_addr + 1)]
            m.d.sync += cls_j.eq(cls_j + 1)
            with m.If(cls_j == H - 1):
                m.d.sync += [cls_j.eq(0), cls_k.eq(cls_k + 1)]
            with m.If(section_end):
                m.d.sync += [sec.eq(sec + 1), sec_count.eq(0), row_word.eq(0), cls_j.eq(0), cls_k.eq(0)]

        expected_header = weight_image.header(cfg, "0" * 64)

        # -- output stream ----------------------------------------------------------------------
        out_t = Signal(5)
        out_idx = Signal(range(osb * 4 + 1))
        out_rd = Signal(seq_bits)
        out_byte = Signal(3)
        out_word = Signal(32)
        out_logit = Signal(8)
        last_bank = (L - 1) % 2
        out_read_valid = Signal()
        out_read_pos = Signal(2)
        out_read_pad = Signal()

        # h buffer read address: engine or output sender
        in_output = Signal()
        for b, (_, rp) in enumerate(hbufs):
            m.d.comb += rp.addr.eq(Mux(in_output, out_rd, baddr))

        C = cfg.num_classes
        logits = [tail.logits[32 * i:32 * (i + 1)] for i in range(max(C, 1))]

        def fail(bits, *also):
            """Latch error ``bits`` and end the command."""
            m.d.sync += [error.eq(error | bits), done.eq(1), *also]

        def idle_or_drain():
            """After a fault mid-packet: idle on the packet's last beat, else drain the rest."""
            with m.If(self.s_last):
                m.next = "IDLE"
            with m.Else():
                m.next = "DRAIN"

        with m.FSM(name="ctrl") as fsm:
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [error.eq(0), done.eq(0)]
                    with m.If(~weights_valid):
                        m.d.comb += set_error.eq(Error.NO_WEIGHTS)
                        m.d.sync += [done.eq(1), error.eq(Error.NO_WEIGHTS)]
                    with m.Elif((self.timesteps == 0) | (self.timesteps > T_max)):
                        m.d.sync += [done.eq(1), error.eq(Error.TIMESTEPS)]
                    with m.Else():
                        m.d.sync += [T.eq(self.timesteps), word_count.eq(0),
                                     expected_words.eq(self.timesteps * wps),
                                     run_cycles.eq(0), run_counting.eq(1)]
                        m.next = "RECV"
                with m.Elif(self.load_weights):
                    m.d.sync += [error.eq(0), done.eq(0), weights_valid.eq(0), sec.eq(0), sec_count.eq(0),
                                 header_count.eq(0), checksum.eq(0), load_bad.eq(0), row_word.eq(0),
                                 row_addr.eq(0), cls_j.eq(0), cls_k.eq(0), word_count.eq(0)]
                    m.next = "HEADER"
                with m.Elif(self.clear):
                    m.d.sync += [error.eq(0), done.eq(0)]

            with m.State("HEADER"):
                m.d.comb += [self.s_ready.eq(1), self.loading.eq(1), self.busy.eq(1),
                             watch.eq(word_count != 0), progress.eq(in_fire)]
                with m.If(in_fire):
                    m.d.sync += [header_count.eq(header_count + 1), word_count.eq(word_count + 1),
                                 checksum.eq(Cat(checksum[31], checksum[:31]) ^ self.s_data)]
                    bad = Signal(16)
                    with m.Switch(header_count):
                        for i in range(weight_image.HEADER_WORDS):
                            with m.Case(i):
                                if i >= weight_image.Header.HASH0:
                                    m.d.sync += hash_tmp.word_select(i - weight_image.Header.HASH0, 32).eq(self.s_data)
                                elif i in weight_image.IDENTITY_WORDS:
                                    m.d.comb += bad.eq(Mux(self.s_data != expected_header[i], Error.WEIGHT_HEADER, 0))
                                else:
                                    m.d.comb += bad.eq(Mux(self.s_data != expected_header[i], Error.WEIGHT_SHAPE, 0))
                    with m.If(bad != 0):
                        fail(bad)
                        idle_or_drain()
                    with m.Elif(self.s_last):
                        fail(Error.WEIGHT_LENGTH)
                        m.next = "IDLE"
                    with m.Elif(header_count == weight_image.HEADER_WORDS - 1):
                        m.next = "LOAD"

            with m.State("LOAD"):
                m.d.comb += [self.s_ready.eq(1), self.loading.eq(1), self.busy.eq(1),
                             watch.eq(1), progress.eq(in_fire), load_word.eq(in_fire & ~image_end)]
                with m.If(timed_out):
                    fail(Error.INPUT_TIMEOUT)
                    m.next = "IDLE"
                with m.Elif(in_fire):
                    m.d.sync += word_count.eq(word_count + 1)
                    with m.If(image_end):
                        fault = Signal(16)
                        m.d.comb += fault.eq(Mux(self.s_data != checksum, Error.WEIGHT_CHECKSUM, 0) |
                                             Mux(self.s_last, 0, Error.WEIGHT_LENGTH))
                        fail(fault)
                        with m.If(fault == 0):
                            m.d.sync += [weights_valid.eq(1), hash_regs.eq(hash_tmp)]
                        idle_or_drain()
                    with m.Elif(self.s_last):
                        fail(Error.WEIGHT_LENGTH)
                        m.next = "IDLE"

            with m.State("RECV"):
                m.d.comb += [self.s_ready.eq(1), self.busy.eq(1), watch.eq(word_count != 0),
                             progress.eq(in_fire)]
                if not split:
                    m.d.comb += xbuf_w.en.eq(in_fire)
                else:
                    m.d.comb += tail.pre_we.eq(in_fire)
                with m.If(timed_out):
                    fail(Error.INPUT_TIMEOUT, run_counting.eq(0))
                    m.next = "IDLE"
                with m.Elif(in_fire):
                    m.d.sync += word_count.eq(word_count + 1)
                    is_final = word_count == expected_words - 1
                    with m.If(is_final & self.s_last):
                        m.next = "COMPUTE_START"
                    with m.Elif(is_final):
                        m.d.sync += [error.eq(error | Error.LAST_LATE), run_counting.eq(0)]
                        m.next = "DRAIN"
                    with m.Elif(self.s_last):
                        fail(Error.LAST_EARLY, run_counting.eq(0))
                        m.next = "IDLE"

            with m.State("DRAIN"):
                m.d.comb += [self.s_ready.eq(1), self.busy.eq(1), watch.eq(1), progress.eq(in_fire)]
                with m.If(timed_out):
                    fail(Error.INPUT_TIMEOUT)
                    m.next = "IDLE"
                with m.Elif(in_fire & self.s_last):
                    m.d.sync += done.eq(1)
                    m.next = "IDLE"

            with m.State("COMPUTE_START"):
                m.d.comb += [self.busy.eq(1), tail.cls_start.eq(1)]
                m.d.sync += [lyr.eq(0), t.eq(0), grp.eq(0), k.eq(0), waddr.eq(0), lbase.eq(0),
                             tH.eq(0), tW.eq(0), seq_base.eq(0), TH.eq(T * H), units_done.eq(0),
                             total_units.eq(T * (H * L)), issuing.eq(1), cycles.eq(0)]
                group_start(Const(0, 2), Const(0, seq_bits), Const(0, 16), Const(0, seq_bits))
                m.next = "COMPUTE"

            with m.State("COMPUTE"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += cycles.eq(cycles + 1)
                with m.If(~issuing & (units_done == total_units)):
                    m.d.sync += [out_t.eq(0), out_idx.eq(0), out_logit.eq(0), out_byte.eq(0),
                                 out_rd.eq(0), cls_pending.eq(2)]
                    m.next = "FINISH"

            with m.State("FINISH"):
                # the classifier MAC retires its last unit two cycles after the last h code
                m.d.comb += self.busy.eq(1)
                m.d.sync += [cls_pending.eq(cls_pending - 1), cycles.eq(cycles + 1)]
                with m.If(cls_pending == 0):
                    m.next = "OUT_READ"

            with m.State("OUT_READ"):
                # read 4 bytes of the h sequence (one per cycle) into out_word
                m.d.comb += [self.busy.eq(1), in_output.eq(1)]
                with m.If(out_byte < 4):
                    m.d.sync += [out_byte.eq(out_byte + 1), out_idx.eq(out_idx + 1), out_read_valid.eq(1),
                                 out_read_pos.eq(out_byte[:2]), out_read_pad.eq(out_idx >= H)]
                    with m.If(out_idx < H):
                        m.d.sync += out_rd.eq(out_rd + 1)
                with m.Else():
                    m.d.sync += out_read_valid.eq(0)
                with m.If(out_read_valid):
                    bank = hbufs[last_bank][1].data
                    m.d.sync += out_word.word_select(out_read_pos, 8).eq(Mux(out_read_pad, 0, bank))
                with m.If((out_byte == 4) & ~out_read_valid):
                    m.next = "OUT_SEND"
            with m.State("OUT_SEND"):
                m.d.comb += [self.busy.eq(1), in_output.eq(1), self.m_valid.eq(1), self.m_data.eq(out_word),
                             watch.eq(1), progress.eq(self.m_ready)]
                last_h_word = (out_t == T - 1) & (out_idx == 4 * osb)
                if C == 0:
                    m.d.comb += self.m_last.eq(last_h_word)
                with m.If(timed_out):
                    fail(Error.OUTPUT_TIMEOUT, run_counting.eq(0))
                    m.next = "IDLE"
                with m.Elif(self.m_ready):
                    m.d.sync += [out_byte.eq(0), out_word.eq(0)]
                    with m.If(out_idx == 4 * osb):
                        m.d.sync += [out_idx.eq(0), out_t.eq(out_t + 1)]
                        with m.If(out_t == T - 1):
                            if C == 0:
                                m.d.sync += [done.eq(1), run_counting.eq(0)]
                                m.next = "IDLE"
                            else:
                                m.next = "OUT_LOGITS"
                        with m.Else():
                            m.next = "OUT_READ"
                    with m.Else():
                        m.next = "OUT_READ"
            if C:
                with m.State("OUT_LOGITS"):
                    m.d.comb += [self.busy.eq(1), self.m_valid.eq(1),
                                 self.m_data.eq(Array(logits)[out_logit]), self.m_last.eq(out_logit == C - 1),
                                 watch.eq(1), progress.eq(self.m_ready)]
                    with m.If(timed_out):
                        fail(Error.OUTPUT_TIMEOUT, run_counting.eq(0))
                        m.next = "IDLE"
                    with m.Elif(self.m_ready):
                        m.d.sync += out_logit.eq(out_logit + 1)
                        with m.If(out_logit == C - 1):
                            m.d.sync += [done.eq(1), run_counting.eq(0)]
                            m.next = "IDLE"

        # soft reset from any state
        with m.If(self.soft_reset):
            m.d.comb += flush.eq(1)
            m.d.sync += [issuing.eq(0), run_counting.eq(0), sh_left.eq(0), tail_in_valid.eq(0), e1_valid.eq(0),
                         e2_valid.eq(0),
                         fsm.state.eq(fsm.encoding["IDLE"])]
            with m.If(fsm.ongoing("HEADER") | fsm.ongoing("LOAD")):
                m.d.sync += weights_valid.eq(0)
        with m.If((self.start | self.load_weights) & ~fsm.ongoing("IDLE") & ~self.soft_reset):
            m.d.comb += set_error.eq(Error.BUSY)
        return m
