"""NumPy golden models of the LSTM head: float and integer (no torch import)."""
