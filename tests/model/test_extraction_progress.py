"""The extraction progress line: rates, ETA and skips from a fake clock, printed at most every interval."""

from __future__ import annotations

import io

import numpy as np
import pytest

from lstmfpga.model.extraction_progress import ProgressLine, format_duration


class _Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


@pytest.mark.parametrize(("seconds", "text"), [(0, "0s"), (9.4, "9s"), (59.6, "1m00s"), (75, "1m15s"),
                                               (3599, "59m59s"), (3600, "1h00m"), (3725, "1h02m"),
                                               (100 * 3600 + 61, "100h01m"), (-3, "0s")])
def test_durations_read_as_h_m_s(seconds, text):
    assert format_duration(seconds) == text


@pytest.mark.parametrize("seed", range(4))
def test_line_reports_rates_eta_and_skips_at_most_every_interval(seed):
    rng = np.random.default_rng(seed)
    total, frames, interval = int(rng.integers(50, 5000)), int(rng.integers(1, 25)), float(rng.uniform(1, 30))
    clock, stream = _Clock(), io.StringIO()
    line = ProgressLine(total=total, frames=frames, interval=interval, stream=stream, clock=clock)
    done = skipped = 0
    printed_at = [clock.now]
    for _ in range(40):
        step = int(rng.integers(0, 7))
        bad = int(rng.integers(0, step + 1))
        clock.now += float(rng.uniform(0, interval / 3))
        line.update(step, bad)
        done, skipped = done + step, skipped + bad
        if clock.now - printed_at[-1] >= interval:
            printed_at.append(clock.now)
    line.close()
    lines = stream.getvalue().splitlines()
    assert len(lines) == len(printed_at)  # one per interval crossed, and the closing one
    elapsed = clock.now - 100.0
    rate = done / elapsed
    eta = format_duration((total - done) / rate) if rate > 0 else "unknown"
    assert lines[-1] == (f"features: {done}/{total} videos ({skipped} skipped), {rate:.2f} videos/s, "
                         f"{(done - skipped) * frames / elapsed:.1f} frames/s, elapsed {format_duration(elapsed)}, "
                         f"ETA {eta}")


def test_no_stream_prints_nothing_and_no_progress_has_no_eta():
    clock = _Clock()
    line = ProgressLine(total=10, frames=4, interval=0.0, stream=None, clock=clock)
    line.update(0)
    line.close()
    clock.now += 5
    assert line.line(clock.now).endswith("0.00 videos/s, 0.0 frames/s, elapsed 5s, ETA unknown")
