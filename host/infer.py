"""``lstmfpga infer``: run a model on features with one backend; scores, metrics, outputs.

NumPy only at import time; the backend's heavy dependencies load when it is built.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from lstmfpga.foundation.printable import printable
from lstmfpga.foundation.validation import check_integer
from lstmfpga.host.backends.base import Backend
from lstmfpga.host.payloads import backend_input, quantize_features
from lstmfpga.host.verdicts import VERDICT_NAMES, binary_metrics, fake_scores, predicted_labels


@dataclass(frozen=True, eq=False)
class InferenceRun:
    """Integer outputs of every sequence, in input order."""

    h_codes: np.ndarray          # int64 [N, T, H]
    logits: np.ndarray | None    # int64 [N, C]
    seconds: np.ndarray          # float64 [N]


def run_backend(backend: Backend, features: np.ndarray, *, batch: int = 64, device: str = "cpu",
                progress: bool = False) -> InferenceRun:
    """Quantize float features ``[N, T, D]`` in batches and run them through ``backend``."""
    check_integer("batch", batch, low=1, what="a positive integer", error=ValueError)
    artifact = backend.artifact
    hs, logits, seconds = [], [], []
    starts = range(0, features.shape[0], batch)
    for start in tqdm(starts, desc=f"{backend.name} inference", unit="batch", disable=not progress):
        codes = quantize_features(artifact, np.asarray(features[start:start + batch]))
        out = backend.run(backend_input(artifact, codes, backend.mode, device=device))
        hs.append(out.h_codes)
        seconds.append(out.seconds)
        if out.logits is not None:
            logits.append(out.logits)
    return InferenceRun(h_codes=np.concatenate(hs), logits=np.concatenate(logits) if logits else None,
                        seconds=np.concatenate(seconds))


def dequantized(artifact, run: InferenceRun) -> tuple[np.ndarray, np.ndarray | None]:
    """The float outputs ``lstmfpga golden`` writes: hidden ``[N, T, H]`` and logits ``[N, C]``."""
    from lstmfpga.foundation.integer_lstm import dequantize_outputs

    return dequantize_outputs(artifact, run.h_codes, run.logits)


def report_lines(artifact, run: InferenceRun, video_ids, labels=None) -> list[str]:
    """Per-video verdict table and, with labels, the binary metrics."""
    lines = []
    if run.logits is None:
        lines.append("the model has no classifier: no verdicts (use --out for the hidden states)")
        return lines
    predicted = predicted_labels(run.logits)
    scores = fake_scores(run.logits, artifact.classifier.out_scale)
    video_ids = [printable(v) for v in video_ids]  # an id from a file name may hold a newline or an escape
    width = max(8, max(len(v) for v in video_ids))
    header = f"{'video':<{width}}  verdict  p(fake)  logits"
    if labels is not None:
        header += "  label"
    lines.append(header)
    for i, vid in enumerate(video_ids):
        line = f"{vid:<{width}}  {VERDICT_NAMES[predicted[i]]:<7}  {scores[i]:7.4f}  {run.logits[i].tolist()}"
        if labels is not None:
            line += f"  {VERDICT_NAMES[int(labels[i])]}"
        lines.append(line)
    if labels is not None:
        lines.append("")
        lines.append(binary_metrics(labels, predicted).table())
    return lines
