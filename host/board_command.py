"""``board-infer``: the board side of inference, and the options every host command shares.

The board path (docs/ARCHITECTURE.md): ``python -m lstmfpga.host.board_infer`` on a PYNQ image
imports this module, the foundation and the board's own host modules only; a QONNX model (which
needs onnx) is the one input that loads another stage.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np

from lstmfpga.foundation.artifact import LstmArtifact
from lstmfpga.foundation.errors import ConfigError
from lstmfpga.foundation.hw.config import MODES, WEIGHT_RESIDENCIES
from lstmfpga.foundation.printable import printable
from lstmfpga.foundation.validation import check_integer

DEFAULT_PORT = 7878
TOKEN_ENV = "LSTMFPGA_STREAM_TOKEN"


def add_model(p) -> None:
    p.add_argument("--model", required=True, help="artifact .npz or Brevitas QONNX .onnx file")


def add_backend(p, *, default: str) -> None:
    p.add_argument("--backend", choices=("golden", "rtl", "pynq"), default=default,
                   help=f"where the LSTM runs (default {default})")
    p.add_argument("--mode", choices=MODES, default=None,
                   help="partition: full (W_x.x on chip) or split (host GEMM); default: the bitstream's, else full")
    p.add_argument("--lanes", type=int, default=8, help="MAC lanes P of the simulated core (rtl backend)")
    p.add_argument("--macs-per-dsp", type=int, default=1,
                   help="gate rows sharing one DSP48E2 in the simulated core (rtl backend; default 1)")
    p.add_argument("--column-sets", type=int, default=1, metavar="{1..16}",
                   help="column sets S of the simulated core (rtl backend; default 1)")
    p.add_argument("--tail-units", type=int, default=1, choices=(1, 2),
                   help="hidden units the simulated core's tail finishes a cycle (rtl backend; default 1)")
    p.add_argument("--weight-ports", type=int, default=1, choices=(1, 2),
                   help="read ports of the simulated core's weight memory (rtl backend; default 1)")
    p.add_argument("--fold-lanes", type=int, default=0,
                   help="with --weight-ports 2: lanes of the simulated core whose weights sit on both ports "
                        "(rtl backend; default 0 = all)")
    p.add_argument("--fold-rows", type=int, default=0,
                   help="with --weight-ports 2: rows those lanes hold on both ports (rtl backend; default 0 = all)")
    p.add_argument("--stream-width", type=int, default=32, choices=(32, 64, 128),
                   help="AXI-Stream TDATA bits of the simulated core (rtl backend; default 32)")
    p.add_argument("--weight-residency", choices=WEIGHT_RESIDENCIES, default="chip",
                   help="the simulated core's weights: on chip (default) or in DDR, read through its "
                        "AXI4 master each step (stream) or, W_x, once a run for an input pass with W_h from "
                        "DDR (all) or on chip (wx; both full mode) (rtl backend, harness)")
    p.add_argument("--ddr-width", type=int, choices=(64, 128), default=128,
                   help="the simulated core's AXI4 read port width (rtl backend, weights in DDR; default 128)")
    p.add_argument("--max-batch", type=int, default=1,
                   help="sequences the simulated core runs as one batch, each fetched weight row serving all"
                        " (rtl backend, weights in DDR; default 1)")
    p.add_argument("--max-steps", type=int, default=None,
                   help="longest sequence of the simulated core (rtl); with --listen on the golden backend, "
                        "the longest sequence accepted (default 4096)")
    p.add_argument("--build-dir", default=None,
                   help="Verilator build cache of the rtl backend (default ~/.cache/lstmfpga/verilator)")
    p.add_argument("--simulator", choices=("harness", "cocotb"), default="harness",
                   help="rtl backend: the compiled C++ harness (default) or the cocotb board (Python per clock)")
    p.add_argument("--jobs", type=int, default=1,
                   help="rtl backend: harness processes sharing each batch (independent cores; default 1)")
    p.add_argument("--overlay", default=None, help="bitstream .bit with its .hwh beside it (pynq backend)")
    p.add_argument("--core-name", default=None, help="core IP name in the overlay (default: found by VLNV)")
    p.add_argument("--dma-name", default=None, help="AXI DMA IP name in the overlay (default: the only one)")
    p.add_argument("--no-double-buffer", action="store_true",
                   help="do not pack the next sequence while the core computes")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds per sequence before a timeout error")


def add_features(p, *, required: bool) -> None:
    p.add_argument("--features", required=required, default=None,
                   help="feature-cache folder (lstmfpga features) or float [N, T, D] X.npy")
    p.add_argument("--labels", default=None, help="0/1 labels .npy for an X.npy input (1 = fake)")
    p.add_argument("--split", default=None, choices=("train", "val", "test"), help="only this split of a cache")
    p.add_argument("--batch", type=int, default=64, help="sequences per backend call")


def add_token(p) -> None:
    p.add_argument("--token", default=None, help=f"shared stream token (or --token-file, or ${TOKEN_ENV})")
    p.add_argument("--token-file", default=None, help="file whose first line is the shared token")


def add_run_options(p, *, backend: str, features_required: bool) -> None:
    """What ``infer`` and ``board-infer`` share: the model, the backend and the feature input."""
    add_model(p)
    add_backend(p, default=backend)
    add_features(p, required=features_required)


def register(subparsers) -> None:
    """Add ``board-infer`` to a parser (the ``lstmfpga`` one, or the board script's)."""
    p = subparsers.add_parser("board-infer", help="run the model on the board: from features or a --listen stream",
                              description="Board-side inference: loads the overlay and the artifact, then runs "
                                          "features from a file or from `lstmfpga serve-features` (--listen).")
    add_run_options(p, backend="pynq", features_required=False)
    p.add_argument("--listen", nargs="?", const=f"127.0.0.1:{DEFAULT_PORT}", default=None, metavar="[HOST:]PORT",
                   help=f"serve a feature stream (default 127.0.0.1:{DEFAULT_PORT}) instead of reading --features")
    p.add_argument("--results", default=None, help="durable JSON-lines log of every result (--listen)")
    p.add_argument("--window", type=int, default=8, help="sequences a sender may have unacknowledged (--listen)")
    p.add_argument("--check-golden", action="store_true", help="also run the NumPy golden and compare integers")
    add_token(p)
    p.set_defaults(handler=board_infer)


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
                            macs_per_dsp=args.macs_per_dsp, column_sets=args.column_sets,
                            tail_units=args.tail_units, weight_ports=args.weight_ports,
                            fold_lanes=args.fold_lanes, fold_rows=args.fold_rows,
                            stream_width=args.stream_width, weight_residency=args.weight_residency,
                            ddr_width=args.ddr_width, max_batch=args.max_batch,
                            double_buffer=double_buffer, simulator=args.simulator, **kw)
    if args.overlay is None:
        raise ConfigError("the pynq backend needs --overlay (the .bit file)")
    return make_backend("pynq", artifact=artifact, overlay=args.overlay, mode=args.mode, core_name=args.core_name,
                        dma_name=args.dma_name, double_buffer=double_buffer, timeout_s=args.timeout)


