"""The random search: the space, exact trial counts across processes (SQLite and PostgreSQL),
resume after SIGKILL, and the result files."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from lstmfpga.foundation.errors import ConfigError
from lstmfpga.cli.main import main as lstmfpga_main
from lstmfpga.model.feature_cache import save_feature_set
from lstmfpga.model.search_space import DEFAULT_SPACE, SearchSpace, load_space

sys.path.insert(0, str(Path(__file__).parent))
from temporal_features import temporal_feature_set  # noqa: E402

# Every key overridden with small values: a trial takes well under a second.
TINY_SPACE = {
    "hidden": [3, 5], "frames": [4, 6], "layers": [1, 2], "dropout": [0.0, 0.3],
    "scheduler": ["ReduceLROnPlateau", "CosineAnnealingLR", "OneCycleLR"], "lr": [1e-2, 3e-3],
    "weight_decay": [1e-4], "batch_size": [4, 6], "loss": ["CrossEntropyLoss", "MSE", "FocalLoss"],
    "optimizer": ["RAdam", "RMSprop", "AdamW"],
}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _optuna_trials(storage: str, study: str):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.load_study(study_name=study, storage=storage).get_trials(deepcopy=False)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cache")
    save_feature_set(temporal_feature_set(pairs=14, t=6, d=6, seed=3), folder)
    return folder


@pytest.fixture()
def space_file(tmp_path):
    path = tmp_path / "space.json"
    path.write_text(json.dumps(TINY_SPACE))
    return path


def _search_command(cache, out, space_file, *extra) -> list[str]:
    return [sys.executable, "-m", "lstmfpga.cli.main", "search", "--features", str(cache), "--out", str(out),
            "--space", str(space_file), *extra]


ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def test_default_space_is_the_seed_study_exactly():
    assert DEFAULT_SPACE.to_dict() == {
        "hidden": [512, 1024, 2048], "frames": [8, 16, 24], "layers": [1, 2, 3], "dropout": [0.3, 0.4, 0.5],
        "scheduler": ["ReduceLROnPlateau", "CosineAnnealingLR", "OneCycleLR"], "lr": [1e-3, 1e-4, 1e-5],
        "weight_decay": [1e-3, 1e-4, 1e-5], "batch_size": [8, 16, 24],
        "loss": ["CrossEntropyLoss", "MSE", "FocalLoss"], "optimizer": ["RAdam", "RMSprop", "AdamW"],
    }
    assert DEFAULT_SPACE.size() == 3 ** 10


def test_space_files_override_per_key_and_are_validated(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text("lstm_units: [16, 32]\nloss: [focal, ce]\nhead: [gru]\n")
    space = load_space(path)
    assert space.choices["hidden"] == (16, 32)
    assert space.choices["loss"] == ("FocalLoss", "CrossEntropyLoss")
    assert space.choices["head"] == ("gru",)
    assert space.choices["optimizer"] == ("RAdam", "RMSprop", "AdamW")  # untouched: the seed's
    bad = tmp_path / "bad.json"
    for content, message in (
        ({"units_per_layer": [1]}, "unknown hyperparameter 'units_per_layer'"),
        ({"hidden": []}, "'hidden' has an empty list of values"),
        ({"dropout": 0.3}, "'dropout' must be a list of values"),
        ({"dropout": [0.3, 1.2]}, "dropout must be a number in \\[0, 1\\), not 1.2"),
        ({"optimizer": ["SGD"]}, "optimizer must be one of RAdam, RMSprop, AdamW, not 'SGD'"),
    ):
        bad.write_text(json.dumps(content))
        with pytest.raises(ConfigError, match=message):
            load_space(bad)
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="bad.json is not valid json"):
        load_space(bad)
    with pytest.raises(ConfigError, match="cannot be read"):
        load_space(tmp_path / "missing.json")


def test_cli_uses_the_seed_space_by_default_and_rejects_clashes(monkeypatch, tmp_path, capsys):
    import lstmfpga.model.search as search

    seen = {}

    class Stop(Exception):
        pass

    def fake_run_search(features, **kwargs):
        seen.update(kwargs)
        raise Stop

    monkeypatch.setattr(search, "run_search", fake_run_search)
    with pytest.raises(Stop):
        lstmfpga_main(["search", "--features", str(tmp_path), "--trials", "3", "--out", str(tmp_path / "o"),
                       "--epochs", "4", "--head", "gru"])
    assert seen["space"] is DEFAULT_SPACE and seen["trials"] == 3 and seen["storage"] is None
    assert seen["base_config"] == {"epochs": 4, "head": "gru"}
    code = lstmfpga_main(["search", "--features", str(tmp_path), "--trials", "3", "--out", str(tmp_path / "o"),
                          "--hidden", "8"])
    assert code == 2 and "--hidden" in capsys.readouterr().err


def test_search_rejects_frames_beyond_the_cache_and_bad_storage(cache, tmp_path):
    from lstmfpga.model.search import run_search

    with pytest.raises(ConfigError, match="search frames \\[8\\] exceed the 6 frames"):
        run_search(cache, trials=1, out_dir=tmp_path, space=SearchSpace({"frames": [4, 8]}), log=None)
    with pytest.raises(ConfigError, match="cannot be opened"):
        run_search(cache, trials=1, out_dir=tmp_path, space=SearchSpace({"frames": [4]}),
                   storage="nosuchdb://x", log=None)


def test_run_search_api_extends_a_study_and_refuses_another_space(cache, tmp_path):
    import torch

    from lstmfpga.model.search import run_search

    space = SearchSpace({**TINY_SPACE, "layers": [1]})
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        first = run_search(cache, trials=2, out_dir=tmp_path, space=space, base_config={"epochs": 2},
                           trial_plots=False, log=None)
        assert len(first.rows) == 2 and first.best_trial in (0, 1)
        lines = []
        second = run_search(cache, trials=3, out_dir=tmp_path, space=space, base_config={"epochs": 2},
                            trial_plots=False, log=lines.append)
        assert any("3 trials (2 finished, 1 enqueued now)" in line for line in lines)
        assert sorted(r["trial"] for r in second.rows) == [0, 1, 2]
        assert second.best_value == max(r["roc_auc"] for r in second.rows)
        assert _best_config_on_disk(tmp_path) == second.best_config
        with pytest.raises(ConfigError, match="was started with another search space"):
            run_search(cache, trials=3, out_dir=tmp_path, space=SearchSpace({**TINY_SPACE, "layers": [2]}),
                       base_config={"epochs": 2}, log=None)
    finally:
        torch.set_num_threads(threads)


def _best_config_on_disk(out_dir):
    from lstmfpga.model.train_config import TrainConfig

    return TrainConfig.from_dict(json.loads((out_dir / "best" / "config.json").read_text())["config"])


def _two_processes_share_one_storage(cache, tmp_path, space_file, storage, study, *, workers_a, trials=6):
    """Process A runs ``workers_a`` workers (spawned when > 1), process B one in-process worker."""
    common = ["--trials", str(trials), "--storage", storage, "--study", study, "--epochs", "5", "--patience", "5",
              "--heartbeat", "2"]
    a = subprocess.Popen(_search_command(cache, tmp_path / "a", space_file, "--workers", str(workers_a), *common),
                         env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    b = subprocess.Popen(_search_command(cache, tmp_path / "b", space_file, "--workers", "1", *common),
                         env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    outputs = [p.communicate(timeout=300) for p in (a, b)]
    assert a.returncode == 0 and b.returncode == 0, outputs
    trials_seen = _optuna_trials(storage, study)
    complete = [t for t in trials_seen if t.state.name == "COMPLETE"]
    numbers = [t.number for t in trials_seen]
    assert len(complete) == trials
    assert len(numbers) == len(set(numbers))
    # anything beyond the N completed trials is a surplus claim from the concurrent start, never run
    assert all(t.user_attrs.get("surplus") for t in trials_seen if t.state.name != "COMPLETE")
    assert len({t.user_attrs["where"]["pid"] for t in complete}) >= 2, "both processes should have run trials"
    for out in (tmp_path / "a", tmp_path / "b"):
        with open(out / "results.csv") as handle:
            rows = list(csv.DictReader(handle))
        assert len(rows) == trials
        values = [float(r["roc_auc"]) for r in rows]
        assert values == sorted(values, reverse=True)
        best = json.loads((out / "best" / "config.json").read_text())
        assert best["trial"] == int(rows[0]["trial"]) and best["config"]["epochs"] == 5
        assert (out / "best" / "checkpoint.pt").exists()
        assert (out / "search.png").read_bytes()[:8] == PNG_MAGIC


@pytest.mark.slow
def test_two_processes_share_sqlite_and_complete_exactly_n(cache, tmp_path, space_file):
    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    _two_processes_share_one_storage(cache, tmp_path, space_file, storage, "shared", workers_a=2)


@pytest.mark.slow
@pytest.mark.postgres
def test_two_processes_share_postgresql_and_complete_exactly_n(cache, tmp_path, space_file):
    url = os.environ.get("LSTMFPGA_PG_URL")
    if not url:
        pytest.skip("LSTMFPGA_PG_URL is not set (start a server with `export LSTMFPGA_PG_URL=$(.ci/postgres.sh)`)")
    _two_processes_share_one_storage(cache, tmp_path, space_file, url, f"test-{uuid.uuid4().hex[:12]}", workers_a=1)


@pytest.mark.slow
def test_search_killed_mid_trial_resumes_to_exactly_n(cache, tmp_path, space_file):
    out = tmp_path / "out"
    command = _search_command(cache, out, space_file, "--trials", "2", "--epochs", "12", "--patience", "12",
                              "--heartbeat", "1", "--checkpoint-every", "0")
    process = subprocess.Popen(command, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    target = out / "trials" / "trial-0001" / "last.pt"
    deadline = time.monotonic() + 120
    while not target.exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, process.stderr.read().decode()
    storage = f"sqlite:///{out / 'search.db'}"
    before = {t.number: t for t in _optuna_trials(storage, "lstmfpga-search")}
    assert before[1].state.name == "RUNNING"

    done = subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    after = _optuna_trials(storage, "lstmfpga-search")
    complete = [t for t in after if t.state.name == "COMPLETE"]
    assert len(complete) == 2
    assert len({t.number for t in after}) == len(after)
    killed = next(t for t in after if t.number == 1)
    assert killed.state.name == "FAIL"
    retry = next(t for t in complete if 1 in t.system_attrs.get("retry_history", ()))
    assert retry.params == before[1].params
    with open(out / "results.csv") as handle:
        assert len(list(csv.DictReader(handle))) == 2


def test_trial_claimed_but_never_beating_is_retried(cache, tmp_path, space_file):
    """A worker killed between claiming a trial and its first heartbeat leaves a RUNNING trial
    without one; a resumed search must still retry it instead of waiting for it forever."""
    import optuna

    out = tmp_path / "out"
    command = _search_command(cache, out, space_file, "--epochs", "1", "--heartbeat", "1")
    first = subprocess.run([*command, "--trials", "1"], env=ENV, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    storage = f"sqlite:///{out / 'search.db'}"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name="lstmfpga-search", storage=storage)
    study.enqueue_trial({}, skip_if_exists=False)
    claimed = study.ask()  # RUNNING, and no heartbeat: nothing runs it
    assert claimed.number == 1

    done = subprocess.run([*command, "--trials", "2"], env=ENV, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    after = {t.number: t for t in _optuna_trials(storage, "lstmfpga-search")}
    assert after[1].state.name == "FAIL"
    retries = [t for t in after.values() if 1 in t.system_attrs.get("retry_history", ())]
    assert [t.state.name for t in retries] == ["COMPLETE"]
    assert sum(t.state.name == "COMPLETE" for t in after.values()) == 2


def test_trials_beyond_the_requested_number_are_pruned_unrun(cache, tmp_path):
    """Two searches that start at once may both enqueue: what lies beyond the N slots never runs."""
    import optuna

    from lstmfpga.model.search import run_search

    space = SearchSpace({**TINY_SPACE, "layers": [1]})
    run_search(cache, trials=1, out_dir=tmp_path, space=space, base_config={"epochs": 1}, trial_plots=False, log=None)
    storage = f"sqlite:///{tmp_path / 'search.db'}"
    study = optuna.load_study(study_name="lstmfpga-search", storage=storage)
    for _ in range(3):  # what a concurrent start would have added beside this one's slot
        study.enqueue_trial({}, skip_if_exists=False)
    result = run_search(cache, trials=2, out_dir=tmp_path, space=space, base_config={"epochs": 1},
                        trial_plots=False, log=None)
    trials = {t.number: t for t in _optuna_trials(storage, "lstmfpga-search")}
    assert sorted(r["trial"] for r in result.rows) == [0, 1]
    assert [trials[n].state.name for n in (0, 1, 2, 3)] == ["COMPLETE", "COMPLETE", "PRUNED", "PRUNED"]
    assert all(trials[n].user_attrs["surplus"] and not trials[n].params for n in (2, 3))
    assert not (tmp_path / "trials" / "trial-0002").exists()


def test_search_uses_no_private_optuna_attribute():
    import re

    import lstmfpga.model.search as search

    source = Path(search.__file__).read_text()
    assert not re.findall(r"\._(?:storage|trial_id|study_id)\b", source)
