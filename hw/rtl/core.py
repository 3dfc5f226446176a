"""The LSTM accelerator core: the blocks of ``hw/rtl`` joined behind plain stream and control
ports; see ``top.py`` for the AXI wrapper.

::

    i_stream ─ StreamRegister ─ RunControl ─┬─ WeightLoader ─── weight memory, tail parameters
                                            └─ InputReceiver ── input buffer (full) / pre-activations (split)
    ColumnScheduler ─ MacEngine ─ TailUnit ─┬─ h buffers (the next step's and layer's input)
                                            └─ OutputSender ─ StreamRegister ─ o_stream (last layer's h)

Both stream ports pass a register slice, so the bus's TVALID and TREADY meet the core's registers only.

With weights in DDR (``config.ddr_weights``) the weight memory is a double buffer of row groups
that a :class:`~lstmfpga.hw.rtl.ddr_row_fetcher.DdrRowFetcher` fills through ``m_axi_*`` during
the run, in step with the scheduler; the weight loader then checks the image without keeping its
rows.
"""

from __future__ import annotations

from amaranth import Cat, Module, Mux, ResetInserter, Signal, signed, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from lstmfpga.hw.rtl.axi_weight_reader import forward_axi, read_port_members
from lstmfpga.hw.rtl.column_scheduler import ColumnScheduler
from lstmfpga.hw.rtl.ddr_row_fetcher import DdrRowFetcher
from lstmfpga.hw.rtl.input_receiver import InputReceiver
from lstmfpga.hw.rtl.mac_engine import MacEngine, h_buffer_banks, h_buffer_depth
from lstmfpga.hw.rtl.output_sender import OutputSender
from lstmfpga.hw.rtl.payloads import batch_fields, beat_layout, input_buffer_depth
from lstmfpga.hw.rtl.ram import ram
from lstmfpga.hw.rtl.resident_rows import ResidentRows
from lstmfpga.hw.rtl.run_control import RunControl
from lstmfpga.hw.rtl.stream_register import StreamRegister
from lstmfpga.hw.rtl.tail_unit import TailUnit, load_port_shapes, preactivation_port_shapes
from lstmfpga.hw.rtl.weight_loader import WeightLoader
from lstmfpga.hw.rtl.weight_memory import WeightMemory


