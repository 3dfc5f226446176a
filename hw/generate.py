"""Verilog generation: ``generate_verilog(config, out_dir)`` writes the RTL and its manifest."""

from __future__ import annotations

import os
from pathlib import Path

from lstmfpga.hw import manifest as manifest_mod
from lstmfpga.hw.manifest import TOP_NAME


def verilog_text(config) -> str:
    """The Verilog of the top level for ``config`` (one self-contained file)."""
    from amaranth.back import verilog

    from lstmfpga.hw.rtl.top import LstmAcceleratorTop

    top = LstmAcceleratorTop(config=config)
    ports = [getattr(top, name) for name in top.signature.members]
    return verilog.convert(top, name=TOP_NAME, ports=ports, emit_src=False)


def generate_verilog(config, out_dir: str | os.PathLike, *, artifact=None, text: str | None = None) -> Path:
    """Write ``<out_dir>/lstm_accel.v`` and ``manifest.json``; return the manifest path.

    ``artifact`` (optional) is recorded in the manifest (its hash and the weight image size) so
    that the host knows which model the bitstream was generated for; the hardware itself loads
    weights at run time.  ``text`` reuses an already converted :func:`verilog_text`.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    verilog_path = out / f"{TOP_NAME}.v"
    verilog_path.write_text(verilog_text(config) if text is None else text)
    data = manifest_mod.build_manifest(config, verilog_files=[verilog_path.name], artifact=artifact)
    return manifest_mod.write_manifest(data, out / manifest_mod.MANIFEST_NAME)
