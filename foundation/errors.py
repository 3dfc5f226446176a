"""The one exception family the command line turns into a clean message.

NumPy-free and torch-free on purpose: the board path imports it on a PYNQ image.
"""

from __future__ import annotations


class LstmfpgaError(Exception):
    """A problem the user can fix: bad input, bad file, bad configuration.

    The CLI prints ``error: <message>`` and exits with status 2 instead of a traceback.
    """


class InputError(LstmfpgaError, ValueError):
    """Input data of the wrong shape, width, dtype, or with NaN/inf values."""


class ArtifactError(LstmfpgaError):
    """A model artifact (or QONNX file) that is missing, corrupt, of the wrong version, or unsupported."""


class ConfigError(LstmfpgaError, ValueError):
    """A configuration value out of its supported range."""