class LstmCore(wiring.Component):
    """The accelerator behind plain stream and control ports.

    ``i_stream`` carries weight images and input packets, ``o_stream`` output packets
    (``config.stream_width``-bit beats with TLAST, :mod:`~lstmfpga.foundation.hw.stream_format`);
    the control ports are the register file's (:class:`~lstmfpga.hw.rtl.run_control.RunControl`).
    With weights in DDR, ``ddr_base``/``ddr_length`` are the weight image's buffer and ``m_axi_*``
    the AXI4 read port the rows come through.

    Parameters
    ----------
    config : AcceleratorConfig
    """

    def __init__(self, *, config):
        self.config = config
        ddr_ports = {}
        if config.ddr_weights:
            ddr_ports = {"ddr_base": In(64), "ddr_length": In(32), **read_port_members(config.ddr_width)}
        super().__init__({
            **ddr_ports,
            "i_stream": In(stream.Signature(beat_layout(config.stream_width))),
            "o_stream": Out(stream.Signature(beat_layout(config.stream_width))),
            "start": In(1), "soft_reset": In(1), "load_weights": In(1), "clear": In(1),
            "timesteps": In(8), "timeout": In(32),
            **({"batch": In(32)} if config.max_batch > 1 else {}),
            "busy": Out(1), "done": Out(1), "weights_valid": Out(1), "loading": Out(1),
            "error": Out(16), "cycles": Out(32), "run_cycles": Out(32),
            "hash": Out(unsigned(256)),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.config
        full = cfg.mode == "full"

        m.submodules.control = control = RunControl(config=cfg)
        m.submodules.loader = loader = WeightLoader(config=cfg)
        m.submodules.receiver = receiver = InputReceiver(config=cfg)
        m.submodules.scheduler = scheduler = ColumnScheduler(config=cfg)
        m.submodules.engine = engine = MacEngine(config=cfg)
        # tail_units tails side by side, the second taking unit 2j + 1 of each pair (its cell state,
        # tables and classifier weights are copies; its logits start at zero and add to the first's)
        tails = [TailUnit(config=cfg) for _ in range(cfg.tail_units)]
        for i, unit_tail in enumerate(tails):
            m.submodules["tail" if i == 0 else f"tail{i + 1}"] = unit_tail
        tail = tails[0]
        m.submodules.sender = sender = OutputSender(config=cfg)
        batched = cfg.max_batch > 1

        # -- memories ---------------------------------------------------------------------------
        # the loader's writes are registered on their way to the memories and the tail's parameter
        # registers: a weight load is not timed, and the word strobe (from TREADY) stays off the
        # enables' paths
        m.submodules.weight_mem = weight_mem = WeightMemory(config=cfg)
        if cfg.ddr_weights:
            self._fetch_rows(m, control, scheduler, loader, weight_mem)
        else:
            wiring.connect(m, loader.weight_write, weight_mem.write)
        wiring.connect(m, engine.weight_read, weight_mem.read)
        if full:
            m.submodules.input_buf = input_buf = ram(
                shape=unsigned(cfg.stream_width), depth=input_buffer_depth(cfg))
            wiring.connect(m, receiver.input_write, input_buf.write_port())
            wiring.connect(m, engine.input_read, input_buf.read_port())
        else:
            for name in preactivation_port_shapes(cfg):
                m.d.comb += [getattr(t, name).eq(getattr(receiver.pre_write, name)) for t in tails]
        # h buffer b holds the h sequences of the layers l with l mod 2 = b, for the engine
        # (words of S codes, written a byte at a time: unit u at byte u mod S)
        # (two tails: units 2j and 2j + 1 in bytes h_lane and h_lane + 1 of one word)
        banks, S, TU = h_buffer_banks(cfg), cfg.column_sets, cfg.tail_units
        h_bytes = [Signal(signed(8), name=f"h_byte{i}") for i in range(TU)]
        m.d.comb += [h_byte.eq(t.h_code) for h_byte, t in zip(h_bytes, tails)]
        for b in range(banks):
            m.submodules[f"h_buf{b}"] = mem = ram(shape=unsigned(8 * S), depth=h_buffer_depth(cfg))
            write, read = mem.write_port(granularity=8), mem.read_port()
            in_bank = (tail.h_layer[0] == b) if banks > 1 else 1
            writes = Cat(*[t.h_valid & in_bank for t in tails])
            m.d.comb += [write.addr.eq(tail.h_addr), write.data.eq(Cat(*h_bytes * (S // TU))),
                         write.en.eq(writes << tail.h_lane if S > 1 else writes),
                         read.addr.eq(engine.h_read[b].addr), engine.h_read[b].data.eq(read.data)]

        # -- streams ------------------------------------------------------------------------------
        # the input slice takes beats while the run controller reads them; the output slice empties
        # with the sender when a run's output is abandoned
        beat = beat_layout(cfg.stream_width)
        m.submodules.in_register = in_register = StreamRegister(payload_shape=beat, gated=True)
        out_register = StreamRegister(payload_shape=beat)
        m.submodules.out_register = ResetInserter(control.output_abort)(out_register)
        wiring.connect(m, wiring.flipped(self.i_stream), in_register.i_stream)
        wiring.connect(m, in_register.o_stream, control.i_stream)
        m.d.comb += in_register.accept.eq(control.accepting)
        wiring.connect(m, control.load_stream, loader.i_stream)
        wiring.connect(m, control.receive_stream, receiver.i_stream)
        wiring.connect(m, scheduler.o_column, engine.i_column)
        wiring.connect(m, sender.o_stream, out_register.i_stream)
        wiring.connect(m, out_register.o_stream, wiring.flipped(self.o_stream))

        # -- commands and status --------------------------------------------------------------------
        for name in ("start", "soft_reset", "load_weights", "clear", "timesteps", "timeout"):
            m.d.comb += getattr(control, name).eq(getattr(self, name))
        for name in ("busy", "done", "weights_valid", "loading", "error", "cycles", "run_cycles", "hash"):
            m.d.comb += getattr(self, name).eq(getattr(control, name))

        # -- the blocks under the run controller --------------------------------------------------
        # The output sender's and the classifiers' clears take compute_start a cycle late: in full
        # mode it is the input stream's first handshake, and their first use is many cycles away.
        run_clear = Signal()
        m.d.sync += run_clear.eq(control.compute_start)
        m.d.comb += [
            loader.begin.eq(control.load_begin), control.load_in_header.eq(loader.in_header),
            control.load_in_packet.eq(loader.in_packet), control.load_finish.eq(loader.finish),
            control.load_last.eq(loader.finish_last),
            control.load_fault.eq(loader.fault), control.load_hash.eq(loader.image_hash),
            receiver.begin.eq(control.receive_begin), receiver.steps.eq(control.run_steps),
            control.receive_in_packet.eq(receiver.in_packet), control.receive_final.eq(receiver.final),
            *([scheduler.received.eq(receiver.received)] if full else []),
            scheduler.start.eq(control.compute_start), scheduler.steps.eq(control.steps),
            scheduler.flush.eq(control.flush), scheduler.unit_done.eq(sum(t.h_valid for t in tails)),
            *([scheduler.batch.eq(control.batch), scheduler.done_sequence.eq(tail.h_sequence),
               sender.batch.eq(control.batch), control.run_batch.eq(self.batch)] if batched else []),
            scheduler.shadow_free.eq(engine.shadow_free), control.compute_finished.eq(scheduler.finished),
            engine.flush.eq(control.flush),
            sender.clear.eq(run_clear), sender.h_code.eq(tail.h_code), sender.h_unit.eq(tail.h_unit),
            *([sender.h_sequence.eq(tail.h_sequence)] if batched else []),
            sender.h_valid.eq(tail.h_valid & (tail.h_layer == cfg.num_layers - 1)),
            *([sender.h_code2.eq(tails[1].h_code),
               sender.h_valid2.eq(tails[1].h_valid & (tail.h_layer == cfg.num_layers - 1))] if TU > 1 else []),
            sender.start.eq(control.output_start), sender.abort.eq(control.output_abort),
            sender.steps.eq(control.steps), sender.logits.eq(self._logits(m, tails)),
            *([sender.input_in.eq(control.input_in)] if cfg.early_output else []),
            control.output_finished.eq(self.o_stream.valid & self.o_stream.ready & self.o_stream.payload.last),
            control.out_valid.eq(self.o_stream.valid), control.out_ready.eq(self.o_stream.ready),
        ]

        for i, t in enumerate(tails):
            m.d.sync += [getattr(t, name).eq(0 if name == "clsb_we" and i else getattr(loader.tail_write, name))
                         for name in load_port_shapes(cfg)]

        # -- engine → tail ----------------------------------------------------------------------------
        unit = engine.o_units.payload
        for i, t in enumerate(tails):
            m.d.comb += [t.valid.eq(engine.o_units.valid & (unit.second if i else 1)), t.unit.eq(unit.unit + i),
                         t.acc.eq(unit.sums[i]), t.layer.eq(unit.layer), t.step_base.eq(unit.step_base),
                         *([t.pre_base.eq(unit.pre_base)] if cfg.mode == "split" or cfg.input_pass else []),
                         *([t.store.eq(unit.store)] if cfg.input_pass else []),
                         t.first_step.eq(unit.first_step), t.classify.eq(unit.classify),
                         *(getattr(t, name).eq(getattr(unit, name)) for name in batch_fields(cfg)),
                         t.cls_start.eq(run_clear), t.flush.eq(control.flush)]
        return m

    def _fetch_rows(self, m, control, scheduler, loader, weight_mem):
        """The row fetcher: started with the scheduler, its halves handed over by ``rows_full`` and
        ``rows_release``, its errors ending the run.  With W_h on chip (``wx``) the loader's W_h
        rows share the memory's write port with it (a load and a run never overlap)."""
        cfg = self.config
        m.submodules.fetcher = fetcher = DdrRowFetcher(config=cfg, data_width=cfg.ddr_width, max_burst=cfg.ddr_burst,
                                                       outstanding=cfg.ddr_outstanding, timeout_bits=32)
        if cfg.resident_h_rows:
            m.submodules.resident = resident = ResidentRows(config=cfg)
            wiring.connect(m, loader.weight_write, resident.image_write)
            fetched, kept, write = fetcher.write, resident.write, weight_mem.write
            m.d.comb += [resident.begin.eq(control.load_begin), write.en.eq(fetched.en | kept.en),
                         write.addr.eq(Mux(fetched.en, fetched.addr, kept.addr)),
                         write.data.eq(Mux(fetched.en, fetched.data, kept.data))]
        else:
            wiring.connect(m, fetcher.write, weight_mem.write)
        forward_axi(m, self, fetcher)
        m.d.comb += [
            fetcher.start.eq(control.compute_start), fetcher.steps.eq(control.steps), fetcher.flush.eq(control.flush),
            fetcher.region.base.eq(self.ddr_base), fetcher.region.length.eq(self.ddr_length),
            fetcher.timeout.eq(self.timeout),
            scheduler.rows_full.eq(fetcher.full), fetcher.release.eq(scheduler.rows_release),
            control.fetch_fault.eq(Mux(fetcher.done, fetcher.error.as_value(), 0)),
        ]

    def _logits(self, m, tails):
        """The classifier's logits, C 32-bit lanes a sequence: each tail accumulates its own units'
        share."""
        if len(tails) == 1:
            return tails[0].logits
        lanes = max(self.config.num_classes, 1) * self.config.max_batch
        total = Signal(32 * lanes)
        m.d.comb += total.eq(Cat(*[(tails[0].logits.word_select(k, 32) + tails[1].logits.word_select(k, 32))[:32]
                                   for k in range(lanes)]))
        return total
