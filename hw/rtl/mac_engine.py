"""The MAC engine: reads each issued column's weights and broadcast values, multiplies and
accumulates them in the MAC lanes (one multiplier per lane, or packed units holding
``macs_per_dsp`` lanes each; a set of lanes per column set), adds the sets' partial sums, and
hands every finished row group to the tail (one or two hidden units per cycle) through a shadow bank."""

from __future__ import annotations

from amaranth import Cat, Module, Signal, signed, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from lstmfpga.hw import latency
from lstmfpga.hw.rtl.mac_lanes import MacLanes
from lstmfpga.hw.rtl.packed_mac import PackedMacLanes
from lstmfpga.hw.rtl.payloads import (Source, batch_fields, column_layout, column_op_layout, group_tag_layout,
                                      input_buffer_depth, unit_index_shape, unit_layout)
from lstmfpga.hw.rtl.ram import address_bits


def h_buffer_banks(config) -> int:
    """h buffers of the core: layer l writes bank l mod 2 (one bank for one layer)."""
    return 2 if config.num_layers > 1 else 1


def h_buffer_depth(config) -> int:
    """Words of an h buffer: ``max_timesteps`` steps of each of ``max_batch`` sequences, ceil(H/S)
    words a step, S codes a word (unit u of the run's step v = t·B + b at word v·ceil(H/S) + u div S,
    byte u mod S)."""
    return config.max_run_steps * config.h_columns


