"""lstmfpga.foundation.hw: the hardware contract that the RTL, the simulators and the driver share."""
