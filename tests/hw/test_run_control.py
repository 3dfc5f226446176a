"""RunControl (Amaranth simulator) against a cycle-by-cycle Python model of its phases, error bits,
counters and watchdog, under random commands, stream traffic and block verdicts."""

import random

import pytest
from amaranth.sim import Simulator

from lstmfpga.foundation.hw.config import STREAM_WIDTHS, AcceleratorConfig
from lstmfpga.foundation.hw.register_map import Error
from lstmfpga.hw import latency
from lstmfpga.hw.rtl.run_control import RunControl

INPUTS = ("start", "soft_reset", "load_weights", "clear", "timesteps", "timeout", "load_in_header", "load_in_packet",
          "load_finish", "load_fault", "load_last", "load_hash", "receive_in_packet", "receive_final", "compute_finished",
          "output_finished", "out_valid", "out_ready", "valid", "last", "load_ready")
OUTPUTS = ("run_steps", "busy", "done", "weights_valid", "loading", "error", "cycles", "run_cycles", "hash", "ready",
           "load_valid", "receive_valid", "load_begin", "receive_begin", "steps", "compute_start", "flush",
           "output_start", "output_abort", "accepting", "input_in")


class Model:
    """What the run controller does, one clock at a time."""

    def __init__(self, max_timesteps, overlap):
        self.max_timesteps = max_timesteps
        self.overlap = overlap      # full mode: the computation starts with the input packet's first beat
        self.state, self.error, self.done, self.weights_valid, self.hash = "IDLE", 0, 0, 0, 0
        self.cycles = self.run_cycles = self.counting = self.steps = self.idle = self.cls_pending = 0
        self.hash_commit = self.flush = self.abort = 0
        self.timesteps_before = 0     # START runs TIMESTEPS as it was the cycle before

    def step(self, i):
        s = self.state
        # the weight loader holds a wide beat while it reads its words: it sets the ready in LOAD
        ready = i["load_ready"] if s == "LOAD" else s in ("RECV", "DRAIN")
        fire = i["valid"] and ready
        watch, progress = {"LOAD": (i["load_in_packet"], i["valid"]), "RECV": (i["receive_in_packet"], fire),
                           "DRAIN": (1, fire), "OUTPUT": (i["out_valid"], i["out_ready"])}.get(s, (0, 0))
        # the idle count only grows while watching (the RTL does not re-check the watch itself)
        timed_out = i["timeout"] != 0 and self.idle >= i["timeout"]
        steps_ok = 1 <= self.timesteps_before <= self.max_timesteps
        first_beat = s == "RECV" and fire and not i["receive_in_packet"]
        # TLAST early or late, or the watchdog, while the computation runs: it is flushed
        input_fault = self.overlap and s == "RECV" and (
            timed_out or (fire and bool(i["receive_final"]) != bool(i["last"])))
        out = dict(busy=int(s != "IDLE"), done=self.done, weights_valid=self.weights_valid, loading=int(s == "LOAD"),
                   error=self.error, cycles=self.cycles, run_cycles=self.run_cycles, hash=self.hash,
                   ready=int(ready), load_valid=int(i["valid"] and s == "LOAD"),
                   receive_valid=int(fire and s == "RECV"),
                   load_begin=int(s == "IDLE" and not i["start"] and i["load_weights"]),
                   receive_begin=int(s == "IDLE" and i["start"] and self.weights_valid and steps_ok),
                   steps=self.steps, run_steps=self.timesteps_before & 31, compute_start=int(first_beat if self.overlap else s == "COMPUTE_START"),
                   flush=self.flush,
                   output_start=int(s == "FINISH" and self.cls_pending == 0),
                   output_abort=self.abort, accepting=int(s in ("LOAD", "RECV", "DRAIN")),
                   input_in=int(s in ("COMPUTE_START", "COMPUTE", "FINISH", "OUTPUT")))

        n = dict(state=s, error=self.error, done=self.done, weights_valid=self.weights_valid, hash=self.hash,
                 cycles=self.cycles, run_cycles=self.run_cycles, counting=self.counting, steps=self.steps,
                 cls_pending=self.cls_pending, idle=0 if (not watch or progress) else self.idle + 1,
                 flush=int(bool(i["soft_reset"] or input_fault)),      # a cycle later, from a register
                 abort=int((s == "OUTPUT" and timed_out) or bool(i["soft_reset"])))   # the same
        # the hash registers take the loader's hash the cycle after a clean finish
        n["hash_commit"] = 0
        if self.hash_commit:
            n["hash"] = i["load_hash"]
        if (i["start"] or i["load_weights"]) and s != "IDLE" and not i["soft_reset"]:
            n["error"] |= Error.BUSY
        if self.counting:
            n["run_cycles"] = (self.run_cycles + 1) & 0xFFFFFFFF

        def fail(bits):
            n.update(error=self.error | bits, done=1)

        if s == "IDLE":
            if i["start"]:
                n.update(error=0, done=0)
                if not self.weights_valid:
                    n.update(done=1, error=Error.NO_WEIGHTS)
                elif not steps_ok:
                    n.update(done=1, error=Error.TIMESTEPS)
                else:
                    n.update(steps=self.timesteps_before & 31, run_cycles=0, counting=1, state="RECV")
            elif i["load_weights"]:
                n.update(error=0, done=0, weights_valid=0, state="LOAD")
            elif i["clear"]:
                n.update(error=0, done=0)
        elif s == "LOAD":
            if timed_out and not i["load_in_header"]:
                fail(Error.INPUT_TIMEOUT)
                n["state"] = "IDLE"
            elif i["load_finish"]:
                fail(i["load_fault"])
                if i["load_fault"] == 0:
                    n.update(weights_valid=1, hash_commit=1)
                n["state"] = "IDLE" if i["load_last"] else "DRAIN"
        elif s == "RECV":
            if self.overlap and i["receive_in_packet"]:
                n["cycles"] = (self.cycles + 1) & 0xFFFFFFFF
            elif self.overlap and fire:
                n["cycles"] = 0
            if timed_out:
                fail(Error.INPUT_TIMEOUT)
                n.update(counting=0, state="IDLE")
            elif fire and i["receive_final"] and i["last"]:
                n["state"] = "COMPUTE" if self.overlap else "COMPUTE_START"
            elif fire and i["receive_final"]:
                n.update(error=self.error | Error.LAST_LATE, counting=0, state="DRAIN")
            elif fire and i["last"]:
                fail(Error.LAST_EARLY)
                n.update(counting=0, state="IDLE")
        elif s == "DRAIN":
            if timed_out:
                fail(Error.INPUT_TIMEOUT)
                n["state"] = "IDLE"
            elif fire and i["last"]:
                n.update(done=1, state="IDLE")
        elif s == "COMPUTE_START":
            n.update(cycles=0, state="COMPUTE")
        elif s == "COMPUTE":
            n["cycles"] = self.cycles + 1
            if i["compute_finished"]:
                n.update(cls_pending=latency.CLASSIFIER, state="FINISH")
        elif s == "FINISH":
            n.update(cls_pending=(self.cls_pending - 1) % (1 << latency.CLASSIFIER.bit_length()), cycles=self.cycles + 1)
            if self.cls_pending == 0:
                n["state"] = "OUTPUT"
        elif s == "OUTPUT":
            if timed_out:
                fail(Error.OUTPUT_TIMEOUT)
                n.update(counting=0, state="IDLE")
            elif i["output_finished"]:
                n.update(done=1, counting=0, state="IDLE")
        if i["soft_reset"]:
            n.update(counting=0, state="IDLE")
            if s == "LOAD":
                n["weights_valid"] = 0
        n["timesteps_before"] = i["timesteps"]
        for key, value in n.items():
            setattr(self, key, value)
        return out


