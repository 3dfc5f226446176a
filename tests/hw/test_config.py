"""AcceleratorConfig: validation messages, derived shape, artifact matching."""

import dataclasses
import random

import pytest

from lstmfpga.foundation.errors import ConfigError
from lstmfpga.foundation.hw.config import AcceleratorConfig
from lstmfpga.sim.golden.random_artifact import random_artifact


@pytest.mark.parametrize("field,value,message", [
    ("lanes", 6, "lanes must be a positive multiple of 4, not 6"),
    ("lanes", 0, r"lanes must be in \[4, 4096\], not 0"),
    ("num_layers", 4, r"num_layers must be in \[1, 3\], not 4"),
    ("mode", "both", r"mode must be one of \('full', 'split'\), not 'both'"),
    ("weight_bits", 1, r"weight_bits must be in \[2, 8\], not 1"),
    ("max_timesteps", 25, r"max_timesteps must be in \[1, 24\], not 25"),
    ("hidden_size", 2.0, "hidden_size must be an integer, not 2.0"),
    ("stream_width", 48, r"stream_width must be one of \(32, 64, 128\), not 48"),
    ("weight_residency", "ddr", r"weight_residency must be one of \('chip', 'stream', 'all', 'wx'\), not 'ddr'"),
    ("ddr_width", 32, r"ddr_width must be one of \(64, 128\), not 32"),
    ("ddr_burst", 257, r"ddr_burst must be in \[1, 256\], not 257"),
    ("ddr_outstanding", 0, r"ddr_outstanding must be in \[1, 64\], not 0"),
])
def test_config_rejects(field, value, message):
    kwargs = dict(input_size=5, hidden_size=3)
    kwargs[field] = value
    with pytest.raises(ConfigError, match=message):
        AcceleratorConfig(**kwargs)


def test_two_weight_ports_need_weights_on_chip():
    with pytest.raises(ConfigError, match="weight_ports 2 needs weights on chip"):
        AcceleratorConfig(input_size=5, hidden_size=3, weight_ports=2, weight_residency="stream")


def test_weights_in_ddr_keep_a_double_buffer_of_row_groups():
    rnd = random.Random(5)
    for _ in range(50):
        config = AcceleratorConfig(input_size=rnd.randint(1, 300), hidden_size=rnd.randint(1, 80),
                                   num_layers=rnd.randint(1, 3), lanes=4 * rnd.randint(1, 40),
                                   mode=rnd.choice(["full", "split"]), weight_residency="stream")
        longest = max(config.issued_columns(layer) for layer in range(config.num_layers))
        assert config.weight_memory_rows == 2 * longest <= 2 * config.weight_depth
        assert dataclasses.replace(config, weight_residency="chip").weight_memory_rows == config.weight_depth
        if config.mode == "full":
            # an input pass fetches a group's W_x rows, then (per step) its W_h rows: the longer one a half
            passes = dataclasses.replace(config, weight_residency="all")
            x_longest = max(config.x_columns(layer) for layer in range(config.num_layers))
            assert passes.weight_memory_rows == 2 * max(x_longest, config.h_columns) < config.weight_memory_rows
            assert passes.pre_stride == config.hidden_size
            # W_h on chip: after a double buffer of the longest X_l, every group's H_c rows
            resident = dataclasses.replace(config, weight_residency="wx")
            assert resident.weight_memory_rows == 2 * x_longest + config.num_layers * config.groups * config.h_columns


@pytest.mark.parametrize("residency", ["all", "wx"])
def test_an_input_pass_runs_in_full_mode_only(residency):
    with pytest.raises(ConfigError, match=f"weight_residency '{residency}' .* is built in full mode only"):
        AcceleratorConfig(input_size=5, hidden_size=3, mode="split", weight_residency=residency)


