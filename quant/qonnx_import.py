"""Build the integer artifact from any QONNX file Brevitas exported for a QuantLSTM.

qonnx has no executor for the ``QuantLSTMCell`` custom op, so this parses the graph: each cell's
48 inputs (15 state/weight/bias tensors, then scale / zero point / bit width for its 11
quantizers), the ``Quant`` nodes that feed its weights and biases, and — when present — the
feature standardisation in front (Sub → Div → Clip) and the classifier behind it
(Gather of the last step → Gemm with Quant weight and bias).

Needs the ``onnx`` package; torch is used when importable so that the σ/tanh tables are
computed with the same float32 kernels Brevitas uses.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lstmfpga.foundation.artifact import (ACC_QUANTIZERS, GATES, ClassifierArtifact, LayerArtifact, LstmArtifact,
                                          Normalization)
from lstmfpga.foundation.artifact_header import MAX_CODE_BITS, quant_spec
from lstmfpga.foundation.errors import ArtifactError
from lstmfpga.foundation.fixed_point import QuantSpec
from lstmfpga.foundation.recipe import derive_recipe

#: The cell's quantizers in input order (inputs 15..47), with the artifact's names.
CELL_QUANT_ORDER = (
    ("output", "io"), ("cell_state", "cell_state"), ("input_acc", "input_acc"),
    ("forget_acc", "forget_acc"), ("cell_acc", "cell_acc"), ("output_acc", "output_acc"),
    ("input_sigmoid", "input_sigmoid"), ("forget_sigmoid", "forget_sigmoid"),
    ("cell_tanh", "cell_tanh"), ("output_sigmoid", "output_sigmoid"),
    ("hidden_state_tanh", "hidden_tanh"),
)
#: Brevitas biases are Int32 codes.
BIAS_BITS = 32
_SIGMOID_TABLES = {"input": "input_sigmoid", "forget": "forget_sigmoid", "output": "output_sigmoid"}


def _tensor(tensor, path: Path, limit: int) -> np.ndarray:
    """A constant tensor as an array, refused when it claims more elements than the file has bytes
    or keeps its data in another file."""
    from onnx import TensorProto, numpy_helper

    if tensor.data_location == TensorProto.EXTERNAL or tensor.external_data:
        raise ArtifactError(f"{path}: tensor {tensor.name!r} keeps its data in an external file; "
                            "only self-contained QONNX files are read")
    count = int(np.prod(list(tensor.dims), dtype=object))
    if any(d < 0 for d in tensor.dims) or count > limit:
        raise ArtifactError(f"{path}: tensor {tensor.name!r} claims shape {list(tensor.dims)} "
                            f"({count} values) in a file of {limit} bytes")
    try:
        return numpy_helper.to_array(tensor)
    except (ValueError, TypeError) as exc:
        raise ArtifactError(f"{path}: tensor {tensor.name!r} is malformed ({exc})") from None


class _Graph:
    def __init__(self, model, path: Path):
        self.path = path
        limit = path.stat().st_size
        self.consts: dict[str, np.ndarray] = {t.name: _tensor(t, path, limit) for t in model.graph.initializer}
        self.producer = {}
        self.consumers: dict[str, list] = {}
        for node in model.graph.node:
            for out in node.output:
                self.producer[out] = node
            for inp in node.input:
                self.consumers.setdefault(inp, []).append(node)
            if node.op_type == "Constant" and node.output:
                for attr in node.attribute:
                    if attr.name == "value":
                        self.consts[node.output[0]] = _tensor(attr.t, path, limit)
        self.nodes = list(model.graph.node)
        self.inputs = {i.name for i in model.graph.input} - set(self.consts)

    def const(self, name: str, what: str) -> np.ndarray:
        if name not in self.consts:
            raise ArtifactError(f"{self.path}: {what} ({name!r}) is not a constant")
        return self.consts[name]

    def numeric(self, name: str, what: str) -> np.ndarray:
        a = self.const(name, what)
        if a.dtype.kind not in "fiu":
            raise ArtifactError(f"{self.path}: {what} ({name!r}) holds {a.dtype} values, not numbers")
        return a

    def scalar(self, name: str, what: str) -> float:
        a = self.numeric(name, what)
        if a.size != 1:
            raise ArtifactError(f"{self.path}: {what} has {a.size} values: only per-tensor "
                                "quantization is supported")
        return float(a.reshape(()))

    def spec(self, what: str, scale: float, zero_point: float, bits: float, signed, narrow, *,
             max_bits: int = MAX_CODE_BITS) -> QuantSpec:
        """A quantizer from the graph's float scalars, every value checked (see ``quant_spec``)."""
        try:
            return quant_spec(what, scale, _integral(zero_point), _integral(bits), bool(signed), bool(narrow),
                              max_bits=max_bits)
        except ArtifactError as exc:
            raise ArtifactError(f"{self.path}: {exc}") from None

    def attrs(self, node) -> dict:
        from onnx import helper

        return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _integral(value: float):
    """An integer-valued float as ``int`` (the graph stores bit widths as floats); else as is."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _quant_node_codes(g: _Graph, tensor: str, what: str, *, max_bits: int = MAX_CODE_BITS
                      ) -> tuple[np.ndarray, QuantSpec]:
    """Codes and spec of a constant fed through a ``Quant`` node (weights; biases with ``max_bits=32``)."""
    node = g.producer.get(tensor)
    if node is None or node.op_type != "Quant" or len(node.input) != 4:
        raise ArtifactError(f"{g.path}: {what} is not produced by a Quant node of 4 inputs")
    values = g.numeric(node.input[0], what).astype(np.float32)
    scale = g.numeric(node.input[1], f"{what} scale").astype(np.float32)
    if scale.size != 1:
        raise ArtifactError(f"{g.path}: {what} has per-channel scales ({scale.size}): only "
                            "per-tensor quantization is supported")
    zp = g.scalar(node.input[2], f"{what} zero point")
    if zp != 0.0:
        raise ArtifactError(f"{g.path}: {what} has zero point {zp}: only symmetric quantizers are supported")
    a = g.attrs(node)
    spec = g.spec(what, float(scale.reshape(())), zp, g.scalar(node.input[3], f"{what} bit width"),
                  a.get("signed", 1), a.get("narrow", 0), max_bits=max_bits)
    return spec.quantize(values), spec


def _gate_arrays(g: _Graph, where: str, codes: dict[str, list[np.ndarray]]) -> tuple[np.ndarray, ...]:
    """W_x, W_h and bias of the four gates stacked, after checking every tensor's shape."""
    first = codes["W_x"][0]
    if first.ndim != 2 or 0 in first.shape:
        raise ArtifactError(f"{g.path}: {where} W_x[{GATES[0]}] has shape {first.shape}, not [H, I]")
    H, I = first.shape
    expected = {"W_x": (H, I), "W_h": (H, H), "bias": (H,)}
    for kind, arrays in codes.items():
        for gate, a in zip(GATES, arrays):
            if a.shape != expected[kind]:
                raise ArtifactError(f"{g.path}: {where} {kind}[{gate}] has shape {a.shape}, expected "
                                    f"{expected[kind]} (H={H}, I={I} from W_x[{GATES[0]}])")
    return tuple(np.stack(codes[kind]) for kind in ("W_x", "W_h", "bias"))


