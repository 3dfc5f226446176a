"""The synthetic set's temporal-only fakes: an LSTM over per-frame features sees them, frame averaging does not.

Features come from a *randomly initialised* ResNet-50 (no pretrained weights offline).  Both models
get the same cached features, reduced by the same PCA fitted on the training frames; both train
on the Training split and are scored by ROC AUC on Validation (real vs temporal-only fakes, each
fake a forgery of one of the real videos, so identity tells nothing).

Why the LSTM is trained on random 8-frame windows (reversed half the time): with 32 training
videos an LSTM otherwise memorises each video's frame order; windows make that impossible and
keep the label (a smooth lighting sweep stays smooth in any window, either way round).
"""

from __future__ import annotations

import numpy as np
import pytest

from lstmfpga.model.datasets import read_dataset
from lstmfpga.model.extract_features import ExtractionConfig, extract_features
from lstmfpga.model.feature_cache import load_features
from lstmfpga.model.synthetic.dataset import SynthConfig, generate_dataset

torch = pytest.importorskip("torch")


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    pos, neg = scores[labels == 1], scores[labels == 0]
    return float(((pos[:, None] > neg[None]) + 0.5 * (pos[:, None] == neg[None])).mean())


def pca_projection(train: np.ndarray, k: int):
    frames = train.reshape(-1, train.shape[-1])
    mean, std = frames.mean(0), frames.std(0) + 1e-3
    _, s, vt = np.linalg.svd((frames - mean) / std, full_matrices=False)
    basis = vt[:k].T / (s[:k] / np.sqrt(len(frames)))
    return lambda x: (((x - mean) / std) @ basis).astype(np.float32)


def train_mean_pool_logistic(x, y, x_test, *, epochs=300):
    torch.manual_seed(0)
    linear = torch.nn.Linear(x.shape[-1], 1)
    opt = torch.optim.AdamW(linear.parameters(), lr=1e-2, weight_decay=1e-2)
    xt, yt = torch.tensor(x.mean(1)), torch.tensor(y, dtype=torch.float32)
    for _ in range(epochs):
        opt.zero_grad()
        torch.nn.functional.binary_cross_entropy_with_logits(linear(xt).squeeze(1), yt).backward()
        opt.step()
    with torch.no_grad():
        return linear(torch.tensor(x_test.mean(1))).squeeze(1).numpy()


def train_lstm(x, y, x_test, *, hidden=8, window=8, epochs=300):
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(x.shape[-1], hidden, batch_first=True)
    head = torch.nn.Linear(hidden, 1)
    opt = torch.optim.AdamW([*lstm.parameters(), *head.parameters()], lr=1e-2, weight_decay=1e-2)
    xt, yt = torch.tensor(x), torch.tensor(y, dtype=torch.float32)
    gen = torch.Generator().manual_seed(0)

    def score(batch):
        return head(lstm(batch)[0].mean(1)).squeeze(1)

    for _ in range(epochs):
        start = torch.randint(0, x.shape[1] - window + 1, (len(xt),), generator=gen)
        index = start[:, None] + torch.arange(window)[None]
        index = torch.where((torch.rand(len(xt), generator=gen) < 0.5)[:, None], index.flip(1), index)
        batch = torch.gather(xt, 1, index[..., None].expand(-1, -1, x.shape[2]))
        opt.zero_grad()
        torch.nn.functional.binary_cross_entropy_with_logits(score(batch), yt).backward()
        opt.step()
    with torch.no_grad():
        return score(torch.tensor(x_test)).numpy()


@pytest.mark.slow
def test_lstm_beats_frame_average_on_temporal_only_fakes(tmp_path):
    torch.set_num_threads(2)
    config = SynthConfig(videos=64, frames=16, size=64, seed=0, val_fraction=0.5, fake_kinds=("temporal",))
    generate_dataset(tmp_path / "data", config, progress=False)
    listing = read_dataset("forgerynet", tmp_path / "data")
    extract_features(listing, tmp_path / "cache",
                     ExtractionConfig(frames=16, image_size=32, batch_videos=8, workers=0, chunk_videos=64), progress=False)
    fs = load_features(tmp_path / "cache", expected_dim=2048, expected_t=16)
    assert set(fs.extra["artifact_kind"].tolist()) == {"none", "temporal"}
    train, val = fs.split("train"), fs.split("val")
    assert len(val) == 32 and val.labels.sum() == 16
    x, x_val = train.features.astype(np.float32), val.features.astype(np.float32)

    project = pca_projection(x, 4)
    lstm_auc = roc_auc(train_lstm(project(x), train.labels, project(x_val)), val.labels)
    mean, std = x.mean((0, 1)), x.std((0, 1)) + 1e-3
    baseline_aucs = {
        "pca4": roc_auc(train_mean_pool_logistic(project(x), train.labels, project(x_val)), val.labels),
        "all 2048": roc_auc(train_mean_pool_logistic((x - mean) / std, train.labels, (x_val - mean) / std), val.labels),
    }
    best_baseline = max(baseline_aucs.values())
    print(f"LSTM AUC {lstm_auc:.3f}; frame-average logistic AUC {baseline_aucs}")
    assert lstm_auc >= 0.75
    assert lstm_auc >= best_baseline + 0.15
