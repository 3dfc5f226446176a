"""SHAPE_* registers: decode_shape inverts shape_registers on drawn configurations."""

import numpy as np
import pytest

from lstmfpga.foundation.errors import ConfigError
from lstmfpga.foundation.hw.config import MODES, AcceleratorConfig
from lstmfpga.foundation.hw.register_map import (BIT_FIELDS, SHAPE_REGS, decode_shape, pack_bits, shape_registers,
                                                 unpack_bits)


def _drawn_config(rng) -> AcceleratorConfig:
    widths = {name: int(rng.integers(4, 9)) for name in BIT_FIELDS[1:-1]}
    return AcceleratorConfig(
        input_size=int(rng.integers(1, 3000)), hidden_size=int(rng.integers(1, 600)),
        num_layers=int(rng.integers(1, 4)), lanes=4 * int(rng.integers(1, 33)), mode=str(rng.choice(MODES)),
        weight_bits=int(rng.integers(2, 9)),
        num_classes=int(rng.integers(0, 5)), classifier_weight_bits=int(rng.integers(2, 9)),
        max_timesteps=int(rng.integers(1, 25)), **widths)


def test_decode_shape_inverts_shape_registers():
    rng = np.random.default_rng(13)
    for _ in range(200):
        config = _drawn_config(rng)
        registers = shape_registers(config)
        assert list(registers) == [reg.name for reg in SHAPE_REGS]
        decoded = decode_shape(registers)
        if config.num_classes == 0:  # no classifier: its width is not carried
            assert decoded == AcceleratorConfig(**{**config.__dict__, "classifier_weight_bits": 8})
        else:
            assert decoded == config


def test_bit_fields_round_trip_in_4_bit_slots():
    rng = np.random.default_rng(7)
    for _ in range(50):
        fields = {name: int(rng.integers(0, 16)) for name in BIT_FIELDS}
        word = pack_bits(**fields)
        assert unpack_bits(word) == fields
        assert word == sum(fields[name] << (4 * i) for i, name in enumerate(BIT_FIELDS))


@pytest.mark.parametrize("register,value,message", [
    ("SHAPE_MODE", 2, r"SHAPE_MODE must be one of \[0, 1\] \(full, split\), not 2"),
    ("SHAPE_LAYERS", 0, "num_layers must be in"),
    ("SHAPE_LANES", 6, "lanes"),
])
def test_impossible_shapes_are_named(register, value, message):
    registers = dict(shape_registers(AcceleratorConfig(input_size=5, hidden_size=3)), **{register: value})
    with pytest.raises(ConfigError, match=message):
        decode_shape(registers)
