"""The embedded default's temporal-only fakes: the LSTM head sees them, the frame-average head does not.

Exactly the demo's temporal check at test scale: ``lstmfpga train`` with the demo's recipe
(:data:`lstmfpga.cli.demo.TEMPORAL_RECIPE`) for both heads, on the same cached features of a
*randomly initialised* ResNet-50 (no pretrained weights offline) and the same split; every fake is
a forgery of one of the real videos with colour-matched, feathered blending, so no single frame
and no frame average tells it apart.
"""

from __future__ import annotations

import json

import pytest

from lstmfpga.cli.demo import TEMPORAL_RECIPE
from lstmfpga.cli.main import main
from lstmfpga.model.datasets import read_dataset
from lstmfpga.model.extract_features import ExtractionConfig, extract_features
from lstmfpga.model.feature_cache import load_features
from lstmfpga.model.synthetic.dataset import SynthConfig, generate_dataset

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def temporal_cache(tmp_path_factory):
    root = tmp_path_factory.mktemp("temporal")
    config = SynthConfig(videos=192, frames=16, size=64, seed=2, val_fraction=0.5, fake_kinds=("temporal",))
    generate_dataset(root / "data", config, progress=False)
    extract_features(read_dataset("forgerynet", root / "data"), root / "cache",
                     ExtractionConfig(frames=16, image_size=32, batch_videos=8, workers=0, chunk_videos=64),
                     progress=False)
    return root / "cache"


def _eval_metrics(cache, out, head, seed):
    torch.set_num_threads(1)
    assert main(["train", "--features", str(cache), "--out", str(out), "--head", head, *TEMPORAL_RECIPE,
                 "--seed", str(seed), "--no-plots"]) == 0
    return json.loads((out / "metrics.json").read_text())["eval"]


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_lstm_beats_frame_average_on_temporal_only_fakes(temporal_cache, tmp_path, seed):
    fs = load_features(temporal_cache, expected_dim=2048, expected_t=16)
    assert set(fs.extra["artifact_kind"].tolist()) == {"none", "temporal"}
    val = fs.split("val")
    assert len(val) == 96 and val.labels.sum() == 48
    lstm = _eval_metrics(temporal_cache, tmp_path / "lstm", "lstm", seed)
    average = _eval_metrics(temporal_cache, tmp_path / "avg", "frame-avg", seed)
    print(f"seed {seed}: ROC-AUC LSTM {lstm['roc_auc']:.3f}, frame average {average['roc_auc']:.3f}")
    assert lstm["roc_auc"] >= 0.7
    assert lstm["roc_auc"] >= average["roc_auc"] + 0.15
    assert lstm["accuracy"] > average["accuracy"]
    assert sum(map(sum, lstm["confusion_matrix"])) == 96
