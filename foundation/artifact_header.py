"""Every field of an artifact header checked for type and range, before any array is read.

The header says what the arrays must be (dtype and shape), so the reader can refuse a file whose
members disagree with it without inflating them.  Field names in messages are paths into the
header (``layers[0].quant.io.bits``).  NumPy only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from lstmfpga.foundation.errors import ArtifactError
from lstmfpga.foundation.fixed_point import MULTIPLIER_BITS, QuantSpec, Requant
from lstmfpga.foundation.validation import check_integer, is_finite_number, is_integer

#: Widest code of any quantizer: weights are stored as int16, and every accumulator and cell
#: code indexes a table of 2**bits entries (16 bits: 65,536 entries, 256 KiB per gate).
MAX_CODE_BITS = 16
#: Largest LSTM input or hidden size and number of classes a header may declare.
MAX_SIZE = 1 << 20
MAX_CLASSES = 1 << 16
#: Storage dtype of each array of the file (little endian); codes are integers only.
WEIGHT_DTYPE, BIAS_DTYPE, TABLE_DTYPE, FLOAT_DTYPE = "<i2", "<i8", "<i4", "<f4"
LAYER_QUANTIZER_NAMES = (
    "io", "cell_state", "input_acc", "forget_acc", "cell_acc", "output_acc",
    "input_sigmoid", "forget_sigmoid", "cell_tanh", "output_sigmoid", "hidden_tanh",
    "weight_input", "weight_forget", "weight_cell", "weight_output",
)
_INT64 = np.iinfo(np.int64)


def fields(where: str, value: Any, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> Mapping:
    """``value`` when it is a JSON object holding ``required`` keys and nothing beyond ``optional``."""
    if not isinstance(value, dict):
        raise ArtifactError(f"{where} must be an object, not {type(value).__name__} {_short(value)}")
    missing = [k for k in required if k not in value]
    if missing:
        raise ArtifactError(f"{where} lacks {', '.join(missing)}")
    unknown = sorted(str(k) for k in value if k not in required + optional)
    if unknown:
        raise ArtifactError(f"{where} has unknown fields {unknown}")
    return value


def integer(where: str, value: Any, low: int, high: int) -> int:
    return check_integer(where, value, low=low, high=high, error=ArtifactError)


def positive_real(where: str, value: Any) -> float:
    """A finite positive number (JSON int or float; not a bool, not a string)."""
    if not (is_finite_number(value) and value > 0):
        raise ArtifactError(f"{where} must be a positive finite number, not {_short(value)}")
    return float(value)


def flag(where: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ArtifactError(f"{where} must be true or false, not {_short(value)}")
    return value


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def quant_spec(where: str, scale: Any, zero_point: Any, bits: Any, signed: Any, narrow: Any, *,
               max_bits: int = MAX_CODE_BITS) -> QuantSpec:
    """A :class:`QuantSpec` from untrusted values, each checked with ``where`` in the message.

    ``max_bits`` is :data:`MAX_CODE_BITS` for every quantizer the artifact holds; 32 for the
    Int32 bias codes a QONNX file carries.
    """
    scale = positive_real(f"{where}.scale", scale)
    if not (is_integer(zero_point) and zero_point == 0):
        raise ArtifactError(f"{where}.zero_point must be 0 (symmetric quantizers only), not {_short(zero_point)}")
    bits = integer(f"{where}.bits", bits, 1, max_bits)
    return QuantSpec(scale=scale, zero_point=0, bits=bits, signed=flag(f"{where}.signed", signed),
                     narrow=flag(f"{where}.narrow", narrow))


def quant_from_header(where: str, value: Any) -> QuantSpec:
    d = fields(where, value, ("scale", "zero_point", "bits", "signed", "narrow"))
    return quant_spec(where, d["scale"], d["zero_point"], d["bits"], d["signed"], d["narrow"])


def requant_from_header(where: str, value: Any) -> Requant:
    d = fields(where, value, ("multiplier", "shift", "lo", "hi"))
    lo = integer(f"{where}.lo", d["lo"], int(_INT64.min), int(_INT64.max))
    hi = integer(f"{where}.hi", d["hi"], lo, int(_INT64.max))
    return Requant(multiplier=integer(f"{where}.multiplier", d["multiplier"], 1, (1 << MULTIPLIER_BITS) - 1),
                   shift=integer(f"{where}.shift", d["shift"], 0, 126), lo=lo, hi=hi)


@dataclass(frozen=True)
class LayerHeader:
    input_size: int
    hidden_size: int
    quant: Mapping[str, QuantSpec]
    gate_requant: tuple[Requant, ...]
    fc_requant: Requant
    ig_requant: Requant
    h_requant: Requant

    def arrays(self, prefix: str) -> dict[str, tuple[str, tuple[int, ...]]]:
        H, I = self.hidden_size, self.input_size
        return {
            prefix + "w_x": (WEIGHT_DTYPE, (4, H, I)),
            prefix + "w_h": (WEIGHT_DTYPE, (4, H, H)),
            prefix + "bias": (BIAS_DTYPE, (4, H)),
            prefix + "gate_tables": (TABLE_DTYPE, (4, self.quant["input_acc"].levels)),
            prefix + "tanh_c_table": (TABLE_DTYPE, (self.quant["cell_state"].levels,)),
        }


def _layer(where: str, value: Any) -> LayerHeader:
    d = fields(where, value, ("input_size", "hidden_size", "quant", "gate_requant", "fc_requant",
                              "ig_requant", "h_requant"))
    quant = fields(f"{where}.quant", d["quant"], LAYER_QUANTIZER_NAMES)
    specs = {name: quant_from_header(f"{where}.quant.{name}", quant[name]) for name in LAYER_QUANTIZER_NAMES}
    acc_bits = {name: specs[name].bits for name in ("input_acc", "forget_acc", "cell_acc", "output_acc")}
    if len(set(acc_bits.values())) != 1:
        raise ArtifactError(f"{where}.quant: the four gate accumulator quantizers must share one bit width, "
                            f"found {acc_bits}")
    gates = d["gate_requant"]
    if not (isinstance(gates, list) and len(gates) == 4):
        raise ArtifactError(f"{where}.gate_requant must be a list of 4 requantizers, not {_short(gates)}")
    return LayerHeader(
        input_size=integer(f"{where}.input_size", d["input_size"], 1, MAX_SIZE),
        hidden_size=integer(f"{where}.hidden_size", d["hidden_size"], 1, MAX_SIZE),
        quant=specs,
        gate_requant=tuple(requant_from_header(f"{where}.gate_requant[{g}]", r) for g, r in enumerate(gates)),
        fc_requant=requant_from_header(f"{where}.fc_requant", d["fc_requant"]),
        ig_requant=requant_from_header(f"{where}.ig_requant", d["ig_requant"]),
        h_requant=requant_from_header(f"{where}.h_requant", d["h_requant"]),
    )


@dataclass(frozen=True)
class ArtifactHeader:
    """The checked content of a header: what to build, and which arrays must be in the file."""

    layers: tuple[LayerHeader, ...]
    classifier_quant: QuantSpec | None
    classifier_input_scale: float | None
    normalization_clip: float | None
    meta: Mapping[str, Any]

    def arrays(self) -> dict[str, tuple[str, tuple[int | None, ...]]]:
        """``name → (dtype, shape)`` of every array; ``None`` is the classifier's class count C."""
        expected: dict[str, tuple[str, tuple[int | None, ...]]] = {}
        for l, layer in enumerate(self.layers):
            expected.update(layer.arrays(f"layer{l}/"))
        H, I = self.layers[-1].hidden_size, self.layers[0].input_size
        if self.classifier_quant is not None:
            expected["classifier/weight"] = (WEIGHT_DTYPE, (None, H))
            expected["classifier/bias"] = (BIAS_DTYPE, (None,))
        if self.normalization_clip is not None:
            expected["normalization/mean"] = (FLOAT_DTYPE, (I,))
            expected["normalization/std"] = (FLOAT_DTYPE, (I,))
        return expected


