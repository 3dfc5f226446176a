"""A count of bytes that threads take before allocating and give back after freeing.

The stream server takes a SEQUENCE's length from it before reading the payload and gives it
back once the sequence is answered, so the payloads held over all connections never pass the
budget; a reader that would pass it waits, and its peer's data stays in the kernel's buffers.
NumPy and stdlib only: the board imports this.
"""

from __future__ import annotations

import threading

from lstmfpga.foundation.validation import check_integer


class ByteBudget:
    """``total`` bytes shared by threads.

    Attributes
    ----------
    used
        Bytes taken now.
    peak
        Most bytes ever taken at once.
    waits
        How many ``take`` calls had to wait for room.
    """

    def __init__(self, total: int) -> None:
        self.total = check_integer("total", total, low=1, what="a positive integer", error=ValueError)
        self.used = 0
        self.peak = 0
        self.waits = 0
        self._room = threading.Condition()

    def take(self, n: int, *, stop: threading.Event) -> bool:
        """Take ``n`` bytes, waiting while they do not fit; ``False`` (nothing taken) once ``stop`` is set."""
        if n > self.total:
            raise ValueError(f"{n} bytes can never fit a budget of {self.total}")
        with self._room:
            if self.used + n > self.total:
                self.waits += 1
            while self.used + n > self.total:
                if stop.is_set():
                    return False
                self._room.wait(0.2)
            self.used += n
            self.peak = max(self.peak, self.used)
            return True

    def give(self, n: int) -> None:
        with self._room:
            self.used -= n
            self._room.notify_all()
