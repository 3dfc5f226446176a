"""The memory behind a simulated core's weight port (weights in DDR): where the DDR image lies,
and how the harness's AXI4 read slave times its answers.

NumPy/stdlib only (the simulated board imports it); the harness side is
``harness_map_ddr``/``harness_configure_ddr`` in ``harness.cpp``.
"""

from __future__ import annotations

import dataclasses

from lstmfpga.foundation.errors import ConfigError
from lstmfpga.foundation.validation import check_integer

#: Bus address of the DDR image in the benches: above 4 GiB, so both DDR_BASE words matter.
DEFAULT_BASE = 0x1_2340_0000


@dataclasses.dataclass(frozen=True, kw_only=True)
class SimulatedDdr:
    """A fixed-latency memory, one beat a cycle at most, with random idle cycles.

    Parameters
    ----------
    latency :
        Cycles from an AR handshake to its first R beat (≥ 1).
    ar_pause, r_pause :
        Chance of an idle cycle on ARREADY and on RVALID, each cycle, in [0, 1).
    base :
        Bus address of the image (a multiple of 4 KiB: every port width's beats).
    """

    latency: int = 24
    ar_pause: float = 0.0
    r_pause: float = 0.0
    base: int = DEFAULT_BASE

    def __post_init__(self) -> None:
        check_integer("latency", self.latency, low=1)
        check_integer("base", self.base, low=0, high=2**64 - 1)
        if self.base % 4096:
            raise ConfigError(f"the simulated DDR image's base must be a multiple of 4096, not {self.base:#x}")
        for name in ("ar_pause", "r_pause"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ConfigError(f"{name} must be a probability in [0, 1), not {value!r}")

    def port(self, config):
        """The :class:`~lstmfpga.hw.ddr_schedule.DdrPort` that models this memory for ``config``'s
        read port (the pauses as a slower beat rate and a longer latency, on average), at the
        image's address."""
        from lstmfpga.hw.ddr_schedule import DdrPort

        stretch = 1.0 / (1.0 - max(self.ar_pause, self.r_pause))
        return DdrPort(data_width=config.ddr_width, max_burst=config.ddr_burst, outstanding=config.ddr_outstanding,
                       latency=self.latency * stretch, interval=stretch, base=self.base)

    def attach(self, harness, image) -> None:
        """Map ``image`` (the uint8 DDR image) at :attr:`base` and set the timing on ``harness``."""
        harness.configure_ddr(latency=self.latency, ar_pause=self.ar_pause, r_pause=self.r_pause)
        harness.map_ddr(self.base, image)
