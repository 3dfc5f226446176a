"""`lstmfpga hdl`, generate_verilog and the manifest reader."""

import dataclasses
import json
import re

import numpy as np
import pytest

from lstmfpga.foundation.errors import ArtifactError
from lstmfpga.cli.main import main
from lstmfpga.hw import cycle_model
from lstmfpga.foundation.hw import register_map
from lstmfpga.foundation.hw.config import AcceleratorConfig
from lstmfpga.hw.manifest import read_manifest
from lstmfpga.foundation.hw.weight_image import build_weight_image, image_words
from lstmfpga.sim.golden.random_artifact import random_artifact

AXI_PORTS = ["aclk", "aresetn", "s_axis_tdata", "s_axis_tvalid", "s_axis_tready", "s_axis_tlast",
             "m_axis_tdata", "m_axis_tvalid", "m_axis_tready", "m_axis_tlast", "s_axi_awaddr",
             "s_axi_awvalid", "s_axi_awready", "s_axi_wdata", "s_axi_wstrb", "s_axi_wvalid", "s_axi_wready",
             "s_axi_bresp", "s_axi_bvalid", "s_axi_bready", "s_axi_araddr", "s_axi_arvalid", "s_axi_arready",
             "s_axi_rdata", "s_axi_rresp", "s_axi_rvalid", "s_axi_rready"]


def test_hdl_command(tmp_path, capsys):
    art = random_artifact(input_size=9, hidden_size=6, num_layers=2, num_classes=2, weight_bits=4, seed=3)
    model = art.save(tmp_path / "model.npz")
    out = tmp_path / "hdl"
    assert main(["hdl", "--model", str(model), "--lanes", "8", "--mode", "split", "--out", str(out),
                 "--weight-image"]) == 0
    assert "MAC utilisation" in capsys.readouterr().out
    verilog = (out / "lstm_accel.v").read_text()
    header = re.search(r"module lstm_accel\((.*?)\);", verilog, re.S).group(1)
    assert sorted(p.strip() for p in header.split(",")) == sorted(AXI_PORTS)
    manifest = read_manifest(out)
    assert manifest.config == AcceleratorConfig.from_artifact(art, lanes=8, mode="split")
    assert manifest.register_offset("HASH0") == register_map.Reg.HASH0
    assert manifest.artifact_sha256 == art.sha256
    assert manifest.weight_image["words"] == image_words(manifest.config)
    assert (out / "weights.bin").stat().st_size == 4 * image_words(manifest.config)
    est = cycle_model.estimate(manifest.config, 24)
    assert manifest.cycle_model["estimates"]["24"]["compute_cycles"] == est.compute_cycles
    assert manifest.verilog_paths == [out / "lstm_accel.v"]


def test_hdl_command_packed(tmp_path, capsys):
    """--macs-per-dsp 2 (laid out for a drawn --packing-dsp): the manifest records both, its cycle
    model and engine latency are the packed core's, and the Verilog has the packed units and the
    SHAPE_PACKING register; 3 is refused for 4-bit weights and 8-bit activations."""
    art = random_artifact(input_size=9, hidden_size=6, num_layers=2, num_classes=2, weight_bits=4, seed=3)
    model = art.save(tmp_path / "model.npz")
    out = tmp_path / "hdl"
    dsp = str(np.random.default_rng().choice(["DSP48E2", "DSP48E1", "MULT18X18D"]))
    assert main(["hdl", "--model", str(model), "--lanes", "12", "--macs-per-dsp", "2", "--packing-dsp", dsp,
                 "--out", str(out)]) == 0
    assert f"P=12 macs_per_dsp=2 packing_dsp={dsp} mode=full" in capsys.readouterr().out
    manifest = read_manifest(out)
    assert manifest.config == AcceleratorConfig.from_artifact(art, lanes=12, macs_per_dsp=2, packing_dsp=dsp)
    assert manifest.cycle_model["engine_latency"] == cycle_model.engine_latency(manifest.config) == \
        cycle_model.engine_latency(AcceleratorConfig.from_artifact(art, lanes=12)) + 1
    est = cycle_model.estimate(manifest.config, 24)
    assert manifest.cycle_model["estimates"]["24"]["compute_cycles"] == est.compute_cycles
    verilog = (out / "lstm_accel.v").read_text()
    assert len(re.findall(r"^module \S*unit\d+\b", verilog, re.M)) == 6 and "packed_operand" in verilog
    assert manifest.register_offset("SHAPE_PACKING") == register_map.Reg.SHAPE_PACKING
    assert main(["hdl", "--model", str(model), "--lanes", "12", "--macs-per-dsp", "3", "--packing-dsp", dsp,
                 "--out", str(out)]) == 2
    assert (f"error: macs_per_dsp must be in [1, 2] for 4-bit weights and 8-bit activations (a {dsp})"
            in capsys.readouterr().err)


