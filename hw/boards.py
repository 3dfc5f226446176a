"""The boards a plan can target, with the budgets of their programmable logic.

Device counts are Xilinx's data-sheet numbers (DS190 for Zynq-7000, DS891 for Zynq UltraScale+;
the K26 SOM carries an XCK26, a ZU5EV-class die).  The default clocks are assumptions, not timing
results: 100 MHz is the usual PYNQ-Z2 fabric clock (FCLK0) for a design of this kind on a -1
7-series part; 200–250 MHz is what a pipelined DSP/BRAM datapath typically closes at on
UltraScale+ (-1/-2 speed grades).  ``lstmfpga plan --clock-mhz`` overrides them.

DDR figures are peak transfer rates of each board's PS memory interface (bus width × data rate, from
the boards' user guides: PYNQ-Z2 DDR3 16-bit at 1066 MT/s, Ultra96-V2 LPDDR4 32-bit at 2133 MT/s,
KV260 DDR4 64-bit at 2400 MT/s, ZCU104 DDR4 64-bit at 2666 MT/s); the programmable logic reaches them
through the PS's high-performance AXI ports: 64-bit AXI3 (bursts of at most 16 beats) on
Zynq-7000, 128-bit AXI4 on Zynq UltraScale+.  ``lstmfpga plan --ddr-gbps`` overrides the sustained
figure the planner derives from them (:data:`~lstmfpga.hw.plan_ddr.DDR_EFFICIENCY`).
"""

from __future__ import annotations

import dataclasses

from lstmfpga.foundation.errors import ConfigError
from lstmfpga.foundation.validation import check_integer

#: Bits of one 36 Kib block RAM (RAMB36) and of one UltraRAM (URAM288).
BRAM36_BITS = 36 * 1024
URAM_BITS = 288 * 1024
MIB = 1024 * 1024

FAMILIES = ("xc7", "xcup")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Board:
    """One evaluation board: its FPGA's logic budget and an assumed fabric clock.

    Parameters
    ----------
    key :
        Name on the command line (``pynq-z2``).
    name, device :
        Human-readable board and device names.
    family :
        Yosys ``synth_xilinx -family`` value: ``xc7`` (Zynq-7000) or ``xcup`` (Zynq UltraScale+).
    lut, ff, dsp, bram36, uram :
        Device totals: 6-input LUTs, flip-flops, DSP slices, 36 Kib block RAMs, UltraRAMs.
    clock_mhz :
        Default fabric clock (an assumption, see the module docstring).
    ddr_gbps :
        Peak DDR transfer rate of the PS memory interface, GB/s.
    hp_width, hp_max_burst :
        Data width (bits) and longest burst (beats) of the PS port the weights are read through.
    """

    key: str
    name: str
    device: str
    family: str
    lut: int
    ff: int
    dsp: int
    bram36: int
    uram: int
    clock_mhz: float
    ddr_gbps: float
    hp_width: int
    hp_max_burst: int

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ConfigError(f"board family must be one of {FAMILIES}, not {self.family!r}")
        for field in ("lut", "ff", "dsp", "bram36", "uram"):
            check_integer(f"board {field}", getattr(self, field), low=0, what="a non-negative integer")
        if not self.clock_mhz > 0:
            raise ConfigError(f"board clock_mhz must be positive, not {self.clock_mhz!r}")
        if not self.ddr_gbps > 0:
            raise ConfigError(f"board ddr_gbps must be positive, not {self.ddr_gbps!r}")
        if self.hp_width not in (64, 128):
            raise ConfigError(f"board hp_width must be 64 or 128, not {self.hp_width!r}")
        check_integer("board hp_max_burst", self.hp_max_burst, low=1, high=256)

    @property
    def on_chip_bits(self) -> int:
        """Block RAM plus UltraRAM capacity in bits."""
        return self.bram36 * BRAM36_BITS + self.uram * URAM_BITS

    @property
    def on_chip_mib(self) -> float:
        return self.on_chip_bits / MIB

    def budget(self) -> dict[str, int]:
        """Available count per resource, in the order plans print them."""
        return {"lut": self.lut, "ff": self.ff, "dsp": self.dsp, "bram36": self.bram36, "uram": self.uram}


BOARDS: dict[str, Board] = {
    board.key: board
    for board in (
        Board(key="pynq-z2", name="PYNQ-Z2", device="xc7z020", family="xc7",
              lut=53_200, ff=106_400, dsp=220, bram36=140, uram=0, clock_mhz=100.0,
              ddr_gbps=2.13, hp_width=64, hp_max_burst=16),
        Board(key="ultra96", name="Ultra96-V2", device="xczu3eg", family="xcup",
              lut=70_560, ff=141_120, dsp=360, bram36=216, uram=0, clock_mhz=200.0,
              ddr_gbps=8.53, hp_width=128, hp_max_burst=256),
        Board(key="kv260", name="KV260", device="xck26", family="xcup",
              lut=117_120, ff=234_240, dsp=1_248, bram36=144, uram=64, clock_mhz=200.0,
              ddr_gbps=19.2, hp_width=128, hp_max_burst=256),
        Board(key="zcu104", name="ZCU104", device="xczu7ev", family="xcup",
              lut=230_400, ff=460_800, dsp=1_728, bram36=312, uram=96, clock_mhz=250.0,
              ddr_gbps=21.3, hp_width=128, hp_max_burst=256),
    )
}
BOARD_KEYS = tuple(BOARDS)  #: what ``--board`` accepts


def get_board(key: str) -> Board:
    """The board called ``key`` (case-insensitive), or a ConfigError listing the known ones."""
    board = BOARDS.get(str(key).lower())
    if board is None:
        raise ConfigError(f"unknown board {key!r}; choose one of {', '.join(BOARDS)}")
    return board
