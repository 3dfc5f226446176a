"""PynqDmaChannel: PYNQ's channel API adapted with a deadline and named DMASR error bits."""

import pytest

from lstmfpga.host.driver.dma import (
    DMASR_OFFSET,
    DmaStatus,
    PynqDmaChannel,
    check_transfer,
    max_transfer_bytes,
    required_length_width,
)
from lstmfpga.host.driver.errors import DmaError, DmaLimitError, DmaTimeout


class FakeMmio:
    """Answers DMASR reads from a list (the last value repeats); records every read offset."""

    def __init__(self, values):
        self.values = list(values)
        self.reads = []

    def read(self, offset):
        self.reads.append(offset)
        return self.values.pop(0) if len(self.values) > 1 else self.values[0]


class FakePynqChannel:
    def __init__(self, values, offset=0x30):
        self._mmio = FakeMmio(values)
        self._offset = offset
        self.calls = []

    def transfer(self, array, start=0, nbytes=0):
        self.calls.append(("transfer", nbytes))

    def stop(self):
        self.calls.append("stop")

    def start(self):
        self.calls.append("start")


def test_wait_polls_status_until_idle():
    fake = FakePynqChannel([0, 0, DmaStatus.IDLE | DmaStatus.IOC_IRQ])
    channel = PynqDmaChannel(channel=fake, name="recv", poll_s=0)
    channel.transfer("buffer", 64)
    channel.wait(1.0)
    assert fake.calls == [("transfer", 64)]
    assert fake._mmio.reads == [0x30 + DMASR_OFFSET] * 3


@pytest.mark.parametrize("bits,names", [
    (DmaStatus.INTERNAL_ERROR, "INTERNAL_ERROR"),
    (DmaStatus.SLAVE_ERROR | DmaStatus.DECODE_ERROR, "SLAVE_ERROR, DECODE_ERROR"),
])
def test_wait_names_error_bits(bits, names):
    fake = FakePynqChannel([0, int(bits | DmaStatus.HALTED)])
    with pytest.raises(DmaError, match=f"AXI DMA send channel reported {names}"):
        PynqDmaChannel(channel=fake, name="send", poll_s=0).wait(1.0)


def test_wait_times_out():
    fake = FakePynqChannel([0])
    with pytest.raises(DmaTimeout, match="AXI DMA send transfer did not finish within 0.01 s"):
        PynqDmaChannel(channel=fake, name="send", poll_s=0.001).wait(0.01)


def test_reset_restarts_the_channel():
    fake = FakePynqChannel([DmaStatus.IDLE])
    PynqDmaChannel(channel=fake, name="send").reset()
    assert fake.calls == ["stop", "start"]


def test_transfer_limits():
    assert max_transfer_bytes(14) == 16383 and max_transfer_bytes(23) == (1 << 23) - 1
    assert required_length_width(49152) == 16 and required_length_width(1) == 8
    check_transfer(16383, 16383, "x")
    with pytest.raises(DmaLimitError, match="c_sg_length_width >= 15"):
        check_transfer(16384, 16383, "x")
    with pytest.raises(ValueError, match=r"DMA length width must be an integer in \[8, 26\], not 27"):
        max_transfer_bytes(27)