def timing_line(seconds: np.ndarray, wall: float) -> str:
    n = seconds.size
    return (f"{n} sequences in {wall:.3f} s: {1e6 * wall / max(n, 1):.1f} µs/sequence end to end, "
            f"{n / wall if wall else float('inf'):.1f} sequences/s; backend {1e6 * float(np.mean(seconds)):.1f} µs/sequence")


def load_model(path):
    """An artifact ``.npz`` through the foundation; a Brevitas QONNX file through the quant stage."""
    try:
        with open(path, "rb") as f:
            zipped = f.read(2) == b"PK"
    except OSError:
        zipped = False
    if zipped:
        return LstmArtifact.load(path)
    from lstmfpga.quant.model_file import load_model as load_any  # QONNX needs onnx: never on a board

    return load_any(path)


def board_infer(args) -> int:
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
        print(timing_line(run.seconds, wall))
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
    # the bitstream's T where there is one; else --max-steps, which also bounds the negotiated frame size
    max_steps = backend.config.max_timesteps if hasattr(backend, "config") else args.max_steps
    limits = {"max_steps": max_steps} if max_steps else {}
    handler = BackendHandler(backend=backend, check_golden=args.check_golden, **limits)

    def show(record: dict) -> None:
        verdict = record.get("verdict", "-")
        check = "" if "golden_match" not in record else ("  golden ok" if record["golden_match"] else "  GOLDEN MISMATCH")
        print(f"{printable(record['video_id'])}  {verdict}  p(fake)={record.get('fake_score', float('nan')):.4f}  "
              f"{record['backend_us']:.1f} µs{check}", flush=True)

    server = SequenceServer(handler=handler, token=resolve_token(args), host=host, port=port, window=args.window,
                            results_path=args.results, on_result=show)
    server.start()
    # A server launched from a script's background job inherits SIGINT ignored; Ctrl-C and SIGTERM
    # must still stop it cleanly with its summary.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
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


def _golden_check(artifact, mode: str, features, run) -> list[str]:
    from lstmfpga.host.backends.golden import GoldenBackend
    from lstmfpga.host.infer import run_backend

    golden = run_backend(GoldenBackend(artifact=artifact, mode=mode), features)
    same_h = np.all(golden.h_codes == run.h_codes, axis=(1, 2))
    same = same_h if golden.logits is None else same_h & np.all(golden.logits == run.logits, axis=1)
    return [int(i) for i in np.flatnonzero(~same)]