def test_hdl_command_column_sets(tmp_path, capsys):
    """--column-sets 4 --stream-width 64: the manifest records both, the Verilog has a lane block
    per set and the SHAPE_SETS register, the weight image's header says P and log2(S), and the
    column sets' limits (lanes a multiple of 4S; in full mode S <= stream bytes) are refused."""
    import numpy as np

    art = random_artifact(input_size=11, hidden_size=5, num_layers=2, num_classes=2, weight_bits=4, seed=4)
    model = art.save(tmp_path / "model.npz")
    out = tmp_path / "hdl"
    assert main(["hdl", "--model", str(model), "--lanes", "32", "--column-sets", "4", "--stream-width", "64",
                 "--out", str(out), "--weight-image"]) == 0
    assert ("P=32 macs_per_dsp=1 packing_dsp=DSP48E2 mode=full column_sets=4 tail_units=1 weight_ports=1"
            " stream_width=64") in capsys.readouterr().out
    manifest = read_manifest(out)
    config = AcceleratorConfig.from_artifact(art, lanes=32, column_sets=4, stream_width=64)
    assert manifest.config == config and config.groups == 3 and config.issued_columns(0) == 3 + 2
    assert manifest.cycle_model["estimates"]["24"]["compute_cycles"] == cycle_model.estimate(config, 24).compute_cycles
    verilog = (out / "lstm_accel.v").read_text()
    assert {f"lanes_set{s}" for s in range(4)} <= set(re.findall(r"\blanes_set\d+\b", verilog))
    assert manifest.register_offset("SHAPE_SETS") == register_map.Reg.SHAPE_SETS
    words = np.fromfile(out / "weights.bin", dtype="<u4")
    assert words[5] == 32 | 2 << 16
    assert main(["hdl", "--model", str(model), "--lanes", "24", "--column-sets", "4", "--out", str(out)]) == 2
    assert "error: lanes must be a multiple of 4 x column_sets = 16" in capsys.readouterr().err
    assert main(["hdl", "--model", str(model), "--lanes", "32", "--column-sets", "8", "--out", str(out)]) == 2
    assert "error: column_sets 8 needs a stream of at least 64 bits in full mode" in capsys.readouterr().err


def test_hdl_command_two_tail_units(tmp_path, capsys):
    """--tail-units 2: the manifest records it, the Verilog holds two tails and the SHAPE_TAILS
    register, the weight image is that of one tail; its limits (S >= 2, lanes a multiple of 8S) are
    refused with the rule."""
    import numpy as np

    art = random_artifact(input_size=9, hidden_size=7, num_layers=1, num_classes=3, weight_bits=4, seed=5)
    model = art.save(tmp_path / "model.npz")
    out = tmp_path / "hdl"
    assert main(["hdl", "--model", str(model), "--lanes", "32", "--column-sets", "2", "--tail-units", "2",
                 "--mode", "split", "--out", str(out), "--weight-image"]) == 0
    assert "column_sets=2 tail_units=2" in capsys.readouterr().out
    manifest = read_manifest(out)
    config = AcceleratorConfig.from_artifact(art, lanes=32, column_sets=2, tail_units=2, mode="split")
    assert manifest.config == config
    assert manifest.register_offset("SHAPE_TAILS") == register_map.Reg.SHAPE_TAILS
    verilog = (out / "lstm_accel.v").read_text()
    assert re.search(r"\bmodule \S*tail2\b", verilog) and re.search(r"\bmodule \S*tail\b", verilog)
    one = build_weight_image(art, dataclasses.replace(config, tail_units=1))
    np.testing.assert_array_equal(np.fromfile(out / "weights.bin", dtype="<u4"), one)
    assert main(["hdl", "--model", str(model), "--lanes", "16", "--column-sets", "1", "--tail-units", "2",
                 "--out", str(out)]) == 2
    assert "error: tail_units 2 needs column_sets of at least 2" in capsys.readouterr().err
    assert main(["hdl", "--model", str(model), "--lanes", "24", "--column-sets", "2", "--tail-units", "2",
                 "--out", str(out)]) == 2
    assert "error: tail_units 2 needs lanes a multiple of 8 x column_sets = 16" in capsys.readouterr().err


