"""Training of the heads over cached features: every pair of hyperparameter values, learning,
determinism, resume."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from lstmfpga.foundation.errors import ConfigError, InputError
from lstmfpga.cli.main import main as lstmfpga_main
from lstmfpga.model.feature_cache import save_feature_set
from lstmfpga.model.heads import build_head
from lstmfpga.model.train_config import HEADS, LOSSES, MONITORS, OPTIMIZERS, SCHEDULERS, TrainConfig
from lstmfpga.model.train_data import frame_indices, stratified_dev_mask
from lstmfpga.model.training import load_checkpoint, train_head

sys.path.insert(0, str(Path(__file__).parent))
from temporal_features import random_feature_set, temporal_feature_set  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def tiny_set():
    return random_feature_set(n=26, t=5, d=7, seed=1)


def _states_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


#: Every value of each of these hyperparameters appears, and every pair of values of two of them,
#: in the covering set the training test draws (instead of all 4 * 3**3 * 2**3 * 4 combinations).
FACTORS = {"head": HEADS, "loss": LOSSES, "optimizer": OPTIMIZERS, "scheduler": SCHEDULERS,
           "layers": (1, 2), "reverse_prob": (0.0, 0.5), "input_dropout": (0.0, 0.3),
           "monitor": MONITORS}


def _pairs(row: dict) -> set:
    return {((a, row[a]), (b, row[b])) for a, b in itertools.combinations(FACTORS, 2)}


def pairwise_covering_set(factors: dict, *, seed: int, candidates: int = 40) -> list[dict]:
    """Greedy pairwise covering: rows drawn at random (seeded), each the candidate covering most
    still-uncovered value pairs, until every pair is covered."""
    rng = np.random.default_rng(seed)
    uncovered = set()
    for a, b in itertools.combinations(factors, 2):
        uncovered |= {((a, x), (b, y)) for x in factors[a] for y in factors[b]}
    rows = []
    while uncovered:
        drawn = [{name: values[rng.integers(len(values))] for name, values in factors.items()}
                 for _ in range(candidates)]
        best = max(drawn, key=lambda row: len(_pairs(row) & uncovered))
        rows.append(best)
        uncovered -= _pairs(best)
    return rows


COVERING_SET = pairwise_covering_set(FACTORS, seed=20261201)


def test_the_covering_set_holds_every_value_pair_and_is_small():
    covered = set().union(*(_pairs(row) for row in COVERING_SET))
    for a, b in itertools.combinations(FACTORS, 2):
        assert {(x, y) for x in FACTORS[a] for y in FACTORS[b]} == {
            (pa[1], pb[1]) for pa, pb in covered if pa[0] == a and pb[0] == b}, (a, b)
    largest_two = sorted(len(v) for v in FACTORS.values())[-2:]
    assert largest_two[0] * largest_two[1] <= len(COVERING_SET) <= 30


@pytest.mark.parametrize("index", range(len(COVERING_SET)))
def test_every_hyperparameter_pair_trains(index, tiny_set, tmp_path):
    choice = COVERING_SET[index]
    config = TrainConfig(**choice, hidden=3, frames=4, epochs=2, patience=5, batch_size=5, lr=1e-2, seed=index)
    result = train_head(config, tiny_set, tmp_path, log=None, plots=False)
    assert len(result.history) == 2
    assert all(np.isfinite(row["train_loss"]) and np.isfinite(row["dev_loss"]) for row in result.history)
    model, checkpoint = load_checkpoint(result.checkpoint_path)
    torch.manual_seed(config.seed)
    initial = build_head(config.head, input_size=7, hidden=3, layers=config.layers,
                         dropout=config.dropout).state_dict()
    assert not _states_equal(initial, checkpoint["state_dict"]), choice
    # the reloaded head reproduces the reported evaluation accuracy, and the kept epoch is the
    # best by the monitored dev metric
    val = tiny_set.split("val")
    norm = checkpoint["normalization"]
    x = np.asarray(val.features, np.float32)[:, checkpoint["frame_indices"].numpy()]
    x = np.clip((x - norm["mean"].numpy()) / norm["std"].numpy(), -norm["clip"], norm["clip"])
    with torch.no_grad():
        predicted = model(torch.from_numpy(x.astype(np.float32))).argmax(-1).numpy()
    assert result.metrics["eval_split"] == "val"
    assert result.metrics["eval"]["accuracy"] == pytest.approx((predicted == val.labels).mean())
    kept = result.history[result.metrics["best_epoch"] - 1]
    assert result.metrics["dev"]["loss"] == pytest.approx(kept["dev_loss"], rel=1e-6)
    other = result.history[2 - result.metrics["best_epoch"]]
    key, better = f"dev_{config.monitor}", (max if config.maximize else min)
    if kept[key] is not None and other[key] is not None and kept[key] != other[key]:
        assert kept[key] == better(kept[key], other[key])


@pytest.mark.slow
def test_lstm_learns_a_temporal_task_frame_average_cannot(tmp_path):
    feature_set = temporal_feature_set(pairs=48, t=8, d=32, seed=7)
    common = dict(hidden=16, frames=8, epochs=25, patience=25, lr=1e-2, batch_size=8, dropout=0.0, seed=3)
    lstm = train_head(TrainConfig(head="lstm", **common), feature_set, tmp_path / "lstm", log=None, plots=False)
    avg = train_head(TrainConfig(head="frame-avg", **common), feature_set, tmp_path / "avg", log=None, plots=False)
    n_val_pairs = int((feature_set.splits == "val").sum()) // 2
    assert lstm.metrics["eval"]["accuracy"] >= 0.9
    assert lstm.metrics["eval"]["roc_auc"] >= 0.95
    # every real validation video has its time-reversed fake twin, with the same frame mean:
    # frame averaging gives the twins the same score (up to float rounding), so it is right on
    # exactly one of each pair.
    assert abs(avg.metrics["eval"]["accuracy"] - 0.5) <= 1 / (2 * n_val_pairs) + 1e-9
    assert abs(avg.metrics["eval"]["roc_auc"] - 0.5) <= 1 / n_val_pairs + 1e-9
    by_kind = lstm.metrics["eval_by_kind"]
    assert set(by_kind) == {"temporal", "spatial"} and by_kind["temporal"]["accuracy"] >= 0.85


def test_reverse_augmentation_shows_training_sequences_backwards(tmp_path):
    """Each fake here is its real twin played backwards: trained only on reversed sequences
    (``reverse_prob=1``) the LSTM learns the mirrored rule and ranks forward-played validation
    videos upside down; at 0 it ranks them right.  Input dropout changes what is learnt."""
    feature_set = temporal_feature_set(pairs=32, t=6, d=8, seed=4)
    common = dict(head="lstm", hidden=8, frames=6, epochs=20, patience=20, lr=1e-2, batch_size=8, dropout=0.0,
                  seed=1)
    auc, states = {}, {}
    for name, extra in (("forward", {}), ("reversed", {"reverse_prob": 1.0}), ("dropped", {"input_dropout": 0.5})):
        result = train_head(TrainConfig(**common, **extra), feature_set, tmp_path / name, log=None, plots=False)
        auc[name] = result.metrics["eval"]["roc_auc"]
        states[name] = torch.load(result.checkpoint_path, weights_only=True)["state_dict"]
    assert auc["forward"] >= 0.9 and auc["reversed"] <= 0.1, auc
    assert not _states_equal(states["forward"], states["dropped"])


def test_same_seed_same_result_other_seed_differs(tiny_set, tmp_path):
    config = TrainConfig(head="lstm", hidden=4, frames=5, epochs=3, batch_size=4, dropout=0.3, seed=11)
    runs = [train_head(c, tiny_set, tmp_path / f"run{i}", log=None, plots=False)
            for i, c in enumerate((config, config, config.replace(seed=12)))]
    states = [torch.load(r.checkpoint_path, weights_only=True)["state_dict"] for r in runs]
    strip = lambda history: [{k: v for k, v in row.items() if k != "seconds"} for row in history]  # noqa: E731
    assert _states_equal(states[0], states[1])
    assert strip(runs[0].history) == strip(runs[1].history)
    assert not _states_equal(states[0], states[2])


class _Killed(Exception):
    pass


@pytest.mark.parametrize("augment", [{}, {"reverse_prob": 0.5, "input_dropout": 0.3}])
def test_resume_after_interruption_matches_uninterrupted(tiny_set, tmp_path, augment):
    config = TrainConfig(head="gru", hidden=5, layers=2, frames=4, epochs=5, patience=5, batch_size=4,
                         dropout=0.3, scheduler="OneCycleLR", optimizer="RAdam", seed=5, **augment)
    reference = train_head(config, tiny_set, tmp_path / "straight", log=None, plots=False)

    def die_after_two(row):
        if row["epoch"] == 2:
            raise _Killed()

    with pytest.raises(_Killed):
        train_head(config, tiny_set, tmp_path / "killed", log=None, plots=False, on_epoch_end=die_after_two,
                   checkpoint_every_s=0)
    assert (tmp_path / "killed" / "last.pt").exists()
    lines = []
    resumed = train_head(config, tiny_set, tmp_path / "killed", log=lines.append, plots=False)
    assert any("resuming" in line and "after epoch 2" in line for line in lines)
    assert _states_equal(torch.load(reference.checkpoint_path, weights_only=True)["state_dict"],
                         torch.load(resumed.checkpoint_path, weights_only=True)["state_dict"])
    assert [r["dev_loss"] for r in reference.history] == [r["dev_loss"] for r in resumed.history]
    assert not (tmp_path / "killed" / "last.pt").exists()

    with pytest.raises(_Killed):
        train_head(config, tiny_set, tmp_path / "other", log=None, plots=False, on_epoch_end=die_after_two,
                   checkpoint_every_s=0)
    with pytest.raises(ConfigError, match="another config \\(lr: 0.001 there, 0.01 now\\)"):
        train_head(config.replace(lr=1e-2), tiny_set, tmp_path / "other", log=None, plots=False)


@pytest.mark.slow
def test_cli_training_killed_by_sigkill_resumes_to_the_same_weights(tiny_set, tmp_path):
    cache = tmp_path / "cache"
    save_feature_set(tiny_set, cache)
    # Enough epochs that a quiet machine cannot finish them in the 0.1 s before the kill (each
    # epoch also syncs a resume state to disk).
    args = ["--features", str(cache), "--head", "lstm", "--hidden", "6", "--frames", "5", "--epochs", "60",
            "--patience", "60", "--batch-size", "4", "--seed", "9", "--no-plots", "--checkpoint-every", "0"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-c", "import sys, torch; torch.set_num_threads(1); "
               "from lstmfpga.cli.main import main; sys.exit(main(sys.argv[1:]))", "train"]
    out = tmp_path / "killed"
    process = subprocess.Popen(command + args + ["--out", str(out)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not (out / "last.pt").exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    time.sleep(0.1)  # let it get into a later epoch, mid-way
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, process.stderr.read().decode()
    assert (out / "last.pt").exists() and not (out / "checkpoint.pt").exists()
    done = subprocess.run(command + args + ["--out", str(out)], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "resuming" in done.stdout

    config = TrainConfig(head="lstm", hidden=6, frames=5, epochs=60, patience=60, batch_size=4, seed=9)
    reference = train_head(config, tiny_set, tmp_path / "straight", log=None, plots=False)
    assert _states_equal(torch.load(reference.checkpoint_path, weights_only=True)["state_dict"],
                         torch.load(out / "checkpoint.pt", weights_only=True)["state_dict"])


def test_checkpoint_normalization_matches_numpy_reference(tmp_path):
    feature_set = random_feature_set(n=31, t=9, d=6, seed=4)
    config = TrainConfig(head="lstm", hidden=3, frames=4, epochs=1, clip=1.5, dev_fraction=0.3, seed=2)
    result = train_head(config, feature_set, tmp_path, log=None)
    checkpoint = torch.load(result.checkpoint_path, weights_only=True)
    norm = checkpoint["normalization"]
    train_rows = np.flatnonzero(feature_set.splits == "train")
    dev = stratified_dev_mask(feature_set.labels[train_rows], fraction=0.3, seed=2)
    chosen = [0, 3, 5, 8]  # 4 of 9 frames: 0, 8/3, 16/3, 8, rounded
    fit = feature_set.features[train_rows[~dev]][:, chosen].astype(np.float64).reshape(-1, 6)
    np.testing.assert_allclose(norm["mean"].numpy(), fit.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(norm["std"].numpy(), fit.std(0), rtol=1e-5)
    assert norm["clip"] == 1.5 and norm["mean"].dtype == torch.float32
    assert checkpoint["frame_indices"].tolist() == chosen
    assert TrainConfig.from_dict(checkpoint["config"]) == config
    assert checkpoint["metrics"]["dev"]["n"] == int(dev.sum())
    document = json.loads((tmp_path / "metrics.json").read_text())
    assert document["eval_split"] == "val" and document["history"][0]["epoch"] == 1
    assert set(document["dev"]) >= {"loss", "accuracy", "precision", "recall", "f1", "roc_auc", "confusion_matrix"}
    for name in ("loss_accuracy.png", "confusion_matrix.png", "roc.png"):
        assert (tmp_path / name).read_bytes()[:8] == PNG_MAGIC


def test_dev_part_is_stratified_and_seeded():
    labels = np.array([0] * 17 + [1] * 6)
    mask = stratified_dev_mask(labels, fraction=0.25, seed=1)
    assert (labels[mask] == 0).sum() == 4 and (labels[mask] == 1).sum() == 2  # 4.25 and 1.5, rounded
    assert not np.array_equal(mask, stratified_dev_mask(labels, fraction=0.25, seed=2))
    rng = np.random.default_rng(5)
    for _ in range(200):
        labels = rng.integers(0, 2, int(rng.integers(2, 60)))
        fraction, seed = float(rng.uniform(0.01, 0.99)), int(rng.integers(1000))
        mask = stratified_dev_mask(labels, fraction=fraction, seed=seed)
        assert np.array_equal(mask, stratified_dev_mask(labels, fraction=fraction, seed=seed))
        for cls in (0, 1):
            n, taken = int((labels == cls).sum()), int(mask[labels == cls].sum())
            if n >= 2:  # each class on both sides, and its share as near the fraction as possible
                assert 1 <= taken <= n - 1
                assert abs(taken - fraction * n) <= 0.5 + 1e-9 or taken in (1, n - 1)
            else:
                assert taken == 0


def test_frames_are_spread_uniformly_over_the_video():
    assert frame_indices(24, 8).tolist() == [0, 3, 7, 10, 13, 16, 20, 23]
    assert frame_indices(9, 1).tolist() == [4]
    rng = np.random.default_rng(6)
    for _ in range(300):
        t_max = int(rng.integers(1, 80))
        frames = int(rng.integers(1, t_max + 1))
        chosen = frame_indices(t_max, frames)
        assert len(chosen) == frames and len(set(chosen.tolist())) == frames
        if frames > 1:
            gaps = np.diff(chosen)
            assert chosen[0] == 0 and chosen[-1] == t_max - 1 and gaps.min() >= 1
            assert gaps.max() - gaps.min() <= 1  # as even as integer positions allow
    with pytest.raises(ConfigError, match="frames=6 exceeds the 5 frames per video"):
        frame_indices(5, 6)


def test_bad_configs_and_inputs_name_the_field(tiny_set, tmp_path):
    with pytest.raises(ConfigError, match="dropout must be a number in \\[0, 1\\), not 1.5"):
        TrainConfig(dropout=1.5)
    with pytest.raises(ConfigError, match="reverse_prob must be a number in \\[0, 1\\], not 1.5"):
        TrainConfig(reverse_prob=1.5)
    with pytest.raises(ConfigError, match="input_dropout must be a number in \\[0, 1\\), not 1.0"):
        TrainConfig(input_dropout=1.0)
    with pytest.raises(ConfigError, match="batch_size must be an integer >= 1, not 0"):
        TrainConfig(batch_size=0)
    with pytest.raises(ConfigError, match="optimizer must be one of RAdam, RMSprop, AdamW, not 'sgd'"):
        TrainConfig(optimizer="sgd")
    with pytest.raises(ConfigError, match="unknown TrainConfig fields \\['units'\\]"):
        TrainConfig.from_dict({"units": 5})
    assert TrainConfig(scheduler="plateau", loss="focal loss", optimizer="adamw").scheduler == "ReduceLROnPlateau"
    with pytest.raises(ConfigError, match="frames=6 exceeds the 5 frames per video"):
        train_head(TrainConfig(frames=6), tiny_set, tmp_path, log=None)
    only_real = tiny_set.subset(tiny_set.labels == 0)
    with pytest.raises(InputError, match="train split holds 0 fake videos"):
        train_head(TrainConfig(frames=5), only_real, tmp_path, log=None)


def test_cli_train_prints_epochs_and_final_metrics(tmp_path, capsys):
    feature_set = temporal_feature_set(pairs=10, t=6, d=5, seed=2)
    save_feature_set(feature_set, tmp_path / "cache")
    code = lstmfpga_main(["train", "--features", str(tmp_path / "cache"), "--out", str(tmp_path / "out"),
                          "--head", "bilstm", "--hidden", "4", "--frames", "3", "--epochs", "3",
                          "--loss", "MSE", "--scheduler", "CosineAnnealingLR", "--no-plots"])
    printed = capsys.readouterr().out
    assert code == 0
    assert "train_loss" in printed and "dev_auc" in printed
    assert sum(line.split()[0] in ("1", "2", "3") for line in printed.splitlines() if line.strip()) >= 3
    assert "val:temporal" in printed and "accuracy" in printed and "confusion_matrix" in printed
    assert (tmp_path / "out" / "checkpoint.pt").exists()
    code = lstmfpga_main(["train", "--features", str(tmp_path / "cache"), "--out", str(tmp_path / "o2"),
                          "--frames", "9"])
    assert code == 2 and "frames=9 exceeds" in capsys.readouterr().err
