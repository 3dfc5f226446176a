"""Register-level driver of the LSTM core: identify, load weights, run sequences.

The same code drives the PYNQ board and the simulated board: it needs only an ``mmio`` with
``read(offset)`` / ``write(offset, value)``, two DMA channels (``lstmfpga.host.driver.dma``) and
an ``allocate(shape, dtype)`` returning buffers with ``flush()`` / ``invalidate()``. Offsets and
bits come from ``lstmfpga.foundation.hw.register_map``; packet layouts from ``lstmfpga.foundation.hw.stream_format``.

A core with weights in DDR (SHAPE_DDR) reads its weight rows over its own AXI4 master: ``prepare``
allocates one buffer for the model's DDR image (:mod:`~lstmfpga.foundation.hw.ddr_image`), writes
it once, and points DDR_BASE_LO/HI and DDR_LENGTH at it; the weight stream still carries the whole
image, which the core checks and hashes.  A later ``prepare`` of the same model on the same driver
copies nothing.

Per run: TIMESTEPS (and BATCH on a core with SHAPE_BATCH), receive armed, START, send; then the
core's DONE, its ERROR word, the output DMA, CYCLES.  A core that takes batches (SHAPE_BATCH > 1)
runs up to that many consecutive sequences of the same T as one batch: every fetched weight row
serves them all.  ``run`` double-buffers: while the core computes run k, run k+1 is packed and
flushed into the other input buffer and the output of k-1 is unpacked.

NumPy only: runs on Python 3.10 / NumPy 1.21 on a PYNQ image.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from lstmfpga.foundation.errors import ConfigError, InputError
from lstmfpga.foundation.hw import register_map as rm
from lstmfpga.foundation.hw import stream_format as sf
from lstmfpga.foundation.hw.config import AcceleratorConfig
from lstmfpga.foundation.hw.ddr_image import build_ddr_image
from lstmfpga.foundation.hw.register_map import Ctrl, Error, Reg, Status
from lstmfpga.foundation.hw.weight_image import build_weight_image
from lstmfpga.foundation.validation import is_integer
from lstmfpga.host.driver.dma import check_transfer
from lstmfpga.host.driver.errors import (
    BitstreamMismatch,
    CoreStreamError,
    DdrReadError,
    DmaTimeout,
    DriverError,
    StreamTimeout,
    WeightLoadError,
)

_TIMEOUT_ERRORS = Error.INPUT_TIMEOUT | Error.OUTPUT_TIMEOUT
_WEIGHT_ERRORS = Error.WEIGHT_HEADER | Error.WEIGHT_SHAPE | Error.WEIGHT_LENGTH | Error.WEIGHT_CHECKSUM
_DDR_ERRORS = Error.DDR_RANGE | Error.DDR_SLVERR | Error.DDR_DECERR | Error.DDR_TIMEOUT


def config_from_registers(values: dict) -> AcceleratorConfig:
    """The ``AcceleratorConfig`` a bitstream reports in its SHAPE_* registers."""
    try:
        return rm.decode_shape(values)
    except ConfigError as exc:
        raise BitstreamMismatch(f"the core reports an impossible shape ({exc})") from None


def hash_hex(words: Sequence[int]) -> str:
    return "".join(f"{int(w) & 0xFFFFFFFF:08x}" for w in words)


@dataclass(frozen=True)
class RunResult:
    """One sequence's output: h codes ``[T, H]``, logits ``[C]`` or None, and the core cycles and
    seconds of its run (shared by the sequences of a batch)."""

    h_codes: np.ndarray
    logits: np.ndarray | None
    cycles: int
    seconds: float


class LstmCoreDriver:
    """Drive one LSTM core through its AXI-Lite registers and an AXI DMA.

    Parameters
    ----------
    mmio
        Register access of the core: ``read(offset) -> int``, ``write(offset, value)``.
    sendchannel, recvchannel
        DMA channels (see ``lstmfpga.host.driver.dma.DmaChannel``).
    allocate
        ``allocate(shape, dtype)`` -> DMA-able buffer (``pynq.allocate`` on a board).
    max_transfer_bytes
        Longest DMA transfer (from the DMA's ``c_sg_length_width``).
    timeout_s
        Wall-clock limit for a weight load or one sequence.
    watchdog_cycles
        Value written to the core's TIMEOUT register (0 disables its stream watchdog).
    poll_s
        Pause between STATUS polls.
    clock, sleep
        Time source and pause (wall clock by default; simulated time on the simulated board).
    """

    def __init__(self, *, mmio, sendchannel, recvchannel, allocate: Callable, max_transfer_bytes: int,
                 timeout_s: float = 5.0, watchdog_cycles: int = rm.DEFAULT_TIMEOUT, poll_s: float = 0.0,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if not is_integer(max_transfer_bytes) or max_transfer_bytes < 4:
            raise ConfigError(f"max_transfer_bytes must be an integer >= 4, not {max_transfer_bytes!r}")
        if not timeout_s > 0:
            raise ConfigError(f"timeout_s must be positive, not {timeout_s!r}")
        if not is_integer(watchdog_cycles) or not 0 <= watchdog_cycles < 1 << 32:
            raise ConfigError(f"watchdog_cycles must be an integer in [0, 2**32), not {watchdog_cycles!r}")
        self.mmio = mmio
        self.send = sendchannel
        self.recv = recvchannel
        self.allocate = allocate
        self.max_transfer_bytes = max_transfer_bytes
        self.timeout_s = float(timeout_s)
        self.watchdog_cycles = watchdog_cycles
        self.poll_s = poll_s
        self.clock = clock
        self.sleep = sleep
        self.config: AcceleratorConfig | None = None
        self._in_bufs: list = []
        self._out_bufs: list = []
        self._ddr_buf = None          # the DDR image of the model ``_ddr_sha256`` (weights in DDR)
        self._ddr_sha256: str | None = None

    # -- identification and weights -----------------------------------------------------------

    def identify(self) -> AcceleratorConfig:
        """Check ID and VERSION, read the shape registers, program the watchdog."""
        core_id = self.mmio.read(Reg.ID)
        if core_id != rm.CORE_ID:
            raise BitstreamMismatch(f"no lstmfpga core at this address: ID reads {core_id:#010x}, "
                                    f"expected {rm.CORE_ID:#010x} ('LSTM')")
        version = self.mmio.read(Reg.VERSION)
        if version >> 16 != rm.CORE_VERSION >> 16:
            raise BitstreamMismatch(f"core version {version >> 16}.{version & 0xFFFF} is not supported; "
                                    f"this driver speaks {rm.CORE_VERSION >> 16}.x")
        values = {reg.name: self.mmio.read(reg) for reg in rm.SHAPE_REGS}
        self.config = config_from_registers(values)
        self.mmio.write(Reg.TIMEOUT, self.watchdog_cycles)
        return self.config

    def loaded_hash(self) -> str | None:
        """SHA-256 of the loaded weights, or None when the core holds no valid image."""
        if not self.mmio.read(Reg.STATUS) & Status.WEIGHTS_VALID:
            return None
        return self._read_hash()

    def _read_hash(self) -> str:
        return hash_hex([self.mmio.read(rm.hash_offset(i)) for i in range(rm.HASH_WORDS)])

    def prepare(self, artifact, *, mode: str | None = None) -> bool:
        """Identify the core, refuse an artifact it cannot run (or a bitstream of another ``mode``),
        load its weights if needed.

        Returns True when a weight image was loaded, False when the core already held it.
        """
        config = self.identify()
        if mode is not None and mode != config.mode:
            raise BitstreamMismatch(f"the bitstream is built for {config.mode} mode, not {mode}")
        problem = config.mismatch(artifact)
        if problem is not None:
            raise BitstreamMismatch(f"this bitstream cannot run the artifact: {problem}")
        self._allocate_buffers(config)
        copied = config.ddr_weights and self._place_ddr_image(artifact, config)
        if self.loaded_hash() == artifact.sha256:
            return copied
        self.load_weights(build_weight_image(artifact, config), artifact.sha256)
        return True

    def _place_ddr_image(self, artifact, config: AcceleratorConfig) -> bool:
        """Weights in DDR: the model's DDR image in this driver's buffer, the core pointed at it.
        Returns whether the image was copied (False: the buffer already holds this model)."""
        if self._ddr_sha256 == artifact.sha256:
            return False
        image = build_ddr_image(artifact, config)
        self._free_ddr()
        buf = self.allocate(shape=(image.size,), dtype=np.uint8)
        address = getattr(buf, "physical_address", None)
        if address is None:
            _free(buf)
            raise DriverError("the weights of this core live in DDR, but the buffer allocator gives no "
                              "physical_address (use pynq.allocate)")
        buf[:] = image
        buf.flush()
        self._ddr_buf = buf
        for register, value in rm.ddr_region_writes(address, image.size):
            self.mmio.write(register, value)
        self._ddr_sha256 = artifact.sha256
        return True

    def _free_ddr(self) -> None:
        if self._ddr_buf is not None:
            _free(self._ddr_buf)
        self._ddr_buf, self._ddr_sha256 = None, None

    def load_weights(self, image: np.ndarray, sha256: str) -> None:
        nbytes = image.size * 4
        check_transfer(nbytes, self.max_transfer_bytes, "the weight image")
        buf = self.allocate(shape=(image.size,), dtype=np.uint32)
        try:
            buf[:] = image
            buf.flush()
            self.mmio.write(Reg.CTRL, Ctrl.CLEAR)
            self.mmio.write(Reg.CTRL, Ctrl.LOAD_WEIGHTS)
            self.send.transfer(buf, nbytes)
            deadline = self.clock() + self.timeout_s
            self._wait_dma(self.send, deadline, "weight image upload")
            self._wait_done(deadline, "weight load")
            error = self.mmio.read(Reg.ERROR)
            if error:
                raise WeightLoadError(f"the core rejected the weight image: {', '.join(rm.describe_errors(error))}")
            loaded = self._read_hash()
            if loaded != sha256:
                raise WeightLoadError(f"after loading, the core reports artifact {loaded[:16]}…, expected {sha256[:16]}…")
        finally:
            _free(buf)

    # -- sequences ----------------------------------------------------------------------------

    def _allocate_buffers(self, config: AcceleratorConfig) -> None:
        self._free_stream_buffers()
        B = config.max_batch
        in_words = B * sf.input_lanes(config, config.max_timesteps)
        out_words = B * sf.output_lanes(config, config.max_timesteps)
        what = f"T={config.max_timesteps}" + (f" and B={B}" if B > 1 else "")
        check_transfer(in_words * 4, self.max_transfer_bytes, f"an input packet of {what}")
        check_transfer(out_words * 4, self.max_transfer_bytes, f"an output packet of {what}")
        self._in_bufs = [self.allocate(shape=(in_words,), dtype=np.uint32) for _ in range(2)]
        self._out_bufs = [self.allocate(shape=(out_words,), dtype=np.uint32) for _ in range(2)]

    def _pack(self, batch: Sequence[np.ndarray], slot: int) -> int:
        config = self.config
        if config.max_batch > 1:
            lanes = sf.pack_batch_input(config, np.stack(batch))
        elif config.mode == "split":
            lanes = sf.pack_preactivations(config, batch[0])
        else:
            lanes = sf.pack_input(config, batch[0])
        buf = self._in_bufs[slot]
        buf[: lanes.size] = lanes
        buf.flush()
        return lanes.size * 4

    def _start(self, slot: int, timesteps: int, batch: int, in_bytes: int) -> None:
        out_bytes = batch * sf.output_lanes(self.config, timesteps) * 4
        self.mmio.write(Reg.TIMESTEPS, timesteps)
        if self.config.max_batch > 1:
            self.mmio.write(Reg.BATCH, batch)
        self.recv.transfer(self._out_bufs[slot], out_bytes)
        self.mmio.write(Reg.CTRL, Ctrl.START)
        self.send.transfer(self._in_bufs[slot], in_bytes)

    def _finish(self, slot: int, started: float) -> tuple[int, float]:
        deadline = started + self.timeout_s
        self._wait_dma(self.send, deadline, "input upload")
        self._wait_done(deadline, "sequence")
        error = self.mmio.read(Reg.ERROR)
        if error:
            self._recover()
            raise _core_error(error)
        self._wait_dma(self.recv, deadline, "output download")
        cycles = self.mmio.read(Reg.CYCLES)
        self._out_bufs[slot].invalidate()
        return cycles, self.clock() - started

    def _unpack(self, slot: int, timesteps: int, batch: int, cycles: int, seconds: float) -> list[RunResult]:
        words = batch * sf.output_lanes(self.config, timesteps)
        h, logits = sf.unpack_batch_output(self.config, np.asarray(self._out_bufs[slot][:words]), timesteps, batch)
        return [RunResult(h_codes=h[b], logits=None if logits is None else logits[b], cycles=int(cycles),
                          seconds=seconds) for b in range(batch)]

    def check_sequence(self, data: np.ndarray) -> np.ndarray:
        config = self.config
        if config is None:
            raise DriverError("the driver is not prepared: call prepare(artifact) first")
        data = np.asarray(data)
        expected = (4, config.hidden_size) if config.mode == "split" else (config.input_size,)
        if data.ndim != 1 + len(expected) or data.shape[1:] != expected:
            raise InputError(f"a {config.mode}-mode sequence must have shape [T, {', '.join(map(str, expected))}], "
                             f"not {list(data.shape)}")
        if not 1 <= data.shape[0] <= config.max_timesteps:
            raise InputError(f"this bitstream runs 1 to {config.max_timesteps} time steps, not {data.shape[0]}")
        return data

    def run(self, sequences: Sequence[np.ndarray], *, double_buffer: bool = True,
            max_batch: int | None = None) -> list[RunResult]:
        """Run sequences (each ``[T, I]`` codes or ``[T, 4, H]`` pre-activations) in order, one
        result each.  On a core that takes batches, up to ``max_batch`` (default: the core's)
        consecutive sequences of the same T run as one batch."""
        sequences = [self.check_sequence(s) for s in sequences]
        most = self.config.max_batch if sequences else 1
        if max_batch is not None:
            if not is_integer(max_batch) or not 1 <= max_batch <= most:
                raise InputError(f"max_batch must be an integer in [1, {most}] on this core, not {max_batch!r}")
            most = max_batch
        batches = [[sequences[i] for i in group]
                   for group in sf.batch_groups([s.shape[0] for s in sequences], most)]
        results: list = []
        if not batches:
            return results
        if not double_buffer:
            for batch in batches:
                started = self.clock()
                self._start(0, batch[0].shape[0], len(batch), self._pack(batch, 0))
                cycles, seconds = self._finish(0, started)
                results.extend(self._unpack(0, batch[0].shape[0], len(batch), cycles, seconds))
            return results
        in_bytes = self._pack(batches[0], 0)
        previous = None  # (slot, T, B, cycles, seconds) of the output still to unpack
        for k, batch in enumerate(batches):
            slot, steps = k % 2, batch[0].shape[0]
            started = self.clock()
            self._start(slot, steps, len(batch), in_bytes)
            if k + 1 < len(batches):
                in_bytes = self._pack(batches[k + 1], 1 - slot)  # overlaps the core's compute
            if previous is not None:
                results.extend(self._unpack(*previous))
            cycles, seconds = self._finish(slot, started)
            previous = (slot, steps, len(batch), cycles, seconds)
        results.extend(self._unpack(*previous))
        return results

    # -- waiting and recovery -----------------------------------------------------------------

    def _wait_dma(self, channel, deadline: float, what: str) -> None:
        try:
            channel.wait(max(deadline - self.clock(), 0.0))
        except DmaTimeout:
            error = self.mmio.read(Reg.ERROR)
            self._recover()
            if error:
                raise _core_error(error) from None
            raise DmaTimeout(f"{what} did not finish within {self.timeout_s:g} s "
                             f"(core STATUS={self.mmio.read(Reg.STATUS):#x})") from None

    def _wait_done(self, deadline: float, what: str) -> None:
        while True:
            status = self.mmio.read(Reg.STATUS)
            if status & Status.DONE:
                return
            if self.clock() > deadline:
                self._recover()
                raise DmaTimeout(f"the core did not finish the {what} within {self.timeout_s:g} s "
                                 f"(STATUS={status:#x}; is its output stream stalled?)")
            if self.poll_s:
                self.sleep(self.poll_s)

    def _recover(self) -> None:
        """Leave the core and the DMA ready for the next sequence after a failure."""
        self.mmio.write(Reg.CTRL, Ctrl.SOFT_RESET)
        self.mmio.write(Reg.CTRL, Ctrl.CLEAR)
        for channel in (self.send, self.recv):
            channel.reset()

    def _free_stream_buffers(self) -> None:
        for buf in self._in_bufs + self._out_bufs:
            _free(buf)
        self._in_bufs, self._out_bufs = [], []

    def close(self) -> None:
        self._free_stream_buffers()
        self._free_ddr()


def _core_error(error: int) -> CoreStreamError:
    names = ", ".join(rm.describe_errors(error)) or f"{error:#x}"
    if error & _TIMEOUT_ERRORS:
        return StreamTimeout(f"the core's stream watchdog fired: {names}", error_bits=error)
    if error & _WEIGHT_ERRORS:
        return WeightLoadError(f"the core reports weight-image errors: {names}")
    if error & Error.DDR_TIMEOUT:
        return DdrReadError(f"the core's weight reads from DDR stopped being answered ({names}); the memory port "
                            f"is hung: reload the overlay (reset the PL) before the next run", error_bits=error)
    if error & _DDR_ERRORS:
        return DdrReadError(f"the core's weight fetch from DDR failed: {names} (is DDR_BASE/DDR_LENGTH the model's "
                            f"DDR image?)", error_bits=error)
    return CoreStreamError(f"the core reported: {names}", error_bits=error)


def _free(buf) -> None:
    for name in ("freebuffer", "close"):
        method = getattr(buf, name, None)
        if callable(method):
            method()
            return
