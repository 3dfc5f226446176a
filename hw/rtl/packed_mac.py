"""Several gate rows per hardware multiplier, exact: one packed multiply-accumulate unit.

The arithmetic (field distance, guard bits, the biased accumulator) is in
:mod:`lstmfpga.foundation.hw.packed_mac_model`; this block is its register-transfer form.

Use in the MAC engine
---------------------
:class:`~lstmfpga.hw.rtl.mac_lanes.MacLanes` (``P`` lanes, one multiplier each) becomes
``ceil(P / k)`` units ``PackedMac(weight_bits=cfg.weight_bits, act_bits=cfg.io_bits,
macs_per_dsp=k, max_length=K_max)`` with ``K_max`` the longest row (``I + H`` columns on chip) and
``k`` the plan's rows per DSP (at most :func:`~lstmfpga.foundation.hw.packed_mac_model.max_macs_per_dsp`):

- weights: the weight memory's row already holds lane ``p`` at bits ``p·wb``, so unit ``u`` takes
  bits ``[u·k·wb, (u+1)·k·wb)`` unchanged (no new weight-image layout); when ``k`` does not divide
  ``P`` the last unit's upper fields are tied to zero;
- ``i_stream.valid/first/last`` and ``activation`` are the lanes' ``valid/first/last`` and the
  broadcast ``column``; ``o_stream.ready`` is tied to 1, so ``i_stream.ready`` stays 1 and the
  scheduler needs no stall; ``done`` is unit 0's ``o_stream.valid`` (all units move in lockstep)
  and ``sums`` the units' rows in order, each sign-extended from :attr:`PackedMac.sum_bits` to
  the accumulator width; the payload register holds until the next result, as the lanes' sums do;
- ``flush`` (soft reset) wraps the units in ``ResetInserter({"sync": flush})``: the stage valids
  and the run counter clear, so no late result reaches the shadow bank;
- the column and the controls are copied once per block of units in the fabric first, as in
  :class:`~lstmfpga.hw.rtl.mac_lanes.MacLanes`;
- the group tags travel ``PackedMacLanes.LATENCY`` stages instead of ``MacLanes.LATENCY``, and
  :func:`latency.engine(k) <lstmfpga.hw.latency.engine>` counts ``PACKED_MAC`` where it counts
  ``MAC_LANES``: ``PACKED_MAC − MAC_LANES`` more cycles per group round trip.

:class:`PackedMacLanes` is that arrangement, with :class:`MacLanes`' ports; the engine builds it
when ``config.macs_per_dsp > 1``.

What the cycle model gains: a unit still takes one column per cycle whatever the run length
(a flush into the row accumulators happens in the same cycle as the next run starts), so cycles
per group stay ``K`` plus the latency; what changes is that ``P`` lanes cost ``ceil(P / k)``
DSPs, so on a DSP-bound board the planner can choose ``k`` times the lanes and a layer needs
``ceil(4H / (k·P_dsp))`` groups per step instead of ``ceil(4H / P_dsp)``.  For the study's
model (H = 512, 4-bit weights, 8-bit activations, ``k = 2``) the 2048 gate rows fit in 1024
DSP48E2: one group of ``K = 2560`` columns per step instead of two, if the weight memory can
deliver the ``2048 × 4``-bit row each cycle.
"""

from __future__ import annotations

from amaranth import C, Cat, Module, Mux, ResetInserter, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from lstmfpga.foundation.hw.packed_mac_model import DSP48E2, DspShape, plan_packing, signed_bits, sum_range
from lstmfpga.foundation.validation import check_integer
from lstmfpga.hw import latency
from lstmfpga.hw.rtl import fanout
from lstmfpga.hw.rtl.mac_lanes import copied_inputs, lanes_ports


def row_name(row: int) -> str:
    """Field of a row's sum in the output payload.

    A struct, not an array: Yosys's ABC9 pass names the bits of a wire ``name[i]`` and aborts
    when the design already has a wire named that way, as an array view's members are.
    """
    return f"row{row}"


