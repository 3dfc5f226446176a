"""Inference backends with one API: ``golden`` (NumPy), ``rtl`` (Verilator), ``pynq`` (board).

``make_backend(name, ...)`` imports the chosen one lazily, so the board never imports the
simulator and the simulator host never needs ``pynq``.
"""

from __future__ import annotations

from lstmfpga.host.backends.base import MODES, Backend, BackendOutput, make_backend

__all__ = ["MODES", "Backend", "BackendOutput", "make_backend"]
