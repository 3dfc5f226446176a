"""The ``lstmfpga golden`` command, the float golden (NumPy ``torch.nn.LSTM``) and random artifacts.

The integer golden, the contract itself, is :mod:`lstmfpga.foundation.integer_lstm`.
"""