def _table(fn: str, in_spec: QuantSpec, out_spec: QuantSpec) -> np.ndarray:
    codes = np.arange(in_spec.lo, in_spec.lo + in_spec.levels, dtype=np.float32)
    x = codes * np.float32(in_spec.scale)
    try:
        import torch
    except ImportError:
        y = (1.0 / (1.0 + np.exp(-x)) if fn == "sigmoid" else np.tanh(x)).astype(np.float32)
        return out_spec.quantize(y)
    else:
        t = torch.from_numpy(x)
        y = torch.sigmoid(t) if fn == "sigmoid" else torch.tanh(t)
        q = torch.round(y / torch.tensor(out_spec.scale, dtype=torch.float32)).numpy()
    return np.clip(q, out_spec.lo, out_spec.hi).astype(np.int64)


def _cell_layer(g: _Graph, node, index: int) -> LayerArtifact:
    a = g.attrs(node)
    where = f"QuantLSTMCell #{index} ({node.name or node.output[0]})"
    if len(node.input) != 48:
        raise ArtifactError(f"{g.path}: {where} has {len(node.input)} inputs, expected 48")
    if a.get("reverse_input", 0):
        raise ArtifactError(f"{g.path}: {where} runs reversed (bidirectional LSTM): not supported")
    if a.get("cifg", 0):
        raise ArtifactError(f"{g.path}: {where} uses coupled input-forget gates (CIFG): not supported")
    quant = {}
    for k, (onnx_name, name) in enumerate(CELL_QUANT_ORDER):
        base = 15 + 3 * k
        narrow_key = "output_sigmoid_narrow_range" if onnx_name == "output_sigmoid" else f"{onnx_name}_narrow"
        zp = g.scalar(node.input[base + 1], f"{where} {onnx_name} zero point")
        if zp != 0.0:
            raise ArtifactError(f"{g.path}: {where} quantizer {onnx_name} has zero point {zp}: "
                                "only symmetric quantizers are supported")
        quant[name] = g.spec(f"{where} quantizer {onnx_name}",
                             float(np.float32(g.scalar(node.input[base], f"{where} {onnx_name} scale"))), zp,
                             g.scalar(node.input[base + 2], f"{where} {onnx_name} bit width"),
                             a.get(f"{onnx_name}_signed", 1), a.get(narrow_key, 0))
    acc_bits = {name: quant[name].bits for name in ACC_QUANTIZERS}
    if len(set(acc_bits.values())) != 1:
        raise ArtifactError(f"{g.path}: {where}: the gate accumulator quantizers must share one bit width, "
                            f"found {acc_bits}")
    codes: dict[str, list[np.ndarray]] = {"W_x": [], "W_h": [], "bias": []}
    for gi, gate in enumerate(GATES):
        wx, spec = _quant_node_codes(g, node.input[3 + gi], f"{where} W_x[{gate}]")
        wh, spec_h = _quant_node_codes(g, node.input[7 + gi], f"{where} W_h[{gate}]")
        if spec_h != spec:
            raise ArtifactError(f"{g.path}: {where} gate {gate}: input and hidden weights use "
                                "different quantizers")
        quant[f"weight_{gate}"] = spec
        codes["W_x"].append(wx)
        codes["W_h"].append(wh)
        b_name = node.input[11 + gi]
        if b_name in g.consts and np.all(g.consts[b_name] == 0):
            codes["bias"].append(np.zeros(wx.shape[:1], dtype=np.int64))
        else:
            codes["bias"].append(_quant_node_codes(g, b_name, f"{where} bias[{gate}]", max_bits=BIAS_BITS)[0])
    w_x, w_h, bias = _gate_arrays(g, where, codes)
    try:
        recipe = derive_recipe(quant)
    except ValueError as exc:
        raise ArtifactError(f"{g.path}: {where}: the quantizer scales give no integer recipe ({exc})") from None
    tables = np.stack([
        _table("sigmoid", quant["input_acc"], quant["input_sigmoid"]),
        _table("sigmoid", quant["forget_acc"], quant["forget_sigmoid"]),
        _table("tanh", quant["cell_acc"], quant["cell_tanh"]),
        _table("sigmoid", quant["output_acc"], quant["output_sigmoid"]),
    ])
    try:
        return LayerArtifact(input_size=w_x.shape[2], hidden_size=w_x.shape[1], w_x=w_x, w_h=w_h, bias=bias,
                             quant=quant, gate_tables=tables,
                             tanh_c_table=_table("tanh", quant["cell_state"], quant["hidden_tanh"]), **recipe)
    except ArtifactError as exc:
        raise ArtifactError(f"{g.path}: {where}: {exc}") from None


