"""Batch packets (:mod:`lstmfpga.foundation.hw.stream_format`): drawn shapes, widths, modes and
batches against an independent construction from the single-sequence packers — the input packet
is the sequences' steps interleaved, the output packet the sequences' packets one after another —
and clear errors for batches a core cannot take."""

import numpy as np
import pytest

from lstmfpga.foundation.errors import InputError
from lstmfpga.foundation.hw import stream_format as sf
from lstmfpga.foundation.hw.config import STREAM_WIDTHS, AcceleratorConfig


def _config(rng, **fixed):
    return AcceleratorConfig(**{"input_size": int(rng.integers(1, 70)), "hidden_size": int(rng.integers(1, 40)),
                                "mode": str(rng.choice(["full", "split"])), "stream_width": int(rng.choice(STREAM_WIDTHS)),
                                "num_classes": int(rng.integers(0, 6)), "max_timesteps": int(rng.integers(1, 25)),
                                "weight_residency": "stream", "max_batch": int(rng.integers(2, 9)), **fixed})


@pytest.mark.parametrize("seed", range(20))
def test_batch_packets_are_the_single_packets_interleaved_and_concatenated(seed):
    rng = np.random.default_rng(seed)
    config = _config(rng)
    T, B, H = int(rng.integers(1, config.max_timesteps + 1)), int(rng.integers(1, config.max_batch + 1)), config.hidden_size
    if config.mode == "full":
        x = rng.integers(-128, 128, size=(B, T, config.input_size))
        single = [sf.pack_input(config, x[b]) for b in range(B)]
    else:
        x = rng.integers(-(1 << 31), 1 << 31, size=(B, T, 4, H))
        single = [sf.pack_preactivations(config, x[b]) for b in range(B)]
    per_step = sf.input_beats_per_step(config) * sf.lanes_per_beat(config)
    lanes = sf.pack_batch_input(config, x)
    assert lanes.size == B * sf.input_lanes(config, T)
    for t in range(T):
        for b in range(B):
            at = (t * B + b) * per_step
            np.testing.assert_array_equal(lanes[at:at + per_step], single[b][t * per_step:(t + 1) * per_step])
    h = rng.integers(-128, 128, size=(B, T, H))
    logits = rng.integers(-(1 << 31), 1 << 31, size=(B, config.num_classes)) if config.num_classes else None
    out = sf.pack_batch_output(config, h, logits)
    np.testing.assert_array_equal(out, np.concatenate(
        [sf.pack_output(config, h[b], None if logits is None else logits[b]) for b in range(B)]))
    got_h, got_logits = sf.unpack_batch_output(config, out, T, B)
    np.testing.assert_array_equal(got_h, h)
    if logits is None:
        assert got_logits is None
    else:
        np.testing.assert_array_equal(got_logits, logits)


def test_batches_a_core_cannot_take_are_named():
    rng = np.random.default_rng(0)
    config = _config(rng, mode="full", input_size=5, max_batch=3, max_timesteps=4)
    with pytest.raises(InputError, match=r"a batch must hold 1 to 3 sequences on this core, not 4"):
        sf.pack_batch_input(config, np.zeros((4, 2, 5), dtype=int))
    with pytest.raises(InputError, match=r"a batch must have shape \[B, T, 5\], not \[2, 2, 6\]"):
        sf.pack_batch_input(config, np.zeros((2, 2, 6), dtype=int))
    with pytest.raises(InputError, match=r"timesteps must be in \[1, 4\], not 5"):
        sf.pack_batch_input(config, np.zeros((2, 5, 5), dtype=int))
    one = AcceleratorConfig(input_size=5, hidden_size=3)
    with pytest.raises(InputError, match=r"a batch must hold 1 to 1 sequences on this core, not 2"):
        sf.unpack_batch_output(one, np.zeros(2 * sf.output_lanes(one, 1), dtype=np.uint32), 1, 2)
    with pytest.raises(InputError, match=r"output packet has 3 32-bit lanes, expected \d+ for a batch of 2"):
        sf.unpack_batch_output(config, np.zeros(3, dtype=np.uint32), 2, 2)


@pytest.mark.parametrize("seed", range(5))
def test_batch_groups_are_runs_of_one_length(seed):
    rng = np.random.default_rng(seed)
    lengths = rng.choice([3, 3, 3, 7], size=int(rng.integers(0, 30))).tolist()
    most = int(rng.integers(1, 6))
    groups = sf.batch_groups(lengths, most)
    assert [i for g in groups for i in g] == list(range(len(lengths)))      # every sequence, in order
    for g, h in zip(groups, groups[1:]):
        assert len(g) == most or lengths[h[0]] != lengths[g[0]]           # a batch ends full or at a new length
    assert all(1 <= len(g) <= most and len({lengths[i] for i in g}) == 1 for g in groups)
