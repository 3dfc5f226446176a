"""The per-hidden-unit tail of an LSTM step: bias, gate requantizers, σ/tanh tables, cell update,
tanh(c), h requantizer and the classifier MAC.  One hidden unit per cycle, fully pipelined (a
core of two tail units has two of them side by side)."""

from __future__ import annotations

from amaranth import Array, Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from lstmfpga.foundation.hw import weight_image
from lstmfpga.hw import latency
from lstmfpga.hw.rtl import payloads
from lstmfpga.hw.rtl.ram import ram
from lstmfpga.hw.rtl.requantizer import Requantizer

#: Parameter words per layer, in weight-image order: (M, S, lo, hi) × (gate i, f, g, o, fc, ig, h),
#: then cell_lo, cell_hi.
PARAM_WORDS = weight_image.REQUANT_WORDS
RQ_FC, RQ_IG, RQ_H = 4, 5, 6
CELL_LO = 4 * weight_image.REQUANT_COUNT
CELL_HI = CELL_LO + 1


def _bits_for(n: int) -> int:
    return max(1, (n - 1).bit_length())


def load_port_shapes(config) -> dict[str, int]:
    """The tail's write ports for the weight image's parameters (bias, requantizer words, σ/tanh
    tables, classifier weights and bias): name → width.  The weight loader drives them."""
    H, L = config.hidden_size, config.num_layers
    C = max(config.num_classes, 1)
    return {
        "bias_we": 1, "bias_addr": _bits_for(L * H), "bias_lane": 2, "bias_data": 32,
        "param_we": 1, "param_layer": 2, "param_index": 5, "param_data": 32,
        "table_we": 1, "table_gate": 2, "table_addr": _bits_for(L << config.acc_bits), "table_data": 32,
        "tanh_we": 1, "tanh_addr": _bits_for(L << config.cell_bits), "tanh_data": 32,
        "clsw_we": 1, "clsw_addr": _bits_for(H), "clsw_lane": _bits_for(C), "clsw_data": 32,
        "clsb_we": 1, "clsb_index": _bits_for(C), "clsb_data": 32,
    }


def preactivation_port_shapes(config) -> dict[str, int]:
    """The tail's write port for split-mode pre-activations: name → width.  The input receiver
    drives it with one beat per write, ``stream_width // 32`` consecutive 32-bit gate lanes of one
    hidden unit starting at gate lane ``pre_lane``."""
    return {"pre_we": 1, "pre_addr": _bits_for(config.max_run_steps * config.hidden_size), "pre_lane": 2,
            "pre_data": config.stream_width}


