"""The packaged IP's identity: the VLNV Vivado stamps into the .hwh and PYNQ binds drivers by.

Stdlib only. The version follows the core's VERSION register (major.minor), so a bitstream with
an incompatible core never binds this driver.
"""

from __future__ import annotations

from lstmfpga.foundation.hw.register_map import CORE_VERSION

IP_VENDOR = "lstmfpga.org"
IP_LIBRARY = "hls"
IP_NAME = "lstm_core"
IP_VERSION = f"{CORE_VERSION >> 16}.{CORE_VERSION & 0xFFFF}"
VLNV = f"{IP_VENDOR}:{IP_LIBRARY}:{IP_NAME}:{IP_VERSION}"
