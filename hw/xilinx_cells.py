"""The Xilinx primitives ``synth_xilinx`` writes, by the budgeted resource each one uses."""

# 6-input LUT sites each cell occupies (LUTRAM and SRL cells live in SLICEM LUTs).  Shift registers
# count as logic, not as memory: Yosys makes them from the pipeline's reset-less register chains
# (the requantizers' low product bits, the weights on their way to the DSPs), which scale with the
# design's logic, not with any memory of the memory model.
LUT_SITES = {
    **{f"LUT{n}": 1 for n in range(1, 7)},
    "LUT6_2": 1, "INV": 1,
    "SRL16E": 1, "SRLC16E": 1, "SRLC32E": 1,
    "RAM32X1S": 1, "RAM64X1S": 1, "RAM128X1S": 2, "RAM256X1S": 4, "RAM512X1S": 8,
    "RAM32X1D": 2, "RAM64X1D": 2, "RAM128X1D": 4, "RAM256X1D": 8,
    "RAM32M": 4, "RAM64M": 4, "RAM32M16": 8, "RAM64M8": 8, "RAM32X16DR8": 8, "RAM64X8SW": 8,
}
LUTRAM_CELLS = frozenset(name for name in LUT_SITES if name.startswith("RAM"))
FLIP_FLOPS = frozenset({"FDRE", "FDSE", "FDCE", "FDPE", "FDRE_1", "FDSE_1", "FDCE_1", "FDPE_1",
                        "LDCE", "LDPE"})
DSP_CELLS = frozenset({"DSP48E1", "DSP48E2"})
# RAMB18 is half a RAMB36 site.
BRAM36_UNITS = {"RAMB36E1": 1.0, "RAMB36E2": 1.0, "FIFO36E1": 1.0, "FIFO36E2": 1.0,
                "RAMB18E1": 0.5, "RAMB18E2": 0.5, "FIFO18E1": 0.5, "FIFO18E2": 0.5}
URAM_CELLS = frozenset({"URAM288", "URAM288_BASE"})
CARRY_CELLS = frozenset({"CARRY4", "CARRY8"})
# Cells that use no budgeted resource (carry chains and wide muxes sit beside the LUTs).
FREE_CELLS = CARRY_CELLS | {"MUXF7", "MUXF8", "MUXF9", "BUFG", "BUFGCTRL",
                            "IBUF", "OBUF", "IOBUF", "GND", "VCC", "$scopeinfo"}
#: Output ports of the cells above, for netlists written without ``port_directions``.
OUTPUT_PORTS = frozenset({"O", "O5", "O6", "CO", "Q", "DO", "DOA", "DOB", "DOC", "DOD", "SPO", "DPO"})
