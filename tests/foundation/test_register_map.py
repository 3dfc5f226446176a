"""SHAPE_* registers: decode_shape inverts shape_registers on drawn configurations, packed or not,
with one column set or more, one tail unit or two, weights on chip or in DDR, one sequence a run or
a batch."""

import numpy as np
import pytest

from lstmfpga.foundation.errors import ConfigError
from lstmfpga.foundation.hw.config import COLUMN_SETS, MODES, STREAM_WIDTHS, AcceleratorConfig
from lstmfpga.foundation.hw.packed_mac_model import max_macs_per_dsp
from lstmfpga.foundation.hw.register_map import (BIT_FIELDS, SHAPE_REGS, decode_shape, pack_bits, shape_registers,
                                                 unpack_bits)


def _drawn_config(rng, ddr_rng=None) -> AcceleratorConfig:
    widths = {name: int(rng.integers(4, 9)) for name in BIT_FIELDS[1:-1]}
    weight_bits = int(rng.integers(2, 9))
    most = max_macs_per_dsp(weight_bits=weight_bits, act_bits=widths["io_bits"])
    lanes, mode, stream_width = 4 * int(rng.integers(1, 33)), str(rng.choice(MODES)), int(rng.choice(STREAM_WIDTHS))
    sets = [S for S in COLUMN_SETS if lanes % (4 * S) == 0 and (mode == "split" or S <= stream_width // 8)]
    column_sets = int(rng.choice(sets))
    two_tails = column_sets % 2 == 0 and lanes % (8 * column_sets) == 0
    ddr = {}
    if ddr_rng is not None and ddr_rng.random() < 0.4:
        ddr = dict(weight_residency="stream", ddr_width=int(ddr_rng.choice([64, 128])),
                   ddr_burst=int(ddr_rng.integers(1, 257)), ddr_outstanding=int(ddr_rng.integers(1, 65)),
                   max_batch=int(ddr_rng.choice([1, ddr_rng.integers(2, 65)])))
    return AcceleratorConfig(**ddr,
        input_size=int(rng.integers(1, 3000)), hidden_size=int(rng.integers(1, 600)),
        num_layers=int(rng.integers(1, 4)), lanes=lanes, mode=mode, stream_width=stream_width,
        column_sets=column_sets, tail_units=int(rng.choice([1, 2])) if two_tails else 1,
        weight_bits=weight_bits, macs_per_dsp=int(rng.integers(1, most + 1)),
        num_classes=int(rng.integers(0, 5)), classifier_weight_bits=int(rng.integers(2, 9)),
        max_timesteps=int(rng.integers(1, 25)), **widths)


def test_decode_shape_inverts_shape_registers():
    rng, ddr_rng = np.random.default_rng(13), np.random.default_rng(14)
    packed = sets = tails = ddr = batches = 0
    for _ in range(300):
        config = _drawn_config(rng, ddr_rng)
        registers = shape_registers(config)
        # an unpacked core leaves SHAPE_PACKING unmapped (its Verilog is that of a core built before
        # packing), a core of one column set SHAPE_SETS; a driver reading every SHAPE_* register gets 0 there
        unmapped = ([] if config.macs_per_dsp > 1 else ["SHAPE_PACKING"]) + \
            ([] if config.column_sets > 1 else ["SHAPE_SETS"]) + ([] if config.tail_units > 1 else ["SHAPE_TAILS"]) + \
            ([] if config.ddr_weights else ["SHAPE_DDR"]) + ([] if config.max_batch > 1 else ["SHAPE_BATCH"])
        names = [reg.name for reg in SHAPE_REGS]
        assert sorted(list(registers) + unmapped) == sorted(names)
        assert list(registers) == [name for name in names if name in registers]
        packed += config.macs_per_dsp > 1
        sets += config.column_sets > 1
        tails += config.tail_units > 1
        ddr += config.ddr_weights
        batches += config.max_batch > 1
        expected = config
        if config.num_classes == 0:  # no classifier: its width is not carried
            expected = AcceleratorConfig(**{**config.__dict__, "classifier_weight_bits": 8})
        assert decode_shape(registers) == expected
        assert decode_shape({**dict.fromkeys(unmapped, 0), **registers}) == expected
    assert packed > 50 and sets > 30 and tails > 10 and ddr > 50 and batches > 25


def test_ddr_error_bits_follow_the_fetchers_flags():
    from lstmfpga.foundation.hw.register_map import DDR_ERROR_SHIFT, Error, unpack_ddr
    from lstmfpga.hw.ddr_model import ReadError

    # the core shifts the fetcher's flags into ERROR: the names and the order must agree
    for flag in ReadError:
        name = {"OUT_OF_RANGE": "DDR_RANGE"}.get(flag.name, f"DDR_{flag.name}")
        assert Error[name] == int(flag) << DDR_ERROR_SHIFT
    with pytest.raises(ConfigError, match="unknown weight residency code 7"):
        unpack_ddr(0x0010_1007)


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


def test_packing_register_is_checked_against_the_widths():
    registers = shape_registers(AcceleratorConfig(input_size=5, hidden_size=3, weight_bits=4, io_bits=8))
    assert decode_shape({**registers, "SHAPE_PACKING": 2}).macs_per_dsp == 2
    with pytest.raises(ConfigError, match=r"macs_per_dsp must be in \[1, 2\] for 4-bit weights and 8-bit"):
        decode_shape({**registers, "SHAPE_PACKING": 3})


def test_ddr_region_writes_split_the_address_and_refuse_what_does_not_fit():
    from lstmfpga.foundation.hw.register_map import Reg, ddr_region_writes

    rng = np.random.default_rng(3)
    for _ in range(50):
        address, length = int(rng.integers(0, 1 << 63)) * 2 + int(rng.integers(0, 2)), int(rng.integers(0, 1 << 32))
        writes = ddr_region_writes(address, length)
        assert [r for r, _ in writes] == [Reg.DDR_BASE_LO, Reg.DDR_BASE_HI, Reg.DDR_LENGTH]
        assert writes[0][1] | writes[1][1] << 32 == address and writes[2][1] == length
    with pytest.raises(ConfigError, match="32-bit length"):
        ddr_region_writes(0x1000, 1 << 32)
