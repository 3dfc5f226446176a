"""The integer LSTM artifact: the contract between training, hardware, simulation and host.

See ``docs/INTEGER_CONTRACT.md`` for the arithmetic. NumPy only (the board host imports it).
An artifact is one uncompressed ``.npz`` file: integer arrays plus a JSON header, with a
SHA-256 over a canonical serialisation of both.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import numpy as np

from lstmfpga.foundation.atomic import atomic_file
from lstmfpga.foundation.errors import ArtifactError
from lstmfpga.foundation.fixed_point import QuantSpec, Requant

FORMAT_NAME = "lstmfpga-integer-lstm"
FORMAT_VERSION = 1
#: Gate order of every per-gate array: torch.nn.LSTM's i, f, g, o.
GATES = ("input", "forget", "cell", "output")
#: Per-layer quantizers of a Brevitas QuantLSTM layer, plus one weight quantizer per gate.
ACTIVATION_QUANTIZERS = (
    "io", "cell_state", "input_acc", "forget_acc", "cell_acc", "output_acc",
    "input_sigmoid", "forget_sigmoid", "cell_tanh", "output_sigmoid", "hidden_tanh",
)
WEIGHT_QUANTIZERS = tuple(f"weight_{g}" for g in GATES)
LAYER_QUANTIZERS = ACTIVATION_QUANTIZERS + WEIGHT_QUANTIZERS
ACC_QUANTIZERS = ("input_acc", "forget_acc", "cell_acc", "output_acc")
GATE_OUT_QUANTIZERS = ("input_sigmoid", "forget_sigmoid", "cell_tanh", "output_sigmoid")


def _int_array(name: str, a, shape: tuple[int, ...], lo: int, hi: int) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype.kind not in "iu":
        raise ArtifactError(f"{name}: expected an integer array, got dtype {a.dtype}")
    if a.shape != shape:
        raise ArtifactError(f"{name}: expected shape {shape}, got {a.shape}")
    if a.size and (int(a.min()) < lo or int(a.max()) > hi):
        raise ArtifactError(f"{name}: values outside the code range [{lo}, {hi}] "
                            f"(found [{int(a.min())}, {int(a.max())}])")
    return a


@dataclass(frozen=True, eq=False)
class LayerArtifact:
    """One unidirectional quantized LSTM layer and its integer recipe."""

    input_size: int
    hidden_size: int
    w_x: np.ndarray           # int [4, H, I]
    w_h: np.ndarray           # int [4, H, H]
    bias: np.ndarray          # int [4, H], scale s_io * s_w[g]
    quant: Mapping[str, QuantSpec]
    gate_requant: tuple[Requant, Requant, Requant, Requant]
    gate_tables: np.ndarray   # int [4, 2**b_acc], indexed by acc code - acc lo
    fc_requant: Requant
    ig_requant: Requant
    tanh_c_table: np.ndarray  # int [2**b_cell], indexed by cell code - cell lo
    h_requant: Requant

    def __post_init__(self):
        H, I = self.hidden_size, self.input_size
        if not (isinstance(H, int) and H >= 1 and isinstance(I, int) and I >= 1):
            raise ArtifactError(f"layer sizes must be positive integers, not I={I!r}, H={H!r}")
        missing = [n for n in LAYER_QUANTIZERS if n not in self.quant]
        if missing:
            raise ArtifactError(f"layer is missing quantizers: {', '.join(missing)}")
        _int_array("w_x", self.w_x, (4, H, I), -(1 << 31), (1 << 31) - 1)
        _int_array("w_h", self.w_h, (4, H, H), -(1 << 31), (1 << 31) - 1)
        _int_array("bias", self.bias, (4, H), -(1 << 31), (1 << 31) - 1)
        for g, gate in enumerate(GATES):
            wq = self.quant[f"weight_{gate}"]
            _int_array(f"w_x[{gate}]", self.w_x[g], (H, I), wq.lo, wq.hi)
            _int_array(f"w_h[{gate}]", self.w_h[g], (H, H), wq.lo, wq.hi)
        acc_bits = {self.quant[n].bits for n in ACC_QUANTIZERS}
        if len(acc_bits) != 1:
            raise ArtifactError(f"all gate accumulator quantizers must share one bit width, got {acc_bits}")
        if len(self.gate_requant) != 4:
            raise ArtifactError("gate_requant must hold one Requant per gate")
        for g, (name, out) in enumerate(zip(ACC_QUANTIZERS, GATE_OUT_QUANTIZERS)):
            q = self.quant[name]
            if (self.gate_requant[g].lo, self.gate_requant[g].hi) != (q.lo, q.hi):
                raise ArtifactError(f"gate_requant[{g}] clamp range does not match quantizer {name}")
            oq = self.quant[out]
            _int_array(f"gate_tables[{GATES[g]}]", self.gate_tables[g], (q.levels,), oq.lo, oq.hi)
        cq = self.quant["cell_state"]
        _int_array("tanh_c_table", self.tanh_c_table, (cq.levels,), self.quant["hidden_tanh"].lo,
                   self.quant["hidden_tanh"].hi)

    @property
    def acc_quant(self) -> tuple[QuantSpec, ...]:
        return tuple(self.quant[n] for n in ACC_QUANTIZERS)

    @property
    def cell_lo(self) -> int:
        return self.quant["cell_state"].lo

    @property
    def cell_hi(self) -> int:
        return self.quant["cell_state"].hi

    @property
    def weight_bits(self) -> int:
        return max(self.quant[n].bits for n in WEIGHT_QUANTIZERS)

    def weight_scales(self) -> np.ndarray:
        return np.array([self.quant[n].scale for n in WEIGHT_QUANTIZERS], dtype=np.float64)


@dataclass(frozen=True, eq=False)
class ClassifierArtifact:
    """The QuantLinear classifier on the last time step's hidden state of the last layer."""

    weight: np.ndarray  # int [C, H]
    bias: np.ndarray    # int [C], scale s_io * s_w
    weight_quant: QuantSpec
    input_scale: float  # s_io of the hidden state it reads

    def __post_init__(self):
        if self.weight.ndim != 2:
            raise ArtifactError(f"classifier weight must be 2-D [C, H], got shape {self.weight.shape}")
        C, H = self.weight.shape
        _int_array("classifier.weight", self.weight, (C, H), self.weight_quant.lo, self.weight_quant.hi)
        _int_array("classifier.bias", self.bias, (C,), -(1 << 31), (1 << 31) - 1)

    @property
    def num_classes(self) -> int:
        return int(self.weight.shape[0])

    @property
    def out_scale(self) -> float:
        """Scale of the integer logits: ``logit = int_logit * out_scale``."""
        return float(np.float64(self.input_scale) * np.float64(self.weight_quant.scale))


