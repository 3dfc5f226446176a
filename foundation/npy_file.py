"""Reading one ``.npy`` array a user named on the command line: every failure an :class:`InputError`.

NumPy only.  Pickled (object) arrays are refused, and an ``.npz`` archive under an ``.npy`` name is
named as such instead of failing later on a missing attribute.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from lstmfpga.foundation.errors import InputError


def load_npy(path: str | os.PathLike, what: str, *, mmap: bool = False) -> np.ndarray:
    """The array in ``path``; ``what`` names it in messages (``"label array"``).

    Parameters
    ----------
    mmap :
        Map the file read-only instead of reading it (for feature arrays larger than memory).

    Raises
    ------
    InputError
        The path is not a file, is not a readable ``.npy`` (pickled data included), or is an
        ``.npz`` archive.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{what} not found: {path} is not a file")
    try:
        array = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise InputError(f"{path}: not a readable .npy {what} ({exc})") from None
    if not isinstance(array, np.ndarray):
        array.close()
        raise InputError(f"{path}: an .npz archive, not one .npy {what}")
    return array
