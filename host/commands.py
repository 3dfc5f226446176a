"""Handlers of the host subcommands (see ``lstmfpga.host.cli``; ``board-infer`` is in
``lstmfpga.host.board_command``). NumPy only at import time."""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

import numpy as np

from lstmfpga.foundation.errors import ConfigError, InputError
from lstmfpga.foundation.printable import printable
from lstmfpga.host.board_command import build_backend, check_options, parse_address, resolve_token, timing_line


def infer(args) -> int:
    from lstmfpga.host.feature_source import load_feature_input
    from lstmfpga.host.infer import dequantized, report_lines, run_backend
    from lstmfpga.quant.model_file import load_model

    check_options(args)
    if args.out:
        from lstmfpga.sim.golden.cli import check_outputs

        check_outputs(Path(args.out))
    artifact = load_model(args.model)
    fi = load_feature_input(args.features, expected_dim=artifact.input_size, labels=args.labels, split=args.split)
    start = time.perf_counter()
    with build_backend(args, artifact) as backend:
        run = run_backend(backend, fi.features, batch=args.batch, device=args.device, progress=True)
    wall = time.perf_counter() - start
    print(f"model: {artifact.summary()}")
    print(f"backend: {backend.name}, mode {backend.mode}; features: {fi.source}")
    for line in report_lines(artifact, run, fi.video_ids, fi.labels):
        print(line)
    print(timing_line(run.seconds, wall))
    if args.out:
        from lstmfpga.sim.golden.cli import save_outputs

        for path in save_outputs(Path(args.out), *dequantized(artifact, run)):
            print(f"wrote {path}")
    return 0


def serve_features(args) -> int:
    from lstmfpga.host.feature_source import load_feature_input
    from lstmfpga.host.payloads import payload_kind_for, prepare_payloads
    from lstmfpga.host.sequence_sender import SequenceSender
    from lstmfpga.host.verdicts import binary_metrics
    from lstmfpga.quant.model_file import load_model

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    check_options(args)
    address = parse_address(args.board)
    artifact = load_model(args.model)
    if args.videos is not None:
        _extract(args)
    fi = load_feature_input(args.features, expected_dim=artifact.input_size, labels=args.labels, split=args.split)
    kind = payload_kind_for(args.mode, send_float=args.send_float)
    batch = args.batch

    def items():
        for start in range(0, len(fi.video_ids), batch):
            payloads = prepare_payloads(artifact, np.asarray(fi.features[start:start + batch]), kind, device=args.device)
            for offset, payload in enumerate(payloads):
                yield fi.video_ids[start + offset], payload

    def show(record: dict) -> None:
        print(f"{printable(record['video_id'])}  {record.get('verdict', '-')}  "
              f"p(fake)={record.get('fake_score', float('nan')):.4f}",
              flush=True)

    sender = SequenceSender(address=address, token=resolve_token(args), kind=kind,
                            artifact_sha256=None if args.send_float else artifact.sha256,
                            results_path=args.results, queue_size=args.queue, retries=args.retries, on_result=show)
    start = time.perf_counter()
    report = sender.run(items())
    wall = time.perf_counter() - start
    n = len(report.results)
    print(f"sent {n} sequences ({report.skipped} already done, {len(report.errors)} rejected, "
          f"{report.reconnects} reconnects) in {wall:.2f} s: {n / wall if wall else 0:.1f} sequences/s")
    for err in report.errors:
        print(f"rejected {printable(err.get('video_id'))}: {printable(err.get('message'))}", file=sys.stderr)
    if fi.labels is not None and n:
        from lstmfpga.host.result_log import read_results

        done = {r["video_id"]: r for r in read_results(args.results) if "verdict" in r}
        index = {vid: i for i, vid in enumerate(fi.video_ids)}
        ids = [vid for vid in done if vid in index]
        if ids:
            labels = np.array([fi.labels[index[v]] for v in ids])
            predicted = np.array([1 if done[v]["verdict"] == "fake" else 0 for v in ids])
            print(binary_metrics(labels, predicted).table())
    return 0 if not report.errors else 1


def _extract(args) -> None:
    """Run the model stage's feature extractor into the ``--features`` cache (resumable)."""
    try:
        from lstmfpga.model.datasets import read_dataset
        from lstmfpga.model.extract_features import ExtractionConfig, extract_features
    except ImportError as exc:
        raise ConfigError(f"--videos needs the model stage's extractor ({exc}); install lstmfpga[train]") from None
    root = Path(args.videos)
    if not root.exists():
        raise InputError(f"dataset folder {root} does not exist")
    listing = read_dataset(args.dataset, root)
    config = ExtractionConfig(frames=args.frames, image_size=args.image_size, weights=args.backbone_weights,
                              device="cuda" if args.device == "cuda" else "cpu", workers=0)
    summary = extract_features(listing, args.features, config, progress=True)
    print(f"features: {summary.extracted} of {summary.videos} videos in {args.features} "
          f"({summary.extracted_now} extracted now, {len(summary.skipped)} skipped)")


def overlay(args) -> int:
    from lstmfpga.host.overlay.tcl import write_overlay_tcl

    for path in write_overlay_tcl(manifest_path=args.manifest, board=args.board):
        print(f"wrote {path}")
    return 0
