"""A mock board that asserts the exact sequence of register and DMA operations (as PYNQ's
tests/mock_devices.py does for MMIO): every call must equal the next expected transaction."""

import numpy as np


class MockBuffer(np.ndarray):
    """A NumPy array with the ``pynq.allocate`` buffer methods, logging flush/invalidate."""

    def flush(self):
        self.board._next("flush")

    def invalidate(self):
        self.board._next("invalidate")

    def freebuffer(self):
        pass


class MockBoard:
    """``expected`` items:

    ``("read", offset, value)``  the driver must read ``offset``; the mock answers ``value``
    ``("write", offset, value)`` the driver must write ``value`` to ``offset``
    ``("send", nbytes)``         an MM2S transfer of ``nbytes`` (the data is kept in ``sent``)
    ``("recv", nbytes, lanes)``  an S2MM transfer of ``nbytes``; ``lanes`` is written into the buffer
    ``("wait", "send"|"recv", exc_or_None)``  a DMA wait; raises ``exc`` if given
    ``("reset", "send"|"recv")`` a DMA channel reset
    ``("flush",)`` / ``("invalidate",)``  cache maintenance of a DMA buffer
    """

    #: Bus address of the first buffer ``allocate`` gives (above 4 GiB: both halves of an address
    #: register matter); each next one starts at the next 1 MiB.
    FIRST_ADDRESS = 0x8_1230_0000

    def __init__(self, expected):
        self.expected = list(expected)
        self.allocated = []
        self.position = 0
        self.sent = []
        self.sendchannel = _Channel(self, "send")
        self.recvchannel = _Channel(self, "recv")

    def _next(self, *got):
        assert self.position < len(self.expected), f"unexpected extra operation {got}"
        want = self.expected[self.position]
        self.position += 1
        assert want[: len(got)] == got, f"operation {self.position - 1}: expected {want}, got {got}"
        return want

    def read(self, offset):
        want = self._next("read", int(offset))
        return want[2]

    def write(self, offset, value):
        self._next("write", int(offset), int(value))

    def allocate(self, shape, dtype):
        buf = np.zeros(shape, dtype=dtype).view(MockBuffer)
        buf.board = self
        buf.physical_address = self.FIRST_ADDRESS + (len(self.allocated) << 20)
        self.allocated.append(buf)
        return buf

    def done(self):
        assert self.position == len(self.expected), (
            f"{len(self.expected) - self.position} expected operations never happened, next: "
            f"{self.expected[self.position]}")


class _Channel:
    def __init__(self, board, name):
        self.board = board
        self.name = name

    def transfer(self, buffer, nbytes):
        if self.name == "send":
            self.board._next("send", nbytes)
            self.board.sent.append(np.array(buffer).view(np.uint8)[:nbytes].copy())
        else:
            want = self.board._next("recv", nbytes)
            lanes = np.asarray(want[2], dtype=np.uint32)
            buffer[: lanes.size] = lanes

    def wait(self, timeout_s):
        want = self.board._next("wait", self.name)
        if want[2] is not None:
            raise want[2]

    def reset(self):
        self.board._next("reset", self.name)
