"""The run controller: commands, the phases of a weight load and of a run, status and error bits,
the cycle counters and the stream watchdog."""

from __future__ import annotations

from amaranth import Module, Signal, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from lstmfpga.foundation.hw import stream_format
from lstmfpga.foundation.hw.register_map import DDR_ERROR_SHIFT, Error
from lstmfpga.hw import latency
from lstmfpga.hw.rtl.payloads import beat_layout


class RunControl(wiring.Component):
    """Sequences the core's blocks and owns what the register file shows.

    ``load_weights`` routes the input stream to the weight loader (``load_stream``, which holds a
    wide beat for as many cycles as it takes to read its 32-bit words) until it reports the
    image's end (``load_finish``, the cycle after the deciding beat, with ``load_fault`` and that
    beat's TLAST ``load_last``); ``start`` routes one input packet to the input receiver
    (``receive_stream``) and starts the column scheduler (``compute_start``) — in full mode with
    the packet's first beat, so that the engine works on the steps that have arrived while the
    rest streams in (the scheduler waits for the words it reads); in split mode once the packet is
    in — waits for the scheduler to finish and for the classifier's last accumulate, and starts
    the output sender (``output_start``) until it reports the packet's final word.  A fault
    mid-packet ends the computation under way (``flush``, a register: the blocks stop a cycle after
    the fault) and drains the rest of the packet (up to its TLAST) before the core is idle again.
    CYCLES counts from the cycle after ``compute_start`` to the classifier's last accumulate.

    The watchdog counts cycles without progress while a packet is under way (``timeout``
    cycles, 0 = never).  ``soft_reset`` returns to idle from any state: ``flush`` (also raised by
    an input fault) drops the engine's work in flight and ``output_abort`` (also raised by the
    output watchdog) empties the output sender; both are registers, raised the cycle after.
    ``start`` or ``load_weights`` while busy sets ``Error.BUSY`` and is otherwise ignored.

    With weights in DDR, ``fetch_fault`` (the row fetcher's error flags, nonzero for the cycle it
    gives up) ends the run the same way: the flags go to ERROR from ``DDR_ERROR_SHIFT`` up, the
    computation is flushed, the rest of a packet under way is drained, no output is sent.

    ``accepting`` is high in the states that read ``i_stream`` (a load, a run's input packet, a
    drain): the core's input port slice takes beats only then and drops what it holds after.
    ``input_in`` is high from a run's last input beat to its end (no input fault can end it then):
    with weights on chip the output sender sends the words of finished steps from then on.

    ``start`` runs ``timesteps`` steps as they were the cycle before (TIMESTEPS is a register the
    host writes long before START; its range check is a flip-flop, off the START decision's path):
    outside 1..max_timesteps sets ``Error.TIMESTEPS``.  With ``config.max_batch`` > 1 it takes
    ``run_batch`` sequences the same way (BATCH: outside 1..max_batch sets ``Error.BATCH``) and
    holds it on ``batch`` for the run.  ``run_steps`` is the input packet's steps, T·B, for the
    input receiver's ``begin``.

    Parameters
    ----------
    config : AcceleratorConfig
    """

    def __init__(self, *, config):
        self.config = config
        super().__init__({
            # commands and status (the register file)
            "start": In(1), "soft_reset": In(1), "load_weights": In(1), "clear": In(1),
            "timesteps": In(8), "timeout": In(32),
            "busy": Out(1), "done": Out(1), "weights_valid": Out(1), "loading": Out(1),
            "error": Out(16), "cycles": Out(32), "run_cycles": Out(32), "hash": Out(unsigned(256)),
            # the input stream and where it goes
            "i_stream": In(stream.Signature(beat_layout(config.stream_width))), "accepting": Out(1),
            "load_stream": Out(stream.Signature(beat_layout(config.stream_width))),
            "receive_stream": Out(stream.Signature(beat_layout(config.stream_width), always_ready=True)),
            # weight loader
            "load_begin": Out(1), "load_in_header": In(1), "load_in_packet": In(1),
            "load_finish": In(1), "load_fault": In(16), "load_last": In(1), "load_hash": In(unsigned(256)),
            # input receiver
            "receive_begin": Out(1), "receive_in_packet": In(1), "receive_final": In(1),
            # column scheduler, engine, tail
            "steps": Out(5), "run_steps": Out(max(8, config.max_run_steps.bit_length() + 2)),
            "compute_start": Out(1), "compute_finished": In(1), "flush": Out(1),
            **({"fetch_fault": In(4)} if config.ddr_weights else {}),
            # a batch's sequences: BATCH in, the run's B out
            **({"run_batch": In(32), "batch": Out(range(config.max_batch + 1))} if config.max_batch > 1 else {}),
            # output sender (and its stream, observed)
            "output_start": Out(1), "output_abort": Out(1), "output_finished": In(1), "input_in": Out(1),
            "out_valid": In(1), "out_ready": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.config
        T_max = cfg.max_timesteps
        batched = cfg.max_batch > 1
        wps = stream_format.input_beats_per_step(cfg)

        error = Signal(16)
        done = Signal()
        weights_valid = Signal()
        hash_regs = Signal(256)
        cycles = Signal(32)
        run_cycles = Signal(32)
        run_counting = Signal()
        T = Signal(5)
        set_error = Signal(16)
        cls_pending = Signal(range(latency.CLASSIFIER + 1))
        overlap = cfg.mode == "full"      # compute starts with the input packet's first beat
        input_fault = Signal()            # ends the computation that started with the packet
        m.d.comb += [self.error.eq(error), self.done.eq(done), self.weights_valid.eq(weights_valid),
                     self.hash.eq(hash_regs), self.cycles.eq(cycles), self.run_cycles.eq(run_cycles),
                     self.steps.eq(T)]
        # flush is a register: the fault decision (a TLAST check at the end of a word count) would
        # otherwise run on into every enable of the engine, the scheduler and the tails.  The blocks
        # stop one cycle later, as if the fault came a cycle later; no start can reach them sooner.
        flush = Signal()
        fetch_fault = Signal(4)
        if cfg.ddr_weights:
            m.d.comb += fetch_fault.eq(self.fetch_fault)
        fetch_error = Signal(16)
        m.d.comb += fetch_error.eq(fetch_fault << DDR_ERROR_SHIFT)
        m.d.sync += flush.eq(self.soft_reset | input_fault | (fetch_fault != 0))
        m.d.comb += self.flush.eq(flush)
        # output_abort too: it resets the output sender and the output port's register slice, a
        # wide fan-out that the watchdog's and the state's decode would otherwise run into
        abort = Signal()
        m.d.sync += self.output_abort.eq(abort)
        m.d.sync += error.eq(error | set_error)
        # the 256 hash flip-flops take the loader's hash the cycle after a clean finish: their
        # enable is a register, not the loader's checksum verdict (a long path into a wide fan-out)
        hash_commit = Signal()
        m.d.sync += hash_commit.eq(0)
        with m.If(hash_commit):
            m.d.sync += hash_regs.eq(self.load_hash)
        with m.If(run_counting):
            m.d.sync += run_cycles.eq(run_cycles + 1)

        # stream watchdog
        idle_count = Signal(32)
        watch = Signal()      # a packet is under way and expects progress
        progress = Signal()
        # expired is idle_count >= timeout, kept as a register beside the count so that the 32-bit
        # compare ends in one flip-flop instead of in every enable the timeout reaches
        expired = Signal()
        with m.If(~watch | progress):
            m.d.sync += [idle_count.eq(0), expired.eq(self.timeout == 0)]
        with m.Else():
            m.d.sync += [idle_count.eq(idle_count + 1), expired.eq(idle_count + 1 >= self.timeout)]
        armed = Signal()      # timeout != 0, registered: the register is written long before a run
        m.d.sync += armed.eq(self.timeout != 0)
        # No ``watch`` term: ``expired`` already says the last TIMEOUT cycles watched without
        # progress, and in every state that reads ``timed_out`` what is watched (a packet under
        # way, a beat waiting) cannot stop without progress.  This keeps the output FIFO's level
        # and the state decode out of the timeout's paths into the controller.
        timed_out = Signal()
        m.d.comb += timed_out.eq(armed & expired)

        # TIMESTEPS and BATCH as they were a cycle ago, with their range checks, in flip-flops
        steps_seen, steps_ok = Signal(5), Signal()
        m.d.sync += [steps_seen.eq(self.timesteps), steps_ok.eq((self.timesteps != 0) & (self.timesteps <= T_max))]
        if batched:
            batch_seen, batch_ok = Signal(range(cfg.max_batch + 1)), Signal()
            m.d.sync += [batch_seen.eq(self.run_batch),
                         batch_ok.eq((self.run_batch != 0) & (self.run_batch <= cfg.max_batch)),
                         self.run_steps.eq(self.timesteps * self.run_batch[:cfg.max_batch.bit_length()])]
        else:
            m.d.comb += self.run_steps.eq(steps_seen)

        beat = self.i_stream.payload
        in_fire = Signal()
        m.d.comb += [in_fire.eq(self.i_stream.valid & self.i_stream.ready),
                     self.load_stream.payload.eq(beat), self.receive_stream.payload.eq(beat)]

        # the LOAD state as a flip-flop of its own, set and cleared with the state's transitions (goto):
        # the loader's stream valid, into its write enables, reads it instead of the state decode
        loading = Signal()
        m.d.comb += [self.loading.eq(loading), self.load_stream.valid.eq(self.i_stream.valid & loading)]

        # accepting (the states that read the input stream), like loading, a flip-flop set with
        # every transition, not a decode of the state: it is the input port's TREADY and its
        # registers' enable
        accepting = Signal()
        m.d.comb += self.accepting.eq(accepting)
        # and input_in the same way
        input_in = Signal()
        m.d.comb += self.input_in.eq(input_in)

        def goto(state):
            m.next = state
            m.d.sync += [accepting.eq(state in ("LOAD", "RECV", "DRAIN")), loading.eq(state == "LOAD"),
                         input_in.eq(state in ("COMPUTE_START", "COMPUTE", "FINISH", "OUTPUT"))]

        def fail(bits, *also):
            """Latch error ``bits`` and end the command."""
            m.d.sync += [error.eq(error | bits), done.eq(1), *also]

        with m.FSM(name="ctrl") as fsm:
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [error.eq(0), done.eq(0)]
                    with m.If(~weights_valid):
                        m.d.comb += set_error.eq(Error.NO_WEIGHTS)
                        m.d.sync += [done.eq(1), error.eq(Error.NO_WEIGHTS)]
                    with m.Elif(~steps_ok):
                        m.d.sync += [done.eq(1), error.eq(Error.TIMESTEPS)]
                    if batched:
                        with m.Elif(~batch_ok):
                            m.d.sync += [done.eq(1), error.eq(Error.BATCH)]
                    with m.Else():
                        m.d.comb += self.receive_begin.eq(1)
                        m.d.sync += [T.eq(steps_seen), run_cycles.eq(0), run_counting.eq(1)]
                        if batched:
                            m.d.sync += self.batch.eq(batch_seen)
                        goto("RECV")
                with m.Elif(self.load_weights):
                    m.d.comb += self.load_begin.eq(1)
                    m.d.sync += [error.eq(0), done.eq(0), weights_valid.eq(0)]
                    goto("LOAD")
                with m.Elif(self.clear):
                    m.d.sync += [error.eq(0), done.eq(0)]

            with m.State("LOAD"):
                m.d.comb += [self.i_stream.ready.eq(self.load_stream.ready), self.busy.eq(1),
                             watch.eq(self.load_in_packet), progress.eq(self.i_stream.valid)]
                # the header has no timeout: its words are checked as they come
                with m.If(timed_out & ~self.load_in_header):
                    fail(Error.INPUT_TIMEOUT)
                    goto("IDLE")
                with m.Elif(self.load_finish):
                    fail(self.load_fault)
                    with m.If(self.load_fault == 0):
                        m.d.sync += [weights_valid.eq(1), hash_commit.eq(1)]
                    with m.If(self.load_last):        # else drain the rest of the packet
                        goto("IDLE")
                    with m.Else():
                        goto("DRAIN")

            with m.State("RECV"):
                m.d.comb += [self.i_stream.ready.eq(1), self.receive_stream.valid.eq(in_fire), self.busy.eq(1),
                             watch.eq(self.receive_in_packet), progress.eq(in_fire)]
                if overlap:
                    with m.If(self.receive_in_packet):
                        m.d.sync += cycles.eq(cycles + 1)
                    with m.Elif(in_fire):
                        m.d.comb += self.compute_start.eq(1)
                        m.d.sync += cycles.eq(0)
                with m.If(timed_out):
                    m.d.comb += input_fault.eq(overlap)
                    fail(Error.INPUT_TIMEOUT, run_counting.eq(0))
                    goto("IDLE")
                with m.Elif(fetch_fault != 0):
                    # (full mode: the fetch starts with the packet's first beat) drain the packet
                    m.d.sync += [error.eq(error | fetch_error), run_counting.eq(0)]
                    with m.If(in_fire & beat.last):
                        m.d.sync += done.eq(1)
                        goto("IDLE")
                    with m.Else():
                        goto("DRAIN")
                with m.Elif(in_fire):
                    with m.If(self.receive_final & beat.last):
                        goto("COMPUTE" if overlap else "COMPUTE_START")
                    with m.Elif(self.receive_final):
                        m.d.comb += input_fault.eq(overlap)
                        m.d.sync += [error.eq(error | Error.LAST_LATE), run_counting.eq(0)]
                        goto("DRAIN")
                    with m.Elif(beat.last):
                        m.d.comb += input_fault.eq(overlap)
                        fail(Error.LAST_EARLY, run_counting.eq(0))
                        goto("IDLE")

            with m.State("DRAIN"):
                m.d.comb += [self.i_stream.ready.eq(1), self.busy.eq(1), watch.eq(1), progress.eq(in_fire)]
                with m.If(timed_out):
                    fail(Error.INPUT_TIMEOUT)
                    goto("IDLE")
                with m.Elif(in_fire & beat.last):
                    m.d.sync += done.eq(1)
                    goto("IDLE")

            if not overlap:
                with m.State("COMPUTE_START"):
                    m.d.comb += [self.busy.eq(1), self.compute_start.eq(1)]
                    m.d.sync += cycles.eq(0)
                    goto("COMPUTE")

            with m.State("COMPUTE"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += cycles.eq(cycles + 1)
                with m.If(fetch_fault != 0):
                    fail(fetch_error, run_counting.eq(0))
                    goto("IDLE")
                with m.Elif(self.compute_finished):
                    m.d.sync += cls_pending.eq(latency.CLASSIFIER)
                    goto("FINISH")

            with m.State("FINISH"):
                # the classifier accumulates the last h code CLASSIFIER cycles after it leaves the tail
                m.d.comb += self.busy.eq(1)
                m.d.sync += [cls_pending.eq(cls_pending - 1), cycles.eq(cycles + 1)]
                with m.If(cls_pending == 0):
                    m.d.comb += self.output_start.eq(1)
                    goto("OUTPUT")

            with m.State("OUTPUT"):
                m.d.comb += [self.busy.eq(1), watch.eq(self.out_valid), progress.eq(self.out_ready)]
                with m.If(timed_out):
                    m.d.comb += abort.eq(1)
                    fail(Error.OUTPUT_TIMEOUT, run_counting.eq(0))
                    goto("IDLE")
                with m.Elif(self.output_finished):
                    m.d.sync += [done.eq(1), run_counting.eq(0)]
                    goto("IDLE")

        # soft reset from any state
        with m.If(self.soft_reset):
            m.d.comb += abort.eq(1)
            m.d.sync += [run_counting.eq(0), fsm.state.eq(fsm.encoding["IDLE"]), loading.eq(0), accepting.eq(0),
                         input_in.eq(0)]
            with m.If(fsm.ongoing("LOAD")):
                m.d.sync += weights_valid.eq(0)
        with m.If((self.start | self.load_weights) & ~fsm.ongoing("IDLE") & ~self.soft_reset):
            m.d.comb += set_error.eq(Error.BUSY)
        return m