def _draw_inputs(rnd, p, max_timesteps):
    return dict(start=rnd.random() < p["cmd"], soft_reset=rnd.random() < p["reset"],
                load_weights=rnd.random() < p["cmd"], clear=rnd.random() < 0.02,
                timesteps=rnd.choice([0, max_timesteps + 1] + [rnd.randint(1, max_timesteps)] * 6),
                timeout=p["timeout"], load_in_header=rnd.random() < 0.3, load_in_packet=rnd.random() < 0.8,
                load_finish=rnd.random() < p["finish"], load_fault=rnd.choice([0, 0, Error.WEIGHT_CHECKSUM,
                                                                               Error.WEIGHT_HEADER | Error.WEIGHT_SHAPE]),
                load_last=rnd.random() < 0.5,
                load_hash=rnd.getrandbits(256), receive_in_packet=rnd.random() < 0.8,
                receive_final=rnd.random() < p["finish"], compute_finished=rnd.random() < 0.1,
                output_finished=rnd.random() < 0.1, out_valid=rnd.random() < 0.8, out_ready=rnd.random() < p["ready"],
                valid=rnd.random() < p["valid"], last=rnd.random() < 0.2, load_ready=rnd.random() < p["load_ready"])


@pytest.mark.parametrize("seed", range(10))
def test_run_control_matches_model(seed):
    rnd = random.Random(seed)
    max_timesteps = rnd.randint(1, 24)
    mode = rnd.choice(["full", "split"])
    dut = RunControl(config=AcceleratorConfig(input_size=4, hidden_size=3, max_timesteps=max_timesteps,
                                              stream_width=rnd.choice(STREAM_WIDTHS), mode=mode))
    model = Model(max_timesteps, overlap=mode == "full")
    p = dict(cmd=rnd.choice([0.02, 0.1]), reset=rnd.choice([0.0, 0.005, 0.03]), timeout=rnd.choice([0, 1, 3, 8, 40]),
             finish=rnd.choice([0.05, 0.3]), ready=rnd.choice([0.1, 0.9]), valid=rnd.choice([0.05, 0.5, 1.0]),
             load_ready=rnd.choice([1.0, 0.5, 0.25]))
    ports = {name: getattr(dut, name) for name in INPUTS + OUTPUTS if hasattr(dut, name)}
    ports.update(valid=dut.i_stream.valid, last=dut.i_stream.payload.last, ready=dut.i_stream.ready,
                 load_valid=dut.load_stream.valid, receive_valid=dut.receive_stream.valid,
                 load_ready=dut.load_stream.ready)
    visited = set()

    async def bench(ctx):
        for cycle in range(3000):
            inputs = _draw_inputs(rnd, p, max_timesteps)
            for name, value in inputs.items():
                ctx.set(ports[name], int(value))
            want = model.step(inputs)
            have = {name: ctx.get(ports[name]) for name in OUTPUTS}
            assert have == want, (cycle, model.state, {k: (have[k], want[k]) for k in want if have[k] != want[k]})
            visited.add(model.state)
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert {"IDLE", "LOAD"} <= visited
