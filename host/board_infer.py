"""``python -m lstmfpga.host.board_infer`` — the same as ``lstmfpga board-infer``, for a PYNQ image
where only this package's board path is installed."""

from __future__ import annotations

import argparse
import sys

from lstmfpga.foundation.errors import LstmfpgaError
from lstmfpga.host import board_command


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lstmfpga.host.board_infer")
    sub = parser.add_subparsers(dest="command")
    board_command.register(sub)
    args = parser.parse_args(["board-infer", *(sys.argv[1:] if argv is None else argv)])
    try:
        return int(args.handler(args) or 0)
    except LstmfpgaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
