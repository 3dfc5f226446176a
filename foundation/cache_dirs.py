"""The user cache folder of each tool's results (Yosys runs, Verilator builds).

``$LSTMFPGA_CACHE_DIR/<tool>``, else ``$XDG_CACHE_HOME/lstmfpga/<tool>``, else
``~/.cache/lstmfpga/<tool>``; read when called, so a changed environment takes effect at once.
"""

from __future__ import annotations

import os
from pathlib import Path


def user_cache_dir(tool: str) -> Path:
    """The cache folder of ``tool`` (e.g. ``"yosys"``, ``"verilator"``) under the rule above."""
    root = os.environ.get("LSTMFPGA_CACHE_DIR")
    if root:
        return Path(root) / tool
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "lstmfpga" / tool