class PackedMac(wiring.Component):
    """Exact dot products of ``macs_per_dsp`` weight rows with one shared activation column.

    Each input beat carries one column: the rows' weights (row ``r`` at bits ``r·wb``; a row
    with no weights is zero), the broadcast activation, and ``first``/``last`` marking a dot
    product (a ``first`` restarts the sum).  The packed operand ``Σ w_r·2^(rS)`` and the
    activation enter the A and B registers, their product the M register, and P accumulates it,
    starting each run at the packing's bias: the shape DSP inference puts in one slice (A/B, M
    and P registers, the bias a constant on the C port selected by the Z multiplexer; Yosys
    packs the registers and the adder this way for 7-series, and for UltraScale+ maps only the
    multiplier).  Every ``run`` products, or at ``last``, the fields are read from P by wiring
    alone and, when a dot product may be longer than a run, added into per-row accumulators in
    fabric.  :attr:`LATENCY` cycles after a beat with ``last`` is taken, ``o_stream`` offers the
    row sums; it holds them until taken, and ``i_stream`` waits only when a new result would
    overwrite one not yet taken.

    Parameters
    ----------
    weight_bits : int
        Signed weight width, 2–8 (full or narrow range).
    act_bits : int
        Signed activation width, 4–8.
    macs_per_dsp : int
        Rows sharing one multiplier (1 = no packing).
    max_length : int
        Longest dot product (products between ``first`` and ``last``); sets the sum width.
    dsp : DspShape
        The multiplier the packing must fit (:data:`~lstmfpga.foundation.hw.packed_mac_model.DSP48E2`).

    Attributes
    ----------
    packing : Packing
        Field distance, run and widths.
    run : int
        Products accumulated in P before a flush (the packing's run, or ``max_length``).
    sum_bits : int
        Signed width of each row sum.
    acc_bits : int
        Signed width of the P register (a full run, biased).

    Raises
    ------
    ConfigError
        A width or count out of range, or a packing that does not fit ``dsp``.
    """

    LATENCY = latency.PACKED_MAC

    def __init__(self, *, weight_bits: int, act_bits: int, macs_per_dsp: int, max_length: int,
                 dsp: DspShape = DSP48E2):
        check_integer("max_length", max_length, low=1, what="a positive integer")
        self.packing = plan_packing(weight_bits=weight_bits, act_bits=act_bits,
                                    macs_per_dsp=macs_per_dsp, dsp=dsp)
        self.max_length = max_length
        self.run = min(self.packing.run, max_length)
        self.sum_bits = signed_bits(*sum_range(weight_bits, act_bits, max_length))
        self.acc_bits = signed_bits(*self.packing.accumulator_range(self.run))
        beat = data.StructLayout({
            "weights": unsigned(macs_per_dsp * weight_bits),
            "activation": signed(act_bits),
            "first": 1,
            "last": 1,
        })
        super().__init__({
            "i_stream": In(stream.Signature(beat)),
            "o_stream": Out(stream.Signature(data.StructLayout(
                {row_name(r): signed(self.sum_bits) for r in range(macs_per_dsp)}))),
        })

    @property
    def splits(self) -> bool:
        """Whether a dot product may span several runs (per-row accumulators in fabric)."""
        return self.max_length > self.run

    def _packed_operand(self, m: Module, weights) -> Signal:
        """``Σ w_r·2^(rS)`` built field by field: each field borrows the sign of those below."""
        pk = self.packing
        wb, s = pk.weight_bits, pk.shift
        rows = [weights[r * wb:(r + 1) * wb].as_signed() for r in range(pk.macs_per_dsp)]
        value = rows[0]
        for r in range(1, pk.macs_per_dsp):
            lower = Signal(signed(r * s), name=f"packed_lower{r}")
            m.d.comb += lower.eq(value)
            value = Cat(lower, rows[r] - lower[-1]).as_signed()
        operand = Signal(signed(pk.packed_bits), name="packed_operand")
        m.d.comb += operand.eq(value)
        return operand

    def _fields(self, acc: Signal) -> list:
        """Row sums in a biased accumulator: lower fields with the top bit inverted, then the rest."""
        pk = self.packing
        s, top = pk.shift, pk.macs_per_dsp - 1
        lower = [Cat(acc[r * s:(r + 1) * s - 1], ~acc[(r + 1) * s - 1]).as_signed() for r in range(top)]
        return [*lower, acc[top * s:].as_signed()]

    def elaborate(self, platform):
        m = Module()
        pk = self.packing
        i, o = self.i_stream, self.o_stream
        beat = i.payload

        # run boundaries at the input
        counted = self.splits and self.run > 1
        if counted:
            pos = Signal(range(self.run), name="run_pos")
            here = Signal.like(pos, name="run_here")
            m.d.comb += here.eq(Mux(beat.first, 0, pos))
            run_start, run_end = here == 0, beat.last | (here == self.run - 1)
        elif self.splits:
            run_start = run_end = C(1)   # runs of one product: no counter (a zero-width one trips Verilator)
        else:
            run_start, run_end = beat.first, beat.last

        # the controls are the same in every unit of the engine: ``keep``
        # stops synthesis merging them into one register that drives every unit (hw/rtl/fanout.py)
        keep = {"keep": 1}
        v1, v2, v3 = (Signal(name=n, attrs=keep) for n in ("a_valid", "m_valid", "p_valid"))
        start1, end1, first1, last1 = (Signal(name=n, attrs=keep) for n in ("a_start", "a_end", "a_first", "a_last"))
        start2, end2, first2, last2 = (Signal(name=n, attrs=keep) for n in ("m_start", "m_end", "m_first", "m_last"))
        end3, last3, dot_first3 = (Signal(name=n, attrs=keep) for n in ("p_end", "p_last", "p_dot_first"))
        a = Signal(signed(pk.packed_bits), name="a_reg", reset_less=True)
        b = Signal(signed(pk.act_bits), name="b_reg", reset_less=True)   # the DSP's B register
        mreg = Signal(signed(pk.packed_bits + pk.act_bits), name="m_reg", reset_less=True)
        p = Signal(signed(self.acc_bits), name="p_reg", reset_less=True)

        result = Signal(name="result_ready")
        m.d.comb += result.eq(v3 & last3)
        advance = Signal()
        m.d.comb += [advance.eq(~(o.valid & ~o.ready & result)), i.ready.eq(advance)]
        take = i.valid & advance

        operand = self._packed_operand(m, beat.weights)
        with m.If(advance):
            m.d.sync += [v1.eq(i.valid), v2.eq(v1), v3.eq(v2)]
        with m.If(take):
            m.d.sync += [a.eq(operand), b.eq(beat.activation), start1.eq(run_start), end1.eq(run_end),
                         first1.eq(beat.first), last1.eq(beat.last)]
            if counted:
                m.d.sync += pos.eq(Mux(run_end, 0, here + 1))
        with m.If(advance & v1):
            m.d.sync += [mreg.eq(a * b), start2.eq(start1), end2.eq(end1), first2.eq(first1), last2.eq(last1)]
        with m.If(advance & v2):
            m.d.sync += [p.eq(Mux(start2, pk.bias, p) + mreg), end3.eq(end2), last3.eq(last2)]
            with m.If(start2):
                m.d.sync += dot_first3.eq(first2)

        fields = self._fields(p)
        if self.splits:
            totals = []
            for r, field in enumerate(fields):
                acc = Signal(signed(self.sum_bits), name=f"row_acc{r}", reset_less=True)
                total = Signal(signed(self.sum_bits), name=f"row_total{r}")
                m.d.comb += total.eq(Mux(dot_first3, 0, acc) + field)
                with m.If(advance & v3 & end3):
                    m.d.sync += acc.eq(total)
                totals.append(total)
        else:
            totals = fields

        with m.If(advance & result):
            m.d.sync += [o.valid.eq(1), *[o.payload[row_name(r)].eq(t) for r, t in enumerate(totals)]]
        with m.Elif(o.ready):
            m.d.sync += o.valid.eq(0)
        return m