def parse_header(header: Any, *, format_name: str, version: int) -> ArtifactHeader:
    """Check every field of a decoded header.

    Raises
    ------
    ArtifactError
        Naming the first field of the wrong type or out of range.
    """
    if not isinstance(header, dict):
        raise ArtifactError(f"header must be an object, not {type(header).__name__}")
    if header.get("format") != format_name:
        raise ArtifactError(f"not an lstmfpga artifact (format {_short(header.get('format'))})")
    if header.get("version") != version:
        raise ArtifactError(f"artifact format version {_short(header.get('version'))}; this lstmfpga reads "
                            f"version {version}: re-export the model")
    d = fields("header", header, ("format", "version", "layers", "sha256"), ("meta", "classifier", "normalization"))
    sha = d["sha256"]
    if not (isinstance(sha, str) and len(sha) == 64 and all(c in "0123456789abcdef" for c in sha)):
        raise ArtifactError(f"header.sha256 must be 64 lowercase hex digits, not {_short(sha)}")
    layers = d["layers"]
    if not (isinstance(layers, list) and 1 <= len(layers) <= 3):
        raise ArtifactError(f"header.layers must be a list of 1 to 3 layers, not {_short(layers)}")
    parsed = tuple(_layer(f"layers[{l}]", layer) for l, layer in enumerate(layers))
    classifier_quant = input_scale = clip = None
    if "classifier" in d:
        c = fields("classifier", d["classifier"], ("weight_quant", "input_scale"))
        classifier_quant = quant_from_header("classifier.weight_quant", c["weight_quant"])
        input_scale = positive_real("classifier.input_scale", c["input_scale"])
    if "normalization" in d:
        clip = positive_real("normalization.clip", fields("normalization", d["normalization"], ("clip",))["clip"])
    meta = d.get("meta", {})
    if not isinstance(meta, dict):
        raise ArtifactError(f"header.meta must be an object, not {type(meta).__name__}")
    return ArtifactHeader(parsed, classifier_quant, input_scale, clip, meta)
