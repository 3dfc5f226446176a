"""The whole core with packed MACs (``macs_per_dsp`` > 1) under Amaranth's simulator: drawn tiny
shapes, widths and multiplier layouts (``packing_dsp``), the corner where every weight and input is
the most negative code, and rows longer than the packing's run (per-row accumulators in fabric);
bit-exact against the integer golden, CYCLES equal to the cycle model."""

import random

import numpy as np
import pytest

from lstmfpga.foundation.hw.config import AcceleratorConfig
from lstmfpga.foundation.hw.packed_mac_model import DSP_SHAPES, max_macs_per_dsp, plan_packing
from lstmfpga.foundation.hw.weight_image import build_weight_image
from lstmfpga.hw import cycle_model
from lstmfpga.sim.golden.random_artifact import most_negative_weights, random_artifact
from lstmfpga.sim.rtl_check import golden_packets, random_codes

from test_core_pysim import _simulate  # noqa: E402  (the core bench: load, runs, backpressure)


def _check(art, config, sequences):
    steps = [x.shape[0] for x in sequences]
    packets, expected = zip(*(golden_packets(config, art, x) for x in sequences))
    outputs, flags = _simulate(config, build_weight_image(art, config), packets, steps)
    assert flags["load_error"] == 0 and flags["weights_valid"] == 1
    assert flags["errors"] == [0] * len(steps)
    for got, want, T in zip(outputs, expected, steps):
        np.testing.assert_array_equal(got, want, err_msg=f"T={T}")
    assert flags["cycles"] == [cycle_model.estimate(config, T).compute_cycles for T in steps]


@pytest.mark.parametrize("seed", range(6))
def test_packed_core_drawn_shape_matches_golden_and_cycle_model(seed):
    rnd = random.Random(1000 + seed)
    wb, io = rnd.choice([2, 3, 4, 5, 8]), rnd.choice([4, 6, 8])
    art = random_artifact(input_size=rnd.randint(1, 12), hidden_size=rnd.randint(1, 6),
                          num_layers=rnd.randint(1, 3), num_classes=rnd.choice([0, 1, 3]), weight_bits=wb,
                          act_bits=io, seed=200 + seed)
    packable = sorted(n for n, d in DSP_SHAPES.items() if max_macs_per_dsp(weight_bits=wb, act_bits=io, dsp=d) > 1)
    dsp = random.Random(2000 + seed).choice(packable)   # its own generator: the other fields as before
    k = rnd.randint(2, max_macs_per_dsp(weight_bits=wb, act_bits=io, dsp=DSP_SHAPES[dsp]))
    config = AcceleratorConfig.from_artifact(art, lanes=rnd.choice([4, 8, 12, 20, 24]), macs_per_dsp=k,
                                             packing_dsp=dsp, mode=("full", "split")[seed % 2],
                                             max_timesteps=rnd.randint(1, 4))
    rng = np.random.default_rng(seed)
    _check(art, config, [random_codes(art, rng, rnd.randint(1, config.max_timesteps)) for _ in range(2)])


@pytest.mark.parametrize("wb,io,k,lanes,mode,sets", [
    (2, 4, 5, 12, "full", 1),    # run of 1: every product flushed; 12 lanes = 2 units + 2 of 5 rows
    (3, 4, 3, 8, "split", 1),    # 8 lanes = 2 units + 2 of 3 rows
    (4, 4, 3, 4, "full", 1),     # one unit, its last field empty
    (4, 8, 2, 12, "split", 1),   # the study's widths
    (8, 8, 2, 4, "full", 1),     # run of 7
    (8, 8, 1, 16, "full", 4),    # one multiplier a lane, rows summed over four sets at row_sum_bits
    (5, 6, 2, 16, "full", 2),    # packed units in two sets
])
def test_most_negative_weights_and_inputs_in_every_field(wb, io, k, lanes, mode, sets):
    art = most_negative_weights(random_artifact(input_size=11, hidden_size=3, num_layers=2, num_classes=2,
                                                weight_bits=wb, act_bits=io, seed=wb * io))
    assert (art.layers[0].w_x == -(1 << (wb - 1))).all()
    config = AcceleratorConfig.from_artifact(art, lanes=lanes, macs_per_dsp=k, mode=mode, max_timesteps=3,
                                             column_sets=sets)
    lo = art.io_quant.lo
    assert lo == -(1 << (io - 1))
    _check(art, config, [np.full((3, 11), lo), np.full((1, 11), lo)])


@pytest.mark.parametrize("wb,io,k,dsp", [(8, 8, 2, "DSP48E2"), (4, 4, 3, "DSP48E2"), (3, 4, 3, "DSP48E2"),
                                         (4, 8, 2, "MULT18X18D"), (8, 8, 2, "DSP48E1")])
def test_rows_longer_than_the_packing_run_split_into_fabric_accumulators(wb, io, k, dsp):
    run = plan_packing(weight_bits=wb, act_bits=io, macs_per_dsp=k, dsp=DSP_SHAPES[dsp]).run
    H = 3
    I = 2 * run + 3 - H          # layer 0's rows span two runs and a part
    art = random_artifact(input_size=I, hidden_size=H, num_layers=2, num_classes=1, weight_bits=wb, act_bits=io,
                          seed=run)
    config = AcceleratorConfig.from_artifact(art, lanes=8, macs_per_dsp=k, packing_dsp=dsp, max_timesteps=2)
    assert config.on_chip_input_columns(0) > 2 * run
    rng = np.random.default_rng(run)
    _check(art, config, [random_codes(art, rng, 2), np.full((2, I), art.io_quant.lo)])
