"""The hardware manifest written by ``lstmfpga hdl`` next to the Verilog (NumPy/stdlib only).

It records everything the host needs to drive a generated core without importing amaranth: the
configuration, register map, stream formats, weight-image layout and the cycle model numbers.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

from lstmfpga.foundation.errors import ArtifactError, ConfigError
from lstmfpga.hw import cycle_model
from lstmfpga.foundation.hw import ddr_image, register_map, stream_format, weight_image
from lstmfpga.foundation.hw.config import AcceleratorConfig

#: The Verilog module (and file stem) of the accelerator's top level.
TOP_NAME = "lstm_accel"

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = "lstmfpga-hw-manifest"
MANIFEST_VERSION = 1


@dataclasses.dataclass(frozen=True)
class HwManifest:
    """A parsed manifest."""

    config: AcceleratorConfig
    top: str
    verilog_files: tuple[str, ...]
    registers: dict[str, Any]
    streams: dict[str, Any]
    weight_image: dict[str, Any]
    cycle_model: dict[str, Any]
    artifact_sha256: str | None
    directory: Path | None = None

    @property
    def verilog_paths(self) -> list[Path]:
        base = self.directory or Path(".")
        return [base / name for name in self.verilog_files]

    def register_offset(self, name: str) -> int:
        try:
            return int(self.registers["registers"][name])
        except KeyError:
            raise ArtifactError(f"manifest has no register named {name!r}") from None


def build_manifest(config: AcceleratorConfig, *, verilog_files: list[str], artifact=None) -> dict[str, Any]:
    estimates = {str(T): cycle_model.estimate(config, T).to_dict() for T in sorted({1, config.max_timesteps})}
    return {
        "format": MANIFEST_FORMAT,
        "version": MANIFEST_VERSION,
        "top": TOP_NAME,
        "verilog_files": list(verilog_files),
        "config": config.to_dict(),
        "registers": register_map.as_dict(),
        "streams": stream_format.describe(config),
        "weight_image": {
            "magic": weight_image.IMAGE_MAGIC,
            "version": weight_image.IMAGE_VERSION,
            "header_words": weight_image.HEADER_WORDS,
            "words": weight_image.image_words(config),
            "row_words": weight_image.row_words(config),
        },
        "cycle_model": {
            "engine_latency": cycle_model.engine_latency(config),
            "tail_latency": cycle_model.TAIL_LATENCY,
            "estimates": estimates,
            **({"ddr_note": "weights in DDR: these are the cycles with an ideal memory (a lower bound); "
                            "lstmfpga.hw.ddr_schedule.estimate_ddr(config, T, residency, port=) times a real one"}
               if config.ddr_weights else {}),
        },
        **({"ddr_image": {"bytes": ddr_image.layer_offsets(config, config.ddr_width)[-1],
                          "row_bytes": ddr_image.row_bytes(config, config.ddr_width),
                          "layer_offsets": ddr_image.layer_offsets(config, config.ddr_width)[:-1]}}
           if config.ddr_weights else {}),
        "artifact_sha256": None if artifact is None else artifact.sha256,
    }


def write_manifest(data: dict[str, Any], path: str | os.PathLike) -> Path:
    path = Path(path)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    return path


def read_manifest(path: str | os.PathLike) -> HwManifest:
    """Read a manifest file (or the ``manifest.json`` inside a directory)."""
    path = Path(path)
    if path.is_dir():
        path = path / MANIFEST_NAME
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ArtifactError(f"{path}: no such manifest") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{path}: not a JSON manifest ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
        raise ArtifactError(f"{path}: not an lstmfpga hardware manifest (format {data.get('format')!r})"
                            if isinstance(data, dict) else f"{path}: not an lstmfpga hardware manifest")
    if data.get("version") != MANIFEST_VERSION:
        raise ArtifactError(f"{path}: manifest version {data.get('version')!r} is not supported "
                            f"(expected {MANIFEST_VERSION})")
    try:
        config = AcceleratorConfig.from_dict(data["config"])
        return HwManifest(config=config, top=data["top"], verilog_files=tuple(data["verilog_files"]),
                          registers=data["registers"], streams=data["streams"],
                          weight_image=data["weight_image"], cycle_model=data["cycle_model"],
                          artifact_sha256=data.get("artifact_sha256"), directory=path.parent)
    except KeyError as exc:
        raise ArtifactError(f"{path}: manifest lacks field {exc.args[0]!r}") from None
    except ConfigError as exc:
        raise ArtifactError(f"{path}: bad config in manifest: {exc}") from None
