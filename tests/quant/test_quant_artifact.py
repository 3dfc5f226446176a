"""The artifact file: export routes agree, round trips, and every kind of bad file is named."""

import json
import zipfile

import numpy as np
import pytest
import torch

from lstmfpga.foundation.errors import ArtifactError
from lstmfpga.foundation.artifact import FORMAT_VERSION, LstmArtifact
from lstmfpga.quant.model_file import load_model
from lstmfpga.quant.brevitas_export import artifact_from_head, export_qonnx_file
from lstmfpga.quant.qonnx_import import artifact_from_qonnx
from lstmfpga.foundation.integer_lstm import run_artifact
from lstmfpga.sim.golden.random_artifact import random_artifact


@pytest.mark.parametrize("I,H,L,C,wb,ab", [(13, 7, 1, 2, 4, 8), (9, 5, 3, 3, 2, 4), (6, 11, 2, 0, 8, 6)])
def test_export_and_qonnx_parse_give_the_same_artifact(make_head, tmp_path, I, H, L, C, wb, ab):
    head = make_head(input_size=I, hidden_size=H, num_layers=L, num_classes=C, weight_bits=wb,
                     act_bits=ab, seed=L, normalization=True)
    direct = artifact_from_head(head)
    onnx_path = export_qonnx_file(head, tmp_path / "m.onnx")
    parsed = artifact_from_qonnx(onnx_path)
    assert parsed.sha256 == direct.sha256
    assert (parsed.classifier is None) == (C == 0)
    assert parsed.normalization is not None
    x = np.random.default_rng(0).normal(size=(5, 7, I)).astype(np.float32)
    a, b = run_artifact(direct, x), run_artifact(load_model(onnx_path), x)
    np.testing.assert_array_equal(a.codes.last_h, b.codes.last_h)


def test_save_load_round_trip(tmp_path):
    art = random_artifact(input_size=37, hidden_size=19, num_layers=3, num_classes=3, weight_bits=3, seed=4)
    path = art.save(tmp_path / "a.npz")
    back = LstmArtifact.load(path)
    assert back.sha256 == art.sha256
    for la, lb in zip(art.layers, back.layers):
        np.testing.assert_array_equal(la.w_x, lb.w_x)
        np.testing.assert_array_equal(la.gate_tables, lb.gate_tables)
        assert la.quant == dict(lb.quant)
        assert la.gate_requant == lb.gate_requant
    np.testing.assert_array_equal(art.classifier.weight, back.classifier.weight)
    np.testing.assert_array_equal(art.normalization.mean, back.normalization.mean)
    assert list(tmp_path.iterdir()) == [path], "no temporary files left behind"


def test_hash_covers_content_not_provenance():
    a = random_artifact(input_size=5, hidden_size=3, seed=1)
    b = random_artifact(input_size=5, hidden_size=3, seed=1)
    assert a.sha256 == b.sha256
    c = LstmArtifact(layers=a.layers, classifier=a.classifier, normalization=a.normalization,
                     meta={"note": "other"})
    assert c.sha256 == a.sha256
    d = LstmArtifact(layers=a.layers, classifier=None, normalization=a.normalization)
    assert d.sha256 != a.sha256


def _rewrite(path, mutate):
    with np.load(path) as z:
        files = {k: z[k] for k in z.files}
    mutate(files)
    with open(path, "wb") as f:
        np.savez(f, **files)


def test_bad_artifact_files_are_named(tmp_path):
    good = random_artifact(input_size=5, hidden_size=3, seed=2).save(tmp_path / "good.npz")

    with pytest.raises(ArtifactError, match="not found"):
        load_model(tmp_path / "missing.npz")

    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good.read_bytes()[:200])
    with pytest.raises(ArtifactError, match="truncated.npz"):
        LstmArtifact.load(truncated)

    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x08\x07this is not onnx" * 10)
    with pytest.raises(ArtifactError, match="garbage.onnx"):
        load_model(garbage)

    tampered = tmp_path / "tampered.npz"
    tampered.write_bytes(good.read_bytes())
    _rewrite(tampered, lambda f: f.__setitem__("layer0__w_x", f["layer0__w_x"] * 0))
    with pytest.raises(ArtifactError, match="hash mismatch"):
        LstmArtifact.load(tampered)

    def bump_version(f):
        header = json.loads(f["header"].tobytes())
        header["version"] = FORMAT_VERSION + 1
        f["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    newer = tmp_path / "newer.npz"
    newer.write_bytes(good.read_bytes())
    _rewrite(newer, bump_version)
    with pytest.raises(ArtifactError, match=f"version {FORMAT_VERSION + 1}"):
        LstmArtifact.load(newer)

    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, weights=np.zeros(3))
    with pytest.raises(ArtifactError, match="no header"):
        LstmArtifact.load(foreign)
    assert zipfile.is_zipfile(good)


def test_inconsistent_artifacts_are_rejected():
    art = random_artifact(input_size=5, hidden_size=3, num_layers=2, seed=3)
    layer = art.layers[0]
    with pytest.raises(ArtifactError, match="w_x"):
        type(layer)(**{**layer.__dict__, "w_x": layer.w_x[:, :, :4]})
    with pytest.raises(ArtifactError, match="code range"):
        type(layer)(**{**layer.__dict__, "w_h": layer.w_h * 100})
    with pytest.raises(ArtifactError, match="input size"):
        LstmArtifact(layers=(art.layers[0], art.layers[0]))


def test_unsupported_brevitas_options_are_refused(tmp_path):
    from brevitas.nn import QuantLSTM
    from brevitas.quant import Int8WeightPerChannelFloat

    bidir = QuantLSTM(4, 3, batch_first=True, bidirectional=True)
    with pytest.raises(ArtifactError, match="bidirectional"):
        artifact_from_head(bidir)
    onnx_path = tmp_path / "bidir.onnx"
    from brevitas.export import export_qonnx
    bidir.eval()
    export_qonnx(bidir, torch.zeros(1, 3, 4), export_path=str(onnx_path), dynamo=False)
    with pytest.raises(ArtifactError, match="(?i)bidirectional|revers"):
        artifact_from_qonnx(onnx_path)

    cifg = QuantLSTM(4, 3, batch_first=True, coupled_input_forget_gates=True)
    with pytest.raises(ArtifactError, match="CIFG"):
        artifact_from_head(cifg)

    per_channel = QuantLSTM(4, 3, batch_first=True, weight_quant=Int8WeightPerChannelFloat)
    with pytest.raises(ArtifactError, match="per-channel"):
        artifact_from_head(per_channel)


def test_qat_checkpoint_round_trip_keeps_the_artifact(make_head, tmp_path):
    from lstmfpga.quant.qat import load_qat_checkpoint, save_qat_checkpoint

    head = make_head(input_size=7, hidden_size=5, num_layers=2, seed=11, normalization=True)
    path = save_qat_checkpoint(head, tmp_path / "h.pt")
    back, _ = load_qat_checkpoint(path)
    assert artifact_from_head(back).sha256 == artifact_from_head(head).sha256
    with pytest.raises(ArtifactError, match="not an lstmfpga QAT checkpoint"):
        torch.save({"x": 1}, tmp_path / "other.pt")
        load_qat_checkpoint(tmp_path / "other.pt")
