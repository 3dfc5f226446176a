"""Simulated cores at compiled speed: ``LstmCoreDriver`` on harness instances in worker processes.

Each worker (``lstmfpga.sim.harness.pool.WorkerPool``: forked, under a wall-clock watchdog) holds
one harness (one core) with the unchanged driver on top, prepared once for the artifact (identify,
weight load, hash check); a batch of independent sequences is split into contiguous shares.

The driver's own deadlines are simulated seconds derived from the cycle model
(``lstmfpga.sim.harness.deadlines``) unless given: a weight load or sequence that does not finish
raises the driver's timeout error naming the transaction and the core's STATUS, and the pool adds
the harness's cycle, the core's STATUS and ERROR and the beats sent and received.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from lstmfpga.foundation.errors import LstmfpgaError
from lstmfpga.foundation.hw import stream_format
from lstmfpga.foundation.hw.config import AcceleratorConfig
from lstmfpga.foundation.hw.register_map import Reg
from lstmfpga.host.simboard.harness_board import CLOCK_NS, harness_driver
from lstmfpga.sim.harness.deadlines import deadline_cycles, image_beats, work_cycles
from lstmfpga.sim.harness.pool import WorkerPool


@dataclasses.dataclass(frozen=True)
class HarnessOptions:
    """How the simulated board drives the core (see ``RtlBackend`` for each field)."""

    double_buffer: bool = True
    timeout_s: float | None = None
    watchdog_cycles: int = 1 << 20
    poll_cycles: int = 256
    stall_output: bool = False
    input_pause: float = 0.0
    output_pause: float = 0.0
    seed: int = 0
    max_transfer_bytes: int = (1 << 23) - 1
    #: The memory behind a core with weights in DDR (a ``SimulatedDdr``; its default when None).
    ddr: object = None

    @property
    def pause(self) -> float:
        return max(self.input_pause, self.output_pause)


@dataclasses.dataclass
class _Board:
    harness: object
    driver: object

    def close(self) -> None:
        self.driver.close()
        self.harness.close()


def _describe(board: _Board) -> str:
    h = board.harness
    return f"harness {h.describe()}, core STATUS={h.read(Reg.STATUS):#x}, ERROR={h.read(Reg.ERROR):#x}"


class HarnessPool:
    """``jobs`` harness processes, each a core prepared for the artifact.

    Parameters
    ----------
    library
        The harness library of ``config`` (``lstmfpga.sim.verilator.build_harness``).
    config
        The core's configuration.
    artifact_path
        The artifact (``.npz``) to load.
    jobs
        Worker processes (independent cores).
    options
        How the board drives the core.
    watchdog_s
        Wall-clock limit per request; default: from its simulated cycles.
    """

    def __init__(self, *, library: str | Path, config: AcceleratorConfig, artifact_path: str | Path,
                 jobs: int = 1, options: HarnessOptions = HarnessOptions(), watchdog_s: float | None = None) -> None:
        self.config = config
        self.options = options
        timeout_s = options.timeout_s or deadline_cycles(config, pause=options.pause, ddr=options.ddr) * CLOCK_NS * 1e-9

        def setup(index: int) -> _Board:
            from lstmfpga.foundation.artifact import LstmArtifact
            from lstmfpga.sim.harness.library import Harness

            harness = Harness(library, lanes_per_beat=stream_format.lanes_per_beat(config),
                              seed=options.seed + 7919 * index, input_pause=options.input_pause,
                              output_pause=options.output_pause, output_stalled=options.stall_output)
            driver = harness_driver(harness, timeout_s=timeout_s, watchdog_cycles=options.watchdog_cycles,
                                    poll_cycles=options.poll_cycles, max_transfer_bytes=options.max_transfer_bytes,
                                    ddr=options.ddr)
            board = _Board(harness, driver)
            try:
                driver.prepare(LstmArtifact.load(artifact_path), mode=config.mode)
            except LstmfpgaError as exc:
                raise type(exc)(f"{exc} [{_describe(board)}]") from None
            return board

        def handle(board: _Board, sequences: list) -> list[tuple]:
            results = board.driver.run(sequences, double_buffer=options.double_buffer)
            return [(r.h_codes, r.logits, r.cycles, r.seconds) for r in results]

        setup_cycles = int(image_beats(config) / (1.0 - options.pause))
        self._pool = WorkerPool(setup=setup, handle=handle, describe=_describe, jobs=jobs,
                                setup_cycles=setup_cycles, watchdog_s=watchdog_s)

    def run(self, sequences: list[np.ndarray]) -> list[tuple]:
        """Run independent sequences; ``[(h_codes, logits, cycles, simulated seconds)]`` in order."""
        shares = [s for s in np.array_split(np.arange(len(sequences)), self._pool.jobs) if s.size]
        requests = [[sequences[i] for i in share] for share in shares]
        work = max(work_cycles(self.config, [len(s) for s in r], pause=self.options.pause, ddr=self.options.ddr)
                   for r in requests)
        names = [f"sequences {share[0]}..{share[-1]}" for share in shares]
        return [item for reply in self._pool.map(requests, work, names) for item in reply]

    def close(self) -> None:
        self._pool.close()
