"""The core with its weights in DDR (residencies ``stream``, ``all`` and ``wx``, drawn) under Amaranth's
simulator, against an AXI4 memory written from the AXI rules (:class:`ScriptedMemory`: fixed
latency, one beat every ``interval`` cycles, the image anywhere in a page): outputs bit-exact
against the integer golden, CYCLES equal to the DDR schedule
(:func:`~lstmfpga.hw.ddr_schedule.estimate_ddr` at the image's address), and every fault ending its run with
the documented error bit, no output, and an exact run after it."""

import dataclasses
import random

import numpy as np
import pytest

from axi_weight_reader_bench import DECERR, SLVERR, ScriptedMemory
from lstmfpga.foundation.hw.config import STREAM_WIDTHS, AcceleratorConfig
from lstmfpga.foundation.hw.ddr_image import build_ddr_image, read_extent
from lstmfpga.foundation.hw.packed_mac_model import max_macs_per_dsp
from lstmfpga.foundation.hw.register_map import Error
from lstmfpga.foundation.hw.weight_image import build_weight_image
from lstmfpga.hw import cycle_model
from lstmfpga.hw.ddr_schedule import DdrPort, estimate_ddr
from lstmfpga.sim.golden.random_artifact import random_artifact
from lstmfpga.sim.rtl_check import golden_batch_packets, golden_packets, random_codes
from test_core_pysim import _simulate



