"""The overlay TCL agrees with the hardware manifest and the Verilog it packages (Vivado itself
cannot run here): names, widths, addresses, DMA length width."""

import json
import re

import pytest

pytest.importorskip("amaranth")

from lstmfpga.foundation.errors import ConfigError  # noqa: E402
from lstmfpga.foundation.hw import stream_format  # noqa: E402
from lstmfpga.foundation.hw.config import STREAM_WIDTHS, AcceleratorConfig  # noqa: E402
from lstmfpga.hw.generate import generate_verilog  # noqa: E402
from lstmfpga.hw.manifest import read_manifest  # noqa: E402
from lstmfpga.foundation.hw.weight_image import image_words  # noqa: E402
from lstmfpga.host.driver.dma import check_transfer, max_transfer_bytes  # noqa: E402
from lstmfpga.host.overlay.ip_identity import VLNV  # noqa: E402
from lstmfpga.host.overlay.tcl import BOARDS, dma_length_width, write_overlay_tcl  # noqa: E402


@pytest.fixture(scope="module", params=STREAM_WIDTHS, ids=lambda width: f"stream{width}")
def hdl_dir(tmp_path_factory, request):
    config = AcceleratorConfig(input_size=13, hidden_size=6, num_layers=2, lanes=8, num_classes=2, weight_bits=4,
                               max_timesteps=5, stream_width=request.param)
    out = tmp_path_factory.mktemp("hdl")
    generate_verilog(config, out)
    return out


def _ports(verilog_text, top):
    header = re.search(rf"module {top}\((.*?)\);", verilog_text, re.S).group(1)
    return {p.strip() for p in header.split(",")}


@pytest.mark.parametrize("board", sorted(BOARDS))
def test_tcl_matches_manifest_and_verilog(hdl_dir, board):
    paths = write_overlay_tcl(manifest_path=hdl_dir / "manifest.json", board=board)
    assert [p.parent for p in paths] == [hdl_dir] * 3
    manifest = read_manifest(hdl_dir)
    package, design, facts = paths[0].read_text(), paths[1].read_text(), json.loads(paths[2].read_text())
    spec = BOARDS[board]

    # packaging: the manifest's files and top, the driver's VLNV, interfaces named after real ports
    for name in manifest.verilog_files:
        assert f"{{{name}}}" in package
    assert f"set_property top {manifest.top} " in package
    vendor, library, name, version = VLNV.split(":")
    for prop, value in (("vendor", vendor), ("library", library), ("name", name), ("version", version)):
        assert f"set_property {prop} {value} $core" in package
    ports = _ports((hdl_dir / manifest.verilog_files[0]).read_text(), manifest.top)
    busifs = re.search(r"foreach busif \{(.*?)\}", package).group(1).split()
    assert sorted(busifs) == ["m_axis", "s_axi", "s_axis"]
    for busif in busifs:
        assert {f"{busif}_tdata", f"{busif}_tvalid", f"{busif}_tready"} <= ports or f"{busif}_awaddr" in ports
    assert {"s_axis_tlast", "m_axis_tlast", "aclk", "aresetn"} <= ports
    assert "-clock aclk -reset aresetn" in package and "ACTIVE_LOW" in package

    # block design: PS of the board, the core by VLNV, streams wired both ways
    assert f"xilinx.com:ip:{spec.ps_ip}:*" in design and f"-part {spec.part}" in design
    assert f"create_bd_cell -type ip -vlnv {VLNV} lstm_core_0" in design
    assert "[get_bd_intf_pins axi_dma_0/M_AXIS_MM2S] [get_bd_intf_pins lstm_core_0/s_axis]" in design
    assert "[get_bd_intf_pins lstm_core_0/m_axis] [get_bd_intf_pins axi_dma_0/S_AXIS_S2MM]" in design
    width = int(re.search(r"CONFIG.c_sg_length_width \{(\d+)\}", design).group(1))
    assert width == facts["dma"]["length_width"] >= 23
    assert "CONFIG.c_include_sg {0}" in design
    stream = manifest.config.stream_width
    assert f"CONFIG.c_m_axis_mm2s_tdata_width {{{stream}}}" in design
    assert f"CONFIG.c_s_axis_s2mm_tdata_width {{{stream}}}" in design
    # the DMA's memory side is at least as wide as its streams; the core's TDATA is the stream width
    for side in ("mm2s", "s2mm"):
        assert int(re.search(rf"CONFIG.c_m_axi_{side}_data_width \{{(\d+)\}}", design).group(1)) >= stream
    verilog = (hdl_dir / manifest.verilog_files[0]).read_text()
    for port in ("s_axis_tdata", "m_axis_tdata"):
        assert re.search(rf"(input|output) (wire )?\[{stream - 1}:0\] {port};", verilog), port
    assert "s_axis_tkeep" not in ports and "m_axis_tkeep" not in ports   # whole beats: every byte is data

    # addresses: the TCL's equal overlay.json's, aligned, disjoint, and the core's covers the register map
    offsets = dict(re.findall(r"set_property offset (0x[0-9a-f]+) .*?\*(\w+)\*", design))
    assert {int(v, 16): k for v, k in offsets.items()} == {facts["dma"]["base"]: "axi_dma_0",
                                                           facts["core"]["base"]: "lstm_core_0"}
    spans = sorted((facts[k]["base"], facts[k]["base"] + facts[k]["range"]) for k in ("dma", "core"))
    assert spans[0][1] <= spans[1][0]
    for k in ("dma", "core"):
        assert facts[k]["base"] % facts[k]["range"] == 0
    highest = max(manifest.registers["registers"].values()) + 4 * (manifest.registers["hash_words"] - 1)
    assert highest + 4 <= facts["core"]["range"]


