"""WeightMemory (Amaranth simulator): drawn shapes, lanes, weight widths and folds (which lanes
and rows sit on both ports of the folded RAM, the rest on one-port RAMs, some in LUTs); every row written in a
random order reads back whole at random addresses a cycle after its address, and holds while the
read is not enabled."""

import dataclasses
import random

import pytest
from amaranth.sim import Simulator

from lstmfpga.foundation.errors import ConfigError
from lstmfpga.foundation.hw.config import AcceleratorConfig
from lstmfpga.hw.rtl.ram import address_bits
from lstmfpga.hw.rtl.weight_memory import WeightMemory, folded_rows, weight_banks


def _draw(rnd: random.Random, layout: int | None = None) -> AcceleratorConfig:
    """A drawn weight memory on two ports; ``layout`` bit 0: rows past the fold, bit 1: lanes past
    it (None: drawn too)."""
    layout = rnd.randrange(4) if layout is None else layout
    lanes = 4 * rnd.randint(1, 6)
    base = AcceleratorConfig(input_size=rnd.randint(1, 40), hidden_size=rnd.randint(1, 12), lanes=lanes,
                             num_layers=rnd.randint(1, 2), weight_bits=rnd.randint(2, 8))
    rows = base.weight_memory_rows
    span = address_bits(rows)
    upper = 1 << rnd.randint(0, (rows - 1).bit_length() - 1) if rows > 2 else 1   # below the rows
    return AcceleratorConfig(input_size=base.input_size, hidden_size=base.hidden_size, lanes=lanes,
                             num_layers=base.num_layers, weight_bits=base.weight_bits, weight_ports=2,
                             fold_lanes=2 * rnd.randint(1, lanes // 2 - 1) if layout & 2 else rnd.choice([0, lanes]),
                             fold_rows=upper if layout & 1 else rnd.choice([0, 1 << span, 1 << rnd.randint(span, 14)]),
                             lutram_upper_lanes=2 * rnd.randint(0, lanes // 2))


@pytest.mark.parametrize("seed", range(12))
def test_weight_memory_reads_back_every_row(seed):
    rnd = random.Random(seed)
    config = _draw(rnd, layout=seed % 4)
    rows, width = config.weight_memory_rows, config.lanes * config.weight_bits
    image = [rnd.getrandbits(width) for _ in range(rows)]
    banks = {bank.name for bank in weight_banks(config)}
    # the draw reaches each bank layout: folded rows only, rows past the fold, lanes past it
    past_fold = bool(banks & {"upper_rows", "upper_rows_lutram"})
    assert past_fold == (rows > folded_rows(config)) == bool(seed % 4 & 1)
    assert ("one_port_lanes" in banks) == (0 < config.fold_lanes < config.lanes) == bool(seed % 4 & 2)
    dut = WeightMemory(config=config)

    async def bench(ctx):
        for r in rnd.sample(range(rows), rows):
            ctx.set(dut.write.addr, r)
            ctx.set(dut.write.data, image[r])
            ctx.set(dut.write.en, 1)
            await ctx.tick()
        ctx.set(dut.write.en, 0)
        await ctx.tick()
        await ctx.tick()   # the registered write lands
        expected = None
        for _ in range(3 * rows + 10):
            enable = rnd.random() < 0.7
            r = rnd.randrange(rows)
            ctx.set(dut.read.addr, r)
            ctx.set(dut.read.en, enable)
            await ctx.tick()
            if enable:
                expected = image[r]
            if expected is not None:
                assert ctx.get(dut.read.data) == expected, (config, r)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()


def test_weight_banks_cover_every_row_and_lane_with_less_than_half_padding():
    """Drawn configurations: the banks' lanes make up a row (the folded bank's two halves, the
    one-port lanes), their words cover every row, only the folded bank reads on two ports, and
    the fold's power-of-two padding never doubles the memory."""
    rnd = random.Random(5)
    for _ in range(200):
        config = _draw(rnd)
        if rnd.random() < 0.2:
            config = dataclasses.replace(config, weight_ports=1, fold_lanes=0, fold_rows=0, lutram_upper_lanes=0)
        rows, row = max(config.weight_memory_rows, 2), config.lanes * config.weight_bits
        banks = {bank.name: bank for bank in weight_banks(config)}
        total = sum(bank.depth * bank.width for bank in banks.values())
        assert rows * row <= total < 2 * rows * row
        if config.weight_ports == 1:
            assert list(banks) == ["mem"] and banks["mem"].depth >= rows and banks["mem"].width == row
            continue
        mem, rest = banks["mem"], banks.get("one_port_lanes")
        assert [b.read_ports for b in banks.values()] == [2] + [1] * (len(banks) - 1)
        assert 2 * mem.width + (rest.width if rest else 0) == row
        upper_depth = max((b.depth for b in banks.values() if b.name.startswith("upper_rows")), default=0)
        assert mem.depth // 2 + upper_depth >= rows and (not rest or rest.depth >= rows)
        in_luts, upper = banks.get("upper_rows_lutram"), banks.get("upper_rows")
        folded = 2 * mem.width
        assert [b.name for b in banks.values() if b.distributed] == (["upper_rows_lutram"] if in_luts else [])
        if in_luts or upper:
            assert (in_luts.width if in_luts else 0) + (upper.width if upper else 0) == folded
            assert (in_luts.width if in_luts else 0) == min(config.lutram_upper_lanes * config.weight_bits, folded)


@pytest.mark.parametrize("fields, message", [
    ({"fold_lanes": 3}, "fold_lanes must be an even integer"),
    ({"fold_lanes": 10}, "fold_lanes must be an even integer in [0, lanes = 8]"),
    ({"fold_rows": 6}, "fold_rows must be 0 or a power of two"),
    ({"fold_rows": -2}, "fold_rows must be 0 or a power of two"),
    ({"fold_lanes": 4, "weight_ports": 1}, "need weight_ports 2"),
])
def test_fold_fields_are_validated(fields, message):
    fields = {"weight_ports": 2, **fields}
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        AcceleratorConfig(input_size=5, hidden_size=3, lanes=8, **fields)
