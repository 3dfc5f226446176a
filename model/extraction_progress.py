"""A progress line for long extraction runs: plain lines a log file or a cluster job's output can hold."""

from __future__ import annotations

import sys
import time


def format_duration(seconds: float) -> str:
    """``3725`` → ``'1h02m'``; ``75`` → ``'1m15s'``; ``9`` → ``'9s'``."""
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


class ProgressLine:
    """Prints ``done/total videos, skipped, videos/s, frames/s, ETA`` at most every ``interval`` s.

    Parameters
    ----------
    total : int
        Videos this run has to go through.
    frames : int
        T, frames per video fed to the backbone.
    interval : float
        Least seconds between two lines (the last line is always printed by :meth:`close`).
    stream :
        Where lines go (default ``sys.stderr``); ``None`` prints nothing.
    """

    def __init__(self, *, total: int, frames: int, interval: float = 10.0, stream=sys.stderr, clock=time.monotonic):
        self.total, self.frames, self.interval = total, frames, interval
        self.stream, self.clock = stream, clock
        self.started = clock()
        self.done = self.skipped = 0
        self._last = self.started

    def update(self, videos: int, skipped: int = 0) -> None:
        """``videos`` more are finished, ``skipped`` of them unusable."""
        self.done += videos
        self.skipped += skipped
        now = self.clock()
        if now - self._last >= self.interval:
            self._last = now
            self._print(now)

    def close(self) -> None:
        self._print(self.clock())

    def line(self, now: float) -> str:
        elapsed = max(now - self.started, 1e-9)
        rate = self.done / elapsed
        frames_rate = (self.done - self.skipped) * self.frames / elapsed
        left = self.total - self.done
        eta = format_duration(left / rate) if rate > 0 else "unknown"
        return (f"features: {self.done}/{self.total} videos ({self.skipped} skipped), {rate:.2f} videos/s, "
                f"{frames_rate:.1f} frames/s, elapsed {format_duration(elapsed)}, ETA {eta}")

    def _print(self, now: float) -> None:
        if self.stream is not None:
            print(self.line(now), file=self.stream, flush=True)
