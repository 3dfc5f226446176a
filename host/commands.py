"""Handlers of the host subcommands (see ``lstmfpga.host.cli``). NumPy only at import time."""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path

import numpy as np

from lstmfpga.foundation.errors import ConfigError, InputError
from lstmfpga.foundation.printable import printable
from lstmfpga.foundation.validation import check_integer
from lstmfpga.host.cli import TOKEN_ENV


def parse_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``PORT`` (loopback) → ``(host, port)``."""
    host, _, port = str(text).rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    try:
        number = int(port)
    except ValueError:
        raise ConfigError(f"address {text!r} must be HOST:PORT or PORT") from None
    if not 0 <= number <= 65535:
        raise ConfigError(f"port must be in [0, 65535], not {number}")
    return host, number


def check_options(args) -> None:
    """Refuse counts and times out of range before a model or a file is loaded."""
    for name in ("batch", "queue", "window", "lanes", "max_steps", "frames", "image_size"):
        value = getattr(args, name, None)
        if value is not None:
            check_integer(f"--{name.replace('_', '-')}", value, low=1, what="a positive integer")
    if getattr(args, "retries", None) is not None:
        check_integer("--retries", args.retries, low=0, what="a non-negative integer")
    timeout = getattr(args, "timeout", None)
    if timeout is not None and not 0 < timeout < float("inf"):
        raise ConfigError(f"--timeout must be a positive number of seconds, not {timeout!r}")


def resolve_token(args) -> str:
    if args.token:
        return args.token
    if args.token_file:
        try:
            token = Path(args.token_file).read_text().splitlines()[0].strip()
        except (OSError, IndexError):
            raise ConfigError(f"cannot read a token from {args.token_file}") from None
        if token:
            return token
        raise ConfigError(f"token file {args.token_file} starts with an empty line")
    token = os.environ.get(TOKEN_ENV, "")
    if token:
        return token
    raise ConfigError(f"the stream needs a shared token: give --token, --token-file or set ${TOKEN_ENV}")


def build_backend(args, artifact):
    """The backend named by ``--backend`` with the options it understands."""
    from lstmfpga.host.backends.base import make_backend

    name = args.backend
    double_buffer = not getattr(args, "no_double_buffer", False)
    if name == "golden":
        return make_backend("golden", artifact=artifact, mode=args.mode or "full")
    if name == "rtl":
        kw = {"max_steps": args.max_steps} if args.max_steps else {}
        if args.build_dir:
            kw["cache_dir"] = args.build_dir
        if args.simulator == "harness":
            kw["jobs"] = args.jobs
        elif args.jobs != 1:
            raise ConfigError("--jobs runs harness processes; the cocotb board runs one simulation")
        return make_backend("rtl", artifact=artifact, mode=args.mode or "full", lanes=args.lanes,
                            double_buffer=double_buffer, simulator=args.simulator, **kw)
    if args.overlay is None:
        raise ConfigError("the pynq backend needs --overlay (the .bit file)")
    return make_backend("pynq", artifact=artifact, overlay=args.overlay, mode=args.mode, core_name=args.core_name,
                        dma_name=args.dma_name, double_buffer=double_buffer, timeout_s=args.timeout)


def _timing_line(seconds: np.ndarray, wall: float) -> str:
    n = seconds.size
    return (f"{n} sequences in {wall:.3f} s: {1e6 * wall / max(n, 1):.1f} µs/sequence end to end, "
            f"{n / wall if wall else float('inf'):.1f} sequences/s; backend {1e6 * float(np.mean(seconds)):.1f} µs/sequence")


def _golden_check(artifact, mode: str, features, run) -> list[str]:
    from lstmfpga.host.backends.golden import GoldenBackend
    from lstmfpga.host.infer import run_backend

    golden = run_backend(GoldenBackend(artifact=artifact, mode=mode), features)
    same_h = np.all(golden.h_codes == run.h_codes, axis=(1, 2))
    same = same_h if golden.logits is None else same_h & np.all(golden.logits == run.logits, axis=1)
    return [int(i) for i in np.flatnonzero(~same)]


def infer(args) -> int:
    from lstmfpga.host.feature_source import load_feature_input
    from lstmfpga.host.infer import dequantized, report_lines, run_backend
    from lstmfpga.quant.model_file import load_model

    check_options(args)
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
    print(_timing_line(run.seconds, wall))
    if args.out:
        from lstmfpga.sim.golden.cli import save_outputs

        for path in save_outputs(Path(args.out), *dequantized(artifact, run)):
            print(f"wrote {path}")
    return 0


def board_infer(args) -> int:
    from lstmfpga.quant.model_file import load_model

    if (args.features is None) == (args.listen is None):
        raise ConfigError("give exactly one of --features FILE and --listen [HOST:]PORT")
    check_options(args)
    artifact = load_model(args.model)
    with build_backend(args, artifact) as backend:
        print(f"model: {artifact.summary()}")
        print(f"backend: {backend.name}, mode {backend.mode}"
              + ("" if not getattr(backend, "weights_loaded", False) else " (weights loaded)"))
        if args.listen is not None:
            return _listen(args, artifact, backend)
        from lstmfpga.host.feature_source import load_feature_input
        from lstmfpga.host.infer import report_lines, run_backend

        fi = load_feature_input(args.features, expected_dim=artifact.input_size, labels=args.labels,
                                split=args.split)
        start = time.perf_counter()
        run = run_backend(backend, fi.features, batch=args.batch, progress=True)
        wall = time.perf_counter() - start
        for line in report_lines(artifact, run, fi.video_ids, fi.labels):
            print(line)
        print(_timing_line(run.seconds, wall))
        if args.check_golden:
            bad = _golden_check(artifact, backend.mode, fi.features, run)
            if bad:
                print(f"golden check FAILED: {len(bad)} of {len(fi.video_ids)} sequences differ "
                      f"(first: {fi.video_ids[bad[0]]})", file=sys.stderr)
                return 1
            print(f"golden check: all {len(fi.video_ids)} sequences bit-identical to the integer golden")
    return 0


def _listen(args, artifact, backend) -> int:
    from lstmfpga.host.board_handler import BackendHandler
    from lstmfpga.host.sequence_server import SequenceServer

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    host, port = parse_address(args.listen)
    limits = {"max_steps": backend.config.max_timesteps} if hasattr(backend, "config") else {}
    handler = BackendHandler(backend=backend, check_golden=args.check_golden, **limits)

    def show(record: dict) -> None:
        verdict = record.get("verdict", "-")
        check = "" if "golden_match" not in record else ("  golden ok" if record["golden_match"] else "  GOLDEN MISMATCH")
        print(f"{printable(record['video_id'])}  {verdict}  p(fake)={record.get('fake_score', float('nan')):.4f}  "
              f"{record['backend_us']:.1f} µs{check}", flush=True)

    server = SequenceServer(handler=handler, token=resolve_token(args), host=host, port=port, window=args.window,
                            results_path=args.results, on_result=show)
    server.start()
    bound = server.address
    print(f"listening on {bound[0]}:{bound[1]} (Ctrl-C to stop)", flush=True)
    start = time.perf_counter()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        server.stop()
    wall = time.perf_counter() - start
    n = server.stats.sequences
    print(f"served {n} sequences on {server.stats.connections} connections ({server.stats.refused} refused), "
          f"{server.stats.rejected} rejected; "
          f"{n / wall if wall else 0:.1f} sequences/s while listening")
    if args.check_golden and handler.golden_mismatches:
        print(f"golden check FAILED for {len(handler.golden_mismatches)} sequences", file=sys.stderr)
        return 1
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
