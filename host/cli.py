"""Subcommands of the host stage: ``infer``, ``serve-features``, ``board-infer``, ``overlay``.

Registration is argparse only; handlers live in ``lstmfpga.host.commands`` and import what they
need when they run (the board has no torch).
"""

from __future__ import annotations

from lstmfpga.foundation.hw.config import MODES
from lstmfpga.hw.boards import BOARD_KEYS

DEFAULT_PORT = 7878
TOKEN_ENV = "LSTMFPGA_STREAM_TOKEN"


def _handler(name: str):
    def call(args):
        from lstmfpga.host import commands

        return getattr(commands, name)(args)

    return call


def _add_model(p) -> None:
    p.add_argument("--model", required=True, help="artifact .npz or Brevitas QONNX .onnx file")


def _add_backend(p, *, default: str) -> None:
    p.add_argument("--backend", choices=("golden", "rtl", "pynq"), default=default,
                   help=f"where the LSTM runs (default {default})")
    p.add_argument("--mode", choices=MODES, default=None,
                   help="partition: full (W_x.x on chip) or split (host GEMM); default: the bitstream's, else full")
    p.add_argument("--lanes", type=int, default=8, help="MAC lanes P of the simulated core (rtl backend)")
    p.add_argument("--max-steps", type=int, default=None, help="longest sequence of the simulated core (rtl)")
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


def _add_features(p, *, required: bool) -> None:
    p.add_argument("--features", required=required, default=None,
                   help="feature-cache folder (lstmfpga features) or float [N, T, D] X.npy")
    p.add_argument("--labels", default=None, help="0/1 labels .npy for an X.npy input (1 = fake)")
    p.add_argument("--split", default=None, choices=("train", "val", "test"), help="only this split of a cache")
    p.add_argument("--batch", type=int, default=64, help="sequences per backend call")


def _add_token(p) -> None:
    p.add_argument("--token", default=None, help=f"shared stream token (or --token-file, or ${TOKEN_ENV})")
    p.add_argument("--token-file", default=None, help="file whose first line is the shared token")


def register(subparsers) -> None:
    """Add this stage's subcommands to the ``lstmfpga`` parser."""
    p = subparsers.add_parser("infer", help="run a model on features with the golden, rtl or pynq backend",
                              description="Run the quantized LSTM on features; print per-video verdicts and, "
                                          "with labels, accuracy / precision / recall / F1 / confusion matrix.")
    _add_model(p)
    _add_backend(p, default="golden")
    _add_features(p, required=True)
    p.add_argument("--out", default=None, help="write the dequantized hidden sequence [N, T, H] here "
                   "(logits to <out>_logits.npy), as lstmfpga golden does")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="cpu",
                   help="where the split-mode GEMM runs (default cpu)")
    p.set_defaults(handler=_handler("infer"))

    p = subparsers.add_parser("serve-features", help="stream quantized features to a board (the CPU/GPU side)",
                              description="Read features, standardize and quantize them with the artifact "
                                          "(split mode: also the W_x.x GEMM), and stream them to "
                                          "`lstmfpga board-infer --listen`; results are appended to --results.")
    _add_model(p)
    _add_features(p, required=True)
    p.add_argument("--videos", default=None, metavar="DATASET_ROOT",
                   help="first extract features of this dataset into the --features cache folder with the model "
                        "stage's extractor (decode, sample, ResNet-50; resumable), then stream them")
    p.add_argument("--dataset", default="forgerynet", help="layout of --videos (as `lstmfpga features --dataset`)")
    p.add_argument("--frames", type=int, default=16, help="frames per video for --videos")
    p.add_argument("--image-size", type=int, default=224, help="crop side for --videos")
    p.add_argument("--backbone-weights", default="random", help="ResNet-50 weights for --videos (path or imagenet)")
    p.add_argument("--board", default=f"127.0.0.1:{DEFAULT_PORT}", help="HOST:PORT of the board (default loopback)")
    p.add_argument("--mode", choices=MODES, default="full", help="the board's partition mode")
    p.add_argument("--send-float", action="store_true", help="send float32 features; the board quantizes")
    p.add_argument("--results", default="stream_results.jsonl",
                   help="durable log of acknowledged results; a rerun resumes after them")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="where the split GEMM runs")
    p.add_argument("--queue", type=int, default=16, help="prepared sequences buffered ahead of the network")
    p.add_argument("--retries", type=int, default=5, help="reconnection attempts after a dropped connection")
    _add_token(p)
    p.set_defaults(handler=_handler("serve_features"))

    p = subparsers.add_parser("board-infer", help="run the model on the board: from features or a --listen stream",
                              description="Board-side inference: loads the overlay and the artifact, then runs "
                                          "features from a file or from `lstmfpga serve-features` (--listen).")
    _add_model(p)
    _add_backend(p, default="pynq")
    _add_features(p, required=False)
    p.add_argument("--listen", nargs="?", const=f"127.0.0.1:{DEFAULT_PORT}", default=None, metavar="[HOST:]PORT",
                   help=f"serve a feature stream (default 127.0.0.1:{DEFAULT_PORT}) instead of reading --features")
    p.add_argument("--results", default=None, help="durable JSON-lines log of every result (--listen)")
    p.add_argument("--window", type=int, default=8, help="sequences a sender may have unacknowledged (--listen)")
    p.add_argument("--check-golden", action="store_true", help="also run the NumPy golden and compare integers")
    _add_token(p)
    p.set_defaults(handler=_handler("board_infer"))

    p = subparsers.add_parser("overlay", help="write the Vivado TCL that packages the core and builds the block design",
                              description="Generate Vivado TCL next to the Verilog (in the manifest's folder): IP packaging and a block design "
                                          "(Zynq PS + AXI DMA + the core) for a board.")
    p.add_argument("--manifest", required=True, help="manifest.json written by `lstmfpga hdl`")
    p.add_argument("--board", required=True, choices=BOARD_KEYS,
                   help="the same board keys as `lstmfpga plan`")
    p.set_defaults(handler=_handler("overlay"))
