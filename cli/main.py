"""Entry point of the ``lstmfpga`` console script.

Each stage package owns its subcommands in its own ``cli`` module, which exposes
``register(subparsers)``.  Registration must stay cheap (argparse only): heavy imports (torch,
amaranth, cocotb) happen inside the command handlers, so ``lstmfpga golden`` on a board never
imports torch.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from lstmfpga.foundation.errors import LstmfpgaError

#: Stage packages whose ``cli.register`` adds subcommands, in help order.
STAGE_CLIS = (
    "lstmfpga.model.cli",
    "lstmfpga.quant.cli",
    "lstmfpga.sim.cli",
    "lstmfpga.hw.cli",
    "lstmfpga.host.cli",
    "lstmfpga.cli.demo",
    "lstmfpga.cli.bench",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lstmfpga",
        description="Deepfake-video detector with a quantized LSTM head on an FPGA.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for module_name in STAGE_CLIS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            # A stage that is not installed (the board image ships no model/ or quant/) simply
            # contributes no commands; any other missing module is a real error.
            if exc.name == module_name:
                continue
            raise
        module.register(subparsers)
    return parser


def one_line(message: str) -> str:
    """``message`` on one line: a library's multi-line text must not look like several errors."""
    return " ".join(line.strip() for line in message.splitlines() if line.strip())


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result = args.handler(args)
    except LstmfpgaError as exc:
        print(f"error: {one_line(str(exc))}", file=sys.stderr)
        return 2
    except OSError as exc:
        # A path the user gave that cannot be written or read (a file where a folder must be, a
        # full disk, no permission): their input, not a bug.
        where = f": {exc.filename}" if exc.filename is not None else ""
        print(f"error: {one_line(exc.strerror or str(exc))}{where}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