class PackedMacLanes(wiring.Component):
    """``lanes`` MAC lanes made of ``ceil(lanes / macs_per_dsp)`` :class:`PackedMac` units, with the
    ports and behaviour of :class:`~lstmfpga.hw.rtl.mac_lanes.MacLanes` at :attr:`LATENCY` (the
    units' latency after the column's per-block copies).

    Unit ``u`` takes lanes ``u·k`` to ``u·k + k − 1`` (their weights are already adjacent in
    ``weights``; the last unit's missing lanes are zero) and the broadcast ``column`` truncated to
    ``act_bits`` (the column values are codes of that width).  The units never stall; ``done`` is
    unit 0's result valid (the units move in lockstep) and ``sums`` holds every lane's sum,
    sign-extended to ``acc_bits``, until the next result.  ``flush`` resets the units' control:
    nothing in flight reaches ``done``.

    Parameters
    ----------
    lanes : int
        Lanes P.
    weight_bits : int
        Signed weight width.
    act_bits : int
        Signed width of the column values the units multiply.
    macs_per_dsp : int
        Lanes per unit, at least 2.
    max_length : int
        Longest dot product (columns between ``first`` and ``last``).
    column_bits : int
        Width of the ``column`` port (at least ``act_bits``).
    acc_bits : int
        Width of each lane's sum in ``sums`` (at least :attr:`PackedMac.sum_bits`).
    dsp : DspShape
        The multiplier the units' packing fits (:data:`~lstmfpga.foundation.hw.packed_mac_model.DSP48E2`).

    Raises
    ------
    ConfigError
        A count or width out of range, or a packing that does not fit ``dsp``.
    """

    LATENCY = latency.COLUMN_COPY + PackedMac.LATENCY

    def __init__(self, *, lanes: int, weight_bits: int, act_bits: int, macs_per_dsp: int, max_length: int,
                 column_bits: int, acc_bits: int, dsp: DspShape = DSP48E2):
        check_integer("lanes", lanes, low=1, what="a positive integer")
        check_integer("macs_per_dsp", macs_per_dsp, low=2, what="an integer of at least 2 (1 is MacLanes)")
        check_integer("column_bits", column_bits, low=act_bits, what=f"an integer of at least act_bits ({act_bits})")
        self.lanes, self.weight_bits, self.act_bits = lanes, weight_bits, act_bits
        self.macs_per_dsp, self.max_length, self.column_bits = macs_per_dsp, max_length, column_bits
        self.units = -(-lanes // macs_per_dsp)
        check_integer("max_length", max_length, low=1, what="a positive integer")
        self.dsp = dsp
        self.packing = plan_packing(weight_bits=weight_bits, act_bits=act_bits, macs_per_dsp=macs_per_dsp, dsp=dsp)
        self.sum_bits = signed_bits(*sum_range(weight_bits, act_bits, max_length))   # as each unit's
        check_integer("acc_bits", acc_bits, low=self.sum_bits, what=f"an integer of at least {self.sum_bits}")
        self.acc_bits = acc_bits
        super().__init__(lanes_ports(lanes=lanes, weight_bits=weight_bits, column_bits=column_bits, acc_bits=acc_bits))

    def elaborate(self, platform):
        m = Module()
        P, k, wb = self.lanes, self.macs_per_dsp, self.weight_bits
        # the column and the controls copied once per block of units in the fabric (as MacLanes does)
        near, valid0, first0, last0, weights0 = copied_inputs(m, self, count=fanout.copies(self.units))
        sums = []
        for u in range(self.units):
            b = fanout.block_of(u)
            unit = PackedMac(weight_bits=wb, act_bits=self.act_bits, macs_per_dsp=k, max_length=self.max_length,
                             dsp=self.dsp)
            m.submodules[f"unit{u}"] = ResetInserter({"sync": self.flush})(unit)
            beat = unit.i_stream.payload
            rows = min(k, P - u * k)
            m.d.comb += [unit.i_stream.valid.eq(valid0[b] & ~self.flush), unit.o_stream.ready.eq(1),
                         beat.weights.eq(weights0[u * k * wb:(u * k + rows) * wb]),
                         beat.activation.eq(near[b]), beat.first.eq(first0[b]), beat.last.eq(last0[b])]
            for r in range(rows):
                lane = Signal(signed(self.acc_bits), name=f"sum{u * k + r}")
                m.d.comb += lane.eq(unit.o_stream.payload[row_name(r)])
                sums.append(lane)
            if u == 0:
                m.d.comb += self.done.eq(unit.o_stream.valid)
        m.d.comb += self.sums.eq(Cat(*[lane.as_unsigned() for lane in sums]))
        return m
