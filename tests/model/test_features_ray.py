"""``lstmfpga features --engine ray``: the local engine's cache bit for bit, kill and resume, clean errors.

A local 2-CPU Ray instance, a random ResNet-50 and tiny crops; the chunking is drawn at random
(seeded) so that chunks and backbone batches of different sizes are crossed.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
ray = pytest.importorskip("ray")

from lstmfpga.cli.main import main  # noqa: E402
from lstmfpga.model.datasets import read_dataset  # noqa: E402
from lstmfpga.model.feature_cache import load_features  # noqa: E402
from lstmfpga.model.synthetic.dataset import SynthConfig, generate_dataset  # noqa: E402
from test_features_extract import _bad_dataset  # noqa: E402

T = 4
RNG = np.random.default_rng(14)
CHUNK = int(RNG.integers(2, 5))
BATCH = int(RNG.integers(1, CHUNK + 1))
FAST = ["--dataset", "forgerynet", "--frames", str(T), "--image-size", "32", "--quiet", "--workers", "0"]


@pytest.fixture(scope="module")
def local_ray():
    """One in-process 2-CPU instance, which ``--engine ray`` joins instead of starting its own."""
    ray.init(num_cpus=2, num_gpus=0, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> Path:
    """Training: good videos; Validation: one good video and one of every kind of bad entry."""
    synth = tmp_path_factory.mktemp("synth")
    generate_dataset(synth, SynthConfig(videos=8, frames=8, size=48, seed=5), progress=False)
    root = tmp_path_factory.mktemp("videos")
    _bad_dataset(synth, root)
    shutil.copytree(synth / "Training", root / "Training")
    return root


@pytest.fixture(scope="module")
def local_run(videos, tmp_path_factory) -> tuple[Path, str]:
    """The local engine's cache of ``videos`` and what it printed."""
    import torch

    cache = tmp_path_factory.mktemp("local") / "cache"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the Ray actors run one thread each (--cpus-per-worker 1)
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            assert main(["features", "--data", str(videos), "--out", str(cache), *FAST,
                         "--chunk-videos", str(CHUNK), "--batch", str(BATCH)]) == 0
    finally:
        torch.set_num_threads(threads)
    return cache, printed.getvalue()


def _counts(printed: str) -> str:
    """The summary line without its time and its cache path."""
    return "; ".join(part for part in printed.strip().split("; ")
                     if not part.endswith(" s") and not part.startswith("reasons in"))


def _chunks(cache: Path) -> dict[str, dict[str, np.ndarray]]:
    chunks = {}
    for path in sorted(cache.glob("chunk-*.npz")):
        with np.load(path) as data:
            chunks[path.name] = {key: data[key] for key in data.files}
    return chunks


@pytest.mark.slow
def test_ray_engine_writes_the_local_engines_cache(videos, local_run, local_ray, tmp_path, capsys):
    local_cache, local_printed = local_run
    capsys.readouterr()
    cache = tmp_path / "ray"
    assert main(["features", "--data", str(videos), "--out", str(cache), *FAST, "--chunk-videos", str(CHUNK),
                 "--batch", str(BATCH), "--engine", "ray", "--cpus-per-worker", "1"]) == 0
    printed = capsys.readouterr().out
    assert "5 videos skipped; 1 list entries skipped" in printed

    expected, got = _chunks(local_cache), _chunks(cache)
    assert list(got) == list(expected) and len(got) > 2
    for name, arrays in expected.items():
        assert sorted(got[name]) == sorted(arrays), name
        for key, array in arrays.items():
            assert got[name][key].dtype == array.dtype, (name, key)
            np.testing.assert_array_equal(got[name][key], array, err_msg=f"{name}: {key}")
    assert json.loads((cache / "cache.json").read_text()) == json.loads((local_cache / "cache.json").read_text())
    report, local_report = (json.loads((c / "report.json").read_text()) for c in (cache, local_cache))
    for key in ("skipped_videos", "skipped_list_entries", "videos_listed", "extracted_this_run", "extracted_before"):
        assert report[key] == local_report[key], key
    assert sorted(Path(s["video"]).stem for s in report["skipped_videos"]) == [
        "empty", "folder", "missing", "text", "truncated"]
    assert _counts(printed) == _counts(local_printed)