def _drawn_core(rnd, seed, **fixed):
    """A small artifact and a DDR core for it, every build parameter drawn (the residency too:
    ``stream``, or in full mode ``all`` or ``wx``, the input pass)."""
    wb = rnd.choice([2, 3, 4, 5, 8])
    art = random_artifact(input_size=rnd.randint(1, 9), hidden_size=rnd.randint(1, 6), num_layers=rnd.randint(1, 3),
                          num_classes=rnd.choice([0, 1, 3]), weight_bits=wb, seed=1000 + seed)
    mode = fixed.get("mode", rnd.choice(["full", "split"]))
    residency = fixed.get("residency", rnd.choice(["stream", "all", "wx"]) if mode == "full" else "stream")
    width = rnd.choice(STREAM_WIDTHS)
    sets = rnd.choice([S for S in range(1, 6) if mode == "split" or S <= width // 8])
    lanes = 4 * sets * rnd.randint(1, 4)
    tails = 2 if sets % 2 == 0 and lanes % (8 * sets) == 0 and rnd.random() < 0.5 else 1
    io_bits = AcceleratorConfig.widths_of(art)["io_bits"]
    config = AcceleratorConfig.from_artifact(
        art, lanes=lanes, mode=mode, max_timesteps=rnd.randint(2, 4), stream_width=width, column_sets=sets,
        tail_units=tails, macs_per_dsp=rnd.randint(1, max_macs_per_dsp(weight_bits=wb, act_bits=io_bits)),
        weight_residency=residency, ddr_width=rnd.choice([64, 128]),
        ddr_burst=rnd.choice([1, 2, 3, 4, 16, 256]), ddr_outstanding=rnd.choice([1, 2, 3, 8]))
    return art, config


def _memory(ddr: bytes, base: int, config, **kwargs):
    return ScriptedMemory(lambda address, n: ddr[address - base:address - base + n], beat_bytes=config.ddr_width // 8,
                          **kwargs)


def _base(rnd, config) -> int:
    """A drawn image address: aligned to the port's beats, anywhere within a 4 KiB page."""
    return (rnd.randint(1, 1 << 20) << 12) + rnd.randrange(0, 4096, config.ddr_width // 8)


@pytest.mark.parametrize("seed", range(8))
def test_ddr_core_matches_golden_and_ddr_schedule(seed):
    rnd = random.Random(seed)
    art, config = _drawn_core(rnd, seed)
    latency, interval = rnd.randint(1, 40), rnd.randint(1, 3)
    ddr = build_ddr_image(art, config).tobytes()
    base = _base(rnd, config)
    rng = np.random.default_rng(seed)
    steps = [rnd.randint(1, config.max_timesteps) for _ in range(2)]
    packets, expected = zip(*(golden_packets(config, art, random_codes(art, rng, T)) for T in steps))
    outputs, flags = _simulate(config, build_weight_image(art, config), packets, steps,
                               memory=lambda run: _memory(ddr, base, config, latency=latency, interval=interval),
                               region=(base, len(ddr)))
    assert flags["load_error"] == 0 and flags["weights_valid"] == 1
    assert flags["errors"] == [0] * len(steps)
    for got, want in zip(outputs, expected):
        np.testing.assert_array_equal(got, want)
    # the image's address known: every request timed where the pages split its bursts
    port = DdrPort(data_width=config.ddr_width, max_burst=config.ddr_burst, outstanding=config.ddr_outstanding,
                   latency=latency, interval=interval, base=base)
    for T, cycles in zip(steps, flags["cycles"]):
        model = estimate_ddr(config, T, residency=config.weight_residency, port=port).compute_cycles
        assert cycles == model, (config, T, latency, interval)
        # the fetch only ever delays the on-chip schedule
        assert cycles >= cycle_model.estimate(config, T).compute_cycles


def _run_beats(config, T, B=1) -> int:
    """The port beats a run of T steps and B sequences reads: a fault drawn among them lands."""
    port = DdrPort(data_width=config.ddr_width, max_burst=config.ddr_burst, outstanding=config.ddr_outstanding)
    return estimate_ddr(config, T, residency=config.weight_residency, batch=B, port=port).ddr_bytes // (
        config.ddr_width // 8)


def _fault_case(seed, mode="full"):
    rnd = random.Random(500 + seed)
    art, config = _drawn_core(rnd, 500 + seed, mode=mode)
    ddr = build_ddr_image(art, config).tobytes()
    base = _base(rnd, config)
    rng = np.random.default_rng(seed)
    steps = [config.max_timesteps] * 2
    packets, expected = zip(*(golden_packets(config, art, random_codes(art, rng, T)) for T in steps))
    return rnd, art, config, ddr, base, steps, packets, expected


def _check_fault_then_exact(config, outputs, flags, expected, error):
    assert flags["errors"][0] == error
    assert outputs[0].size == 0                      # the faulted run sent nothing
    assert flags["errors"][1] == 0
    np.testing.assert_array_equal(outputs[1], expected[1])


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("region_fault", ["short", "misaligned"])
def test_ddr_region_outside_the_image_is_refused(seed, region_fault):
    """A DDR_LENGTH that ends inside the image, or a DDR_BASE off the port's beats: the fetch that
    would leave the region is refused before any read (DDR_RANGE), then a run with the right
    region is exact."""
    rnd, art, config, ddr, base, steps, packets, expected = _fault_case(seed, mode=["full", "split"][seed % 2])
    beat = config.ddr_width // 8
    # (short: a beat less than the rows a run reads, the whole image but with W_h on chip)
    wrong = ((base, read_extent(config, config.ddr_width) - beat) if region_fault == "short"
             else (base + rnd.randrange(1, beat), len(ddr)))
    reads = []

    def memory(run):
        mem = _memory(ddr, base, config, latency=3)
        observe = mem.observe

        def record(cycle, sampled):
            if sampled["m_axi_arvalid"] and sampled["m_axi_arready"]:
                reads.append((run, sampled["m_axi_araddr"], sampled["m_axi_arlen"]))
            observe(cycle, sampled)
        mem.observe = record
        return mem

    outputs, flags = _simulate(config, build_weight_image(art, config), packets, steps, memory=memory,
                               region=lambda run: wrong if run == 0 else (base, len(ddr)))
    _check_fault_then_exact(config, outputs, flags, expected, Error.DDR_RANGE)
    for run, address, arlen in reads:                # never a byte outside the region it was given
        low, length = wrong if run == 0 else (base, len(ddr))
        assert low <= address and address + (arlen + 1) * beat <= low + length


@pytest.mark.parametrize("seed", range(4))
def test_ddr_read_error_ends_the_run(seed):
    """An SLVERR or DECERR beat anywhere in the run's fetches: the error bit, no output, the
    outstanding bursts drained; the next run exact."""
    rnd, art, config, ddr, base, steps, packets, expected = _fault_case(seed, mode=["full", "split"][seed % 2])
    resp = [SLVERR, DECERR][seed // 2]
    fault_beat = rnd.randrange(_run_beats(config, steps[0]))
    outputs, flags = _simulate(
        config, build_weight_image(art, config), packets, steps, region=(base, len(ddr)),
        memory=lambda run: _memory(ddr, base, config, latency=rnd.randint(1, 9), interval=rnd.randint(1, 2),
                                   fault=(fault_beat, resp) if run == 0 else None))
    _check_fault_then_exact(config, outputs, flags, expected, Error.DDR_SLVERR if resp == SLVERR else Error.DDR_DECERR)


@pytest.mark.parametrize("seed", range(2))
def test_ddr_read_timeout_ends_the_run(seed):
    """A memory that takes the AR and never answers: DDR_TIMEOUT after TIMEOUT cycles, no output;
    with the port reset (a new memory) the next run is exact."""
    rnd, art, config, ddr, base, steps, packets, expected = _fault_case(seed, mode=["full", "split"][seed % 2])
    outputs, flags = _simulate(
        config, build_weight_image(art, config), packets, steps, region=(base, len(ddr)), timeout=300,
        memory=lambda run: _memory(ddr, base, config, latency=5, silent=run == 0))
    _check_fault_then_exact(config, outputs, flags, expected, Error.DDR_TIMEOUT)


@pytest.mark.parametrize("seed", range(3))
def test_soft_reset_during_a_fetch(seed):
    """SOFT_RESET while a burst is in flight: the run ends without output or error, the reader
    takes the outstanding beats, and the next run (same memory, still answering) is exact."""
    rnd, art, config, ddr, base, steps, packets, expected = _fault_case(seed, mode=["full", "split"][seed % 2])
    memory = _memory(ddr, base, config, latency=rnd.randint(20, 60), interval=rnd.randint(1, 2))
    outputs, flags = _simulate(config, build_weight_image(art, config), packets, steps, region=(base, len(ddr)),
                               memory=lambda run: memory, soft_reset_after=lambda run: rnd.randint(0, 10) if run == 0 else None)
    _check_fault_then_exact(config, outputs, flags, expected, 0)
    assert not memory.beats                          # every beat of the reset fetch was taken


def _batch_core(seed, **fixed):
    rnd = random.Random(700 + seed)
    art, config = _drawn_core(rnd, 700 + seed, **fixed)
    return rnd, art, dataclasses.replace(config, max_batch=rnd.randint(2, 4))


@pytest.mark.parametrize("seed", range(6))
def test_ddr_core_batches_match_golden_and_ddr_schedule(seed):
    """Batches of B drawn sequences (B from 1 to max_batch, T drawn): each group's rows fetched once
    and used by every sequence; every sequence bit-exact against the golden, CYCLES against the
    schedule's batch walk (exact in one 4 KiB page, within 2 % otherwise)."""
    rnd, art, config = _batch_core(seed)
    latency, interval = rnd.randint(1, 40), rnd.randint(1, 3)
    ddr = build_ddr_image(art, config).tobytes()
    base = _base(rnd, config)
    rng = np.random.default_rng(seed)
    runs = [(rnd.randint(1, config.max_timesteps), rnd.randint(1, config.max_batch)) for _ in range(2)]
    runs.append((config.max_timesteps, config.max_batch))
    packets, expected = zip(*(golden_batch_packets(config, art, np.stack([random_codes(art, rng, T) for _ in range(B)]))
                              for T, B in runs))
    outputs, flags = _simulate(config, build_weight_image(art, config), packets, [T for T, _ in runs],
                               memory=lambda run: _memory(ddr, base, config, latency=latency, interval=interval),
                               region=(base, len(ddr)), batches=[B for _, B in runs])
    assert flags["errors"] == [0] * len(runs)
    for got, want in zip(outputs, expected):
        np.testing.assert_array_equal(got, want)
    port = DdrPort(data_width=config.ddr_width, max_burst=config.ddr_burst, outstanding=config.ddr_outstanding,
                   latency=latency, interval=interval, base=base)
    for (T, B), cycles in zip(runs, flags["cycles"]):
        model = estimate_ddr(config, T, residency=config.weight_residency, batch=B, port=port).compute_cycles
        assert cycles == model, (config, T, B, latency, interval)


@pytest.mark.parametrize("seed", range(2))
def test_batch_outside_the_core_is_refused(seed):
    """BATCH 0 or past max_batch: START refused with Error.BATCH and nothing read; the next run exact."""
    rnd, art, config = _batch_core(seed, mode=["full", "split"][seed])
    ddr = build_ddr_image(art, config).tobytes()
    base = _base(rnd, config)
    rng = np.random.default_rng(seed)
    T, B = config.max_timesteps, config.max_batch
    packet, want = golden_batch_packets(config, art, np.stack([random_codes(art, rng, T) for _ in range(B)]))
    outputs, flags = _simulate(config, build_weight_image(art, config), [np.zeros(0, np.uint32), packet], [T, T],
                               memory=lambda run: _memory(ddr, base, config, latency=3), region=(base, len(ddr)),
                               batches=[rnd.choice([0, B + 1, 1 << 20]), B])
    assert flags["errors"] == [Error.BATCH, 0]
    assert outputs[0].size == 0
    np.testing.assert_array_equal(outputs[1], want)


@pytest.mark.parametrize("seed", range(2))
@pytest.mark.parametrize("fault", ["slverr", "soft_reset"])
def test_a_fault_mid_batch_ends_it_and_the_next_batch_is_exact(seed, fault):
    """An SLVERR beat, or a soft reset with bursts in flight, during a batch of max_batch sequences:
    the batch ends without output (the error bit, or none after the reset); the next batch exact."""
    rnd, art, config = _batch_core(40 + seed, mode=["full", "split"][seed])
    ddr = build_ddr_image(art, config).tobytes()
    base = _base(rnd, config)
    rng = np.random.default_rng(seed)
    T, B = config.max_timesteps, config.max_batch
    packets, expected = zip(*(golden_batch_packets(config, art, np.stack([random_codes(art, rng, T) for _ in range(B)]))
                              for _ in range(2)))
    fault_beat = rnd.randrange(_run_beats(config, T, B))
    shared = _memory(ddr, base, config, latency=rnd.randint(20, 60))

    def memory(run):
        if fault == "slverr":
            return _memory(ddr, base, config, latency=rnd.randint(1, 9),
                           fault=(fault_beat, SLVERR) if run == 0 else None)
        return shared

    options = {} if fault == "slverr" else {"soft_reset_after": lambda run: rnd.randint(0, 10) if run == 0 else None}
    outputs, flags = _simulate(config, build_weight_image(art, config), packets, [T, T], memory=memory,
                               region=(base, len(ddr)), batches=[B, B], **options)
    _check_fault_then_exact(config, outputs, flags, expected, Error.DDR_SLVERR if fault == "slverr" else 0)
