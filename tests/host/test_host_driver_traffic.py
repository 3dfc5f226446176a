"""The driver's exact register/DMA traffic against a mock board, including every error path."""

import dataclasses
import itertools

import numpy as np
import pytest

from lstmfpga.host.driver.core import LstmCoreDriver
from lstmfpga.host.driver.errors import (
    BitstreamMismatch,
    CoreStreamError,
    DdrReadError,
    DmaLimitError,
    DmaTimeout,
    StreamTimeout,
    WeightLoadError,
)
from lstmfpga.foundation.errors import InputError
from lstmfpga.foundation.hw import stream_format as sf
from lstmfpga.foundation.hw.config import AcceleratorConfig
from lstmfpga.foundation.hw.register_map import (
    CORE_ID,
    CORE_VERSION,
    Ctrl,
    Error,
    Reg,
    Status,
    hash_offset,
    SHAPE_REGS,
    shape_registers,
)
from lstmfpga.foundation.hw.ddr_image import build_ddr_image
from lstmfpga.foundation.hw.weight_image import build_weight_image, hash_words
from lstmfpga.foundation.integer_lstm import input_products, run_integer

from mock_devices import MockBoard

WATCHDOG = 5000


def _config(artifact, mode="full", stream_width=32):
    return AcceleratorConfig.from_artifact(artifact, lanes=8, mode=mode, max_timesteps=6, stream_width=stream_width)


def _identify_ops(config, *, overrides=None):
    values = dict(shape_registers(config), **(overrides or {}))
    return ([("read", Reg.ID, CORE_ID), ("read", Reg.VERSION, CORE_VERSION)]
            + [("read", int(reg), values.get(reg.name, 0)) for reg in SHAPE_REGS]  # unmapped: 0
            + [("write", Reg.TIMEOUT, WATCHDOG)])


def _hash_ops(sha):
    return [("read", hash_offset(i), w) for i, w in enumerate(hash_words(sha))]


def _load_ops(artifact, config, *, error=0, sha=None):
    nbytes = build_weight_image(artifact, config).size * 4
    return ([("flush",), ("write", Reg.CTRL, Ctrl.CLEAR), ("write", Reg.CTRL, Ctrl.LOAD_WEIGHTS),
             ("send", nbytes), ("wait", "send", None),
             ("read", Reg.STATUS, Status.BUSY | Status.LOADING), ("read", Reg.STATUS, Status.DONE | Status.WEIGHTS_VALID),
             ("read", Reg.ERROR, error)]
            + ([] if error else _hash_ops(sha or artifact.sha256)))


def _recover_ops():
    return [("write", Reg.CTRL, Ctrl.SOFT_RESET), ("write", Reg.CTRL, Ctrl.CLEAR),
            ("reset", "send"), ("reset", "recv")]


def _driver(board, max_transfer_bytes=(1 << 23) - 1, clock=None):
    kw = {} if clock is None else {"clock": clock}
    return LstmCoreDriver(mmio=board, sendchannel=board.sendchannel, recvchannel=board.recvchannel,
                          allocate=board.allocate, max_transfer_bytes=max_transfer_bytes,
                          timeout_s=1.0, watchdog_cycles=WATCHDOG, **kw)


@pytest.mark.parametrize("mode,stream_width", [("full", 32), ("split", 32), ("full", 128), ("split", 64)])
def test_prepare_loads_weights_then_runs_double_buffered(small_artifact, rng, mode, stream_width):
    """The traffic at any stream width: packets of whole beats (the packers), the weight image as
    built (the DMA ends it in a partial beat on a wide stream; the core reads up to its checksum)."""
    config = _config(small_artifact, mode, stream_width)
    xs = [rng.integers(-128, 128, size=(t, small_artifact.input_size)) for t in (6, 1, 4)]
    expected = [run_integer(small_artifact, x[None]) for x in xs]
    inputs = [x if mode == "full" else input_products(small_artifact.layers[0], x[None])[0] for x in xs]
    packs = [sf.pack_input(config, x) if mode == "full" else sf.pack_preactivations(config, p)
             for x, p in zip(xs, inputs)]
    outs = [sf.pack_output(config, e.last_h[0], e.logits[0]) for e in expected]

    ops = _identify_ops(config) + [("read", Reg.STATUS, 0)] + _load_ops(small_artifact, config)
    ops += [("flush",)]  # sequence 0 packed before the loop
    for k, x in enumerate(xs):
        ops += [("write", Reg.TIMESTEPS, x.shape[0]), ("recv", outs[k].size * 4, outs[k]),
                ("write", Reg.CTRL, Ctrl.START), ("send", packs[k].size * 4)]
        if k + 1 < len(xs):
            ops += [("flush",)]  # the next sequence uploads while this one computes
        ops += [("wait", "send", None), ("read", Reg.STATUS, Status.BUSY), ("read", Reg.STATUS, Status.DONE),
                ("read", Reg.ERROR, 0), ("wait", "recv", None), ("read", Reg.CYCLES, 100 + k), ("invalidate",)]
    board = MockBoard(ops)
    driver = _driver(board)
    assert driver.prepare(small_artifact) is True
    results = driver.run(inputs)
    board.done()
    image = build_weight_image(small_artifact, config)
    np.testing.assert_array_equal(board.sent[0].view("<u4"), image)
    for k, pack in enumerate(packs):
        np.testing.assert_array_equal(board.sent[k + 1].view("<u4"), pack)
        np.testing.assert_array_equal(results[k].h_codes, expected[k].last_h[0])
        np.testing.assert_array_equal(results[k].logits, expected[k].logits[0])
        assert results[k].cycles == 100 + k


