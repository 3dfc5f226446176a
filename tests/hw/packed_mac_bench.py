"""cocotb bench for the generated Verilog of one packed MAC unit (launched by test_packed_mac.py).

Reads a JSON job (``$PACKED_MAC_JOB``): input beats as payload words, which of them are ``last``,
the idle and backpressure probabilities, a seed; writes the raw output words and the cycles at
which each ``last`` beat was taken and each result was first offered.
"""

from __future__ import annotations

import json
import os
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge

JOB_ENV = "PACKED_MAC_JOB"


@cocotb.test()
async def packed_mac_job(dut):
    with open(os.environ[JOB_ENV]) as handle:
        job = json.load(handle)
    assert len(dut.i_stream__payload) == job["payload_bits"], "job built for another unit"
    rng = random.Random(job["seed"])
    beats, lasts = job["beats"], job["lasts"]
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.rst.value = 1
    dut.i_stream__valid.value = 0
    dut.o_stream__ready.value = 0
    for _ in range(2):
        await RisingEdge(dut.clk)
    dut.rst.value = 0
    words, taken_last, offered = [], [], []
    sent = cycle = 0
    held = False
    while len(words) < job["results"]:
        offer = sent < len(beats) and rng.random() >= job["idle"]
        dut.i_stream__valid.value = int(offer)
        if offer:
            dut.i_stream__payload.value = beats[sent]
        ready = rng.random() >= job["stall"]
        dut.o_stream__ready.value = int(ready)
        await ReadOnly()
        valid = bool(dut.o_stream__valid.value)
        if valid and not held:
            offered.append(cycle)
        if offer and dut.i_stream__ready.value:
            if lasts[sent]:
                taken_last.append(cycle)
            sent += 1
        if valid and ready:
            words.append(int(dut.o_stream__payload.value))
        held = valid and not ready
        await RisingEdge(dut.clk)
        cycle += 1
        assert cycle < job["max_cycles"], "the unit stopped producing results"
    with open(job["result_path"], "w") as handle:
        json.dump({"words": [str(w) for w in words], "taken_last": taken_last, "offered": offered}, handle)
