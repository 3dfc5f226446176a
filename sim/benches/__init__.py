"""cocotb testbench modules (imported by the simulator process, not by pytest)."""