def test_prepare_skips_load_when_hash_matches(small_artifact):
    config = _config(small_artifact)
    board = MockBoard(_identify_ops(config) + [("read", Reg.STATUS, Status.WEIGHTS_VALID | Status.DONE)]
                      + _hash_ops(small_artifact.sha256))
    assert _driver(board).prepare(small_artifact) is False
    board.done()


def test_prepare_reloads_when_another_model_is_loaded(small_artifact):
    config = _config(small_artifact)
    other = "ab" * 32
    board = MockBoard(_identify_ops(config) + [("read", Reg.STATUS, Status.WEIGHTS_VALID)] + _hash_ops(other)
                      + _load_ops(small_artifact, config))
    assert _driver(board).prepare(small_artifact) is True
    board.done()


def test_a_packed_core_reports_its_packing_and_takes_the_same_weight_image(small_artifact):
    unpacked = _config(small_artifact)
    config = dataclasses.replace(unpacked, macs_per_dsp=2)
    board = MockBoard(_identify_ops(config) + [("read", Reg.STATUS, 0)] + _load_ops(small_artifact, config))
    driver = _driver(board)
    assert driver.prepare(small_artifact) is True
    assert driver.config == config
    board.done()
    np.testing.assert_array_equal(board.sent[0].view("<u4"), build_weight_image(small_artifact, unpacked))


@pytest.mark.parametrize("ops,error,message", [
    (lambda art, config: [("read", Reg.ID, 0xDEADBEEF)],
     BitstreamMismatch, "ID reads 0xdeadbeef, expected 0x4c53544d"),
    (lambda art, config: [("read", Reg.ID, CORE_ID), ("read", Reg.VERSION, 0x0002_0003)],
     BitstreamMismatch, r"core version 2.3 is not supported; this driver speaks 1.x"),
    (lambda art, config: _identify_ops(config, overrides={"SHAPE_HIDDEN": config.hidden_size + 1}),
     BitstreamMismatch, "hidden_size: the hardware has 20, the artifact needs 19"),
    (lambda art, config: _identify_ops(config) + [("read", Reg.STATUS, 0)]
     + _load_ops(art, config, error=Error.WEIGHT_CHECKSUM | Error.WEIGHT_LENGTH),
     WeightLoadError, "rejected the weight image: WEIGHT_LENGTH, WEIGHT_CHECKSUM"),
    (lambda art, config: _identify_ops(config) + [("read", Reg.STATUS, 0)] + _load_ops(art, config, sha="cd" * 32),
     WeightLoadError, "reports artifact cdcdcdcdcdcdcdcd…, expected"),
], ids=["wrong-core-id", "wrong-major-version", "other-shape", "image-rejected", "hash-after-load-differs"])
def test_prepare_refuses_with_exact_traffic(small_artifact, ops, error, message):
    board = MockBoard(ops(small_artifact, _config(small_artifact)))
    with pytest.raises(error, match=message):
        _driver(board).prepare(small_artifact)
    board.done()


def test_prepare_refuses_a_bitstream_of_the_other_mode(small_artifact):
    board = MockBoard(_identify_ops(_config(small_artifact)))
    with pytest.raises(BitstreamMismatch, match="the bitstream is built for full mode, not split"):
        _driver(board).prepare(small_artifact, mode="split")
    board.done()


def test_dma_limit_names_the_needed_width(small_artifact):
    config = _config(small_artifact)
    board = MockBoard(_identify_ops(config))
    with pytest.raises(DmaLimitError, match=r"an input packet of T=6 is 240 bytes, the DMA moves at most 100 bytes per transfer; "
                                            r"rebuild the block design with c_sg_length_width >= 8"):
        _driver(board, max_transfer_bytes=100).prepare(small_artifact)
    board.done()


