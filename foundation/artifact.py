"""The integer LSTM artifact: the contract between training, hardware, simulation and host.

See ``docs/INTEGER_CONTRACT.md`` for the arithmetic. NumPy only (the board host imports it).
An artifact is one uncompressed ``.npz`` file: integer arrays plus a JSON header, with a
SHA-256 over a canonical serialisation of both.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import numpy as np

from lstmfpga.foundation.artifact_header import (BIAS_DTYPE, FLOAT_DTYPE, MAX_CLASSES, MAX_CODE_BITS,
                                                 TABLE_DTYPE, WEIGHT_DTYPE, parse_header, positive_real)
from lstmfpga.foundation.atomic import atomic_file
from lstmfpga.foundation.errors import ArtifactError
from lstmfpga.foundation.fixed_point import QuantSpec, Requant
from lstmfpga.foundation.stored_npz import StoredNpz
from lstmfpga.foundation.validation import is_integer

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
#: A header is JSON of a few kilobytes; more is not an artifact.
MAX_HEADER_BYTES = 1 << 22


def _check_quant(name: str, spec, storage: str | None = None) -> None:
    """A quantizer the artifact can hold: at most MAX_CODE_BITS wide, its codes fitting ``storage``."""
    if not isinstance(spec, QuantSpec):
        raise ArtifactError(f"quantizer {name} must be a QuantSpec, not {type(spec).__name__}")
    if spec.bits > MAX_CODE_BITS:
        raise ArtifactError(f"quantizer {name}: bit width {spec.bits} exceeds {MAX_CODE_BITS} "
                            f"(a {spec.bits}-bit code would need a 2**{spec.bits}-entry table or wider storage)")
    if storage is not None:
        info = np.iinfo(storage)
        if spec.lo < info.min or spec.hi > info.max:
            raise ArtifactError(f"quantizer {name}: codes [{spec.lo}, {spec.hi}] do not fit the artifact's "
                                f"{np.dtype(storage)} storage")


def _check_clamp(name: str, requant, spec: QuantSpec, spec_name: str) -> None:
    if not isinstance(requant, Requant):
        raise ArtifactError(f"{name} must be a Requant, not {type(requant).__name__}")
    if (requant.lo, requant.hi) != (spec.lo, spec.hi):
        raise ArtifactError(f"{name} clamp range [{requant.lo}, {requant.hi}] does not match quantizer "
                            f"{spec_name} [{spec.lo}, {spec.hi}]")


def _stored(name: str, a: np.ndarray, dtype: str) -> np.ndarray:
    """``a`` in its storage dtype; refuses values the dtype cannot hold instead of wrapping them."""
    if a.dtype.kind in "iu" and np.dtype(dtype).kind == "i" and a.size:
        info = np.iinfo(dtype)
        if int(a.min()) < info.min or int(a.max()) > info.max:
            raise ArtifactError(f"{name}: values [{int(a.min())}, {int(a.max())}] do not fit the artifact's "
                                f"{np.dtype(dtype)} storage")
    return np.ascontiguousarray(a, dtype=dtype)


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
        if not (is_integer(H) and H >= 1 and is_integer(I) and I >= 1):
            raise ArtifactError(f"layer sizes must be positive integers, not I={I!r}, H={H!r}")
        missing = [n for n in LAYER_QUANTIZERS if n not in self.quant]
        if missing:
            raise ArtifactError(f"layer is missing quantizers: {', '.join(missing)}")
        for name in LAYER_QUANTIZERS:
            storage = (WEIGHT_DTYPE if name in WEIGHT_QUANTIZERS
                       else TABLE_DTYPE if name in GATE_OUT_QUANTIZERS + ("hidden_tanh",) else None)
            _check_quant(name, self.quant[name], storage)
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
        cq, io = self.quant["cell_state"], self.quant["io"]
        _check_clamp("fc_requant", self.fc_requant, cq, "cell_state")
        _check_clamp("ig_requant", self.ig_requant, cq, "cell_state")
        _check_clamp("h_requant", self.h_requant, io, "io")
        for g, (name, out) in enumerate(zip(ACC_QUANTIZERS, GATE_OUT_QUANTIZERS)):
            q = self.quant[name]
            _check_clamp(f"gate_requant[{g}]", self.gate_requant[g], q, name)
            oq = self.quant[out]
            _int_array(f"gate_tables[{GATES[g]}]", self.gate_tables[g], (q.levels,), oq.lo, oq.hi)
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
        _check_quant("classifier.weight_quant", self.weight_quant, WEIGHT_DTYPE)
        if np.ndim(self.weight) != 2:
            raise ArtifactError(f"classifier weight must be 2-D [C, H], got shape {np.shape(self.weight)}")
        C, H = self.weight.shape
        if not 1 <= C <= MAX_CLASSES:
            raise ArtifactError(f"classifier must have 1 to {MAX_CLASSES} classes, not {C}")
        positive_real("classifier.input_scale", self.input_scale)
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
            for name, dtype in (("w_x", WEIGHT_DTYPE), ("w_h", WEIGHT_DTYPE), ("bias", BIAS_DTYPE),
                                ("gate_tables", TABLE_DTYPE), ("tanh_c_table", TABLE_DTYPE)):
                arrays[p + name] = _stored(p + name, getattr(layer, name), dtype)
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
            arrays["classifier/weight"] = _stored("classifier/weight", self.classifier.weight, WEIGHT_DTYPE)
            arrays["classifier/bias"] = _stored("classifier/bias", self.classifier.bias, BIAS_DTYPE)
            header["classifier"] = {"weight_quant": self.classifier.weight_quant.to_dict(),
                                    "input_scale": self.classifier.input_scale}
        if self.normalization is not None:
            arrays["normalization/mean"] = np.ascontiguousarray(self.normalization.mean, dtype=FLOAT_DTYPE)
            arrays["normalization/std"] = np.ascontiguousarray(self.normalization.std, dtype=FLOAT_DTYPE)
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
        """Write atomically: a temporary file in the same folder, then ``os.replace``.

        Raises
        ------
        ArtifactError
            A value the file cannot hold exactly, or arrays changed after the hash was taken:
            a file that :meth:`load` would refuse is never written.
        """
        path = Path(path)
        for layer in self.layers:
            layer.__post_init__()
        if self.classifier is not None:
            self.classifier.__post_init__()
        header, arrays = self._header_and_arrays()
        digest = self._digest(header, arrays)
        if digest != self.sha256:
            raise ArtifactError(f"artifact arrays were modified after its hash {self.sha256[:16]}… was "
                                "taken; build a new LstmArtifact from them")
        header["sha256"] = digest
        with atomic_file(path) as f:
            np.savez(f, header=np.frombuffer(json.dumps(header).encode(), dtype=np.uint8),
                     **{k.replace("/", "__"): v for k, v in arrays.items()})
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "LstmArtifact":
        """Read and check an artifact file.

        The header is read first and checked field by field; each array is then read only when
        its stored dtype, shape and size are those the header implies, so a small hostile file
        cannot make this allocate more than the file's own size (a few times over).

        Raises
        ------
        ArtifactError
            Naming the file and the first field or array that is wrong.
        """
        path = Path(path)
        if not path.is_file():
            raise ArtifactError(f"artifact not found: {path}" if not path.exists()
                                else f"artifact {path} is not a file")
        with StoredNpz(path) as z:
            if "header" not in z.names:
                raise ArtifactError(f"{path}: not an lstmfpga artifact (no header)")
            raw = z.read("header", "|u1", (None,), limit=MAX_HEADER_BYTES)
            try:
                header = json.loads(raw.tobytes().decode())
            except (UnicodeDecodeError, ValueError, RecursionError) as exc:
                raise ArtifactError(f"{path}: corrupt artifact header ({type(exc).__name__}: {exc})") from None
            try:
                parsed = parse_header(header, format_name=FORMAT_NAME, version=FORMAT_VERSION)
            except ArtifactError as exc:
                raise ArtifactError(f"{path}: {exc}") from None
            expected = {k.replace("/", "__"): v for k, v in parsed.arrays().items()}
            unexpected = sorted(z.names - set(expected) - {"header"})
            if unexpected:
                raise ArtifactError(f"{path}: holds arrays the header does not declare: {', '.join(unexpected)}")
            arrays = {k.replace("__", "/"): z.read(k, dtype, shape, limit=MAX_CLASSES)
                      for k, (dtype, shape) in expected.items()}
        digest = cls._digest(header, arrays)
        if digest != header["sha256"]:
            raise ArtifactError(f"{path}: content hash mismatch (header says {header['sha256']}, "
                                f"content hashes to {digest}): the file was modified or is corrupt")
        try:
            artifact = cls._from_parts(parsed, arrays)
        except ArtifactError as exc:
            raise ArtifactError(f"{path}: {exc}") from None
        object.__setattr__(artifact, "_sha256", digest)
        return artifact

    @classmethod
    def _from_parts(cls, header, arrays: Mapping[str, np.ndarray]) -> "LstmArtifact":
        layers = []
        for l, lh in enumerate(header.layers):
            p = f"layer{l}/"
            layers.append(LayerArtifact(
                input_size=lh.input_size, hidden_size=lh.hidden_size,
                w_x=arrays[p + "w_x"].astype(np.int64), w_h=arrays[p + "w_h"].astype(np.int64),
                bias=arrays[p + "bias"].astype(np.int64), quant=dict(lh.quant),
                gate_requant=lh.gate_requant, gate_tables=arrays[p + "gate_tables"].astype(np.int64),
                fc_requant=lh.fc_requant, ig_requant=lh.ig_requant,
                tanh_c_table=arrays[p + "tanh_c_table"].astype(np.int64), h_requant=lh.h_requant,
            ))
        classifier = None
        if header.classifier_quant is not None:
            classifier = ClassifierArtifact(
                weight=arrays["classifier/weight"].astype(np.int64),
                bias=arrays["classifier/bias"].astype(np.int64),
                weight_quant=header.classifier_quant, input_scale=header.classifier_input_scale)
        normalization = None
        if header.normalization_clip is not None:
            normalization = Normalization(mean=arrays["normalization/mean"].astype(np.float32),
                                          std=arrays["normalization/std"].astype(np.float32),
                                          clip=header.normalization_clip)
        return cls(layers=tuple(layers), classifier=classifier, normalization=normalization,
                   meta=header.meta)

    def summary(self) -> str:
        io = self.io_quant
        parts = [f"LSTM I={self.input_size} H={self.hidden_size} L={self.num_layers}",
                 f"weights {self.weight_bits}-bit", f"io {io.bits}-bit (scale {io.scale:.6g})"]
        if self.classifier is not None:
            parts.append(f"classifier {self.num_classes} classes")
        parts.append(f"sha256 {self.sha256[:16]}…")
        return ", ".join(parts)