class MacEngine(wiring.Component):
    """Columns in (``i_column``), hidden units out (``o_units``).

    A column's addresses go to the memories' read ports in the cycle it is accepted; the data
    come back :data:`~lstmfpga.hw.latency.MEMORY_READ` + :data:`~lstmfpga.hw.latency.MEMORY_OUTPUT`
    cycles later (registered), the column's source selects the S = ``config.column_sets``
    broadcast values (S bytes of an input-buffer word, an h-buffer word of S codes, or zeros),
    and set s of the lanes takes value s: :class:`MacLanes`, or :class:`PackedMacLanes` when
    ``config.macs_per_dsp > 1``, R = P/S lanes a set.  A tree of registered adders
    (:func:`~lstmfpga.hw.latency.set_sum` levels) sums each row over the sets, all of it
    ``config.row_sum_bits`` wide (the bias is the tail's).  The group's tags
    travel with its last column through the lanes and the tree.  When a group is done its R sums
    move to the shadow bank, which feeds ``o_units`` ``config.tail_units`` hidden units
    (four gate sums each) per cycle while the lanes accumulate the next group; padding units past H
    are dropped.  ``shadow_free`` says a group's last column may issue now (the shadow bank will
    be empty when its sums arrive).  ``flush`` drops everything in flight.

    Parameters
    ----------
    config : AcceleratorConfig
    """

    def __init__(self, *, config):
        self.config = c = config
        #: Cycles from a column's issue to the lanes' ``done`` with its group's sums.
        self.latency = latency.engine(c.macs_per_dsp, c.column_sets)
        P, wb = c.lanes, c.weight_bits
        h_addr_bits = address_bits(h_buffer_depth(c))
        ports = {
            "i_column": In(stream.Signature(column_layout(c))),
            "flush": In(1),
            "weight_read": In(memory.ReadPort.Signature(addr_width=address_bits(c.weight_memory_rows),
                                                        shape=unsigned(P * wb))),
            "h_read": In(memory.ReadPort.Signature(addr_width=h_addr_bits, shape=unsigned(8 * c.column_sets))).array(
                h_buffer_banks(c)),
            "shadow_free": Out(1),
            "o_units": Out(stream.Signature(unit_layout(c), always_ready=True)),
        }
        if c.mode == "full":
            depth = input_buffer_depth(c)
            ports["input_read"] = In(memory.ReadPort.Signature(addr_width=address_bits(depth),
                                                               shape=unsigned(c.stream_width)))
        super().__init__(ports)

    def elaborate(self, platform):
        m = Module()
        cfg = self.config
        H, TU = cfg.hidden_size, cfg.tail_units
        S, R = cfg.column_sets, cfg.rows_per_group
        wb, accw, sw = cfg.weight_bits, cfg.accumulator_bits, cfg.row_sum_bits
        full = cfg.mode == "full"
        banks = h_buffer_banks(cfg)
        flush = self.flush

        sets = []
        longest = max(cfg.issued_columns(layer) for layer in range(cfg.num_layers))   # a set's longest run
        for s in range(S):
            if cfg.macs_per_dsp == 1:
                lanes = MacLanes(lanes=R, weight_bits=wb, column_bits=8, acc_bits=sw)
            else:
                lanes = PackedMacLanes(lanes=R, weight_bits=wb, act_bits=cfg.io_bits, macs_per_dsp=cfg.macs_per_dsp,
                                       max_length=longest, column_bits=8, acc_bits=sw, dsp=cfg.packing_shape)
            m.submodules["lanes" if S == 1 else f"lanes_set{s}"] = lanes
            sets.append(lanes)

        # -- issue: addresses to the read ports ------------------------------------------------
        column = self.i_column.payload
        issue = Signal()
        m.d.comb += [self.i_column.ready.eq(~flush), issue.eq(self.i_column.valid & self.i_column.ready),
                     self.weight_read.addr.eq(column.weight_addr),
                     *(port.addr.eq(column.buffer_addr) for port in self.h_read)]
        if full:
            m.d.comb += self.input_read.addr.eq(column.buffer_addr)
        op1, valid1 = Signal(column_op_layout(cfg)), Signal()
        m.d.sync += [valid1.eq(issue), op1.eq(column.op)]

        # -- memory data registered (the block RAMs' output registers), the op alongside ----------
        # (no reset on the data: nothing between a block RAM's output and its flip-flop)
        op2, valid2 = Signal(column_op_layout(cfg)), Signal()
        weights2 = Signal(cfg.lanes * wb, reset_less=True)
        h2 = Signal(data.ArrayLayout(unsigned(8 * S), banks), reset_less=True)
        m.d.sync += [valid2.eq(valid1 & ~flush), op2.eq(op1), weights2.eq(self.weight_read.data),
                     *(h2[b].eq(port.data) for b, port in enumerate(self.h_read))]
        if full:
            x2 = Signal(cfg.stream_width, reset_less=True)
            m.d.sync += x2.eq(self.input_read.data)

        # -- the column's broadcast values (one a set) into the lanes ------------------------------
        values = Signal(unsigned(8 * S))
        with m.Switch(op2.source):
            if full:
                with m.Case(Source.INPUT):
                    m.d.comb += values.eq(x2.word_select(op2.byte, 8 * S))
            with m.Case(Source.HBUF0):
                m.d.comb += values.eq(h2[0])
            if banks > 1:
                with m.Case(Source.HBUF1):
                    m.d.comb += values.eq(h2[1])
            with m.Default():
                m.d.comb += values.eq(0)
        for s, lanes in enumerate(sets):
            m.d.comb += [lanes.valid.eq(valid2 & ~flush), lanes.first.eq(op2.first), lanes.last.eq(op2.last),
                         lanes.flush.eq(flush), lanes.column.eq(values.word_select(s, 8).as_signed()),
                         lanes.weights.eq(weights2.word_select(s, R * wb))]

        # -- each row's sum over the sets: a registered adder tree -------------------------------------
        level, done = [lanes.sums for lanes in sets], sets[0].done
        depth = 0
        while len(level) > 1:
            depth += 1
            pairs = []
            for a, b in zip(level[0::2], level[1::2]):
                total = Signal(R * sw, name=f"set_sum{depth}_{len(pairs)}")
                m.d.sync += total.eq(Cat(*[(a.word_select(r, sw).as_signed() + b.word_select(r, sw).as_signed())[:sw]
                                           for r in range(R)]))
                pairs.append(total)
            if len(level) % 2:
                # the odd one out waits a level beside the pairs' sums
                alone = Signal(R * sw, name=f"set_sum{depth}_{len(pairs)}")
                m.d.sync += alone.eq(level[-1])
                pairs.append(alone)
            later = Signal(name=f"set_sum{depth}_done")
            m.d.sync += later.eq(done & ~flush)
            level, done = pairs, later
        group_sums = level[0]

        # the group's tags travel with its last column through the lanes and the adder tree
        tags, lasts = [op2.tag], [op2.last & valid2]
        for s in range(sets[0].LATENCY + latency.set_sum(S)):
            tag, last = Signal(group_tag_layout(cfg), name=f"tag_lanes{s + 1}"), Signal(name=f"last_lanes{s + 1}")
            m.d.sync += [tag.eq(tags[-1]), last.eq(lasts[-1])]
            tags.append(tag)
            lasts.append(last)
        last_in_flight = Signal()
        m.d.comb += last_in_flight.eq(Cat(*lasts[:-1]).any() | (op1.last & valid1))

        # -- shadow bank: tail_units hidden units per cycle to the tail ------------------------------
        shadow = Signal(R * sw)
        left = Signal(range(cfg.tail_cycles_per_group + 1))
        unit = Signal(unit_index_shape(cfg))
        shadow_tag = Signal(group_tag_layout(cfg))
        with m.If(done & ~flush):
            m.d.sync += [shadow.eq(group_sums), left.eq(cfg.tail_cycles_per_group), unit.eq(tags[-1].unit_base),
                         shadow_tag.eq(tags[-1])]
        with m.Elif(left != 0):
            m.d.sync += [shadow.eq(shadow >> (4 * sw * TU)), left.eq(left - 1), unit.eq(unit + TU)]
        m.d.comb += self.shadow_free.eq((left == 0) & ~last_in_flight & ~done)

        # registered before the tail (latency.TAIL_FEED), sign-extended to the tail's width; the
        # tail reads the group tags straight from the shadow bank: they change only on a shadow
        # load, which the scheduler allows only after the previous group has left it
        feed_valid, feed_unit = Signal(), Signal(unit_index_shape(cfg))
        feed_sums = Signal(data.ArrayLayout(signed(accw), 4 * TU))
        m.d.sync += [feed_valid.eq((left != 0) & ~flush), feed_unit.eq(unit),
                     *(feed_sums[i].eq(shadow.word_select(i, sw).as_signed()) for i in range(4 * TU))]
        out = self.o_units.payload
        optional = [name for name in ("pre_base", "store", *batch_fields(cfg)) if name in unit_layout(cfg).members]
        # a partial last group pads past H: those units never reach the tail
        m.d.comb += [self.o_units.valid.eq(feed_valid & (feed_unit < H)),
                     *([out.second.eq(feed_unit + 1 < H)] if TU > 1 else []),
                     out.unit.eq(feed_unit), out.sums.eq(feed_sums.as_value()),
                     out.layer.eq(shadow_tag.layer), out.step_base.eq(shadow_tag.step_base),
                     out.first_step.eq(shadow_tag.first_step), out.classify.eq(shadow_tag.classify),
                     *(getattr(out, name).eq(getattr(shadow_tag, name)) for name in optional)]

        with m.If(flush):
            m.d.sync += [left.eq(0), feed_valid.eq(0), valid1.eq(0), valid2.eq(0)]
        return m