def _prepared(small_artifact, extra_ops, **kw):
    config = _config(small_artifact)
    board = MockBoard(_identify_ops(config) + [("read", Reg.STATUS, Status.WEIGHTS_VALID)]
                      + _hash_ops(small_artifact.sha256) + extra_ops)
    driver = _driver(board, **kw)
    driver.prepare(small_artifact)
    return board, driver, config


def _start_ops(config, x):
    out_bytes = sf.output_beats(config, x.shape[0]) * 4
    return [("flush",), ("write", Reg.TIMESTEPS, x.shape[0]), ("recv", out_bytes, []),
            ("write", Reg.CTRL, Ctrl.START), ("send", sf.input_beats(config, x.shape[0]) * 4)]


@pytest.mark.parametrize("bits,exc,message", [
    (Error.LAST_EARLY, CoreStreamError, "the core reported: LAST_EARLY"),
    (Error.OUTPUT_TIMEOUT, StreamTimeout, "watchdog fired: OUTPUT_TIMEOUT"),
    (Error.NO_WEIGHTS | Error.TIMESTEPS, CoreStreamError, "TIMESTEPS, NO_WEIGHTS"),
])
def test_core_error_bits_become_specific_exceptions(small_artifact, bits, exc, message):
    x = np.zeros((3, small_artifact.input_size), np.int64)
    config = _config(small_artifact)
    ops = _start_ops(config, x) + [("wait", "send", None), ("read", Reg.STATUS, Status.DONE | Status.ERROR),
                                   ("read", Reg.ERROR, bits)] + _recover_ops()
    board, driver, _ = _prepared(small_artifact, ops)
    with pytest.raises(exc, match=message) as info:
        driver.run([x])
    assert info.value.error_bits == bits
    board.done()


def test_dma_timeout_reads_core_error_and_recovers(small_artifact):
    x = np.zeros((2, small_artifact.input_size), np.int64)
    config = _config(small_artifact)
    ops = _start_ops(config, x) + [("wait", "send", DmaTimeout("slow")), ("read", Reg.ERROR, 0)] + _recover_ops() + [
        ("read", Reg.STATUS, Status.BUSY)]
    board, driver, _ = _prepared(small_artifact, ops)
    with pytest.raises(DmaTimeout, match=r"input upload did not finish within 1 s \(core STATUS=0x1\)"):
        driver.run([x])
    board.done()


def test_dma_timeout_with_watchdog_error_is_a_stream_timeout(small_artifact):
    x = np.zeros((2, small_artifact.input_size), np.int64)
    config = _config(small_artifact)
    ops = _start_ops(config, x) + [("wait", "send", DmaTimeout("slow")), ("read", Reg.ERROR, Error.INPUT_TIMEOUT)
                                   ] + _recover_ops()
    board, driver, _ = _prepared(small_artifact, ops)
    with pytest.raises(StreamTimeout, match="INPUT_TIMEOUT"):
        driver.run([x])
    board.done()


def test_core_that_never_finishes_times_out(small_artifact):
    x = np.zeros((2, small_artifact.input_size), np.int64)
    config = _config(small_artifact)
    ticks = itertools.count()
    # clock: +0.4 s per call (start 0, DMA wait 0.4, polls 0.8 and 1.2): the second poll passes the 1 s deadline
    clock = lambda: 0.4 * next(ticks)  # noqa: E731
    ops = _start_ops(config, x) + [("wait", "send", None)] + [("read", Reg.STATUS, Status.BUSY)] * 2 + _recover_ops()
    board, driver, _ = _prepared(small_artifact, ops, clock=clock)
    with pytest.raises(DmaTimeout, match="did not finish the sequence within 1 s"):
        driver.run([x], double_buffer=False)
    board.done()


def test_bad_sequence_shapes_are_named(small_artifact):
    board, driver, _ = _prepared(small_artifact, [])
    from lstmfpga.foundation.errors import InputError
    with pytest.raises(InputError, match=r"must have shape \[T, 37\], not \[3, 36\]"):
        driver.run([np.zeros((3, 36), np.int64)])
    with pytest.raises(InputError, match="runs 1 to 6 time steps, not 7"):
        driver.run([np.zeros((7, 37), np.int64)])
    board.done()


# -- weights in DDR -----------------------------------------------------------------------------

