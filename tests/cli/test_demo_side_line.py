"""The demo's side line: stages that need nothing from the main line run as their own processes
beside it; their reports reach the main thread's output, a failure is raised with its log, a
finished stage is skipped, and stopping ends the running one."""

from __future__ import annotations

import argparse
import time

import pytest

from lstmfpga.cli.demo import Demo
from lstmfpga.foundation.errors import LstmfpgaError


def _demo(tmp_path) -> Demo:
    return Demo(argparse.Namespace(out=str(tmp_path / "demo"), temporal_videos=0, performance_reference=False))


def test_side_stages_run_report_and_skip(tmp_path, capsys):
    demo = _demo(tmp_path)
    marker = tmp_path / "already.txt"
    marker.write_text("x")
    demo.out.joinpath("x").mkdir()
    demo.background([("help", ["--help"], None), ("finished", ["--help"], demo.out / "x")])
    demo.join_background()
    printed = capsys.readouterr().out
    assert "help: lstmfpga --help (beside the main line" in printed
    assert "help: done in" in printed and "finished: already done (x), skipping" in printed
    assert "usage: lstmfpga" in (demo.log_dir / "01-help.log").read_text()
    assert set(demo.timings) == {"help"}


def test_a_failed_side_stage_is_raised_with_its_log_and_stops_the_line(tmp_path, capsys):
    demo = _demo(tmp_path)
    demo.background([("bad plan", ["plan", "--shape", "not-a-shape", "--board", "zcu104"], None),
                     ("never", ["--help"], None)])
    with pytest.raises(LstmfpgaError, match=r"demo stage 'bad plan' failed \(exit 2\); its output is in .*02?1-bad.log"):
        demo.join_background()
    assert "never" not in capsys.readouterr().out
    assert "not-a-shape" in (demo.log_dir / "01-bad.log").read_text()


def test_stop_ends_the_running_stage(tmp_path):
    demo = _demo(tmp_path)
    side = demo.background([("synth-data", ["synth-data", "--out", str(tmp_path / "data"), "--videos", "100000"],
                             None)])
    while not (tmp_path / "data").exists():  # the process has started (and runs for hours)
        time.sleep(0.05)
    started = time.monotonic()
    side.stop()
    side.thread.join(timeout=30)
    assert not side.thread.is_alive() and side._process.poll() is not None and side._process.returncode < 0
    assert time.monotonic() - started < 15
    assert side.error is None
