"""The accelerator under Verilator at compiled speed: a C++ harness (``harness.cpp``) drives every
port of the Verilated top and advances the clock itself until each AXI transaction completes, so
no Python runs per clock.  Built once per Verilog hash by :func:`lstmfpga.sim.verilator.build_harness`;
loaded with :class:`lstmfpga.sim.harness.library.Harness`."""

from pathlib import Path

#: The C++ source compiled with every Verilated core.
HARNESS_SOURCE = Path(__file__).with_name("harness.cpp")