def _divide_by_constant(m, early, late, divisor: int, bits: int):
    """Registered ``late`` div and mod ``divisor`` (an unsigned ``bits``-bit value that is
    ``early`` a cycle before): the quotient ``early``·ceil(2^n / d) >> n, n = bits + ceil(log2 d),
    exact for every ``bits``-bit value (checked here), a cycle later the remainder from it."""
    n = bits + (divisor - 1).bit_length()
    reciprocal = -(-(1 << n) // divisor)
    assert all(u * reciprocal >> n == u // divisor for u in range(1 << bits))
    quotient, word = Signal(bits, name="h_word_early"), Signal(bits, name="h_word")
    lane = Signal(range(divisor), name="h_lane_value")
    m.d.sync += [quotient.eq((early * reciprocal) >> n), word.eq(quotient), lane.eq(late - quotient * divisor)]
    return word, lane


class TailUnit(wiring.Component):
    """Turns the four gate accumulators of one hidden unit into its new c and h codes.

    Inputs arrive with ``valid``; the h code leaves :attr:`LATENCY` cycles later with ``h_valid``
    (``h_addr`` = ``step_base`` + ``unit`` div S, the h-buffer word of the layer's h sequence,
    ``h_lane`` = ``unit`` mod S its byte; S = ``config.column_sets``).  Split mode: the unit's
    pre-activation is read at slot ``pre_base`` + ``unit`` (and added in layer 0).  With an input
    pass (``config.input_pass``) a unit marked ``store`` writes its four sums to slot ``pre_base``
    + ``unit`` div ``tail_units`` and goes no further; every other unit adds what that slot holds.
    Units of one layer and sequence must arrive in step order (the cell state of unit j of sequence
    b lives in memory word ``cell_base`` + j, ``cell_base`` = b·H).  ``classify`` marks units of the last step
    of the last layer: their h codes are accumulated into sequence b's lanes of ``logits`` (C
    32-bit lanes a sequence, which ``cls_start`` presets to the classifier bias).  ``h_unit`` and
    ``h_sequence`` say whose h code leaves.

    Parameters
    ----------
    config : AcceleratorConfig
    """

    LATENCY = latency.TAIL

    def __init__(self, *, config):
        self.config = c = config
        H = c.hidden_size
        self.unit_bits = _bits_for(H + 1)
        self.seq_bits = _bits_for(c.max_run_steps * H + 1)
        C = max(c.num_classes, 1)
        self.batch_fields = batch = payloads.batch_fields(c)
        super().__init__({
            "valid": In(1), "layer": In(2), "step_base": In(self.seq_bits), "first_step": In(1),
            **({"pre_base": In(self.seq_bits)} if c.mode == "split" or c.input_pass else {}),
            **({"store": In(1)} if c.input_pass else {}),
            "classify": In(1), "unit": In(self.unit_bits), "acc": In(unsigned(4 * c.accumulator_bits)),
            **{name: In(shape) for name, shape in batch.items()},
            **{name: In(shape) for name, shape in load_port_shapes(c).items()},
            **{name: In(shape) for name, shape in preactivation_port_shapes(c).items()},
            "cls_start": In(1), "flush": In(1),
            "h_valid": Out(1), "h_layer": Out(2), "h_addr": Out(self.seq_bits),
            "h_lane": Out(max(1, (c.column_sets - 1).bit_length())),
            "h_code": Out(signed(c.io_bits)), "h_unit": Out(self.unit_bits),
            **({"h_sequence": Out(batch["sequence"])} if batch else {}),
            "logits": Out(unsigned(32 * C * c.max_batch)),
        })

    def elaborate(self, platform):
        m = Module()
        c = self.config
        H, L = c.hidden_size, c.num_layers
        accw, ba = c.accumulator_bits, c.acc_bits
        tb, cb, htb, io = c.table_bits, c.cell_bits, c.hidden_tanh_bits, c.io_bits
        split = c.mode == "split"
        stored = split or c.input_pass          # a pre-activation memory the tail adds from

        # -- parameter registers (loaded through the weight image) ---------------------------
        params = [[Signal(32, name=f"param_l{l}_{i}") for i in range(PARAM_WORDS)] for l in range(L)]
        with m.If(self.param_we):
            with m.Switch(self.param_layer):
                for l in range(L):
                    with m.Case(l):
                        with m.Switch(self.param_index):
                            for i in range(PARAM_WORDS):
                                with m.Case(i):
                                    m.d.sync += params[l][i].eq(self.param_data)

        def param(layer_sig, index):
            return Array(params[l][index] for l in range(L))[layer_sig] if L > 1 else params[0][index]

        # -- memories -----------------------------------------------------------------------
        bias_mem = ram(shape=unsigned(128), depth=L * H)
        m.submodules.bias_mem = bias_mem
        bias_w = bias_mem.write_port(granularity=32)
        bias_r = bias_mem.read_port()
        m.d.comb += [bias_w.addr.eq(self.bias_addr), bias_w.data.eq(self.bias_data.replicate(4)),
                     bias_w.en.eq(Mux(self.bias_we, 1 << self.bias_lane, 0))]
        if stored:
            pre_mem = ram(shape=unsigned(128), depth=c.max_run_steps * c.pre_stride)
            m.submodules.pre_mem = pre_mem
            pre_w = pre_mem.write_port(granularity=32)
            pre_r = pre_mem.read_port()
        if split:
            per_write = c.stream_width // 32
            m.d.comb += [pre_w.addr.eq(self.pre_addr), pre_w.data.eq(self.pre_data.replicate(4 // per_write)),
                         pre_w.en.eq(Mux(self.pre_we, ((1 << per_write) - 1) << self.pre_lane, 0))]
        cell_mem = ram(shape=signed(cb), depth=c.max_batch * H)
        m.submodules.cell_mem = cell_mem
        cell_w = cell_mem.write_port()
        cell_r = cell_mem.read_port()
        table_r = []
        for g in range(4):
            mem = ram(shape=signed(tb), depth=L << ba)
            m.submodules[f"gate_table{g}"] = mem
            wp = mem.write_port()
            m.d.comb += [wp.addr.eq(self.table_addr), wp.data.eq(self.table_data),
                         wp.en.eq(self.table_we & (self.table_gate == g))]
            table_r.append(mem.read_port())
        tanh_mem = ram(shape=signed(htb), depth=L << cb)
        m.submodules.tanh_mem = tanh_mem
        tanh_w = tanh_mem.write_port()
        tanh_r = tanh_mem.read_port()
        m.d.comb += [tanh_w.addr.eq(self.tanh_addr), tanh_w.data.eq(self.tanh_data),
                     tanh_w.en.eq(self.tanh_we)]

        # -- pipeline tags --------------------------------------------------------------------
        depth = self.LATENCY + latency.CLASSIFIER + 1

        def chain(name, shape, source):
            regs = [source] + [Signal(shape, name=f"{name}{s}") for s in range(1, depth)]
            for s in range(1, depth):
                m.d.sync += regs[s].eq(regs[s - 1])
            return regs

        # (an input-pass unit only writes its sums to the pre-activation memory)
        valid = chain("valid", 1, self.valid & ~self.store if c.input_pass else self.valid)
        with m.If(self.flush):
            # soft reset: units in flight must not write h codes or count as done
            m.d.sync += [v.eq(0) for v in valid[1:]]
        layer = chain("layer", 2, self.layer)
        base = chain("base", self.seq_bits, self.step_base)
        first = chain("first", 1, self.first_step)
        cls = chain("cls", 1, self.classify)
        unit = chain("unit", self.unit_bits, self.unit)
        batch = self.batch_fields
        if batch:
            sequence = chain("sequence", batch["sequence"], self.sequence)
            cell_base = chain("cell_base", batch["cell_base"], self.cell_base)

        def cell_addr(stage):
            return cell_base[stage] + unit[stage] if batch else unit[stage]

        S = latency.TAIL_STAGES
        m.d.comb += [bias_r.addr.eq(layer[S["read"]] * H + unit[S["read"]]), cell_r.addr.eq(cell_addr(S["read"]))]
        if split:
            # the read stage is the input cycle: the slot needs no pipeline
            m.d.comb += pre_r.addr.eq(self.pre_base + unit[S["read"]])
        elif c.input_pass:
            # slot v·ceil(H/TU) + unit div TU: a tail keeps its own units (unit 2j + 1 is tail 2's j);
            # an input-pass unit's sums are written a cycle after they arrive, as 32-bit lanes
            # (W_x·x fits: ``accumulator_bits`` is int32 headroom above the widest dot product)
            slot = self.pre_base + (unit[S["read"]] >> (c.tail_units - 1))
            m.d.comb += pre_r.addr.eq(slot)
            m.d.sync += [pre_w.addr.eq(slot), pre_w.en.eq(Mux(self.valid & self.store, 0b1111, 0)),
                         pre_w.data.eq(Cat(*(self.acc[g * accw:g * accw + 32] for g in range(4))))]
        def registered(source, name):
            """``source`` one cycle later (a memory's output register).  With a reset, so that it
            stays with the block RAM: moved into a multiplier as its operand register
            (``hw/ecp5_dsp_registers.py`` takes only registers without one) it would be a long
            route from the RAM's slow output; the RAM pass (``hw/ecp5_bram_registers.py``) makes
            it the block's own output register."""
            r = Signal.like(source, name=name)
            m.d.sync += r.eq(source)
            return r

        def operand(source, name):
            """A multiplier's operand or product register without reset: the DSP's own."""
            r = Signal.like(source, name=name, reset_less=True)
            m.d.sync += r.eq(source)
            return r

        acc1 = self.acc
        for s in range(S["bias"]):
            acc1 = registered(acc1, f"acc{s + 1}")
        bias_data = registered(bias_r.data, "bias_data")
        cell_data = registered(cell_r.data, "cell_data")
        if stored:
            pre_data = registered(pre_r.data, "pre_data")
        # bias (+ split-mode pre-activation), previous cell state
        v2 = [Signal(signed(accw), name=f"v{g}", reset_less=True) for g in range(4)]
        c_old = {s: Signal(signed(cb), name=f"c_old{s}") for s in range(S["gate_rq"], S["gate_value"] + 1)}
        for g in range(4):
            total = acc1[g * accw:(g + 1) * accw].as_signed() + bias_data[32 * g:32 * (g + 1)].as_signed()
            if split:
                total = total + Mux(layer[S["bias"]] == 0, pre_data[32 * g:32 * (g + 1)].as_signed(), 0)
            elif c.input_pass:
                total = total + pre_data[32 * g:32 * (g + 1)].as_signed()
            m.d.sync += v2[g].eq(total)
        m.d.sync += c_old[S["gate_rq"]].eq(Mux(first[S["bias"]], 0, cell_data))
        for s in range(S["gate_rq"] + 1, S["gate_value"] + 1):
            m.d.sync += c_old[s].eq(c_old[s - 1])
        # gate requantizers
        def drive(rq, which, stage, value):
            """Feed a requantizer ``value`` and its (M, S, lo, hi) words, read at pipeline ``stage``.
            The multiplier word is chosen a stage earlier and registered: with ``value`` (a register
            without reset) it is a multiplier operand that synthesis can move into the DSP."""
            multiplier = Signal.like(rq.multiplier, name=f"multiplier{which}", reset_less=True)
            m.d.sync += multiplier.eq(param(layer[stage - 1], 4 * which))
            m.d.comb += [rq.value.eq(value), rq.multiplier.eq(multiplier),
                         *(port.eq(param(layer[stage], 4 * which + k))
                           for k, port in enumerate((rq.shift, rq.lo, rq.hi), start=1))]

        gate_codes = []
        for g in range(4):
            rq = Requantizer(in_width=accw, out_width=ba, dsp=c.packing_shape)
            m.submodules[f"gate_rq{g}"] = rq
            drive(rq, g, S["gate_rq"], v2[g])
            gate_codes.append(rq.result)
        # table addresses
        for g in range(4):
            index = (gate_codes[g] - param(layer[S["gate_table"]], 4 * g + 2).as_signed())[:ba]
            m.d.comb += table_r[g].addr.eq(Cat(index, layer[S["gate_table"]]) if L > 1 else index)
        # gate values -> products
        # (the values' registers stay with the tables, the operand registers behind them move into
        # the multipliers: a table's output routed straight into a multiplier's combinational
        # input was the tail's longest path)
        i6, f6, g6, o6 = (registered(table_r[g].data, f"gate_value{g}") for g in range(4))
        i_op, f_op, g_op = (operand(v, f"{n}_operand") for v, n in ((i6, "i"), (f6, "f"), (g6, "g")))
        c_op = operand(c_old[S["gate_value"]], "c_old_operand")
        fc_in = Signal(signed(tb + cb), reset_less=True)
        ig_in = Signal(signed(2 * tb), reset_less=True)
        m.d.sync += [fc_in.eq(f_op * c_op), ig_in.eq(i_op * g_op)]
        o_delay = [o6]
        for s in range(S["gate_value"] + 1, S["hidden_tanh"] + 1):
            r = Signal(signed(tb), name=f"o{s}")
            m.d.sync += r.eq(o_delay[-1])
            o_delay.append(r)
        # cell requantizers
        rq_fc = Requantizer(in_width=tb + cb, out_width=cb, dsp=c.packing_shape)
        rq_ig = Requantizer(in_width=2 * tb, out_width=cb, dsp=c.packing_shape)
        m.submodules.fc_rq, m.submodules.ig_rq = rq_fc, rq_ig
        drive(rq_fc, RQ_FC, S["cell_rq"], fc_in)
        drive(rq_ig, RQ_IG, S["cell_rq"], ig_in)
        # new cell state: the sum, its compares against the bounds and the clamp each in a stage of
        # their own (a carry chain a cycle: two in one were the tail's longest path)
        c_sum = Signal(signed(cb + 1))
        m.d.sync += c_sum.eq(rq_fc.result + rq_ig.result)
        bound_lo, bound_hi = (param(layer[S["cell_bounds"]], i).as_signed() for i in (CELL_LO, CELL_HI))
        below, above, c_sum2 = Signal(), Signal(), Signal(signed(cb + 1))
        m.d.sync += [below.eq(c_sum < bound_lo), above.eq(c_sum > bound_hi), c_sum2.eq(c_sum)]
        cell_lo, cell_hi = (param(layer[S["cell_clamp"]], i).as_signed() for i in (CELL_LO, CELL_HI))
        c_new = Signal(signed(cb))
        m.d.sync += c_new.eq(Mux(below, cell_lo, Mux(above, cell_hi, c_sum2)))
        # write cell state, tanh(c) look-up
        w = S["cell_write"]
        m.d.comb += [cell_w.addr.eq(cell_addr(w)), cell_w.data.eq(c_new), cell_w.en.eq(valid[w])]
        t_index = (c_new - param(layer[w], CELL_LO).as_signed())[:cb]
        m.d.comb += tanh_r.addr.eq(Cat(t_index, layer[w]) if L > 1 else t_index)
        # o · tanh(c)
        h_in = Signal(signed(tb + htb), reset_less=True)
        m.d.sync += h_in.eq(operand(o_delay[-1], "o_operand") * operand(registered(tanh_r.data, "tanh_value"),
                                                                        "tanh_operand"))
        # h requantizer
        rq_h = Requantizer(in_width=tb + htb, out_width=io, dsp=c.packing_shape)
        m.submodules.h_rq = rq_h
        drive(rq_h, RQ_H, S["h_rq"], h_in)
        out = S["h_out"]
        m.d.comb += [self.h_valid.eq(valid[out]), self.h_layer.eq(layer[out]),
                     self.h_code.eq(rq_h.result), self.h_unit.eq(unit[out]),
                     *([self.h_sequence.eq(sequence[out])] if batch else [])]
        sets = c.column_sets
        if sets & (sets - 1) == 0:
            set_bits = sets.bit_length() - 1
            m.d.comb += self.h_addr.eq(base[out] + (unit[out] >> set_bits))
            if set_bits:
                m.d.comb += self.h_lane.eq(unit[out][:set_bits])
        else:
            # unit div S and mod S over the two stages before the h code: the quotient as the
            # product with a rounded-up reciprocal (exact below 2^unit_bits), then the remainder
            word, lane = _divide_by_constant(m, unit[out - 2], unit[out - 1], sets, self.unit_bits)
            m.d.comb += [self.h_addr.eq(base[out] + word), self.h_lane.eq(lane)]

        # -- classifier: logits[k] += w[k, j] · h_j over the last step of the last layer --------
        C = c.num_classes
        if C:
            cw = c.classifier_weight_bits
            cls_mem = ram(shape=unsigned(C * cw), depth=H)
            m.submodules.cls_mem = cls_mem
            cls_w = cls_mem.write_port(granularity=cw)
            cls_r = cls_mem.read_port()
            m.d.comb += [cls_w.addr.eq(self.clsw_addr), cls_w.data.eq(self.clsw_data[:cw].replicate(C)),
                         cls_w.en.eq(Mux(self.clsw_we, 1 << self.clsw_lane, 0)),
                         cls_r.addr.eq(unit[out])]
            bias_regs = [Signal(32, name=f"cls_bias{k}") for k in range(C)]
            for k in range(C):
                with m.If(self.clsb_we & (self.clsb_index == k)):
                    m.d.sync += bias_regs[k].eq(self.clsb_data)
            h_cls = rq_h.result
            for s in range(latency.MEMORY_READ + latency.MEMORY_OUTPUT):
                h_cls = registered(h_cls, f"h_cls{s + 1}")
            w_cls = registered(cls_r.data, "cls_weights")

            # the weight's register stays with the memory; the operand registers behind it and the
            # product register move into the multiplier (a multiply between fabric registers was
            # the tail's longest path)
            h_cls, w_cls = operand(h_cls, "h_cls_operand"), operand(w_cls, "cls_weights_operand")
            at = out + latency.CLASSIFIER
            take = valid[at] & cls[at]
            logits = [[Signal(32, name=f"logit{k}" + (f"_{b}" if batch else "")) for k in range(C)]
                      for b in range(c.max_batch)]
            for k in range(C):
                product = operand(w_cls[k * cw:(k + 1) * cw].as_signed() * h_cls, f"cls_product{k}")
                for b, lanes in enumerate(logits):
                    with m.If(self.cls_start):
                        m.d.sync += lanes[k].eq(bias_regs[k])
                    with m.Elif(take & (sequence[at] == b) if batch else take):
                        m.d.sync += lanes[k].eq(lanes[k].as_signed() + product)
            m.d.comb += self.logits.eq(Cat(*(lane for lanes in logits for lane in lanes)))
        return m