def _ddr_config(artifact, rnd):
    """A drawn core with weights in DDR (any residency: SHAPE_DDR tells the driver which)."""
    mode = rnd.choice(["full", "split"])
    return AcceleratorConfig.from_artifact(artifact, lanes=4 * rnd.randint(1, 12), mode=mode, max_timesteps=6,
                                           weight_residency=rnd.choice(["stream", "all", "wx"]) if mode == "full"
                                           else "stream",
                                           ddr_width=rnd.choice([64, 128]), ddr_burst=rnd.choice([16, 256]),
                                           ddr_outstanding=rnd.randint(1, 8))


def _ddr_ops(artifact, config, address):
    """The DDR image written and flushed, then the core pointed at it."""
    size = build_ddr_image(artifact, config).size
    return [("flush",), ("write", Reg.DDR_BASE_LO, address & 0xFFFFFFFF), ("write", Reg.DDR_BASE_HI, address >> 32),
            ("write", Reg.DDR_LENGTH, size)]


@pytest.mark.parametrize("seed", range(3))
def test_ddr_core_gets_its_image_once_and_the_stream_load(small_artifact, seed):
    """A core with weights in DDR: the driver writes the model's DDR image into one buffer and
    points DDR_BASE/DDR_LENGTH at it, then loads the weight stream; preparing the same model again
    on the same driver copies nothing; another model gets a new buffer and both loads."""
    import random

    from lstmfpga.sim.golden.random_artifact import random_artifact

    rnd = random.Random(seed)
    config = _ddr_config(small_artifact, rnd)
    other = random_artifact(input_size=37, hidden_size=19, num_layers=2, num_classes=2, seed=99)
    first = MockBoard.FIRST_ADDRESS + (4 << 20)          # after the two input and two output buffers
    ops = (_identify_ops(config) + _ddr_ops(small_artifact, config, first) + [("read", Reg.STATUS, 0)]
           + _load_ops(small_artifact, config))
    # the same model again: the core's hash matches and the buffer holds the image
    ops += _identify_ops(config) + [("read", Reg.STATUS, Status.WEIGHTS_VALID)] + _hash_ops(small_artifact.sha256)
    # another model: new stream buffers, then its DDR image in a new buffer, then its stream load
    # (buffers: 0-3 streams, 4 DDR image, 5 weight image, 6-9 and 10-13 streams, 14 the new DDR image)
    ops += (_identify_ops(config) + _ddr_ops(other, config, first + (10 << 20)) + [("read", Reg.STATUS, Status.WEIGHTS_VALID)]
            + _hash_ops(small_artifact.sha256) + _load_ops(other, config))
    board = MockBoard(ops)
    driver = _driver(board)
    assert driver.config is None
    assert driver.prepare(small_artifact) is True
    assert driver.config == config
    ddr = board.allocated[4]
    assert ddr.physical_address == first and ddr.dtype == np.uint8
    np.testing.assert_array_equal(ddr, build_ddr_image(small_artifact, config))
    np.testing.assert_array_equal(board.sent[0].view("<u4"), build_weight_image(small_artifact, config))
    assert driver.prepare(small_artifact) is False
    assert driver.prepare(other) is True
    np.testing.assert_array_equal(board.allocated[14], build_ddr_image(other, config))
    board.done()


def test_ddr_core_after_a_restart_gets_the_image_but_not_the_stream(small_artifact):
    """A new driver (a new process) on a core that still holds the model: the DDR buffer is new, so
    the image is written and the core pointed at it, but the weight stream is skipped."""
    import random

    config = _ddr_config(small_artifact, random.Random(7))
    board = MockBoard(_identify_ops(config) + _ddr_ops(small_artifact, config, MockBoard.FIRST_ADDRESS + (4 << 20))
                      + [("read", Reg.STATUS, Status.WEIGHTS_VALID)] + _hash_ops(small_artifact.sha256))
    assert _driver(board).prepare(small_artifact) is True
    board.done()


@pytest.mark.parametrize("bits,message", [
    (Error.DDR_RANGE, r"weight fetch from DDR failed: DDR_RANGE \(is DDR_BASE/DDR_LENGTH the model's DDR image\?\)"),
    (Error.DDR_SLVERR, "weight fetch from DDR failed: DDR_SLVERR"),
    (Error.DDR_DECERR, "weight fetch from DDR failed: DDR_DECERR"),
    (Error.DDR_TIMEOUT, "stopped being answered .DDR_TIMEOUT.; the memory port is hung: reload the overlay"),
])
def test_ddr_error_bits_end_the_run_with_exact_recovery(small_artifact, bits, message):
    import random

    config = _ddr_config(small_artifact, random.Random(11))
    x = (np.zeros((3, small_artifact.input_size), np.int64) if config.mode == "full"
         else np.zeros((3, 4, small_artifact.hidden_size), np.int64))
    board = MockBoard(_identify_ops(config) + _ddr_ops(small_artifact, config, MockBoard.FIRST_ADDRESS + (4 << 20))
                      + [("read", Reg.STATUS, Status.WEIGHTS_VALID)] + _hash_ops(small_artifact.sha256)
                      + _start_ops(config, x)
                      + [("wait", "send", None), ("read", Reg.STATUS, Status.DONE | Status.ERROR),
                         ("read", Reg.ERROR, bits)] + _recover_ops())
    driver = _driver(board)
    driver.prepare(small_artifact)
    with pytest.raises(DdrReadError, match=message) as info:
        driver.run([x])
    assert info.value.error_bits == bits
    board.done()