def _normalization(g: _Graph, first_cell) -> Normalization | None:
    quant = g.producer.get(first_cell.input[0])
    if quant is None or quant.op_type != "Quant":
        return None
    clip = g.producer.get(quant.input[0])
    if clip is None or clip.op_type != "Clip":
        return None
    div = g.producer.get(clip.input[0])
    sub = g.producer.get(div.input[0]) if div is not None and div.op_type == "Div" else None
    if sub is None or sub.op_type != "Sub":
        return None
    if len(clip.input) != 3 or len(div.input) != 2 or len(sub.input) != 2:
        raise ArtifactError(f"{g.path}: the feature standardisation (Sub, Div, Clip) has missing inputs")
    lo = g.scalar(clip.input[1], "standardisation clip min")
    hi = g.scalar(clip.input[2], "standardisation clip max")
    if lo != -hi:
        raise ArtifactError(f"{g.path}: feature clip range [{lo}, {hi}] is not symmetric")
    try:
        return Normalization(mean=g.numeric(sub.input[1], "feature mean").astype(np.float32).reshape(-1),
                             std=g.numeric(div.input[1], "feature std").astype(np.float32).reshape(-1),
                             clip=float(hi))
    except ArtifactError as exc:
        raise ArtifactError(f"{g.path}: {exc}") from None


