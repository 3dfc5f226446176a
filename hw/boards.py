"""The boards a plan can target, with the budgets of their programmable logic.

Device counts are Xilinx's data-sheet numbers (DS190 for Zynq-7000, DS891 for Zynq UltraScale+;
the K26 SOM carries an XCK26, a ZU5EV-class die).  The default clocks are assumptions, not timing
results: 100 MHz is the usual PYNQ-Z2 fabric clock (FCLK0) for a design of this kind on a -1
7-series part; 200–250 MHz is what a pipelined DSP/BRAM datapath typically closes at on
UltraScale+ (-1/-2 speed grades).  ``lstmfpga plan --clock-mhz`` overrides them.
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

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ConfigError(f"board family must be one of {FAMILIES}, not {self.family!r}")
        for field in ("lut", "ff", "dsp", "bram36", "uram"):
            check_integer(f"board {field}", getattr(self, field), low=0, what="a non-negative integer")
        if not self.clock_mhz > 0:
            raise ConfigError(f"board clock_mhz must be positive, not {self.clock_mhz!r}")

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
              lut=53_200, ff=106_400, dsp=220, bram36=140, uram=0, clock_mhz=100.0),
        Board(key="ultra96", name="Ultra96-V2", device="xczu3eg", family="xcup",
              lut=70_560, ff=141_120, dsp=360, bram36=216, uram=0, clock_mhz=200.0),
        Board(key="kv260", name="KV260", device="xck26", family="xcup",
              lut=117_120, ff=234_240, dsp=1_248, bram36=144, uram=64, clock_mhz=200.0),
        Board(key="zcu104", name="ZCU104", device="xczu7ev", family="xcup",
              lut=230_400, ff=460_800, dsp=1_728, bram36=312, uram=96, clock_mhz=250.0),
    )
}
BOARD_KEYS = tuple(BOARDS)  #: what ``--board`` accepts


def get_board(key: str) -> Board:
    """The board called ``key`` (case-insensitive), or a ConfigError listing the known ones."""
    board = BOARDS.get(str(key).lower())
    if board is None:
        raise ConfigError(f"unknown board {key!r}; choose one of {', '.join(BOARDS)}")
    return board
