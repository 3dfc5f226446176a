"""Runs streamed sequences on a backend: the ``SequenceHandler`` behind ``board-infer --listen``.

NumPy only: this is the board side.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from lstmfpga.foundation.errors import InputError
from lstmfpga.foundation.validation import check_integer
from lstmfpga.host.backends.base import Backend
from lstmfpga.host.payloads import backend_input, payload_kind_for, quantize_features
from lstmfpga.host.stream_protocol import PayloadKind, SequenceMessage, sequence_payload_bytes
from lstmfpga.host.verdicts import VERDICT_NAMES, fake_scores, predicted_labels

_FLOAT_KINDS = (PayloadKind.FEATURES_F16, PayloadKind.FEATURES_F32)


class BackendHandler:
    """Validate, batch by sequence length, run, and describe the results.

    Parameters
    ----------
    backend
        A ``Backend``; its artifact and mode decide what payloads are accepted.
    max_steps
        Longest sequence accepted (the bitstream's T limit for hardware backends).
    check_golden
        Also run the NumPy integer golden on every sequence; each record gets ``golden_match``
        and mismatching video ids are collected in ``golden_mismatches``.
    """

    def __init__(self, *, backend: Backend, max_steps: int = 4096, check_golden: bool = False) -> None:
        check_integer("max_steps", max_steps, low=1, what="a positive integer", error=ValueError)
        self.backend = backend
        self.artifact = backend.artifact
        self.artifact_sha256 = self.artifact.sha256
        self.max_steps = max_steps
        self.golden = None
        self.golden_mismatches: list = []
        if check_golden:
            from lstmfpga.host.backends.golden import GoldenBackend

            self.golden = GoldenBackend(artifact=self.artifact, mode=backend.mode)
        self.kinds = _FLOAT_KINDS + (payload_kind_for(backend.mode),)

    def describe(self) -> dict:
        a = self.artifact
        return {
            "mode": self.backend.mode,
            "backend": self.backend.name,
            "input_size": a.input_size,
            "hidden_size": a.hidden_size,
            "max_steps": self.max_steps,
            "kinds": [k.name for k in self.kinds],
        }

    def _row_shape(self, kind: PayloadKind) -> tuple[int, ...]:
        a = self.artifact
        return (4, a.hidden_size) if kind == PayloadKind.PREACT_I32 else (a.input_size,)

    def max_payload_bytes(self) -> int:
        """The largest SEQUENCE payload ``check`` could accept: ``max_steps`` rows of the widest kind."""
        return max(sequence_payload_bytes(k, self._row_shape(k), self.max_steps) for k in self.kinds)

    def check(self, message: SequenceMessage) -> None:
        a = self.artifact
        where = f"sequence {message.seq} (video {message.video_id!r})"
        if message.kind not in self.kinds:
            raise InputError(f"{where}: payload {message.kind.name} is not accepted in "
                             f"{self.backend.mode} mode; send one of {', '.join(k.name for k in self.kinds)}")
        array = message.array
        steps = array.shape[0]
        if not 1 <= steps <= self.max_steps:
            raise InputError(f"{where}: {steps} time steps; this board runs 1 to {self.max_steps}")
        if message.kind == PayloadKind.PREACT_I32:
            if array.shape[1:] != self._row_shape(message.kind):
                raise InputError(f"{where}: pre-activations must be [T, 4, {a.hidden_size}], got {array.shape}")
            return
        if array.shape[1] != a.input_size:
            raise InputError(f"{where}: feature width {array.shape[1]}, the model expects {a.input_size}")
        if message.kind in _FLOAT_KINDS:
            bad = ~np.isfinite(array)
            if bad.any():
                t, i = np.argwhere(bad)[0]
                raise InputError(f"{where}: {int(bad.sum())} NaN/inf values (first at step {t}, feature {i})")
        else:
            io = a.io_quant
            if array.size and (int(array.min()) < io.lo or int(array.max()) > io.hi):
                raise InputError(f"{where}: codes outside the io range [{io.lo}, {io.hi}]")

    def _backend_input(self, message: SequenceMessage) -> np.ndarray:
        if message.kind in _FLOAT_KINDS:
            return backend_input(self.artifact, quantize_features(self.artifact, message.array), self.backend.mode)
        return message.array

    def process(self, messages: Sequence[SequenceMessage]) -> list[dict]:
        inputs = [self._backend_input(m) for m in messages]
        records: list = [None] * len(messages)
        by_shape: dict = {}
        for i, x in enumerate(inputs):
            by_shape.setdefault(x.shape, []).append(i)
        for indices in by_shape.values():
            batch = np.stack([inputs[i] for i in indices])
            out = self.backend.run(batch)
            ref = self.golden.run(batch) if self.golden is not None else None
            for row, i in enumerate(indices):
                records[i] = self._record(out, row)
                if ref is not None:
                    match = bool(np.array_equal(out.h_codes[row], ref.h_codes[row])
                                 and (out.logits is None or np.array_equal(out.logits[row], ref.logits[row])))
                    records[i]["golden_match"] = match
                    if not match:
                        self.golden_mismatches.append(messages[i].video_id)
        return records

    def _record(self, out, row: int) -> dict:
        record = {"backend_us": round(float(out.seconds[row]) * 1e6, 1)}
        if out.logits is None:
            record["h_last"] = out.h_codes[row, -1].tolist()
            return record
        logits = out.logits[row : row + 1]
        label = int(predicted_labels(logits)[0])
        record.update(
            logits=logits[0].tolist(),
            fake_score=round(float(fake_scores(logits, self.artifact.classifier.out_scale)[0]), 6),
            verdict=VERDICT_NAMES[label],
        )
        return record
