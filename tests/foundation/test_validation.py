import numpy as np
import pytest

from lstmfpga.foundation.errors import ConfigError
from lstmfpga.foundation.validation import check_in_range, check_integer, is_finite_number, is_integer


@pytest.mark.parametrize("value, plain, with_numpy", [
    (0, True, True), (-7, True, True), (2**70, True, True),
    (True, False, False), (False, False, False), (np.bool_(True), False, False),
    (np.int64(3), False, True), (np.uint8(3), False, True),
    (3.0, False, False), ("3", False, False), (None, False, False), (np.float32(3), False, False),
])
def test_is_integer_refuses_bools_and_non_integers(value, plain, with_numpy):
    assert is_integer(value) is plain
    assert is_integer(value, numpy=True) is with_numpy


def test_check_integer_bounds_are_inclusive_on_random_ranges():
    rng = np.random.default_rng(13)
    for _ in range(200):
        low = int(rng.integers(-50, 50))
        high = low + int(rng.integers(0, 20))
        value = int(rng.integers(low - 5, high + 6))
        if low <= value <= high:
            assert check_integer("n", value, low=low, high=high) == value
        else:
            with pytest.raises(ConfigError, match=rf"^n must be an integer in \[{low}, {high}\], not {value}$"):
                check_integer("n", value, low=low, high=high)


def test_check_integer_messages_and_error_class():
    with pytest.raises(ConfigError, match=r"^lanes must be an integer >= 4, not True$"):
        check_integer("lanes", True, low=4)
    with pytest.raises(ValueError, match=r"^hidden must be a positive integer, not 2\.0$") as info:
        check_integer("hidden", 2.0, low=1, what="a positive integer", error=ValueError)
    assert type(info.value) is ValueError
    assert check_integer("n", np.int16(9), low=0, numpy=True) == 9
    assert type(check_integer("n", np.int16(9), low=0, numpy=True)) is int
    with pytest.raises(ConfigError):
        check_integer("n", np.int16(9), low=0)


@pytest.mark.parametrize("value,high,message", [
    (2.0, 8, r"^bits must be an integer, not 2\.0$"), (True, 8, r"^bits must be an integer, not True$"),
    (1, 8, r"^bits must be in \[2, 8\], not 1$"), (9, 8, r"^bits must be in \[2, 8\], not 9$"),
    (1, None, r"^bits must be >= 2, not 1$"),
])
def test_check_in_range_names_the_rule_broken(value, high, message):
    with pytest.raises(ConfigError, match=message):
        check_in_range("bits", value, low=2, high=high)
    assert check_in_range("bits", 5, low=2, high=high) == 5


@pytest.mark.parametrize("value, expected", [
    (0, True), (-3, True), (2.5, True), (np.float64(1.5), True), (1e308, True),
    (True, False), (False, False), (float("nan"), False), (float("inf"), False), (-float("inf"), False),
    ("1", False), (None, False), (np.float32(1.5), False),
])
def test_is_finite_number_refuses_bools_strings_and_non_finite(value, expected):
    assert is_finite_number(value) is expected
