"""The accelerator driver: register protocol, DMA discipline, errors. NumPy only (runs on PYNQ)."""
