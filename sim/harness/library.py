"""ctypes binding of the compiled harness: one :class:`Harness` is one simulated core with its
AXI4-Lite master and its two DMA streams.

Every call clocks the model inside C++ until the transaction completes or its cycle limit passes;
a limit that passes raises :class:`HarnessTimeout` naming the transaction, the cycle and the
stream counters, so a transaction that never completes can never hang the caller.
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

import numpy as np

from lstmfpga.foundation.errors import ConfigError, LstmfpgaError
from lstmfpga.foundation.validation import check_integer

#: Cycles an AXI4-Lite transaction may take (the core answers in two).
REGISTER_LIMIT = 1000
#: Reset held low, then high, in cycles (as the cocotb benches do).
RESET_CYCLES = (4, 2)
#: Set (to anything but ``0`` or empty) to run every harness in checked mode (see :class:`Harness`).
CHECK_ENV = "LSTMFPGA_HARNESS_CHECK"

_OK, _TIMEOUT, _OVERRUN, _BUSY = 0, 1, 2, 3
_u64, _u32, _ptr = ctypes.c_uint64, ctypes.c_uint32, ctypes.c_void_p
_SIGNATURES = {
    "harness_input_lanes": ([], ctypes.c_int),
    "harness_output_lanes": ([], ctypes.c_int),
    "harness_create": ([_u64], _ptr),
    "harness_destroy": ([_ptr], None),
    "harness_configure": ([_ptr, ctypes.c_double, ctypes.c_double, ctypes.c_int], None),
    "harness_cycle": ([_ptr], _u64),
    "harness_check": ([_ptr, ctypes.c_int], None),
    "harness_unsettled": ([_ptr, ctypes.POINTER(_u64)], None),
    "harness_counters": ([_ptr, ctypes.POINTER(_u64)], None),
    "harness_send_cycles": ([_ptr, ctypes.POINTER(_u64), _u64], _u64),
    "harness_reset": ([_ptr, _u64, _u64], None),
    "harness_run": ([_ptr, _u64], None),
    "harness_write": ([_ptr, _u32, _u32, _u64], ctypes.c_int),
    "harness_read": ([_ptr, _u32, ctypes.POINTER(_u32), _u64], ctypes.c_int),
    "harness_send": ([_ptr, _ptr, _u64], ctypes.c_int),
    "harness_receive": ([_ptr, _ptr, _u64], ctypes.c_int),
    "harness_wait_send": ([_ptr, _u64], ctypes.c_int),
    "harness_wait_receive": ([_ptr, _u64], ctypes.c_int),
    "harness_stop": ([_ptr, ctypes.c_int, ctypes.c_int], None),
    "harness_has_weight_port": ([], ctypes.c_int),
    "harness_weight_port_lanes": ([], ctypes.c_int),
    "harness_map_ddr": ([_ptr, _u64, _ptr, _u64], None),
    "harness_unmap_ddr": ([_ptr], None),
    "harness_configure_ddr": ([_ptr, _u64, ctypes.c_double, ctypes.c_double, ctypes.c_int], None),
    "harness_ddr_counters": ([_ptr, ctypes.POINTER(_u64)], None),
    "harness_reset_ddr": ([_ptr], None),
}
_libraries: dict[str, ctypes.CDLL] = {}


class HarnessTimeout(LstmfpgaError, TimeoutError):
    """A harness transaction did not complete within its cycle limit."""


class StreamOverrun(LstmfpgaError):
    """The output packet was longer than the armed receive buffer."""


class UnsettledOutput(LstmfpgaError):
    """Checked mode: a handshake output changed at a falling-edge evaluation, so the harness's one
    evaluation per cycle would have read it before it settled."""


def load_library(path: str | Path) -> ctypes.CDLL:
    """The harness library at ``path`` with its C signatures declared (loaded once per process)."""
    key = str(Path(path).resolve())
    if key not in _libraries:
        lib = ctypes.CDLL(key)
        for name, (args, result) in _SIGNATURES.items():
            function = getattr(lib, name)
            function.argtypes, function.restype = args, result
        _libraries[key] = lib
    return _libraries[key]


class Harness:
    """One Verilated core and the board's side of its ports.

    Parameters
    ----------
    library
        Path of the shared library from :func:`lstmfpga.sim.verilator.build_harness`.
    lanes_per_beat
        32-bit lanes per AXI-Stream beat the caller expects (``stream_format.lanes_per_beat``);
        checked against the Verilated port widths.
    seed
        Seed of the random idle/backpressure cycles.
    input_pause, output_pause
        Probability that the source idles / the sink refuses a beat in any cycle.
    output_stalled
        Never accept output (``m_axis_tready`` held low).
    check
        Checked mode: evaluate the model at the falling edge of every cycle too and raise
        :class:`UnsettledOutput` if that changed a registered output the handshakes read (the
        premise of the one evaluation per cycle; half the speed).  Default: the environment
        variable :data:`CHECK_ENV`.
    """

    def __init__(self, library: str | Path, *, lanes_per_beat: int, seed: int = 0, input_pause: float = 0.0,
                 output_pause: float = 0.0, output_stalled: bool = False, check: bool | None = None) -> None:
        for name, value in (("input_pause", input_pause), ("output_pause", output_pause)):
            if not 0.0 <= value < 1.0:
                raise ConfigError(f"{name} must be a probability in [0, 1), not {value!r}")
        self._lib = load_library(library)
        widths = (self._lib.harness_input_lanes(), self._lib.harness_output_lanes())
        if widths != (lanes_per_beat, lanes_per_beat):
            raise ConfigError(f"the harness at {library} has {32 * widths[0]}/{32 * widths[1]}-bit streams, "
                              f"the configuration {32 * lanes_per_beat}-bit")
        self.lanes_per_beat = lanes_per_beat
        self._handle = self._lib.harness_create(int(seed) & (2**64 - 1))
        self._lib.harness_configure(self._handle, float(input_pause), float(output_pause), int(output_stalled))
        if check is None:
            check = os.environ.get(CHECK_ENV, "") not in ("", "0")
        self.check = bool(check)
        self._lib.harness_check(self._handle, int(self.check))
        self._recv_buffer = None  # kept alive while the core writes into it
        self._ddr_buffers: dict[int, np.ndarray] = {}  # kept alive while the core reads them
        self._lib.harness_reset(self._handle, *RESET_CYCLES)
        self._verify()

    @property
    def cycle(self) -> int:
        """Rising clock edges since the harness was created."""
        return int(self._lib.harness_cycle(self._handle))

    def counters(self) -> dict[str, int]:
        """Stream progress: input beats sent of the packet's total, output beats and bytes received."""
        out = (_u64 * 4)()
        self._lib.harness_counters(self._handle, out)
        return {"sent_beats": out[0], "send_beats": out[1], "received_beats": out[2], "received_bytes": out[3]}

    def send_cycles(self) -> tuple[int, ...]:
        """The cycles (:attr:`cycle` numbering) at which the last packet's beats were accepted."""
        count = int(self._lib.harness_send_cycles(self._handle, None, 0))
        out = (_u64 * max(count, 1))()
        self._lib.harness_send_cycles(self._handle, out, count)
        return tuple(int(c) for c in out[:count])

    def unsettled(self) -> tuple[int, int]:
        """Checked mode: (cycles where the falling edge changed a handshake output, the first one)."""
        out = (_u64 * 2)()
        self._lib.harness_unsettled(self._handle, out)
        return int(out[0]), int(out[1])

    # -- the memory behind the weight port (weights in DDR) ---------------------------------------

    @property
    def has_weight_port(self) -> bool:
        """Whether the core has the AXI4 read master of weights in DDR."""
        return bool(self._lib.harness_has_weight_port())

    @property
    def weight_port_width(self) -> int:
        """Data width of the weight port in bits (0 without one)."""
        return 32 * int(self._lib.harness_weight_port_lanes())

    def map_ddr(self, address: int, buffer: np.ndarray) -> None:
        """Answer the weight port's reads at bus ``address`` on from ``buffer`` (C-contiguous; read
        in place, as the core reads a ``pynq.allocate`` buffer: later writes to it are seen)."""
        if not (isinstance(buffer, np.ndarray) and buffer.flags.c_contiguous):
            raise ConfigError("a DDR buffer must be a C-contiguous NumPy array")
        self._ddr_buffers[int(address)] = buffer
        self._lib.harness_map_ddr(self._handle, int(address), buffer.ctypes.data, buffer.nbytes)

    def configure_ddr(self, *, latency: int = 1, ar_pause: float = 0.0, r_pause: float = 0.0,
                      silent: bool = False) -> None:
        """The memory's timing: ``latency`` cycles from an AR to its first beat, the chance of an
        idle cycle on ARREADY and on RVALID; ``silent`` takes ARs and never answers."""
        check_integer("latency", latency, low=1)
        for name, value in (("ar_pause", ar_pause), ("r_pause", r_pause)):
            if not 0.0 <= value < 1.0:
                raise ConfigError(f"{name} must be a probability in [0, 1), not {value!r}")
        self._lib.harness_configure_ddr(self._handle, int(latency), float(ar_pause), float(r_pause), int(silent))

    def ddr_counters(self) -> dict[str, int]:
        """The memory's side: bursts accepted, beats sent, DECERR beats, beats still owed."""
        out = (_u64 * 4)()
        self._lib.harness_ddr_counters(self._handle, out)
        return {"bursts": out[0], "beats": out[1], "decerr_beats": out[2], "owed_beats": out[3]}

    def reset_ddr(self) -> None:
        """Reset the memory port (after a read timeout): the beats still owed are forgotten."""
        self._lib.harness_reset_ddr(self._handle)

    def _verify(self) -> None:
        if self.check:
            count, first = self.unsettled()
            if count:
                raise UnsettledOutput(f"a registered handshake output of the core changed at the falling edge in "
                                      f"{count} cycles (first at cycle {first}): the harness's one evaluation per "
                                      f"cycle reads it unsettled ({self.describe()})")

    def describe(self) -> str:
        c = self.counters()
        return (f"at cycle {self.cycle}: input beats sent {c['sent_beats']}/{c['send_beats']}, "
                f"output beats received {c['received_beats']}")

    def run(self, cycles: int) -> None:
        """Let the clock run ``cycles`` cycles (the streams keep moving)."""
        self._lib.harness_run(self._handle, max(int(cycles), 0))
        self._verify()

    def write(self, offset: int, value: int) -> None:
        result = self._lib.harness_write(self._handle, int(offset), int(value) & 0xFFFFFFFF, REGISTER_LIMIT)
        self._verify()
        if result != _OK:
            raise HarnessTimeout(f"AXI4-Lite write of {value:#x} to register {offset:#x} did not complete "
                                 f"within {REGISTER_LIMIT} cycles ({self.describe()})")

    def read(self, offset: int) -> int:
        value = _u32()
        result = self._lib.harness_read(self._handle, int(offset), ctypes.byref(value), REGISTER_LIMIT)
        self._verify()
        if result != _OK:
            raise HarnessTimeout(f"AXI4-Lite read of register {offset:#x} did not complete within "
                                 f"{REGISTER_LIMIT} cycles ({self.describe()})")
        return int(value.value)

    def send(self, data: np.ndarray, nbytes: int) -> None:
        """Queue the first ``nbytes`` of ``data`` as one input packet (TLAST on its last beat)."""
        raw = np.ascontiguousarray(np.asarray(data).view(np.uint8).reshape(-1)[:nbytes])
        if self._lib.harness_send(self._handle, raw.ctypes.data, raw.size) == _BUSY:
            raise HarnessTimeout(f"input stream send started while the previous packet is still sending "
                                 f"({self.describe()})")

    def receive(self, buffer: np.ndarray, nbytes: int) -> None:
        """Arm the output stream: beats land in ``buffer`` (C-contiguous, writable) until TLAST."""
        if not (isinstance(buffer, np.ndarray) and buffer.flags.c_contiguous and buffer.flags.writeable):
            raise ConfigError("the receive buffer must be a writable C-contiguous NumPy array")
        nbytes = min(int(nbytes), buffer.nbytes)
        if self._lib.harness_receive(self._handle, buffer.ctypes.data, nbytes) == _BUSY:
            raise HarnessTimeout(f"output stream receive armed while the previous one is still open "
                                 f"({self.describe()})")
        self._recv_buffer = buffer

    def wait_send(self, limit: int) -> bool:
        """Clock until the input packet is sent; False when ``limit`` cycles pass first."""
        done = self._lib.harness_wait_send(self._handle, max(int(limit), 0)) == _OK
        self._verify()
        return done

    def wait_receive(self, limit: int) -> bool:
        """Clock until the output packet's TLAST; False when ``limit`` cycles pass first.

        Raises :class:`StreamOverrun` when the packet outran the receive buffer.
        """
        result = self._lib.harness_wait_receive(self._handle, max(int(limit), 0))
        self._verify()
        if result == _OVERRUN:
            c = self.counters()
            raise StreamOverrun(f"the output packet of {c['received_beats']} beats overran the "
                                f"{self._recv_buffer.nbytes if self._recv_buffer is not None else 0}-byte buffer")
        if result == _OK:
            self._recv_buffer = None
        return result == _OK

    def stop(self, *, send: bool = True, receive: bool = True) -> None:
        """Abandon the open transfers (the DMA's reset)."""
        self._lib.harness_stop(self._handle, int(send), int(receive))
        if receive:
            self._recv_buffer = None

    def close(self) -> None:
        if getattr(self, "_handle", None):  # None too when __init__ failed before the model existed
            self._lib.harness_destroy(self._handle)
            self._handle = None

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()
