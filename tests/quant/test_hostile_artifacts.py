"""Hostile and careless model files: every one refused with one clear ``error:`` line (exit 2), in
bounded time, and the inflating ones in bounded memory.

Artifacts are tampered *with their hash recomputed*, so each refusal comes from the check under
test and not from the hash.  QONNX files are a real Brevitas export edited with the onnx API.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import time
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from cli_errors import cli_error

from lstmfpga.cli.main import main
from lstmfpga.foundation.artifact import LstmArtifact
from lstmfpga.foundation.errors import ArtifactError
from lstmfpga.foundation.fixed_point import QuantSpec
from lstmfpga.sim.golden.random_artifact import random_artifact

I, H = 5, 3
#: Peak RSS a refused file may cost a whole ``lstmfpga golden`` process (the probe saw 2.1 GB).
RSS_LIMIT_MB = 400


def _golden(model: Path, tmp_path: Path, capsys) -> str:
    """Run ``lstmfpga golden`` in process; return its one ``error:`` line (it must exit 2)."""
    x = tmp_path / "x.npy"
    if not x.exists():
        np.save(x, np.random.default_rng(0).normal(size=(2, 3, I)).astype(np.float32))
    line = cli_error(["golden", "--model", model, "--input", x, "--out", tmp_path / "y.npy"], capsys)
    assert not (tmp_path / "y.npy").exists()
    return line


#: Runs its arguments as a child and writes the child's peak RSS (kB) to the file named first: a
#: child forked straight from pytest would count pytest's own memory (torch included) as its peak.
_LAUNCHER = ("import resource, subprocess, sys; code = subprocess.run(sys.argv[2:]).returncode; "
             "open(sys.argv[1], 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)); "
             "sys.exit(code)")


def _measured_cli(tmp_path: Path, *args: str, timeout: float = 120) -> tuple[int, str, float, float]:
    """Run the console script in a fresh process: exit code, stderr, seconds, peak RSS in MB."""
    rss_file = tmp_path / "rss.txt"
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", _LAUNCHER, str(rss_file), sys.executable, "-m",
                           "lstmfpga.cli.main", *args], capture_output=True, text=True, timeout=timeout)
    seconds = time.monotonic() - started
    return done.returncode, done.stderr, seconds, int(rss_file.read_text()) / 1024


def _artifact_files(art: LstmArtifact, tmp_path: Path) -> dict[str, np.ndarray]:
    path = art.save(tmp_path / "good.npz")
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def _write_rehashed(path: Path, files: dict[str, np.ndarray], header: dict) -> Path:
    """Write ``files`` with ``header``, its sha256 recomputed over the tampered content."""
    arrays = {k.replace("__", "/"): v for k, v in files.items() if k != "header"}
    header = dict(header, sha256=LstmArtifact._digest(header, arrays))
    files = dict(files, header=np.frombuffer(json.dumps(header).encode(), dtype=np.uint8))
    with open(path, "wb") as f:
        np.savez(f, **files)
    return path


def _tampered(tmp_path: Path, edit_header=None, edit_files=None, *, classifier: int = 2) -> Path:
    files = _artifact_files(random_artifact(input_size=I, hidden_size=H, num_classes=classifier, seed=7), tmp_path)
    header = json.loads(files["header"].tobytes())
    if edit_header:
        edit_header(header)
    if edit_files:
        edit_files(files)
    return _write_rehashed(tmp_path / "bad.npz", files, header)


def _set(*keys_and_value):
    *keys, value = keys_and_value

    def edit(header):
        node = header
        for key in keys[:-1]:
            node = node[key]
        node[keys[-1]] = value
    return edit


HEADER_CASES = [
    ("bits 0", _set("layers", 0, "quant", "io", "bits", 0),
     "layers[0].quant.io.bits must be an integer in [1, 16], not 0"),
    ("bits -3", _set("layers", 0, "quant", "cell_state", "bits", -3),
     "layers[0].quant.cell_state.bits must be an integer in [1, 16], not -3"),
    ("bits 40", _set("layers", 0, "quant", "weight_input", "bits", 40),
     "layers[0].quant.weight_input.bits must be an integer in [1, 16], not 40"),
    ("bits abc", _set("layers", 0, "quant", "io", "bits", "abc"),
     "layers[0].quant.io.bits must be an integer in [1, 16], not 'abc'"),
    ("bits float", _set("layers", 0, "quant", "io", "bits", 8.0),
     "layers[0].quant.io.bits must be an integer in [1, 16], not 8.0"),
    ("bits bool", _set("layers", 0, "quant", "io", "bits", True),
     "layers[0].quant.io.bits must be an integer in [1, 16], not True"),
    ("24-bit accumulators", lambda h: [h["layers"][0]["quant"][f"{g}_acc"].__setitem__("bits", 24)
                                       for g in ("input", "forget", "cell", "output")],
     "layers[0].quant.input_acc.bits must be an integer in [1, 16], not 24"),
    ("mismatched accumulators", _set("layers", 0, "quant", "forget_acc", "bits", 6),
     "layers[0].quant: the four gate accumulator quantizers must share one bit width"),
    ("scale 0", _set("layers", 0, "quant", "io", "scale", 0),
     "layers[0].quant.io.scale must be a positive finite number, not 0"),
    ("scale NaN", _set("layers", 0, "quant", "hidden_tanh", "scale", float("nan")),
     "layers[0].quant.hidden_tanh.scale must be a positive finite number, not nan"),
    ("scale negative", _set("layers", 0, "quant", "input_sigmoid", "scale", -0.5),
     "layers[0].quant.input_sigmoid.scale must be a positive finite number, not -0.5"),
    ("scale string", _set("layers", 0, "quant", "io", "scale", "0.1"),
     "layers[0].quant.io.scale must be a positive finite number, not '0.1'"),
    ("zero point 3", _set("layers", 0, "quant", "io", "zero_point", 3),
     "layers[0].quant.io.zero_point must be 0 (symmetric quantizers only), not 3"),
    ("signed as string", _set("layers", 0, "quant", "io", "signed", "yes"),
     "layers[0].quant.io.signed must be true or false, not 'yes'"),
    ("quantizer as string", _set("layers", 0, "quant", "io", "int8"),
     "layers[0].quant.io must be an object, not str 'int8'"),
    ("quantizer missing", lambda h: h["layers"][0]["quant"].pop("cell_tanh"), "layers[0].quant lacks cell_tanh"),
    ("multiplier 0", _set("layers", 0, "gate_requant", 1, "multiplier", 0),
     "layers[0].gate_requant[1].multiplier must be an integer in [1, 2147483647], not 0"),
    ("shift 500", _set("layers", 0, "h_requant", "shift", 500),
     "layers[0].h_requant.shift must be an integer in [0, 126], not 500"),
    ("requant lo above hi", _set("layers", 0, "fc_requant", "hi", -1000),
     "layers[0].fc_requant.hi must be an integer in ["),
    ("three gate requants", lambda h: h["layers"][0]["gate_requant"].pop(),
     "layers[0].gate_requant must be a list of 4 requantizers"),
    ("hidden size 0", _set("layers", 0, "hidden_size", 0),
     "layers[0].hidden_size must be an integer in [1, 1048576], not 0"),
    ("four layers", lambda h: h["layers"].extend(h["layers"] * 3), "header.layers must be a list of 1 to 3 layers"),
    ("classifier scale NaN", _set("classifier", "input_scale", float("nan")),
     "classifier.input_scale must be a positive finite number, not nan"),
    ("normalization clip -1", _set("normalization", "clip", -1),
     "normalization.clip must be a positive finite number, not -1"),
    ("unknown field", _set("layers", 0, "quant", "io", "offset", 1), "layers[0].quant.io has unknown fields ['offset']"),
    ("meta a list", _set("meta", [1, 2]), "header.meta must be an object, not list"),
]


@pytest.mark.parametrize("edit,message", [c[1:] for c in HEADER_CASES], ids=[c[0] for c in HEADER_CASES])
def test_hash_valid_header_fields_are_checked(tmp_path, capsys, edit, message):
    path = _tampered(tmp_path, edit_header=edit)
    line = _golden(path, tmp_path, capsys)
    assert line.startswith(f"error: {path}: ") and message in line


def _float_weights(files):
    files["layer0__w_x"] = files["layer0__w_x"].astype(np.float32) + 0.25


ARRAY_CASES = [
    ("float weights", _float_weights, "array layer0__w_x is stored as <f4 (float32), expected <i2 (int16)"),
    ("int64 weights", lambda f: f.__setitem__("layer0__w_h", f["layer0__w_h"].astype(np.int64)),
     "array layer0__w_h is stored as <i8 (int64), expected <i2 (int16)"),
    ("big-endian bias", lambda f: f.__setitem__("layer0__bias", f["layer0__bias"].astype(">i8")),
     "array layer0__bias is stored as >i8"),
    ("wrong weight shape", lambda f: f.__setitem__("layer0__w_x", f["layer0__w_x"][:, :, :4]),
     f"array layer0__w_x has shape (4, {H}, 4), the header implies (4, {H}, {I})"),
    ("table too short", lambda f: f.__setitem__("layer0__gate_tables", f["layer0__gate_tables"][:, :-1]),
     "array layer0__gate_tables has shape (4, 255), the header implies (4, 256)"),
    ("classifier bias of other length", lambda f: f.__setitem__("classifier__bias", f["classifier__bias"][:1]),
     "classifier.bias: expected shape (2,), got (1,)"),
    ("weight code outside its bit width", lambda f: f["layer0__w_x"].__setitem__((0, 0, 0), 9),
     "w_x[input]: values outside the code range [-7, 7] (found ["),
    ("undeclared array", lambda f: f.__setitem__("layer1__w_x", np.zeros(3, "<i2")),
     "holds arrays the header does not declare: layer1__w_x"),
    ("object array", lambda f: f.__setitem__("layer0__w_x", np.array([None] * 3)),
     "array layer0__w_x is stored as |O (object), expected <i2 (int16)"),
]


@pytest.mark.parametrize("edit,message", [c[1:] for c in ARRAY_CASES], ids=[c[0] for c in ARRAY_CASES])
def test_hash_valid_arrays_are_checked(tmp_path, capsys, edit, message):
    line = _golden(_tampered(tmp_path, edit_files=edit), tmp_path, capsys)
    assert message in line


def test_object_arrays_are_never_unpickled(tmp_path, capsys):
    files = _artifact_files(random_artifact(input_size=I, hidden_size=H, seed=7), tmp_path)
    with open(tmp_path / "pickle.npz", "wb") as f:
        np.savez(f, **dict(files, layer0__w_x=np.array([{"a": 1}], dtype=object)))
    line = _golden(tmp_path / "pickle.npz", tmp_path, capsys)
    assert "array layer0__w_x is stored as |O (object)" in line


def _zip(path: Path, members: list[tuple[str, bytes, int, int, int]]) -> None:
    """A zip of raw members ``(name, data, method, crc, uncompressed size)``, written by hand so
    a member's data can be a pre-built deflate stream."""
    central, offset = b"", 0
    with open(path, "wb") as f:
        for name, data, method, crc, size in members:
            raw = name.encode()
            local = struct.pack("<4s2B4HL2L2H", b"PK\x03\x04", 20, 0, 0, method, 0, 0x21, crc, len(data), size,
                                len(raw), 0)
            f.write(local + raw + data)
            central += struct.pack("<4s4B4HL2L5H2L", b"PK\x01\x02", 20, 3, 20, 0, 0, method, 0, 0x21, crc,
                                   len(data), size, len(raw), 0, 0, 0, 0, 0, offset) + raw
            offset += len(local) + len(raw) + len(data)
        f.write(central + struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(members), len(members), len(central),
                                      offset, 0))


