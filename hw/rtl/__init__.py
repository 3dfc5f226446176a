"""Amaranth 0.5 RTL of the LSTM accelerator (imports amaranth; not for the board host)."""
