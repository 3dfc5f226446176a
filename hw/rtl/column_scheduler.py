"""The column scheduler: walks layers, steps, row groups and columns, and issues each column to
the MAC engine as soon as the value it broadcasts exists."""

from __future__ import annotations

import functools
import operator

from amaranth import Array, Const, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from lstmfpga.foundation.hw import stream_format
from lstmfpga.hw.rtl.payloads import Source, byte_select_bits, column_layout, input_buffer_depth, sequence_bits


class ColumnScheduler(wiring.Component):
    """Issues the columns of one run (``steps`` timesteps over every layer) on ``o_column``.

    Per layer, step and row group it issues the group's columns, the x part (input buffer or
    the layer below's h codes) then the h part (this layer's h codes of the previous step); a
    column holds S = ``config.column_sets`` consecutive elements (an h-buffer word, or S bytes of
    an input-buffer word).  A column that reads h codes waits until ``unit_done`` (the units
    finished in a cycle, up to ``config.tail_units``) has counted the last unit that writes them;
    a group's last column waits for ``shadow_free`` (the engine's shadow bank can take the
    group's sums).  In full mode a column of the input waits until ``received`` has counted its
    word by the cycle before (:data:`~lstmfpga.hw.latency.INPUT_COUNT`): the run starts with the
    input packet's first beat.  ``start`` begins a run; ``finished`` is
    set once every column has issued and every unit of the run has come back.  ``flush`` stops
    issuing.

    With weights in DDR (``config.ddr_weights``) the weight memory is a double buffer of two row
    groups that :class:`~lstmfpga.hw.rtl.ddr_row_fetcher.DdrRowFetcher` fills in the order the
    groups issue: group i's columns read rows ``(i mod 2)·K_max + k``, wait until ``rows_full``
    says that half holds them, and the group's last column pulses ``rows_release``.

    With an input pass (``config.input_pass``, residency ``all``) each layer walks in two phases:
    the input pass (group → step → sequence) issues only the x columns of each group, its rows
    fetched once and used for every step, the group's sums tagged ``store`` (the tail keeps them
    as pre-activations at slot v·``pre_stride``; they count as no units), then the recurrence
    (step → group → sequence) issues only the h columns, each group's W_h rows fetched per step.
    The x part's dependency bounds restart at step 0's for each group of the input pass.

    With ``config.max_batch`` > 1 a run holds ``batch`` sequences: each group's columns issue once
    for every sequence b before the next group (the walk is layer → step → group → sequence →
    column), so a fetched group serves the whole batch.  Step t of sequence b is the run's step
    v = t·B + b: its input words, h-buffer words and pre-activation slots sit where a single
    sequence's step v would.  ``unit_done`` then counts units of sequence ``done_sequence`` (a
    group's units, of one sequence, finish together), one count a sequence: each sequence's units
    finish in the order of a single sequence's, so its columns wait for the bounds a single
    sequence's would.

    Parameters
    ----------
    config : AcceleratorConfig
    """

    def __init__(self, *, config):
        self.config = config
        super().__init__({
            "start": In(1), "steps": In(5), "flush": In(1),
            "unit_done": In(2), "shadow_free": In(1),
            **({"batch": In(range(config.max_batch + 1)), "done_sequence": In(range(config.max_batch))}
               if config.max_batch > 1 else {}),
            **({"received": In(range(input_buffer_depth(config) + 1))} if config.mode == "full" else {}),
            **({"rows_full": In(2), "rows_release": Out(1)} if config.ddr_weights else {}),
            "o_column": Out(stream.Signature(column_layout(config))),
            "finished": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.config
        H, L, G, UPG = cfg.hidden_size, cfg.num_layers, cfg.groups, cfg.units_per_group
        S, Hc = cfg.column_sets, cfg.h_columns
        first_need = min(S, H)                     # units the first column of a part waits for
        chunks = cfg.bytes_per_word // S if cfg.mode == "full" else 1   # columns per input word
        T_max = cfg.max_run_steps
        batched = cfg.max_batch > 1
        wps = stream_format.input_beats_per_step(cfg)
        seq_bits = sequence_bits(cfg)
        T = self.steps
        last_t = Signal(5)        # T − 1, registered at start (``t_last`` is t == T − 1)

        lyr = Signal(2)
        t = Signal(5)
        grp = Signal(range(G + 1))
        k = Signal(range(max(cfg.issued_columns(layer) for layer in range(L)) + 1))
        waddr = Signal(range(cfg.weight_memory_rows + 1))
        lbase = Signal(range(cfg.weight_depth + 1))
        ddr = cfg.ddr_weights
        half = Signal()                            # the buffer half of the group (weights in DDR)
        k_half = cfg.fetch_half_rows
        resident = cfg.resident_h_rows > 0        # W_h on chip after the double buffer (``wx``)
        if resident:
            hbase = Signal(range(cfg.weight_memory_rows + 1))    # the layer's first W_h row
            gbase = Signal(range(cfg.weight_memory_rows + 1))    # the group's first W_h row
        tH = Signal(seq_bits)                      # word of step v in the h sequence: v·ceil(H/S)
        tU = Signal(seq_bits)                      # pre-activation slot of step v: v·pre_stride
        stride = cfg.pre_stride
        tW = Signal(range(T_max * wps + 1))        # word of step v in the input buffer
        # (v = t·B + b; with a batch the same at b = 0, the group's first pass: tH0, tU0, tW0)
        tH0, tU0, tW0 = (Signal.like(x, name=f"{x.name}0") for x in (tH, tU, tW)) if batched else (tH, tU, tW)
        bseq = Signal(range(max(cfg.max_batch, 2)))     # the sequence b of the pass
        b_last = Signal(init=1)                         # b == B − 1
        cell_base = Signal(range(max(cfg.max_batch * H, 2)))  # b·H
        # h-buffer words back to the sequence's step before: the run's step v − B
        back = Signal(seq_bits, name="back") if batched else Const(Hc, seq_bits)
        seq_base = Signal(seq_bits)                # units of the sequence finished before (layer, t)
        # the dependency bounds of the step's parts, registers that move by H with seq_base (the
        # issue decision's need takes a register, not a chain of adders): the x part of a layer
        # l > 0 waits for the layer below's units of step t, the h part for this layer's of t − 1
        x_need = Signal(seq_bits)                  # seq_base − T·H + first_need
        x_cap = Signal(seq_bits)                   # seq_base − T·H + H
        h_need = Signal(seq_bits)                  # seq_base − H + first_need
        baddr = Signal(seq_bits)
        bsel = Signal(byte_select_bits(cfg))
        need = Signal(seq_bits)                    # units_done this column waits for
        cap = Signal(seq_bits)                     # ... and the last column of its part
        issuing = Signal()
        # units finished, one count a sequence (and over the whole batch)
        units_done = [Signal(seq_bits, name=f"units_done{b}") for b in range(cfg.max_batch)]
        all_done = Signal(seq_bits)
        total_units = Signal(seq_bits)            # of one sequence
        total_all = Signal(seq_bits)

        x_cols = Array(Const(cfg.x_columns(layer), 16) for layer in range(L))
        k_cols = Array(Const(cfg.issued_columns(layer), 16) for layer in range(L))
        rows = Array(Const(cfg.weight_rows(layer), 24) for layer in range(L))

        m.d.sync += all_done.eq(all_done + self.unit_done)
        if batched:
            for b, count in enumerate(units_done):
                with m.If(self.done_sequence == b):
                    m.d.sync += count.eq(count + self.unit_done)
            done_here = Array(units_done)[bseq]
        else:
            done_here = all_done

        # Where the walk stands, as registers beside the counters they describe: the issue decision
        # (valid, into ~100 enables) reads flip-flops, not comparators on k, grp and t.
        passes = cfg.input_pass
        inpass = Signal()        # the layer's input pass (x columns only, for every step), not its recurrence
        in_x = Signal()          # k < x_cols[lyr]: the column reads the x part
        x_end = Signal()         # k == x_cols[lyr] − 1
        last_col = Signal()      # k == k_cols[lyr] − 1
        grp_last = Signal()      # grp == G − 1
        t_first = Signal()       # t == 0
        t_last = Signal()        # t == T − 1
        # the flags at a group's first column, per layer (one more entry: the run's end walks past)
        x_counts = [cfg.x_columns(layer) for layer in range(L)] + [0]
        k_counts = [cfg.issued_columns(layer) for layer in range(L)] + [0]
        first_in_x = Array(Const(int(n > 0), 1) for n in x_counts)
        if passes:
            # a group of the input pass issues the x columns, one of the recurrence the h columns
            k_counts = x_counts
            x_need0, x_cap0 = Signal(seq_bits), Signal(seq_bits)   # the bounds of the layer's step 0
        first_x_end = Array(Const(int(n == 1), 1) for n in x_counts)
        first_last_col = Array(Const(int(n == 1), 1) for n in k_counts)
        dep = Signal()
        m.d.comb += dep.eq(Mux(in_x, lyr != 0, ~t_first))
        src = Signal(2)
        with m.If(in_x):
            with m.If(lyr == 0):
                m.d.comb += src.eq(Source.INPUT)
            with m.Else():
                m.d.comb += src.eq(Mux(lyr[0], Source.HBUF0, Source.HBUF1))
        with m.Else():
            m.d.comb += src.eq(Mux(t_first, Source.ZERO, Mux(lyr[0], Source.HBUF1, Source.HBUF0)))

        # the input word this column reads is in the buffer, and (weights in DDR) its group's rows
        arrived = Signal(init=1)
        in_ok = Signal()          # full mode: the column's input word is in the buffer (below)
        ready_terms = []
        if cfg.mode == "full":
            ready_terms.append(~in_x | (lyr != 0) | in_ok)
        if ddr:
            full_half = self.rows_full.bit_select(half, 1)
            ready_terms.append(full_half | ~inpass if resident else full_half)
        if ready_terms:
            m.d.comb += arrived.eq(functools.reduce(operator.and_, ready_terms))
        column = self.o_column.payload
        m.d.comb += [
            self.o_column.valid.eq(issuing & arrived & (~dep | (done_here >= need)) & (~last_col | self.shadow_free)),
            column.weight_addr.eq(waddr), column.buffer_addr.eq(baddr),
            column.op.first.eq(k == 0), column.op.last.eq(last_col), column.op.source.eq(src),
            column.op.byte.eq(bsel),
            column.op.tag.layer.eq(lyr), column.op.tag.step_base.eq(tH), column.op.tag.unit_base.eq(grp * UPG),
            *([column.op.tag.pre_base.eq(tU)] if cfg.mode == "split" or passes else []),
            *([column.op.tag.store.eq(inpass)] if passes else []),
            column.op.tag.first_step.eq(t_first), column.op.tag.classify.eq((lyr == L - 1) & t_last & ~inpass),
            *([column.op.tag.sequence.eq(bseq), column.op.tag.cell_base.eq(cell_base)] if batched else []),
        ]
        issue = Signal()
        m.d.comb += issue.eq(self.o_column.valid & self.o_column.ready)

        def group_start(layer_v, tH_v, tW_v, ahead, x_phase=None, x_bounds=None):
            """Column address and dependency bound of the first column of a group (``ahead``: of
            the next step, whose bounds are H past this step's).  ``x_phase``: the group issues x
            columns (an input pass; by default, whether the layer has any), ``x_bounds`` their
            dependency bounds other than this step's."""
            step = H if ahead else 0
            if x_phase is None:
                x_phase = x_cols[layer_v] != 0
                m.d.sync += [in_x.eq(first_in_x[layer_v]), x_end.eq(first_x_end[layer_v]),
                             last_col.eq(first_last_col[layer_v])]
            else:
                m.d.sync += [in_x.eq(x_phase), x_end.eq(x_phase & first_x_end[layer_v]),
                             last_col.eq(Mux(x_phase, first_last_col[layer_v], Hc == 1))]
            x_need_v, x_cap_v = x_bounds or (x_need + step, x_cap + step)
            m.d.sync += bsel.eq(0)
            with m.If(x_phase):
                m.d.sync += [baddr.eq(Mux(layer_v == 0, tW_v, tH_v)), need.eq(x_need_v), cap.eq(x_cap_v)]
            with m.Else():
                m.d.sync += [baddr.eq(tH_v - back), need.eq(h_need + step), cap.eq(seq_base + step)]

        with m.If(issue):
            columns = Mux(inpass, x_cols[lyr], Hc) if passes else k_cols[lyr]
            m.d.sync += [k.eq(k + 1), waddr.eq(waddr + 1),
                         in_x.eq(in_x & ~x_end), x_end.eq(k + 2 == x_cols[lyr]), last_col.eq(k + 2 == columns)]
            if S == 1:
                m.d.sync += need.eq(need + 1)
            else:
                m.d.sync += need.eq(Mux(need + S >= cap, cap, need + S))
            with m.If(in_x & (lyr == 0)):
                m.d.sync += bsel.eq(bsel + 1)
                with m.If(bsel == chunks - 1):
                    m.d.sync += [baddr.eq(baddr + 1), bsel.eq(0)]
            with m.Else():
                m.d.sync += baddr.eq(baddr + 1)
            with m.If(in_x & x_end):
                m.d.sync += [baddr.eq(tH - back), bsel.eq(0), need.eq(h_need), cap.eq(seq_base)]
            if batched:
                next_pass = last_col & ~b_last
                with m.If(next_pass):
                    # the group again, for the batch's next sequence: its step v + 1, the same rows
                    m.d.sync += [k.eq(0), bseq.eq(bseq + 1), b_last.eq(bseq + 2 == self.batch),
                                 cell_base.eq(cell_base + H), tH.eq(tH + Hc), tU.eq(tU + stride), tW.eq(tW + wps),
                                 waddr.eq(Mux(inpass, Mux(half, k_half, 0), gbase) if resident
                                          else Mux(half, k_half, 0))]
                    group_start(lyr, tH + Hc, tW + wps, ahead=False, x_phase=inpass if passes else None)
            else:
                next_pass = Const(0)
            zero_h, zero_w = Const(0, seq_bits), Const(0, 16)
            phase = (lambda x: Const(x, 1)) if passes else (lambda x: None)

            def release_rows():
                if ddr:
                    # the next group's rows sit in the other half, whatever layer or step it is
                    m.d.comb += self.rows_release.eq(1)
                    m.d.sync += [half.eq(~half), waddr.eq(Mux(half, 0, k_half))]

            def recurrence_group_end():
                m.d.sync += [grp.eq(grp + 1), grp_last.eq(grp + 2 == G)]
                if batched:
                    m.d.sync += [tH.eq(tH0), tU.eq(tU0), tW.eq(tW0)]
                if resident:
                    # the next group's W_h rows follow this group's; a step starts over at the layer's
                    m.d.sync += gbase.eq(waddr + 1)
                with m.If(grp_last):
                    m.d.sync += [grp.eq(0), grp_last.eq(G == 1), seq_base.eq(seq_base + H),
                                 x_need.eq(x_need + H), x_cap.eq(x_cap + H), h_need.eq(h_need + H),
                                 t_first.eq(t_last), t_last.eq(Mux(t_last, last_t == 0, t + 1 == last_t))]
                    with m.If(t_last):
                        with m.If(lyr == L - 1):
                            m.d.sync += issuing.eq(0)
                        m.d.sync += [t.eq(0), tH.eq(0), tU.eq(0), tW.eq(0), lyr.eq(lyr + 1),
                                     lbase.eq(lbase + rows[lyr])]
                        if batched:
                            m.d.sync += [tH0.eq(0), tU0.eq(0), tW0.eq(0)]
                        if not ddr:
                            m.d.sync += waddr.eq(lbase + rows[lyr])
                        if passes:
                            # the next layer's input pass; its later groups start over from step 0's bounds
                            m.d.sync += [inpass.eq(1), x_need0.eq(x_need + H), x_cap0.eq(x_cap + H)]
                        if resident:
                            m.d.sync += [hbase.eq(hbase + G * Hc), waddr.eq(Mux(half, k_half, 0))]
                        group_start(lyr + 1, zero_h, zero_w, ahead=True, x_phase=phase(1))
                    with m.Else():
                        # (after the batch's last pass v + 1 is the next step's first)
                        m.d.sync += [t.eq(t + 1), tH.eq(tH + Hc), tU.eq(tU + stride), tW.eq(tW + wps)]
                        if batched:
                            m.d.sync += [tH0.eq(tH + Hc), tU0.eq(tU + stride), tW0.eq(tW + wps)]
                        if not ddr:
                            m.d.sync += waddr.eq(lbase)
                        if resident:
                            m.d.sync += [waddr.eq(hbase), gbase.eq(hbase)]
                        group_start(lyr, tH + Hc, tW + wps, ahead=True, x_phase=phase(0))
                with m.Else():
                    group_start(lyr, tH0, tW0, ahead=False, x_phase=phase(0))

            def input_pass_group_end():
                with m.If(~t_last):
                    # the group's rows again, for the next step (after the batch's last pass, v + 1)
                    m.d.sync += [t.eq(t + 1), tH.eq(tH + Hc), tU.eq(tU + stride), tW.eq(tW + wps),
                                 x_need.eq(x_need + H), x_cap.eq(x_cap + H), t_first.eq(0), t_last.eq(t + 1 == last_t),
                                 waddr.eq(Mux(half, k_half, 0))]
                    if batched:
                        m.d.sync += [tH0.eq(tH + Hc), tU0.eq(tU + stride), tW0.eq(tW + wps)]
                    group_start(lyr, tH + Hc, tW + wps, ahead=True, x_phase=phase(1))
                with m.Else():
                    release_rows()
                    m.d.sync += [t.eq(0), tH.eq(0), tU.eq(0), tW.eq(0), x_need.eq(x_need0), x_cap.eq(x_cap0),
                                 t_first.eq(1), t_last.eq(last_t == 0)]
                    if batched:
                        m.d.sync += [tH0.eq(0), tU0.eq(0), tW0.eq(0)]
                    with m.If(grp_last):
                        # the layer's recurrence (the tail stores the last sums before any unit reads them)
                        m.d.sync += [grp.eq(0), grp_last.eq(G == 1), inpass.eq(0)]
                        if resident:
                            m.d.sync += [waddr.eq(hbase), gbase.eq(hbase)]
                        group_start(lyr, zero_h, zero_w, ahead=False, x_phase=phase(0))
                    with m.Else():
                        m.d.sync += [grp.eq(grp + 1), grp_last.eq(grp + 2 == G)]
                        group_start(lyr, zero_h, zero_w, ahead=False, x_phase=phase(1), x_bounds=(x_need0, x_cap0))

            with m.If(last_col & ~next_pass):
                m.d.sync += k.eq(0)
                if batched:
                    m.d.sync += [bseq.eq(0), b_last.eq(self.batch == 1), cell_base.eq(0)]
                if passes:
                    with m.If(inpass):
                        input_pass_group_end()
                    with m.Else():
                        if not resident:
                            release_rows()
                        recurrence_group_end()
                else:
                    release_rows()
                    recurrence_group_end()

        if cfg.mode == "full":
            # whether the column's input word was counted by the cycle before: the compare of the
            # address the walk moves to next, for each way it can move, registered (the carry chain
            # stays off the issue decision; a word is seen a cycle after it is counted,
            # latency.INPUT_COUNT)
            m.d.sync += in_ok.eq(baddr < self.received)
            with m.If(issue):
                with m.If(in_x & (lyr == 0) & (bsel == chunks - 1)):
                    m.d.sync += in_ok.eq(baddr + 1 < self.received)
                with m.If(last_col):
                    if passes:
                        # (the input pass walks a group's steps; a new group starts at step 0)
                        m.d.sync += in_ok.eq(Mux(t_last & b_last, self.received != 0, tW + wps < self.received))
                    else:
                        m.d.sync += in_ok.eq(Mux(grp_last | ~b_last, tW + wps < self.received,
                                                 tW0 < self.received))
            with m.If(self.start):
                m.d.sync += in_ok.eq(self.received != 0)

        with m.If(self.start):
            m.d.sync += [lyr.eq(0), t.eq(0), grp.eq(0), k.eq(0), waddr.eq(0), lbase.eq(0),
                         tH.eq(0), tU.eq(0), tW.eq(0), seq_base.eq(0), all_done.eq(0),
                         x_need.eq(first_need - T * H), x_cap.eq(H - T * H), h_need.eq(first_need - H),
                         total_units.eq(T * (H * L)), issuing.eq(1), last_t.eq(T - 1), half.eq(0),
                         grp_last.eq(G == 1), t_first.eq(1), t_last.eq(T == 1)]
            if passes:
                m.d.sync += [inpass.eq(1), x_need0.eq(first_need - T * H), x_cap0.eq(H - T * H)]
            if resident:
                m.d.sync += hbase.eq(2 * k_half)
            if batched:
                m.d.sync += [tH0.eq(0), tU0.eq(0), tW0.eq(0), bseq.eq(0), b_last.eq(self.batch == 1), cell_base.eq(0),
                             back.eq(self.batch * Hc),
                             *(count.eq(0) for count in units_done)]
            group_start(Const(0, 2), Const(0, seq_bits), Const(0, 16), ahead=False)   # (no wait at t = 0 of layer 0)
        if batched:
            # the batch's units, a cycle after start (its product is not on the start's path)
            m.d.sync += total_all.eq(total_units * self.batch)
        else:
            m.d.comb += total_all.eq(total_units)
        m.d.comb += self.finished.eq(~issuing & (all_done == total_all))
        with m.If(self.flush):
            m.d.sync += issuing.eq(0)
        return m