def _process_tree(root: int) -> list[int]:
    """Every live descendant of ``root`` (from /proc)."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    tree, front = [], [root]
    while front:
        parent = front.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent]
        tree += children
        front += children
    return tree


def _reap(pids: list[int], timeout: float = 10.0) -> None:
    """Wait for the killed driver's Ray processes to follow it; kill the ones that do not."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() for p in pids):
        time.sleep(0.2)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


@pytest.mark.slow
def test_killed_ray_driver_resumes_with_every_video_once(videos, local_run, local_ray, tmp_path, capsys):
    cache = tmp_path / "killed"
    argv = ["features", "--data", str(videos), "--out", str(cache), *FAST, "--chunk-videos", "1", "--batch", "1",
            "--engine", "ray", "--ray-cpus", "2"]
    victim = subprocess.Popen([sys.executable, "-m", "lstmfpga.cli.main", *argv],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while not list(cache.glob("chunk-*.npz")):
        assert victim.poll() is None, victim.communicate()
        assert time.monotonic() < deadline, "no chunk was written"
        time.sleep(0.01)
    ray_processes = _process_tree(victim.pid)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    _reap(ray_processes)
    done_at_kill = len(list(cache.glob("chunk-*.npz")))
    listed = sorted(r.path for r in read_dataset("forgerynet", videos).records)
    assert 1 <= done_at_kill < len(listed), "the kill must land mid-run"

    capsys.readouterr()
    assert main([*argv[:-2], "--cpus-per-worker", "1"]) == 0
    printed = capsys.readouterr().out
    reference = load_features(local_run[0])
    got = load_features(cache, expected_dim=2048, expected_t=T)  # refuses a video twice
    assert f"{len(reference)} extracted" in printed and "5 videos skipped" in printed
    before = int(printed.split(" this run, ")[1].split(" before")[0])
    assert before <= done_at_kill
    skipped = [s["video"] for s in json.loads((cache / "report.json").read_text())["skipped_videos"]]
    assert got.video_ids == reference.video_ids
    assert len(skipped) == len(set(skipped)) == 5 and not set(skipped) & set(got.video_ids)
    assert sorted([*got.video_ids, *skipped]) == listed
    np.testing.assert_array_equal(got.labels, reference.labels)
    # Other batch shapes than the reference's: equal up to float16 rounding of the backbone sums.
    np.testing.assert_allclose(got.features.astype(np.float32), reference.features.astype(np.float32),
                               rtol=2e-3, atol=1e-3)
    assert sorted(p.name for p in cache.glob("chunk-*.npz")) == [f"chunk-{k:06d}.npz" for k in range(len(listed))]


def test_ray_options_errors_are_clean(videos, tmp_path, capsys):
    base = ["features", "--data", str(videos), "--out", str(tmp_path / "c"), *FAST, "--engine", "ray"]
    cases = [
        (["--gpus-per-worker", "1"], "error: --gpus-per-worker 1 puts the backbone on GPUs: add --device cuda"),
        (["--device", "cuda", "--gpus-per-worker", "0"],
         "error: --device cuda with --gpus-per-worker 0: give the backbone actors a GPU share"),
        (["--gpus-per-worker", "-0.5", "--device", "cuda"],
         "error: gpus per worker must be a non-negative number, not -0.5"),
        (["--ray-cpus", "1"], "error: local Ray CPUs must be an integer >= 2 (one decodes, one encodes), not 1"),
        (["--cpus-per-worker", "0"], "error: cpus per worker must be a positive integer, not 0"),
        (["--encoders", "0"], "error: encoders must be a positive integer, not 0"),
        (["--address", "auto", "--ray-cpus", "4"],
         "error: local Ray CPUs apply to a local instance only, not with an address"),
    ]
    for extra, message in cases:
        assert main([*base, *extra]) == 2, extra
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, (extra, err)


@pytest.mark.slow
def test_ray_pipeline_that_cannot_fit_the_cluster_is_refused(videos, local_ray, tmp_path, capsys):
    argv = ["features", "--data", str(videos), "--out", str(tmp_path / "c"), *FAST, "--engine", "ray"]
    assert main([*argv, "--encoders", "2"]) == 2
    assert ("error: 2 backbone workers of 1 CPUs plus one decoding CPU do not fit the Ray cluster "
            "(2 CPUs, 0 GPUs)") in capsys.readouterr().err
    assert main([*argv, "--device", "cuda"]) == 2
    assert "error: --gpus-per-worker 1 needs a GPU, and the Ray cluster has 0 GPUs" in capsys.readouterr().err