def test_hdl_command_weights_in_ddr(tmp_path, capsys):
    """--weight-residency stream: the manifest records the port, the Verilog has the m_axi read
    master at its width and a weight memory of two row groups, the weight image is unchanged; two
    weight ports are refused with the reason."""
    import numpy as np

    art = random_artifact(input_size=11, hidden_size=5, num_layers=2, num_classes=2, weight_bits=4, seed=8)
    model = art.save(tmp_path / "model.npz")
    out = tmp_path / "hdl"
    assert main(["hdl", "--model", str(model), "--lanes", "8", "--weight-residency", "stream", "--ddr-width", "64",
                 "--ddr-burst", "32", "--ddr-outstanding", "3", "--out", str(out), "--weight-image"]) == 0
    printed = capsys.readouterr().out
    assert "weights in DDR (stream): 64-bit m_axi, bursts <= 32, 3 in flight" in printed and "lower bound" in printed
    manifest = read_manifest(out)
    config = AcceleratorConfig.from_artifact(art, lanes=8, weight_residency="stream", ddr_width=64, ddr_burst=32,
                                             ddr_outstanding=3)
    assert manifest.config == config and manifest.register_offset("DDR_BASE_LO") == register_map.Reg.DDR_BASE_LO
    verilog = (out / "lstm_accel.v").read_text()
    assert re.search(r"input (wire )?\[63:0\] m_axi_rdata;", verilog)
    assert re.search(r"output (wire |reg )?\[63:0\] m_axi_araddr;", verilog)
    np.testing.assert_array_equal(np.fromfile(out / "weights.bin", dtype="<u4"),
                                  build_weight_image(art, dataclasses.replace(config, weight_residency="chip")))
    assert main(["hdl", "--model", str(model), "--lanes", "8", "--weight-residency", "stream", "--weight-ports", "2",
                 "--out", str(out)]) == 2
    assert "error: weight_ports 2 needs weights on chip" in capsys.readouterr().err


def test_hdl_builds_a_core_that_takes_batches(tmp_path, capsys):
    """--max-batch: the manifest records it and maps BATCH and SHAPE_BATCH, the summary says so; a
    batch on a core with its weights on chip is refused with the reason."""
    art = random_artifact(input_size=9, hidden_size=6, num_layers=1, num_classes=3, weight_bits=4, seed=4)
    model = art.save(tmp_path / "model.npz")
    out = tmp_path / "hdl"
    assert main(["hdl", "--model", str(model), "--lanes", "8", "--weight-residency", "stream", "--max-batch", "3",
                 "--out", str(out)]) == 0
    assert "batches of up to 3 sequences (BATCH)" in capsys.readouterr().out
    manifest = read_manifest(out)
    assert manifest.config == AcceleratorConfig.from_artifact(art, lanes=8, weight_residency="stream", max_batch=3)
    assert manifest.register_offset("BATCH") == register_map.Reg.BATCH
    assert main(["hdl", "--model", str(model), "--lanes", "8", "--max-batch", "2", "--out", str(out)]) == 2
    assert "error: max_batch 2 needs weights in DDR" in capsys.readouterr().err


def test_hdl_command_errors(tmp_path, capsys):
    art = random_artifact(input_size=4, hidden_size=3, num_layers=1, num_classes=0, weight_bits=4)
    model = art.save(tmp_path / "m.npz")
    assert main(["hdl", "--model", str(model), "--lanes", "6", "--out", str(tmp_path / "o")]) == 2
    assert "error: lanes must be a positive multiple of 4, not 6" in capsys.readouterr().err
    assert main(["hdl", "--model", str(tmp_path / "missing.npz"), "--lanes", "8", "--out", str(tmp_path / "o")]) == 2
    assert "missing.npz" in capsys.readouterr().err


def test_manifest_reader_errors(tmp_path):
    with pytest.raises(ArtifactError, match="no such manifest"):
        read_manifest(tmp_path / "nope.json")
    bad = tmp_path / "manifest.json"
    bad.write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(ArtifactError, match="not an lstmfpga hardware manifest"):
        read_manifest(tmp_path)
    bad.write_text(json.dumps({"format": "lstmfpga-hw-manifest", "version": 1, "top": "x", "verilog_files": [],
                               "config": {"input_size": 3, "hidden_size": 0}}))
    with pytest.raises(ArtifactError, match="bad config in manifest: hidden_size must be in"):
        read_manifest(bad)
