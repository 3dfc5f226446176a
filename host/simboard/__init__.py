"""The simulated board: the generated Verilog under Verilator, with the driver's MMIO and DMA
calls turned into AXI transactions (cocotb 2 ``bridge`` / ``resume``), so ``LstmCoreDriver``
runs unchanged. Needs the ``sim`` extra (cocotb, cocotbext-axi, verilator)."""