def test_dma_width_grows_with_the_weight_image():
    small = AcceleratorConfig(input_size=16, hidden_size=8, lanes=8)
    big = AcceleratorConfig(input_size=2048, hidden_size=512, num_layers=3, lanes=64, weight_bits=8)
    assert dma_length_width(small) == 23
    assert max_transfer_bytes(dma_length_width(big)) >= image_words(big) * 4 > max_transfer_bytes(23)
    for config in (small, big):
        # every packet the driver sends or receives fits one transfer, and one bit less would not do
        packets = {"weight image": image_words(config) * 4,
                   "input": stream_format.input_lanes(config, config.max_timesteps) * 4,
                   "output": stream_format.output_lanes(config, config.max_timesteps) * 4}
        width = dma_length_width(config)
        for what, nbytes in packets.items():
            check_transfer(nbytes, max_transfer_bytes(width), what)
        if width > 23:
            assert max(packets.values()) > max_transfer_bytes(width - 1)


def test_unknown_board_is_refused(hdl_dir):
    with pytest.raises(ConfigError, match="board must be one of pynq-z2, ultra96, kv260, zcu104, not 'arty'"):
        write_overlay_tcl(manifest_path=hdl_dir / "manifest.json", board="arty")


@pytest.mark.parametrize("board,ddr_width", [("pynq-z2", 64), ("kv260", 128), ("zcu104", 64)])
def test_weights_in_ddr_put_the_read_master_on_an_hp_port(tmp_path, board, ddr_width):
    """A core with weights in DDR: m_axi is packaged as an interface on aclk (its ports are in the
    Verilog at the configured width), enabled on the board's second HP port at that width, and
    connected to it; a core with weights on chip has none of it."""
    config = AcceleratorConfig(input_size=13, hidden_size=6, num_layers=2, lanes=8, num_classes=2, weight_bits=4,
                               max_timesteps=5, weight_residency="stream", ddr_width=ddr_width)
    generate_verilog(config, tmp_path)
    package, design, facts = (p.read_text() for p in write_overlay_tcl(manifest_path=tmp_path / "manifest.json",
                                                                          board=board))
    facts = json.loads(facts)
    manifest = read_manifest(tmp_path)
    ports = _ports((tmp_path / manifest.verilog_files[0]).read_text(), manifest.top)
    assert {"m_axi_araddr", "m_axi_arvalid", "m_axi_arready", "m_axi_rdata", "m_axi_rvalid", "m_axi_rready",
            "m_axi_rlast", "m_axi_rresp"} <= ports
    verilog = (tmp_path / manifest.verilog_files[0]).read_text()
    assert re.search(rf"input (wire )?\[{ddr_width - 1}:0\] m_axi_rdata;", verilog)
    assert sorted(re.search(r"foreach busif \{(.*?)\}", package).group(1).split()) == ["m_axi", "m_axis", "s_axi",
                                                                                       "s_axis"]
    spec = BOARDS[board]
    assert spec.weight_slave != spec.ps_slave                   # not the DMA's port
    assert f"[list Slave /ps/{spec.weight_slave} " in design and "[get_bd_intf_pins lstm_core_0/m_axi]" in design
    width_setting = re.search(r"DATA_WIDTH \{(\d+)\}", design)
    assert int(width_setting.group(1)) == ddr_width
    assert facts["weights"] == {"port": spec.weight_slave, "data_width": ddr_width, "residency": "stream"}
    # the manifest describes the DDR image the driver must place (as foundation.hw.ddr_image builds it)
    from lstmfpga.foundation.hw.ddr_image import build_ddr_image
    from lstmfpga.sim.golden.random_artifact import random_artifact

    art = random_artifact(input_size=13, hidden_size=6, num_layers=2, num_classes=2, weight_bits=4, seed=2)
    described = json.loads((tmp_path / "manifest.json").read_text())["ddr_image"]
    assert described["bytes"] == build_ddr_image(art, AcceleratorConfig.from_artifact(
        art, lanes=8, max_timesteps=5, weight_residency="stream", ddr_width=ddr_width)).size
    assert described["row_bytes"] == -(-8 * 4 // ddr_width) * ddr_width // 8
    # the register map the driver uses has the DDR registers inside the core's segment
    for name in ("DDR_BASE_LO", "DDR_BASE_HI", "DDR_LENGTH", "SHAPE_DDR"):
        assert manifest.registers["registers"][name] + 4 <= facts["core"]["range"]


def test_weights_on_chip_have_no_read_master(hdl_dir):
    package, design, facts = (p.read_text() for p in write_overlay_tcl(manifest_path=hdl_dir / "manifest.json",
                                                                          board="zcu104"))
    assert sorted(re.search(r"foreach busif \{(.*?)\}", package).group(1).split()) == ["m_axis", "s_axi", "s_axis"]
    assert "lstm_core_0/m_axi]" not in design and "HP1" not in design
    assert "weights" not in json.loads(facts)