def _classifier(g: _Graph, last_cell, io: QuantSpec) -> ClassifierArtifact | None:
    for gather in g.consumers.get(last_cell.output[0], []):
        if gather.op_type != "Gather":
            continue
        for gemm in g.consumers.get(gather.output[0], []):
            if gemm.op_type != "Gemm":
                continue
            a = g.attrs(gemm)
            if not a.get("transB", 0) or a.get("transA", 0) or a.get("alpha", 1.0) != 1.0:
                raise ArtifactError(f"{g.path}: classifier Gemm layout not supported ({a})")
            if len(gemm.input) < 2:
                raise ArtifactError(f"{g.path}: classifier Gemm has no weight input")
            weight, wq = _quant_node_codes(g, gemm.input[1], "classifier weight")
            bias = np.zeros(weight.shape[:1], dtype=np.int64)
            if len(gemm.input) > 2 and gemm.input[2]:
                bias = _quant_node_codes(g, gemm.input[2], "classifier bias", max_bits=BIAS_BITS)[0]
            try:
                return ClassifierArtifact(weight=weight, bias=bias, weight_quant=wq, input_scale=io.scale)
            except ArtifactError as exc:
                raise ArtifactError(f"{g.path}: {exc}") from None
    return None


def artifact_from_qonnx(path: str | Path) -> LstmArtifact:
    """Parse a Brevitas QONNX export of a (unidirectional) QuantLSTM into an artifact."""
    path = Path(path)
    try:
        import onnx
    except ImportError:
        raise ArtifactError("reading QONNX files needs the 'onnx' package (pip install onnx)") from None
    if not path.is_file():
        raise ArtifactError(f"QONNX file {path} is not a file")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError and friends from protobuf
        raise ArtifactError(f"{path}: not a readable ONNX file ({type(exc).__name__}: {exc})") from None
    try:
        return _artifact(model, path)
    except (IndexError, KeyError, TypeError, ValueError) as exc:
        # Every check above names what it refuses; a graph malformed in a way none of them
        # foresaw (a node without outputs, an attribute of the wrong kind) is still the file's fault.
        raise ArtifactError(f"{path}: malformed QuantLSTM graph ({type(exc).__name__}: {exc})") from None


def _artifact(model, path: Path) -> LstmArtifact:
    g = _Graph(model, path)
    cells = [n for n in g.nodes if n.op_type == "QuantLSTMCell"]
    if not cells:
        raise ArtifactError(f"{path}: no QuantLSTMCell node: not a Brevitas QuantLSTM export")
    outputs = {c.output[0]: c for c in cells}
    firsts = [c for c in cells if c.input[0] not in outputs]
    if len(firsts) != 1:
        raise ArtifactError(f"{path}: expected one chain of QuantLSTMCell nodes, found {len(firsts)} "
                            "starts (bidirectional or several LSTMs are not supported)")
    chain = [firsts[0]]
    while True:
        nxt = [c for c in cells if c.input[0] == chain[-1].output[0]]
        if not nxt:
            break
        if len(nxt) > 1:
            raise ArtifactError(f"{path}: a QuantLSTMCell output feeds {len(nxt)} cells (bidirectional?)")
        chain.append(nxt[0])
    if len(chain) != len(cells):
        raise ArtifactError(f"{path}: {len(cells)} QuantLSTMCell nodes but only {len(chain)} in one chain")
    layers = tuple(_cell_layer(g, node, i) for i, node in enumerate(chain))
    classifier = _classifier(g, chain[-1], layers[0].quant["io"])
    normalization = _normalization(g, chain[0])
    try:
        return LstmArtifact(layers=layers, classifier=classifier, normalization=normalization,
                            meta={"source": "qonnx", "file": path.name})
    except ArtifactError as exc:
        raise ArtifactError(f"{path}: {exc}") from None
