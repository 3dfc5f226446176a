"""Bit-exact check of the generated RTL against the integer golden (the engine of
``lstmfpga verify`` and of the hardware tests)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from lstmfpga.foundation.errors import ConfigError
from lstmfpga.foundation.hw import register_map, stream_format
from lstmfpga.foundation.hw.config import AcceleratorConfig
from lstmfpga.foundation.hw.weight_image import build_weight_image, image_lanes
from lstmfpga.foundation.integer_lstm import input_products, run_integer


@dataclasses.dataclass
class Sequence:
    artifact_index: int
    x_codes: np.ndarray          # int [T, I]
    kind: str = "normal"
    extra: dict = dataclasses.field(default_factory=dict)


def random_codes(artifact, rng: np.random.Generator, timesteps: int) -> np.ndarray:
    io = artifact.io_quant
    return rng.integers(io.lo, io.hi + 1, size=(timesteps, artifact.input_size))


def golden_packets(config: AcceleratorConfig, artifact, x_codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(input lanes, expected output lanes) of one sequence."""
    x = np.asarray(x_codes, dtype=np.int64)[None]
    result = run_integer(artifact, x)
    logits = None if result.logits is None else result.logits[0]
    expected = stream_format.pack_output(config, result.h_codes[-1][0], logits)
    if config.mode == "split":
        pre = input_products(artifact.layers[0], x)[0]
        lanes = stream_format.pack_preactivations(config, pre)
    else:
        lanes = stream_format.pack_input(config, x[0])
    return lanes, expected


def golden_batch_packets(config: AcceleratorConfig, artifact, x_codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(input lanes, expected output lanes) of one batch ``x_codes`` ``[B, T, I]`` (steps
    interleaved in, the sequences' outputs one after another out; :mod:`stream_format`)."""
    x = np.asarray(x_codes, dtype=np.int64)
    result = run_integer(artifact, x)
    expected = stream_format.pack_batch_output(config, result.h_codes[-1], result.logits)
    if config.mode == "split":
        return stream_format.pack_batch_input(config, input_products(artifact.layers[0], x)), expected
    return stream_format.pack_batch_input(config, x), expected


def build_job(config: AcceleratorConfig, artifacts: list, sequences: list[Sequence], *,
              input_pause: float = 0.3, output_pause: float = 0.3, seed: int = 0,
              extra_images: dict[int, np.ndarray] | None = None) -> tuple[dict, dict]:
    """The bench job: ``extra_images`` adds raw (e.g. corrupted) images under their own indices,
    padded to whole beats as the DMA sends them."""
    arrays: dict[str, np.ndarray] = {}
    for index, artifact in enumerate(artifacts):
        arrays[f"image_{index}"] = image_lanes(config, build_weight_image(artifact, config))
    for index, image in (extra_images or {}).items():
        arrays[f"image_{index}"] = image_lanes(config, np.asarray(image, dtype=np.uint32))
    runs = []
    for n, seq in enumerate(sequences):
        if seq.kind == "load_only":
            runs.append({"image": seq.artifact_index, "T": 0, "kind": "load_only"})
            continue
        lanes, expected = golden_packets(config, artifacts[seq.artifact_index], seq.x_codes)
        arrays[f"in_{n}"] = lanes
        run = {"image": seq.artifact_index, "T": int(seq.x_codes.shape[0]), "input": f"in_{n}",
               "kind": seq.kind, **seq.extra}
        if seq.kind in ("normal", "input_stall"):
            arrays[f"out_{n}"] = expected
            run["expected"] = f"out_{n}"
        runs.append(run)
    job = {"config": config.to_dict(), "runs": runs, "input_pause": input_pause,
           "output_pause": output_pause, "seed": seed,
           "shape_registers": list(register_map.shape_registers(config))}
    return job, arrays


SIMULATORS = ("harness", "cocotb")


def run_sequences(config: AcceleratorConfig, artifacts: list, sequences: list[Sequence], *,
                  cache_dir: Path, work_dir: Path, simulator: str = "cocotb", jobs: int = 1,
                  **job_options) -> dict:
    """Build (or reuse) the core for ``config``, run ``sequences``; return the bench results.

    ``simulator="harness"`` runs normal sequences of one artifact on the compiled harness in
    ``jobs`` processes; ``"cocotb"`` runs any job (faults, several images) on the cocotb bench.
    A core with weights in DDR runs on the harness, its weights in the harness's memory (``ddr=``
    a :class:`~lstmfpga.sim.harness.simulated_ddr.SimulatedDdr` among ``job_options``).
    """
    from lstmfpga.sim import verilator

    if simulator not in SIMULATORS:
        raise ConfigError(f"simulator must be one of {', '.join(SIMULATORS)}, not {simulator!r}")
    if simulator == "cocotb" and config.ddr_weights:
        raise ConfigError("a core with weights in DDR runs on the compiled harness (simulator='harness'), whose"
                          " memory answers its AXI4 read port; the cocotb bench has no memory behind it")
    if simulator == "cocotb":
        build_dir = verilator.build(config, cache_dir)
        job, arrays = build_job(config, artifacts, sequences, **job_options)
        return verilator.run_job(build_dir, work_dir, job, arrays)
    from lstmfpga.sim.harness.packets import run_packets

    if len(artifacts) != 1 or any(seq.kind != "normal" or seq.artifact_index != 0 for seq in sequences):
        raise ConfigError("the harness runs normal sequences of one artifact; faults and several images "
                          "run on the cocotb bench (simulator='cocotb')")
    options = {"input_pause": 0.3, "output_pause": 0.3, **job_options}  # build_job's defaults
    library = verilator.build_harness(config, cache_dir)
    image = image_lanes(config, build_weight_image(artifacts[0], config))
    if config.max_batch > 1:
        packets = [(*golden_batch_packets(config, artifacts[0], np.stack([s.x_codes for s in batch])),
                    batch[0].x_codes.shape[0], len(batch))
                   for batch in ([sequences[i] for i in group] for group in stream_format.batch_groups(
                       [s.x_codes.shape[0] for s in sequences], config.max_batch))]
    else:
        packets = [(*golden_packets(config, artifacts[0], seq.x_codes), seq.x_codes.shape[0]) for seq in sequences]
    if config.ddr_weights:
        from lstmfpga.foundation.hw.ddr_image import build_ddr_image

        options["ddr_image"] = build_ddr_image(artifacts[0], config)
    return run_packets(library, config, image, [(lanes, T, expected, *B) for lanes, expected, T, *B in packets],
                       jobs=jobs, **options)


def summarize(results: dict) -> dict:
    """Sequences passed, failed and run (a batch's sequences pass or fail together)."""
    runs = results["runs"]
    total = sum(r.get("B", 1) for r in runs)
    passed = sum(r.get("B", 1) for r in runs if r["ok"])
    return {"passed": passed, "failed": total - passed, "total": total}