@dataclass(frozen=True, eq=False)
class Normalization:
    """Feature standardisation ``clip((x - mean) / std, -clip, clip)`` in float32: fitted by training,
    applied again by QAT, the golden model and the host before the io quantizer."""

    mean: np.ndarray  # float32 [I]
    std: np.ndarray   # float32 [I]
    clip: float

    def __post_init__(self):
        if self.mean.shape != self.std.shape or self.mean.ndim != 1:
            raise ArtifactError(f"normalization mean/std must be 1-D of equal length, got "
                                f"{self.mean.shape} and {self.std.shape}")
        if not np.all(np.isfinite(self.mean)) or not np.all(self.std > 0):
            raise ArtifactError("normalization mean must be finite and std positive")
        if not (self.clip > 0):
            raise ArtifactError(f"normalization clip must be positive, not {self.clip!r}")

    @classmethod
    def fit(cls, features: np.ndarray, *, clip: float) -> "Normalization":
        """Mean and std of ``features [N, T, D]`` over videos and frames (float64 sums)."""
        flat = np.asarray(features, dtype=np.float64).reshape(-1, features.shape[-1])
        mean = flat.mean(axis=0)
        std = flat.std(axis=0)
        # A constant feature (e.g. a dead ReLU channel) would divide by zero: leave it centred.
        std = np.where(std < 1e-6, 1.0, std)
        return cls(mean=mean.astype(np.float32), std=std.astype(np.float32), clip=float(clip))

    def apply(self, x: np.ndarray) -> np.ndarray:
        x32 = np.asarray(x, dtype=np.float32)
        z = (x32 - self.mean.astype(np.float32)) / self.std.astype(np.float32)
        return np.clip(z, np.float32(-self.clip), np.float32(self.clip)).astype(np.float32)


