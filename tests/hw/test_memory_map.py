"""The planner's shortcut to a core's memories (:func:`memories_at`: two small elaborations, the
weight memory and the h buffers resized) against elaborating the core itself, on drawn shapes,
modes, stream widths, lanes, column sets, tail units and weight-memory ports and folds."""

import random

import pytest

from lstmfpga.foundation.hw.config import COLUMN_SETS, STREAM_WIDTHS, AcceleratorConfig
from lstmfpga.hw.memory_map import accelerator_memories, memories_at


@pytest.mark.parametrize("seed", range(12))
def test_memories_at_equals_the_elaborated_core(seed):
    rnd = random.Random(seed)
    mode, width = rnd.choice(["full", "split"]), rnd.choice(STREAM_WIDTHS)
    allowed = [S for S in COLUMN_SETS if mode == "split" or S <= width // 8]
    sets = rnd.choice(allowed if seed % 4 == 0 else allowed[1:])   # mostly more than one set
    tails = 2 if sets % 2 == 0 and seed % 2 else 1                   # two tail units: the tail's memories twice
    lanes, ports = 4 * sets * tails * rnd.randint(1, 6), rnd.choice([1, 2])
    folded = seed % 3 == 0 and ports == 2   # some lanes and rows on both ports, the rest on one
    config = AcceleratorConfig(input_size=rnd.randint(1, 70), hidden_size=rnd.randint(1, 30),
                               num_layers=rnd.randint(1, 3), lanes=lanes,
                               column_sets=sets, tail_units=tails, weight_ports=ports,
                               fold_lanes=2 * rnd.randint(1, lanes // 2) if folded else 0,
                               fold_rows=1 << rnd.randint(0, 6) if folded else 0,
                               lutram_upper_lanes=2 * rnd.randint(0, lanes // 2) if ports == 2 else 0, mode=mode, stream_width=width, weight_bits=rnd.randint(2, 8),
                               num_classes=rnd.randint(0, 3), max_timesteps=rnd.randint(1, 24))
    memories = memories_at(config)
    assert memories == accelerator_memories(config), config
    weights = next(m for m in memories if "weight_mem" in m.name)
    row = config.lanes * config.weight_bits
    if config.weight_ports == 1:
        assert (weights.depth, weights.width, weights.read_ports) == (max(2, config.weight_depth), row, 1)
    elif not folded:   # half rows, the smallest power-of-two half (of at least two words) for each
        half = weights.depth // 2
        assert weights.width * 2 == row and weights.read_ports == 2
        assert half >= max(2, config.weight_depth) > half // 2
    else:   # the banks hold the rows' bits, the folded one on both ports
        banks = [m for m in memories if "weight_mem" in m.name]
        assert [m.read_ports for m in banks] == [2] + [1] * (len(banks) - 1)
        widths = {m.name.rsplit("/", 1)[-1]: m.width for m in banks}
        assert 2 * widths["mem"] + widths.get("one_port_lanes", 0) == row
    # only the folded lanes' rows past the fold carry ram_style "distributed", and only when asked
    distributed = [m for m in memories if m.distributed]
    assert [m.name.rsplit("/", 1)[-1] for m in distributed] in ([], ["upper_rows_lutram"])
    assert bool(distributed) <= bool(config.lutram_upper_lanes)
    assert all(m.width <= config.lutram_upper_lanes * config.weight_bits for m in distributed)
