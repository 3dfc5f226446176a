"""AcceleratorConfig.macs_per_dsp: validated against the packing model, serialized, and ignored
where an artifact is matched against a core (the weight image does not depend on it)."""

import dataclasses

import pytest

from lstmfpga.foundation.errors import ConfigError
from lstmfpga.foundation.hw.config import AcceleratorConfig
from lstmfpga.foundation.hw.packed_mac_model import max_macs_per_dsp
from lstmfpga.foundation.hw.weight_image import build_weight_image
from lstmfpga.sim.golden.random_artifact import random_artifact


@pytest.mark.parametrize("weight_bits", range(2, 9))
@pytest.mark.parametrize("io_bits", range(4, 9))
def test_every_packing_up_to_the_maximum_is_accepted_and_one_more_refused(weight_bits, io_bits):
    most = max_macs_per_dsp(weight_bits=weight_bits, act_bits=io_bits)
    assert most >= 2
    for k in range(1, most + 1):
        assert AcceleratorConfig(input_size=3, hidden_size=2, weight_bits=weight_bits, io_bits=io_bits,
                                 macs_per_dsp=k).macs_per_dsp == k
    with pytest.raises(ConfigError, match=rf"macs_per_dsp must be in \[1, {most}\] for {weight_bits}-bit weights "
                                          rf"and {io_bits}-bit activations \(a DSP48E2\), not {most + 1}"):
        AcceleratorConfig(input_size=3, hidden_size=2, weight_bits=weight_bits, io_bits=io_bits, macs_per_dsp=most + 1)


@pytest.mark.parametrize("value,message", [(0, r"macs_per_dsp must be >= 1, not 0"),
                                           (True, "macs_per_dsp must be an integer, not True"),
                                           (2.0, "macs_per_dsp must be an integer, not 2.0")])
def test_macs_per_dsp_must_be_a_positive_integer(value, message):
    with pytest.raises(ConfigError, match=message):
        AcceleratorConfig(input_size=3, hidden_size=2, macs_per_dsp=value)


def test_packing_round_trips_and_old_dicts_mean_one():
    config = AcceleratorConfig(input_size=7, hidden_size=5, weight_bits=4, io_bits=4, macs_per_dsp=3)
    assert config.to_dict()["macs_per_dsp"] == 3
    assert AcceleratorConfig.from_dict(config.to_dict()) == config
    old = {k: v for k, v in config.to_dict().items() if k != "macs_per_dsp"}   # a manifest from before packing
    assert AcceleratorConfig.from_dict(old) == dataclasses.replace(config, macs_per_dsp=1)


@pytest.mark.parametrize("weight_bits,act_bits", [(4, 8), (2, 4), (8, 6)])
def test_an_artifact_loads_on_a_core_of_any_packing(weight_bits, act_bits):
    art = random_artifact(input_size=6, hidden_size=3, num_layers=2, num_classes=2, weight_bits=weight_bits,
                          act_bits=act_bits, seed=weight_bits)
    unpacked = AcceleratorConfig.from_artifact(art, lanes=8)
    image = build_weight_image(art, unpacked)
    for k in range(1, max_macs_per_dsp(weight_bits=weight_bits, act_bits=act_bits) + 1):
        packed = AcceleratorConfig.from_artifact(art, lanes=8, macs_per_dsp=k)
        assert packed.macs_per_dsp == k and packed.mismatch(art) is None
        assert (build_weight_image(art, packed) == image).all()
    wider = random_artifact(input_size=6, hidden_size=3, num_layers=2, num_classes=2, weight_bits=8, act_bits=8)
    if (weight_bits, act_bits) != (8, 8):
        # the widths still decide, whatever the packing; the message names the width, not the packing
        assert packed.mismatch(wider).startswith(("weight_bits", "io_bits", "acc_bits"))
