"""The board table against the device data and the on-chip capacities in DESIGN.md."""

from __future__ import annotations

import pytest

from lstmfpga.foundation.errors import ConfigError
from lstmfpga.hw.boards import BOARDS, BRAM36_BITS, URAM_BITS, Board, get_board

# (BRAM36, URAM, DSP, LUT, FF, family, on-chip Mib as DESIGN.md rounds it)
EXPECTED = {
    "pynq-z2": (140, 0, 220, 53_200, 106_400, "xc7", 4.9),
    "ultra96": (216, 0, 360, 70_560, 141_120, "xcup", 7.6),
    "kv260": (144, 64, 1_248, 117_120, 234_240, "xcup", 23.1),
    "zcu104": (312, 96, 1_728, 230_400, 460_800, "xcup", 38.0),
}


@pytest.mark.parametrize("key", sorted(EXPECTED))
def test_board_budgets(key):
    bram, uram, dsp, lut, ff, family, mib = EXPECTED[key]
    board = get_board(key)
    assert (board.bram36, board.uram, board.dsp, board.lut, board.ff, board.family) == (
        bram, uram, dsp, lut, ff, family)
    assert round(board.on_chip_mib, 1) == mib
    assert board.on_chip_bits == bram * 36 * 1024 + uram * 288 * 1024
    assert board.budget() == {"lut": lut, "ff": ff, "dsp": dsp, "bram36": bram, "uram": uram}


def test_primitive_sizes():
    assert BRAM36_BITS == 36_864 and URAM_BITS == 294_912


def test_clocks_are_plausible_defaults():
    for board in BOARDS.values():
        assert (board.clock_mhz == 100.0) if board.family == "xc7" else (200.0 <= board.clock_mhz <= 250.0)


def test_get_board_is_case_insensitive_and_names_the_choices():
    assert get_board("ZCU104") is BOARDS["zcu104"]
    with pytest.raises(ConfigError, match=r"unknown board 'zcu102'; choose one of pynq-z2, ultra96, kv260, zcu104"):
        get_board("zcu102")


def test_board_validation_messages():
    fields = dict(key="x", name="X", device="d", family="xc7", lut=1, ff=1, dsp=1, bram36=1, uram=0,
                  clock_mhz=100.0, ddr_gbps=2.0, hp_width=64, hp_max_burst=16)
    with pytest.raises(ConfigError, match=r"board family must be one of \('xc7', 'xcup'\), not 'xc6'"):
        Board(**{**fields, "family": "xc6"})
    with pytest.raises(ConfigError, match=r"board dsp must be a non-negative integer, not -1"):
        Board(**{**fields, "dsp": -1})
    with pytest.raises(ConfigError, match=r"board clock_mhz must be positive, not 0"):
        Board(**{**fields, "clock_mhz": 0})
    with pytest.raises(ConfigError, match=r"board ddr_gbps must be positive, not nan"):
        Board(**{**fields, "ddr_gbps": float("nan")})
    with pytest.raises(ConfigError, match=r"board hp_width must be 64 or 128, not 32"):
        Board(**{**fields, "hp_width": 32})
    with pytest.raises(ConfigError, match=r"board hp_max_burst must be .*, not 0"):
        Board(**{**fields, "hp_max_burst": 0})


def test_ddr_figures_are_the_memory_interfaces_peaks():
    """Bus bytes × transfers per second of each board's PS DDR, and the PS ports' AXI generation."""
    peaks = {"pynq-z2": 2 * 1066e6, "ultra96": 4 * 2133e6, "kv260": 8 * 2400e6, "zcu104": 8 * 2666e6}
    for key, peak in peaks.items():
        board = BOARDS[key]
        assert board.ddr_gbps == pytest.approx(peak / 1e9, rel=0.005)
        assert (board.hp_width, board.hp_max_burst) == ((64, 16) if board.family == "xc7" else (128, 256))
