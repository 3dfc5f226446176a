"""The ``pynq`` backend: the core on a PYNQ board, through the overlay's AXI DMA.

Needs the ``pynq`` package (the ``board`` extra; PYNQ images ship it). NumPy only otherwise.
"""

from __future__ import annotations

from lstmfpga.foundation.errors import ConfigError
from lstmfpga.host.backends.driver_backend import DriverBackend
from lstmfpga.host.overlay.ip_identity import VLNV


def _find_ip(overlay, name: str | None, vlnv_prefix: str, what: str):
    if name is not None:
        if name not in overlay.ip_dict:
            raise ConfigError(f"the overlay has no IP named {name!r}; it has {', '.join(sorted(overlay.ip_dict))}")
        return getattr(overlay, name)
    found = [n for n, d in overlay.ip_dict.items() if str(d.get("type", "")).startswith(vlnv_prefix)]
    if len(found) != 1:
        raise ConfigError(f"found {len(found)} {what} IPs ({', '.join(found) or 'none'}) in the overlay; name one")
    return getattr(overlay, found[0])


class PynqBackend(DriverBackend):
    """Load ``overlay`` (a .bit with its .hwh beside it) and drive its lstmfpga core.

    Parameters
    ----------
    overlay
        Path of the bitstream, or an already loaded ``pynq.Overlay``.
    core_name, dma_name
        IP names in the overlay; found by VLNV when omitted.
    timeout_s
        Per-sequence (and weight-load) timeout.
    """

    name = "pynq"

    def __init__(self, *, artifact, overlay, mode: str | None = None, core_name: str | None = None,
                 dma_name: str | None = None, double_buffer: bool = True, timeout_s: float = 5.0) -> None:
        try:
            import pynq
        except ImportError:
            raise ConfigError("the pynq backend needs the 'pynq' package (install lstmfpga[board] on a PYNQ image)") from None
        import lstmfpga.host.driver.pynq_ip  # noqa: F401  (registers LstmCoreIP with pynq before the overlay loads)

        ol = pynq.Overlay(str(overlay)) if isinstance(overlay, (str, bytes)) or hasattr(overlay, "__fspath__") else overlay
        core = _find_ip(ol, core_name, VLNV.rsplit(":", 1)[0], "lstmfpga core")
        dma = _find_ip(ol, dma_name, "xilinx.com:ip:axi_dma", "AXI DMA")
        super().__init__(artifact=artifact, driver=core.driver(dma, timeout_s=timeout_s), mode=mode,
                         double_buffer=double_buffer)