@dataclass(frozen=True, eq=False)
class LstmArtifact:
    """A complete quantized LSTM head: layers, optional classifier and normalisation."""

    layers: tuple[LayerArtifact, ...]
    classifier: ClassifierArtifact | None = None
    normalization: Normalization | None = None
    meta: Mapping[str, object] = field(default_factory=dict)

    def __post_init__(self):
        if not 1 <= len(self.layers) <= 3:
            raise ArtifactError(f"an artifact holds 1 to 3 layers, not {len(self.layers)}")
        io = self.layers[0].quant["io"]
        for l, layer in enumerate(self.layers):
            if layer.quant["io"] != io:
                raise ArtifactError(f"layer {l} io quantizer differs from layer 0: the integer "
                                    "datapath needs x and h of every layer at one scale")
            if layer.hidden_size != self.hidden_size:
                raise ArtifactError(f"layer {l} hidden size {layer.hidden_size} != {self.hidden_size}")
            if l > 0 and layer.input_size != self.hidden_size:
                raise ArtifactError(f"layer {l} input size {layer.input_size} != hidden size {self.hidden_size}")
        if self.classifier is not None and self.classifier.weight.shape[1] != self.hidden_size:
            raise ArtifactError(f"classifier expects {self.classifier.weight.shape[1]} inputs, "
                                f"the LSTM has hidden size {self.hidden_size}")
        if self.normalization is not None and self.normalization.mean.shape[0] != self.input_size:
            raise ArtifactError(f"normalization has {self.normalization.mean.shape[0]} features, "
                                f"the LSTM input size is {self.input_size}")

    @property
    def input_size(self) -> int:
        return self.layers[0].input_size

    @property
    def hidden_size(self) -> int:
        return self.layers[0].hidden_size

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    @property
    def num_classes(self) -> int:
        return 0 if self.classifier is None else self.classifier.num_classes

    @property
    def io_quant(self) -> QuantSpec:
        return self.layers[0].quant["io"]

    @property
    def weight_bits(self) -> int:
        return max(layer.weight_bits for layer in self.layers)

    # -- serialisation -----------------------------------------------------------------
    def _header_and_arrays(self) -> tuple[dict, dict[str, np.ndarray]]:
        arrays: dict[str, np.ndarray] = {}
        layers = []
        for l, layer in enumerate(self.layers):
            p = f"layer{l}/"
            arrays[p + "w_x"] = np.ascontiguousarray(layer.w_x, dtype="<i2")
            arrays[p + "w_h"] = np.ascontiguousarray(layer.w_h, dtype="<i2")
            arrays[p + "bias"] = np.ascontiguousarray(layer.bias, dtype="<i8")
            arrays[p + "gate_tables"] = np.ascontiguousarray(layer.gate_tables, dtype="<i4")
            arrays[p + "tanh_c_table"] = np.ascontiguousarray(layer.tanh_c_table, dtype="<i4")
            layers.append({
                "input_size": layer.input_size,
                "hidden_size": layer.hidden_size,
                "quant": {k: layer.quant[k].to_dict() for k in LAYER_QUANTIZERS},
                "gate_requant": [r.to_dict() for r in layer.gate_requant],
                "fc_requant": layer.fc_requant.to_dict(),
                "ig_requant": layer.ig_requant.to_dict(),
                "h_requant": layer.h_requant.to_dict(),
            })
        header: dict = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "layers": layers,
                        "meta": dict(self.meta)}
        if self.classifier is not None:
            arrays["classifier/weight"] = np.ascontiguousarray(self.classifier.weight, dtype="<i2")
            arrays["classifier/bias"] = np.ascontiguousarray(self.classifier.bias, dtype="<i8")
            header["classifier"] = {"weight_quant": self.classifier.weight_quant.to_dict(),
                                    "input_scale": self.classifier.input_scale}
        if self.normalization is not None:
            arrays["normalization/mean"] = np.ascontiguousarray(self.normalization.mean, dtype="<f4")
            arrays["normalization/std"] = np.ascontiguousarray(self.normalization.std, dtype="<f4")
            header["normalization"] = {"clip": float(self.normalization.clip)}
        return header, arrays

    @staticmethod
    def _digest(header: dict, arrays: Mapping[str, np.ndarray]) -> str:
        h = hashlib.sha256()
        content = {k: v for k, v in header.items() if k not in ("sha256", "meta")}
        h.update(json.dumps(content, sort_keys=True, separators=(",", ":")).encode())
        for name in sorted(arrays):
            a = arrays[name]
            h.update(f"\0{name}\0{a.dtype.str}\0{a.shape}\0".encode())
            h.update(np.ascontiguousarray(a).tobytes())
        return h.hexdigest()

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of the model content (weights, recipe, classifier, normalisation).

        ``meta`` (provenance notes) is excluded, so the same model exported by different
        routes (Brevitas object, QONNX file) hashes the same.
        """
        cached = self.__dict__.get("_sha256")
        if cached is None:
            cached = self._digest(*self._header_and_arrays())
            object.__setattr__(self, "_sha256", cached)
        return cached

    def save(self, path: str | os.PathLike) -> Path:
        """Write atomically: a temporary file in the same folder, then ``os.replace``."""
        path = Path(path)
        header, arrays = self._header_and_arrays()
        header["sha256"] = self.sha256
        with atomic_file(path) as f:
            np.savez(f, header=np.frombuffer(json.dumps(header).encode(), dtype=np.uint8),
                     **{k.replace("/", "__"): v for k, v in arrays.items()})
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "LstmArtifact":
        path = Path(path)
        if not path.is_file():
            raise ArtifactError(f"artifact not found: {path}")
        try:
            with np.load(path, allow_pickle=False) as z:
                files = {k: z[k] for k in z.files}
        except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
            raise ArtifactError(f"{path}: not a readable lstmfpga artifact (corrupt or wrong format: {exc})") from None
        if "header" not in files:
            raise ArtifactError(f"{path}: not an lstmfpga artifact (no header)")
        try:
            header = json.loads(files.pop("header").tobytes().decode())
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ArtifactError(f"{path}: corrupt artifact header ({exc})") from None
        if header.get("format") != FORMAT_NAME:
            raise ArtifactError(f"{path}: not an lstmfpga artifact (format {header.get('format')!r})")
        if header.get("version") != FORMAT_VERSION:
            raise ArtifactError(f"{path}: artifact format version {header.get('version')!r}; this "
                                f"lstmfpga reads version {FORMAT_VERSION}: re-export the model")
        arrays = {k.replace("__", "/"): v for k, v in files.items()}
        digest = cls._digest(header, arrays)
        if digest != header.get("sha256"):
            raise ArtifactError(f"{path}: content hash mismatch (header says {header.get('sha256')}, "
                                f"content hashes to {digest}): the file was modified or is corrupt")
        try:
            artifact = cls._from_parts(header, arrays)
        except KeyError as exc:
            raise ArtifactError(f"{path}: artifact is missing {exc}") from None
        object.__setattr__(artifact, "_sha256", digest)
        return artifact

    @classmethod
    def _from_parts(cls, header: dict, arrays: Mapping[str, np.ndarray]) -> "LstmArtifact":
        layers = []
        for l, lh in enumerate(header["layers"]):
            p = f"layer{l}/"
            layers.append(LayerArtifact(
                input_size=int(lh["input_size"]), hidden_size=int(lh["hidden_size"]),
                w_x=arrays[p + "w_x"].astype(np.int64), w_h=arrays[p + "w_h"].astype(np.int64),
                bias=arrays[p + "bias"].astype(np.int64),
                quant={k: QuantSpec.from_dict(v) for k, v in lh["quant"].items()},
                gate_requant=tuple(Requant.from_dict(r) for r in lh["gate_requant"]),
                gate_tables=arrays[p + "gate_tables"].astype(np.int64),
                fc_requant=Requant.from_dict(lh["fc_requant"]),
                ig_requant=Requant.from_dict(lh["ig_requant"]),
                tanh_c_table=arrays[p + "tanh_c_table"].astype(np.int64),
                h_requant=Requant.from_dict(lh["h_requant"]),
            ))
        classifier = None
        if "classifier" in header:
            ch = header["classifier"]
            classifier = ClassifierArtifact(
                weight=arrays["classifier/weight"].astype(np.int64),
                bias=arrays["classifier/bias"].astype(np.int64),
                weight_quant=QuantSpec.from_dict(ch["weight_quant"]),
                input_scale=float(ch["input_scale"]))
        normalization = None
        if "normalization" in header:
            normalization = Normalization(mean=arrays["normalization/mean"].astype(np.float32),
                                          std=arrays["normalization/std"].astype(np.float32),
                                          clip=float(header["normalization"]["clip"]))
        return cls(layers=tuple(layers), classifier=classifier, normalization=normalization,
                   meta=header.get("meta", {}))

    def summary(self) -> str:
        io = self.io_quant
        parts = [f"LSTM I={self.input_size} H={self.hidden_size} L={self.num_layers}",
                 f"weights {self.weight_bits}-bit", f"io {io.bits}-bit (scale {io.scale:.6g})"]
        if self.classifier is not None:
            parts.append(f"classifier {self.num_classes} classes")
        parts.append(f"sha256 {self.sha256[:16]}…")
        return ", ".join(parts)