def _npy_bytes(array: np.ndarray, shape=None) -> bytes:
    """``.npy`` bytes of ``array``, optionally with a header claiming another ``shape``."""
    header = {"descr": np.lib.format.dtype_to_descr(array.dtype), "fortran_order": False,
              "shape": tuple(array.shape if shape is None else shape)}
    from io import BytesIO
    buffer = BytesIO()
    np.lib.format.write_array_header_1_0(buffer, header)
    return buffer.getvalue() + array.tobytes()


def _member(name: str, array: np.ndarray, *, shape=None, cut: int = 0, claimed_size: int | None = None):
    """A stored member whose ``.npy`` header may claim another ``shape``, whose data may be ``cut``
    short, and whose zip entry may claim another uncompressed size."""
    data = _npy_bytes(array, shape)
    data = data[:len(data) - cut]
    return (f"{name}.npy", data, zipfile.ZIP_STORED, zlib.crc32(data), len(data) if claimed_size is None else claimed_size)


def _bomb_file(tmp_path: Path, gib: int = 1) -> Path:
    """A valid artifact whose ``layer0__w_x`` member inflates to ``gib`` GiB (file about 1 MB).

    Deflate blocks ended by a full flush are byte-aligned and self-contained, so one compressed
    16 MiB block of zeros repeated is a valid stream of any length.
    """
    files = _artifact_files(random_artifact(input_size=I, hidden_size=H, seed=7), tmp_path)
    block_mib = 16
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = compressor.compress(bytes(block_mib << 20)) + compressor.flush(zlib.Z_FULL_FLUSH)
    repeats = gib * 1024 // block_mib
    size = repeats * (block_mib << 20)
    header = _npy_bytes(np.zeros(0, "<i2"), shape=(4, H, size // 2 // 4 // H))
    tail = zlib.compressobj(9, zlib.DEFLATED, -15)
    stream = tail.compress(header) + tail.flush(zlib.Z_FULL_FLUSH) + block * repeats
    stream += zlib.compressobj(9, zlib.DEFLATED, -15).flush()
    members = [_member(k, v) for k, v in files.items() if k != "layer0__w_x"]
    members.append(("layer0__w_x.npy", stream, zipfile.ZIP_DEFLATED, 0, len(header) + size))
    path = tmp_path / "bomb.npz"
    _zip(path, members)
    return path


@pytest.mark.slow
def test_zip_bomb_is_refused_before_inflating(tmp_path):
    path = _bomb_file(tmp_path)
    assert path.stat().st_size < 2 << 20
    with zipfile.ZipFile(path) as z:
        assert z.getinfo("layer0__w_x.npy").file_size > 1 << 30
    code, err, seconds, rss_mb = _measured_cli(tmp_path, "golden", "--model", str(path), "--input", "x.npy",
                                               "--out", str(tmp_path / "y.npy"))
    assert code == 2 and "Traceback" not in err, err
    assert err.strip() == f"error: {path}: member layer0__w_x.npy is compressed; only stored (uncompressed) members are read"
    assert rss_mb < RSS_LIMIT_MB and seconds < 60, (rss_mb, seconds)


HAND_ZIPPED = [
    ("npy header claiming a huge shape", "layer0__w_h", {"shape": (4, 10 ** 9, 10 ** 9)},
     f"array layer0__w_h has shape (4, 1000000000, 1000000000), the header implies (4, {H}, {H})"),
    ("member larger than the file", "layer0__tanh_c_table", {"claimed_size": 1 << 31},
     "member layer0__tanh_c_table.npy claims 2147483648 bytes in a file of"),
    ("member shorter than its shape", "layer0__bias", {"cut": 6},
     f"array layer0__bias of shape (4, {H}) needs {4 * H * 8} bytes, its member holds {4 * H * 8 - 6}"),
]


@pytest.mark.parametrize("target,change,message", [c[1:] for c in HAND_ZIPPED], ids=[c[0] for c in HAND_ZIPPED])
def test_members_are_checked_before_they_are_read(tmp_path, capsys, target, change, message):
    files = _artifact_files(random_artifact(input_size=I, hidden_size=H, seed=7), tmp_path)
    _zip(tmp_path / "hand.npz", [_member(k, v, **(change if k == target else {})) for k, v in files.items()])
    assert message in _golden(tmp_path / "hand.npz", tmp_path, capsys)


def test_deeply_nested_header_is_refused(tmp_path, capsys):
    files = _artifact_files(random_artifact(input_size=I, hidden_size=H, seed=7), tmp_path)
    files["header"] = np.frombuffer(b"[" * 60000 + b"]" * 60000, dtype=np.uint8)
    with open(tmp_path / "deep.npz", "wb") as f:
        np.savez(f, **files)
    assert "corrupt artifact header (RecursionError" in _golden(tmp_path / "deep.npz", tmp_path, capsys)


def test_model_folder_and_garbage(tmp_path, capsys):
    (tmp_path / "folder.npz").mkdir()
    assert "folder" in _golden(tmp_path / "folder.npz", tmp_path, capsys)
    (tmp_path / "zip.npz").write_bytes(b"PK\x03\x04" + bytes(100))
    assert "not a readable .npz archive" in _golden(tmp_path / "zip.npz", tmp_path, capsys)


# -- the Python API: save() refuses what load() would refuse ---------------------------------

def _layer_with(layer, **changes):
    return type(layer)(**{**layer.__dict__, **changes})


def test_17_bit_weights_are_refused_before_they_can_wrap(tmp_path):
    art = random_artifact(input_size=I, hidden_size=H, seed=7)
    layer = art.layers[0]
    wide = QuantSpec(scale=1e-5, zero_point=0, bits=17, signed=True, narrow=False)
    with pytest.raises(ArtifactError, match="quantizer weight_input: bit width 17 exceeds 16"):
        _layer_with(layer, quant={**layer.quant, "weight_input": wide},
                    w_x=np.where(np.arange(I) == 0, 40000, layer.w_x))
    unsigned = QuantSpec(scale=1e-5, zero_point=0, bits=16, signed=False, narrow=False)
    with pytest.raises(ArtifactError, match=r"codes \[0, 65535\] do not fit the artifact's int16 storage"):
        _layer_with(layer, quant={**layer.quant, "weight_input": unsigned})


def test_save_refuses_weights_changed_after_construction(tmp_path):
    art = random_artifact(input_size=I, hidden_size=H, seed=7)
    art.layers[0].w_x[0, 0, 0] = 40000
    with pytest.raises(ArtifactError, match=r"w_x\[input\]: values outside the code range"):
        art.save(tmp_path / "a.npz")
    assert not list(tmp_path.iterdir())
    fresh = random_artifact(input_size=I, hidden_size=H, seed=7)
    digest = fresh.sha256
    fresh.layers[0].w_h[0, 0, 0] = -fresh.layers[0].w_h[0, 0, 0] + 1
    with pytest.raises(ArtifactError, match=f"arrays were modified after its hash {digest[:16]}"):
        fresh.save(tmp_path / "b.npz")
    assert not list(tmp_path.iterdir())


def test_float_weights_are_refused_by_the_api():
    layer = random_artifact(input_size=I, hidden_size=H, seed=7).layers[0]
    with pytest.raises(ArtifactError, match="w_x: expected an integer array, got dtype float64"):
        _layer_with(layer, w_x=layer.w_x.astype(np.float64))


def test_round_trip_at_the_widest_accepted_codes(tmp_path):
    """16-bit signed weights (the widest the file holds) save and load unchanged, extremes included."""
    art = random_artifact(input_size=I, hidden_size=H, seed=9)
    layer = art.layers[0]
    wide = QuantSpec(scale=1e-5, zero_point=0, bits=16, signed=True, narrow=False)
    rng = np.random.default_rng(9)
    w_x = rng.integers(-32768, 32768, size=layer.w_x.shape)
    w_x[0, 0, :2] = (-32768, 32767)
    quant = {**layer.quant, **{f"weight_{g}": wide for g in ("input", "forget", "cell", "output")}}
    wide_art = LstmArtifact(layers=(_layer_with(layer, quant=quant, w_x=w_x),))
    back = LstmArtifact.load(wide_art.save(tmp_path / "wide.npz"))
    np.testing.assert_array_equal(back.layers[0].w_x, w_x)
    assert back.sha256 == wide_art.sha256


# -- QONNX --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def qonnx_file(make_head, tmp_path_factory) -> Path:
    from lstmfpga.quant.brevitas_export import export_qonnx_file

    head = make_head(input_size=I, hidden_size=H, num_layers=1, num_classes=2, weight_bits=4, act_bits=8, seed=1)
    return export_qonnx_file(head, tmp_path_factory.mktemp("qonnx") / "m.onnx")


#: Input index of quantizer k's (scale, zero point, bit width) on a QuantLSTMCell.
QUANT_INPUT = {name: 15 + 3 * k for k, name in enumerate(
    ("io", "cell_state", "input_acc", "forget_acc", "cell_acc", "output_acc"))}


def _edited_qonnx(src: Path, dst: Path, edit) -> Path:
    import onnx

    model = onnx.load(str(src))
    cell = next(n for n in model.graph.node if n.op_type == "QuantLSTMCell")
    edit(model, cell)
    dst.write_bytes(model.SerializeToString())
    return dst


def _cell_scalar(quantizer: str, offset: int, value: float):
    """An edit that feeds ``value`` as the scale (0), zero point (1) or bit width (2) of a quantizer."""
    def edit(model, cell):
        from onnx import numpy_helper

        name = f"hostile_{quantizer}_{offset}"
        model.graph.initializer.append(numpy_helper.from_array(np.array(value, dtype=np.float32), name))
        cell.input[QUANT_INPUT[quantizer] + offset] = name
    return edit


def _all_acc_bits(value):
    def edit(model, cell):
        for q in ("input_acc", "forget_acc", "cell_acc", "output_acc"):
            _cell_scalar(q, 2, value)(model, cell)
    return edit


def _weight_shape(model, cell):
    from onnx import numpy_helper

    quant = next(n for n in model.graph.node if cell.input[8] in n.output)
    init = next(t for t in model.graph.initializer if t.name == quant.input[0])
    init.CopyFrom(numpy_helper.from_array(np.zeros((H, H + 1), np.float32), init.name))


def _external_data(model, cell):
    from onnx import TensorProto

    init = model.graph.initializer[0]
    init.ClearField("raw_data")
    init.data_location = TensorProto.EXTERNAL
    entry = init.external_data.add()
    entry.key, entry.value = "location", "../../../../etc/hostname"


def _huge_dims(model, cell):
    init = model.graph.initializer[0]
    del init.dims[:]
    init.dims.extend([10 ** 6, 10 ** 6])


def _no_outputs(model, cell):
    del cell.output[:]


QONNX_CASES = [
    ("bits 0", _cell_scalar("io", 2, 0.0), "quantizer output.bits must be an integer in [1, 16], not 0"),
    ("bits 40", _cell_scalar("cell_state", 2, 40.0), "quantizer cell_state.bits must be an integer in [1, 16], not 40"),
    ("bits 2.5", _cell_scalar("io", 2, 2.5), "quantizer output.bits must be an integer in [1, 16], not 2.5"),
    ("bits NaN", _cell_scalar("io", 2, float("nan")), "quantizer output.bits must be an integer in [1, 16], not nan"),
    ("24-bit accumulators", _all_acc_bits(24.0), "quantizer input_acc.bits must be an integer in [1, 16], not 24"),
    ("mismatched accumulators", _cell_scalar("forget_acc", 2, 6.0),
     "the gate accumulator quantizers must share one bit width, found {'input_acc': 8, 'forget_acc': 6"),
    ("scale 0", _cell_scalar("io", 0, 0.0), "quantizer output.scale must be a positive finite number, not 0.0"),
    ("scale negative", _cell_scalar("cell_acc", 0, -0.1), "quantizer cell_acc.scale must be a positive finite number"),
    ("scale NaN", _cell_scalar("output_acc", 0, float("nan")),
     "quantizer output_acc.scale must be a positive finite number, not nan"),
    ("zero point 1", _cell_scalar("io", 1, 1.0), "quantizer output has zero point 1.0"),
    ("inconsistent weight shapes", _weight_shape, f"W_h[forget] has shape ({H}, {H + 1}), expected ({H}, {H})"),
    ("external data", _external_data, "keeps its data in an external file"),
    ("huge tensor dims", _huge_dims, "claims shape [1000000, 1000000] (1000000000000 values)"),
    ("cell without outputs", _no_outputs, "malformed QuantLSTM graph (IndexError"),
]


@pytest.mark.parametrize("edit,message", [c[1:] for c in QONNX_CASES], ids=[c[0] for c in QONNX_CASES])
def test_hostile_qonnx_is_refused(qonnx_file, tmp_path, capsys, edit, message):
    path = _edited_qonnx(qonnx_file, tmp_path / "bad.onnx", edit)
    line = _golden(path, tmp_path, capsys)
    assert line.startswith(f"error: {path}: ") and message in line, line


@pytest.mark.slow
def test_qonnx_with_24_bit_accumulators_costs_little_memory(qonnx_file, tmp_path):
    path = _edited_qonnx(qonnx_file, tmp_path / "acc24.onnx", _all_acc_bits(24.0))
    assert path.stat().st_size < 1 << 20
    np.save(tmp_path / "x.npy", np.zeros((1, 2, I), np.float32))
    code, err, seconds, rss_mb = _measured_cli(tmp_path, "golden", "--model", str(path), "--input", str(tmp_path / "x.npy"),
                                               "--out", str(tmp_path / "y.npy"))
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert "input_acc.bits must be an integer in [1, 16], not 24" in err
    assert rss_mb < RSS_LIMIT_MB and seconds < 60, (rss_mb, seconds)


def test_the_untampered_export_still_loads(qonnx_file, tmp_path, capsys):
    """The edits above are what is refused: the same file unedited runs."""
    np.save(tmp_path / "x.npy", np.random.default_rng(0).normal(size=(2, 3, I)).astype(np.float32))
    assert main(["golden", "--model", str(qonnx_file), "--input", str(tmp_path / "x.npy"),
                 "--out", str(tmp_path / "y.npy")]) == 0
    assert np.load(tmp_path / "y.npy").shape == (2, 3, H)


# -- the other commands that read a model or write next to one ---------------------------------

def test_model_commands_map_bad_paths_to_one_error_line(tmp_path, capsys):
    good = random_artifact(input_size=I, hidden_size=H, seed=7).save(tmp_path / "m.npz")
    a_file = tmp_path / "file.txt"
    a_file.write_text("not a folder\n")
    (tmp_path / "folder").mkdir()
    cases = [
        (["hdl", "--model", tmp_path / "folder", "--lanes", 8, "--out", tmp_path / "h"], "is a folder"),
        (["hdl", "--model", good, "--lanes", 8, "--out", a_file], f"File exists: {a_file}"),
        (["verify", "--model", a_file, "--lanes", 8], "not a readable ONNX file"),
        (["plan", "--model", good, "--board", "pynq-z2", "--cache-dir", a_file], f"--cache-dir {a_file} is not a folder"),
        (["plan", "--model", _tampered(tmp_path, _set("layers", 0, "quant", "io", "bits", 40)),
          "--board", "pynq-z2"], "layers[0].quant.io.bits must be an integer in [1, 16], not 40"),
        (["export", "--checkpoint", a_file, "--out", tmp_path / "e"], f"QAT checkpoint {a_file} cannot be read"),
        (["export", "--checkpoint", tmp_path / "folder", "--out", tmp_path / "e"], "is a folder, not a file"),
        (["qat", "--features", good, "--labels", a_file, "--out", tmp_path / "q"],
         f"{good}: an .npz archive, not one .npy feature array"),
    ]
    x = tmp_path / "x.npy"
    np.save(x, np.zeros((2, 3, I), np.float32))
    cases.append((["qat", "--features", x, "--labels", a_file, "--out", tmp_path / "q"],
                  f"{a_file}: not a readable .npy label array"))
    for args, message in cases:
        assert message in cli_error(args, capsys), args