def test_ddr_core_needs_buffers_with_a_bus_address(small_artifact):
    import random

    from lstmfpga.host.driver.errors import DriverError

    config = _ddr_config(small_artifact, random.Random(3))
    board = MockBoard(_identify_ops(config))
    driver = LstmCoreDriver(mmio=board, sendchannel=board.sendchannel, recvchannel=board.recvchannel,
                            allocate=lambda shape, dtype: np.zeros(shape, dtype), max_transfer_bytes=1 << 23,
                            timeout_s=1.0, watchdog_cycles=WATCHDOG)
    with pytest.raises(DriverError, match="gives no physical_address .use pynq.allocate."):
        driver.prepare(small_artifact)
    board.done()


@pytest.mark.parametrize("seed", range(3))
def test_batch_core_runs_runs_of_equal_length_as_batches(small_artifact, seed):
    """A core with SHAPE_BATCH: consecutive sequences of one T (up to max_batch) go out as one batch
    — TIMESTEPS, BATCH, the output armed for B packets, START, the interleaved input packet — and
    come back one result each, in order."""
    import random

    rnd = random.Random(seed)
    config = dataclasses.replace(_ddr_config(small_artifact, rnd), max_batch=rnd.randint(2, 4))
    rng = np.random.default_rng(seed)
    lengths = [rnd.choice([2, 5]) for _ in range(rnd.randint(3, 9))]
    xs = [rng.integers(-128, 128, size=(t, small_artifact.input_size)) for t in lengths]
    inputs = [x if config.mode == "full" else input_products(small_artifact.layers[0], x[None])[0] for x in xs]
    batches = []                                     # what the driver must group, by hand
    for k, t in enumerate(lengths):
        if batches and len(batches[-1]) < config.max_batch and lengths[batches[-1][0]] == t:
            batches[-1].append(k)
        else:
            batches.append([k])
    expected = [run_integer(small_artifact, x[None]) for x in xs]
    ops = (_identify_ops(config) + _ddr_ops(small_artifact, config, MockBoard.FIRST_ADDRESS + (4 << 20))
           + [("read", Reg.STATUS, 0)] + _load_ops(small_artifact, config) + [("flush",)])
    packs = []
    for n, batch in enumerate(batches):
        T, B = lengths[batch[0]], len(batch)
        pack = sf.pack_batch_input(config, np.stack([inputs[k] for k in batch]))
        out = sf.pack_batch_output(config, np.stack([expected[k].last_h[0] for k in batch]),
                                   np.stack([expected[k].logits[0] for k in batch]))
        packs.append(pack)
        ops += [("write", Reg.TIMESTEPS, T), ("write", Reg.BATCH, B), ("recv", out.size * 4, out),
                ("write", Reg.CTRL, Ctrl.START), ("send", pack.size * 4)]
        if n + 1 < len(batches):
            ops += [("flush",)]
        ops += [("wait", "send", None), ("read", Reg.STATUS, Status.DONE), ("read", Reg.ERROR, 0),
                ("wait", "recv", None), ("read", Reg.CYCLES, 500 + n), ("invalidate",)]
    board = MockBoard(ops)
    driver = _driver(board)
    driver.prepare(small_artifact)
    results = driver.run(inputs)
    board.done()
    for n, pack in enumerate(packs):
        np.testing.assert_array_equal(board.sent[n + 1].view("<u4"), pack)
    assert len(results) == len(xs)
    for n, batch in enumerate(batches):
        for k in batch:
            np.testing.assert_array_equal(results[k].h_codes, expected[k].last_h[0])
            np.testing.assert_array_equal(results[k].logits, expected[k].logits[0])
            assert results[k].cycles == 500 + n
    with pytest.raises(InputError, match=r"max_batch must be an integer in \[1, \d\] on this core"):
        driver.run(inputs, max_batch=config.max_batch + 1)
