"""Subcommands of the host stage: ``infer``, ``serve-features``, ``board-infer``, ``overlay``.

Registration is argparse only; handlers live in ``lstmfpga.host.commands`` and import what they
need when they run (the board has no torch). ``board-infer`` and the options the commands share
live in ``lstmfpga.host.board_command``, which the board imports without this module.
"""

from __future__ import annotations

from lstmfpga.foundation.hw.config import MODES
from lstmfpga.host import board_command
from lstmfpga.host.board_command import DEFAULT_PORT, add_features, add_model, add_run_options, add_token
from lstmfpga.hw.boards import BOARD_KEYS


def _handler(name: str):
    def call(args):
        from lstmfpga.host import commands

        return getattr(commands, name)(args)

    return call


def register(subparsers) -> None:
    """Add this stage's subcommands to the ``lstmfpga`` parser."""
    p = subparsers.add_parser("infer", help="run a model on features with the golden, rtl or pynq backend",
                              description="Run the quantized LSTM on features; print per-video verdicts and, "
                                          "with labels, accuracy / precision / recall / F1 / confusion matrix.")
    add_run_options(p, backend="golden", features_required=True)
    p.add_argument("--out", default=None, help="write the dequantized hidden sequence [N, T, H] here "
                   "(logits to <out>_logits.npy), as lstmfpga golden does")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="cpu",
                   help="where the split-mode GEMM runs (default cpu)")
    p.set_defaults(handler=_handler("infer"))

    p = subparsers.add_parser("serve-features", help="stream quantized features to a board (the CPU/GPU side)",
                              description="Read features, standardize and quantize them with the artifact "
                                          "(split mode: also the W_x.x GEMM), and stream them to "
                                          "`lstmfpga board-infer --listen`; results are appended to --results.")
    add_model(p)
    add_features(p, required=True)
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
    add_token(p)
    p.set_defaults(handler=_handler("serve_features"))

    board_command.register(subparsers)

    p = subparsers.add_parser("overlay", help="write the Vivado TCL that packages the core and builds the block design",
                              description="Generate Vivado TCL next to the Verilog (in the manifest's folder): IP packaging and a block design "
                                          "(Zynq PS + AXI DMA + the core) for a board.")
    p.add_argument("--manifest", required=True, help="manifest.json written by `lstmfpga hdl`")
    p.add_argument("--board", required=True, choices=BOARD_KEYS,
                   help="the same board keys as `lstmfpga plan`")
    p.set_defaults(handler=_handler("overlay"))
