"""The one integer check behind every keyword-only parameter and configuration field.

``bool`` is a subclass of ``int`` in Python, so ``isinstance(True, int)`` holds; a flag passed
where a count belongs must still be refused.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from lstmfpga.foundation.errors import ConfigError


def is_integer(value: Any, *, numpy: bool = False) -> bool:
    """Whether ``value`` is an integer and not a ``bool``.

    Parameters
    ----------
    value :
        Anything.
    numpy :
        Also accept NumPy integer scalars (``np.int64(3)``), e.g. values read from an array.
    """
    types = (int, np.integer) if numpy else int
    return isinstance(value, types) and not isinstance(value, (bool, np.bool_))


def is_finite_number(value: Any) -> bool:
    """Whether ``value`` is a finite ``int`` or ``float`` and not a ``bool``."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_integer(name: str, value: Any, *, low: int, high: int | None = None, what: str | None = None,
                  numpy: bool = False, error: type[Exception] = ConfigError) -> int:
    """``value`` as an ``int`` when it is an integer in ``[low, high]``; otherwise raise.

    Parameters
    ----------
    name :
        What the message calls the value (``"hidden_size"``, ``"board dsp"``).
    value :
        The value to check.
    low, high :
        Inclusive bounds; ``high=None`` leaves the top open.
    what :
        What the value must be, as the message says it (``"a positive integer"``); by default
        ``"an integer >= {low}"`` or ``"an integer in [{low}, {high}]"``.
    numpy :
        Also accept NumPy integer scalars.
    error :
        The exception class raised (a :class:`~lstmfpga.foundation.errors.LstmfpgaError` subclass
        where the CLI should print it, ``ValueError`` for library-only parameters).

    Raises
    ------
    error
        ``"{name} must be {what}, not {value!r}"``.
    """
    if not is_integer(value, numpy=numpy) or value < low or (high is not None and value > high):
        if what is None:
            what = f"an integer >= {low}" if high is None else f"an integer in [{low}, {high}]"
        raise error(f"{name} must be {what}, not {value!r}")
    return int(value)


def check_in_range(name: str, value: Any, *, low: int, high: int | None = None,
                   error: type[Exception] = ConfigError) -> int:
    """:func:`check_integer` with a message that names the rule broken.

    Raises
    ------
    error
        ``"{name} must be an integer, not {value!r}"`` for a non-integer; ``"{name} must be in
        [{low}, {high}], not {value!r}"`` (or ``">= {low}"``) for an integer out of range.
    """
    if not is_integer(value):
        raise error(f"{name} must be an integer, not {value!r}")
    bound = f">= {low}" if high is None else f"in [{low}, {high}]"
    return check_integer(name, value, low=low, high=high, what=bound, error=error)
