"""QAT through the one training loop: best dev epoch, early stopping, resume, result files, the CLI."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from lstmfpga.cli.main import main as lstmfpga_main
from lstmfpga.foundation.artifact import LstmArtifact
from lstmfpga.foundation.errors import ArtifactError, ConfigError
from lstmfpga.model.feature_cache import save_feature_set
from lstmfpga.model.train_config import TrainConfig
from lstmfpga.model.train_data import prepare_data
from lstmfpga.model.training import predict, train_head
from lstmfpga.quant.head import QuantHeadConfig
from lstmfpga.quant.qat import QatConfig, load_qat_checkpoint, qat_from_features

sys.path.insert(0, str(Path(__file__).parents[1] / "model"))
from temporal_features import temporal_feature_set  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def feature_set():
    return temporal_feature_set(pairs=12, t=5, d=6, seed=8)


def _head(feature_set, hidden=4, layers=1):
    return QuantHeadConfig(input_size=feature_set.dim, hidden_size=hidden, num_layers=layers,
                           weight_bits=4, act_bits=6)


class _Killed(Exception):
    pass


def _states_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_qat_resumes_to_the_uninterrupted_weights_and_writes_the_training_layout(feature_set, tmp_path):
    config = QatConfig(epochs=4, patience=4, lr=5e-3, batch_size=6, calibration_batches=2, seed=3)
    head = _head(feature_set, layers=2)
    straight = qat_from_features(feature_set, tmp_path / "straight", head_config=head, frames=4, config=config,
                                 progress=False)

    def die_after_two(row):
        if row["epoch"] == 2:
            raise _Killed()

    killed = tmp_path / "killed"
    with pytest.raises(_Killed):
        qat_from_features(feature_set, killed, head_config=head, frames=4, config=config, progress=False,
                          plots=False, checkpoint_every_s=0, on_epoch_end=die_after_two)
    assert (killed / "last.pt").exists() and not (killed / "qat_head.pt").exists()
    with pytest.raises(ConfigError, match="another config \\(lr: 0.005 there, 0.001 now\\)"):
        qat_from_features(feature_set, killed, head_config=head, frames=4, progress=False,
                          config=QatConfig(**{**config.to_dict(), "lr": 1e-3}))
    resumed = qat_from_features(feature_set, killed, head_config=head, frames=4, config=config, progress=False,
                                plots=False)
    assert not (killed / "last.pt").exists()
    assert _states_equal(straight.head.state_dict(), resumed.head.state_dict())
    assert [r["dev_loss"] for r in straight.history] == [r["dev_loss"] for r in resumed.history]

    # The same files and the same metrics document as a float training run.
    reference = train_head(TrainConfig(hidden=3, frames=4, epochs=1), feature_set, tmp_path / "float", log=None,
                           plots=False)
    document = json.loads((tmp_path / "straight" / "qat_metrics.json").read_text())
    float_document = json.loads((tmp_path / "float" / "metrics.json").read_text())
    assert document.keys() == float_document.keys() and document["config"] == config.to_dict()
    assert document["eval"].keys() == reference.metrics["eval"].keys()
    for name in ("loss_accuracy.png", "confusion_matrix.png", "roc.png"):
        assert (tmp_path / "straight" / name).read_bytes()[:8] == PNG_MAGIC
    back, checkpoint = load_qat_checkpoint(straight.checkpoint)
    assert _states_equal(back.state_dict(), straight.head.state_dict())
    assert checkpoint["metrics"] == straight.metrics == {k: v for k, v in document.items()
                                                          if k not in ("config", "history")}


def test_qat_keeps_the_best_dev_epoch_and_stops_after_patience(feature_set, tmp_path):
    rng = np.random.default_rng(13)
    for trial in range(2):
        patience = int(rng.integers(1, 3))
        config = QatConfig(epochs=7, patience=patience, lr=float(rng.choice([3e-2, 1e-2])), batch_size=5,
                           calibration_batches=1, monitor=str(rng.choice(["roc_auc", "loss"])), seed=trial)
        result = qat_from_features(feature_set, tmp_path / str(trial), head_config=_head(feature_set), frames=3,
                                   config=config, progress=False, plots=False)
        metrics, history = result.metrics, result.history
        assert metrics["epochs_run"] == len(history)
        assert metrics["stopped_early"] == (len(history) < config.epochs)
        if metrics["stopped_early"]:
            assert len(history) - metrics["best_epoch"] == patience
        # The head holds the best epoch's weights: evaluated again (with the standardisation it
        # now carries, on raw features) it gives that epoch's dev loss.
        data = prepare_data(feature_set, frames=3, clip=4.0, dev_fraction=0.2, seed=trial)
        raw_dev = np.asarray(feature_set.features[feature_set.splits == "train"], np.float32)[:, data.frame_indices]
        dev_rows = np.isin(np.flatnonzero(feature_set.splits == "train"),
                           np.flatnonzero(feature_set.splits == "train")[_dev_mask(feature_set, trial)])
        loss, _ = predict(result.head, raw_dev[dev_rows], data.dev_y, torch.nn.CrossEntropyLoss())
        assert loss == pytest.approx(history[metrics["best_epoch"] - 1]["dev_loss"], rel=1e-4)
        assert metrics["dev"]["loss"] == pytest.approx(history[metrics["best_epoch"] - 1]["dev_loss"], rel=1e-6)


def _dev_mask(feature_set, seed):
    from lstmfpga.model.train_data import stratified_dev_mask

    return stratified_dev_mask(feature_set.labels[feature_set.splits == "train"], fraction=0.2, seed=seed)


def test_qat_checkpoint_loader_refuses_pickled_objects(tmp_path):
    head = QuantHeadConfig(input_size=3, hidden_size=2)
    # A configuration stored as an object, not plain data, would need unpickling to load.
    torch.save({"format": "lstmfpga-qat-head/1", "head_config": head, "state_dict": {}}, tmp_path / "obj.pt")
    with pytest.raises(ArtifactError, match="QAT checkpoint .*obj.pt cannot be read"):
        load_qat_checkpoint(tmp_path / "obj.pt")
    with pytest.raises(ArtifactError, match="QAT checkpoint .*missing.pt does not exist"):
        load_qat_checkpoint(tmp_path / "missing.pt")


def test_cli_qat_from_a_float_checkpoint_with_early_stopping_options(feature_set, tmp_path, capsys):
    cache = tmp_path / "cache"
    save_feature_set(feature_set, cache)
    float_run = train_head(TrainConfig(head="lstm", hidden=3, frames=4, epochs=2), feature_set, tmp_path / "float",
                           log=None, plots=False)
    out = tmp_path / "qat"
    code = lstmfpga_main(["qat", "--features", str(cache), "--out", str(out), "--float-checkpoint",
                          str(float_run.checkpoint_path), "--epochs", "2", "--patience", "1", "--monitor", "loss",
                          "--batch-size", "8", "--checkpoint-every", "0", "--no-plots"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "best epoch" in printed and "dev loss" in printed and "confusion_matrix" in printed
    head, checkpoint = load_qat_checkpoint(out / "qat_head.pt")
    assert (head.config.hidden_size, checkpoint["frames"], checkpoint["qat_config"]["monitor"]) == (3, 4, "loss")
    assert not list(out.glob("*.png"))
    assert lstmfpga_main(["export", "--checkpoint", str(out / "qat_head.pt"), "--out", str(out), "--timesteps", "4"]) == 0
    assert LstmArtifact.load(out / "artifact.npz").hidden_size == 3
    code = lstmfpga_main(["qat", "--features", str(cache), "--out", str(out), "--hidden", "3", "--patience", "0"])
    assert code == 2 and "error: patience must be an integer >= 1, not 0" in capsys.readouterr().err