def test_config_is_keyword_only_and_frozen():
    with pytest.raises(TypeError):
        AcceleratorConfig(5, 3)
    cfg = AcceleratorConfig(input_size=5, hidden_size=3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.lanes = 8


@pytest.mark.parametrize("I,H,P,mode", [(37, 19, 8, "full"), (2048, 512, 1024, "split"), (1, 1, 4, "full")])
def test_derived_shape(I, H, P, mode):
    cfg = AcceleratorConfig(input_size=I, hidden_size=H, num_layers=2, lanes=P, mode=mode)
    assert cfg.groups == -(-4 * H // P)
    assert cfg.groups * P >= 4 * H > (cfg.groups - 1) * P
    assert cfg.on_chip_input_columns(0) == (H if mode == "split" else I + H)
    assert cfg.on_chip_input_columns(1) == 2 * H
    assert cfg.weight_depth == cfg.groups * (cfg.on_chip_input_columns(0) + 2 * H)
    # worst-case accumulator magnitude fits
    worst = (I + H) * (1 << (cfg.weight_bits - 1)) * (1 << (cfg.io_bits - 1)) + 2 * (1 << 31)
    assert worst < 1 << (cfg.accumulator_bits - 1)


@pytest.mark.parametrize("seed", range(30))
def test_row_sum_bits_hold_the_worst_row_and_no_less(seed):
    """exact_sum_bits against the worst dot product counted directly: every weight and code at
    its most negative over the longest row any layer feeds the lanes (split: layer 0 only W_h)."""
    rnd = random.Random(seed)
    cfg = AcceleratorConfig(input_size=rnd.randint(1, 5000), hidden_size=rnd.randint(1, 3000),
                            num_layers=rnd.randint(1, 3), mode=rnd.choice(["full", "split"]),
                            weight_bits=rnd.randint(2, 8), io_bits=rnd.randint(4, 8))
    longest = max((cfg.input_size if layer == 0 and cfg.mode == "full" else 0) + cfg.hidden_size
                  + (cfg.hidden_size if layer else 0) for layer in range(cfg.num_layers))
    worst = longest * (1 << (cfg.weight_bits - 1)) * (1 << (cfg.io_bits - 1))
    bits = cfg.exact_sum_bits
    assert worst <= (1 << (bits - 1)) - 1 and worst > (1 << (bits - 2)) - 1
    assert cfg.row_sum_bits == bits <= cfg.accumulator_bits
    wider = rnd.randint(bits, cfg.accumulator_bits)
    assert dataclasses.replace(cfg, sum_bits=wider).row_sum_bits == wider
    with pytest.raises(ConfigError, match=rf"sum_bits must be in \[{bits}, {cfg.accumulator_bits}\]"):
        dataclasses.replace(cfg, sum_bits=bits - 1)
    with pytest.raises(ConfigError, match="sum_bits must be in"):
        dataclasses.replace(cfg, sum_bits=cfg.accumulator_bits + 1)


def test_from_artifact_and_shape_matches():
    art = random_artifact(input_size=7, hidden_size=5, num_layers=2, num_classes=3, weight_bits=4, act_bits=6)
    cfg = AcceleratorConfig.from_artifact(art, lanes=8, mode="split")
    assert (cfg.input_size, cfg.hidden_size, cfg.num_layers, cfg.num_classes) == (7, 5, 2, 3)
    assert (cfg.weight_bits, cfg.io_bits, cfg.acc_bits, cfg.classifier_weight_bits) == (4, 6, 6, 4)
    assert cfg.shape_matches(art)
    other = random_artifact(input_size=7, hidden_size=5, num_layers=2, num_classes=3, weight_bits=4,
                            act_bits=6, seed=9)
    assert cfg.shape_matches(other)
    wrong = random_artifact(input_size=7, hidden_size=5, num_layers=2, num_classes=3, weight_bits=8, act_bits=6)
    assert not cfg.shape_matches(wrong)
    assert cfg.mismatch(wrong) == "weight_bits: the hardware has 4, the artifact needs 8"
    assert AcceleratorConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ConfigError, match=r"unknown accelerator config fields \['bogus'\]"):
        AcceleratorConfig.from_dict({**cfg.to_dict(), "bogus": 1})
