"""The ``rtl`` backend: the generated Verilog under Verilator as a simulated board.

``LstmCoreDriver`` identifies the core, loads the weight image through the input stream and runs
the batch, exactly as on a board, on one of two simulators:

* ``harness`` (default): the compiled C++ harness (``lstmfpga.sim.harness``) in ``jobs`` worker
  processes (``lstmfpga.host.simboard.harness_pool``), each core prepared once and kept for every
  batch; no Python runs per clock;
* ``cocotb``: one cocotb simulation per batch (``lstmfpga.host.simboard.cocotb_board``), Python
  driving every clock edge; the only one that runs the ``pynq`` backend itself (``via="pynq"``).

The Verilator builds are shared per configuration (``lstmfpga.sim.verilator``: one build folder
per Verilog hash, file-locked).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from lstmfpga.foundation.errors import ConfigError
from lstmfpga.host.backends.base import Backend, BackendOutput
from lstmfpga.host.driver import errors as driver_errors
from lstmfpga.foundation.hw.config import AcceleratorConfig
from lstmfpga.foundation.validation import check_integer

TEST_MODULE = "lstmfpga.host.simboard.cocotb_board"
SIMULATORS = ("harness", "cocotb")


class RtlBackend(Backend):
    """Run batches on the Verilated core through the unchanged driver.

    Parameters
    ----------
    lanes, macs_per_dsp, packing_dsp, column_sets, tail_units, weight_ports, fold_lanes, fold_rows, max_steps,
    stream_width
        Build-time shape of the simulated core (the rest comes from the artifact).
    weight_residency, ddr_width, ddr_burst, ddr_outstanding, max_batch
        Weights on chip (``"chip"``) or in DDR (``"stream"``, ``"all"``, ``"wx"``), the read port, and the most
        sequences a run holds (:class:`~lstmfpga.foundation.hw.config.AcceleratorConfig`; the
        driver runs consecutive sequences of one length as batches); harness only.
    ddr
        The memory behind a core with weights in DDR (a
        :class:`~lstmfpga.sim.harness.simulated_ddr.SimulatedDdr`; default latency, no idle cycles).
    double_buffer
        Pack the next sequence while the core computes.
    cache_dir
        Where Verilator builds are kept and shared (default ``~/.cache/lstmfpga/verilator``).
    simulator
        ``"harness"`` (compiled, default) or ``"cocotb"``.
    jobs
        Harness worker processes: a batch is split among that many independent cores.
    timeout_s
        The driver's per-sequence timeout in *simulated* seconds; default: the cycle model's
        stall-free cycles of the longest sequence (or the weight load) with margin on the harness,
        0.05 s on the cocotb board.
    watchdog_cycles
        The core's stream watchdog (TIMEOUT register); 0 disables it.
    poll_cycles
        Simulated cycles between the driver's STATUS polls (default 256 on the harness, where each
        poll is a call from Python, 32 on the cocotb board); CYCLES does not depend on it.
    stall_output
        Hold ``m_axis_tready`` low for ever (timeout tests).
    input_pause, output_pause
        Probability of an idle beat on the input / output stream (random backpressure).
    work_dir
        Where each run's job, log and results go (a temporary folder inside it, removed on close).
    via
        ``"driver"``: the driver with simulated-time deadlines; ``"pynq"``: the ``pynq`` backend
        itself over a stand-in ``pynq`` package whose overlay is the simulation (wall-clock
        deadlines, ``wall_timeout_s``); cocotb only.
    watchdog_s
        Wall-clock limit of one harness request (default: from its simulated cycles).
    """

    name = "rtl"

    def __init__(self, *, artifact, mode: str = "full", lanes: int = 8, macs_per_dsp: int = 1,
                 packing_dsp: str = "DSP48E2", column_sets: int = 1,
                 tail_units: int = 1, weight_ports: int = 1, fold_lanes: int = 0, fold_rows: int = 0,
                 max_steps: int = 24, weight_residency: str = "chip",
                 ddr_width: int = 128, ddr_burst: int = 16, ddr_outstanding: int = 8, max_batch: int = 1, ddr=None,
                 stream_width: int = 32, double_buffer: bool = True, cache_dir=None, timeout_s: float | None = None,
                 watchdog_cycles: int = 1 << 20, poll_cycles: int | None = None, stall_output: bool = False,
                 input_pause: float = 0.0, output_pause: float = 0.0, seed: int = 0,
                 max_transfer_bytes: int = (1 << 23) - 1, via: str = "driver",
                 wall_timeout_s: float = 30.0, work_dir=None, simulator: str = "harness", jobs: int = 1,
                 watchdog_s: float | None = None) -> None:
        super().__init__(artifact=artifact, mode=mode)
        if via not in ("driver", "pynq"):
            raise ConfigError(f"via must be 'driver' or 'pynq', not {via!r}")
        if simulator not in SIMULATORS:
            raise ConfigError(f"simulator must be one of {', '.join(SIMULATORS)}, not {simulator!r}")
        if via == "pynq" and simulator != "cocotb":
            raise ConfigError("via='pynq' runs on the cocotb board: pass simulator='cocotb'")
        check_integer("jobs", jobs, low=1, what="a positive integer")
        from lstmfpga.sim.verilator import DEFAULT_CACHE, build, build_harness

        self.config = AcceleratorConfig.from_artifact(artifact, lanes=lanes, mode=mode, max_timesteps=max_steps,
                                                      stream_width=stream_width, macs_per_dsp=macs_per_dsp,
                                                      packing_dsp=packing_dsp, column_sets=column_sets,
                                                      tail_units=tail_units, weight_ports=weight_ports,
                                                      fold_lanes=fold_lanes, fold_rows=fold_rows,
                                                      weight_residency=weight_residency,
                                                      ddr_width=ddr_width, ddr_burst=ddr_burst,
                                                      ddr_outstanding=ddr_outstanding, max_batch=max_batch)
        if self.config.ddr_weights and simulator != "harness":
            raise ConfigError("a core with weights in DDR runs on the harness (simulator='harness'), whose memory "
                              "answers its AXI4 read port; the cocotb board has none")
        self.simulator = simulator
        cache = Path(cache_dir) if cache_dir else DEFAULT_CACHE
        self._work = tempfile.TemporaryDirectory(prefix="lstmfpga-rtl-", dir=work_dir)
        self.artifact_path = Path(self._work.name) / "artifact.npz"
        artifact.save(self.artifact_path)
        self.cycles: list[int] = []
        self.sim_seconds: list[float] = []  # per sequence, simulated START-to-result time (via="driver")
        self.last_wall_seconds = 0.0
        self._pool = None
        if simulator == "harness":
            from lstmfpga.host.simboard.harness_pool import HarnessOptions, HarnessPool

            options = HarnessOptions(double_buffer=bool(double_buffer), timeout_s=timeout_s,
                                     watchdog_cycles=int(watchdog_cycles), poll_cycles=int(poll_cycles or 256),
                                     stall_output=bool(stall_output), input_pause=float(input_pause),
                                     output_pause=float(output_pause), seed=int(seed),
                                     max_transfer_bytes=int(max_transfer_bytes), ddr=ddr)
            self.library = build_harness(self.config, cache)
            self._pool = HarnessPool(library=self.library, config=self.config, artifact_path=self.artifact_path,
                                     jobs=jobs, options=options, watchdog_s=watchdog_s)
            return
        self.build_dir = build(self.config, cache)
        self.job = {
            "double_buffer": bool(double_buffer), "timeout_s": float(timeout_s or 0.05),
            "watchdog_cycles": int(watchdog_cycles), "poll_cycles": int(poll_cycles or 32),
            "stall_output": bool(stall_output), "input_pause": float(input_pause),
            "output_pause": float(output_pause), "seed": int(seed), "max_transfer_bytes": int(max_transfer_bytes),
            "via": via, "mode": mode, "wall_timeout_s": float(wall_timeout_s),
        }

    def run(self, data: np.ndarray) -> BackendOutput:
        from lstmfpga.sim.verilator import run_job

        data = self.check_input(data)
        if data.shape[1] > self.config.max_timesteps:
            raise ConfigError(f"the simulated core holds {self.config.max_timesteps} steps, not {data.shape[1]}")
        if self._pool is not None:
            return self._run_harness(data)
        work = Path(tempfile.mkdtemp(dir=self._work.name))
        summary = run_job(self.build_dir, work, dict(self.job, artifact=str(self.artifact_path)), {"inputs": data},
                          testcase="board_job", test_module=TEST_MODULE)
        if not summary["ok"]:
            cls = getattr(driver_errors, summary["error"], driver_errors.DriverError)
            raise cls(f"simulated board: {summary['message']}")
        with np.load(work / "result.npz") as out:
            h, cycles = out["h_codes"], out["cycles"]
            self.sim_seconds.extend(float(v) for v in out["seconds"])
            logits = out["logits"] if "logits" in out.files else None
        self.cycles.extend(int(c) for c in cycles)
        self.last_wall_seconds = float(summary["wall_seconds"])
        wall_each = np.full(len(h), self.last_wall_seconds / max(len(h), 1))
        return BackendOutput(h_codes=h.astype(np.int64), logits=None if logits is None else logits.astype(np.int64),
                             seconds=wall_each)

    def _run_harness(self, data: np.ndarray) -> BackendOutput:
        started = time.perf_counter()
        results = self._pool.run(list(data))
        self.last_wall_seconds = time.perf_counter() - started
        self.cycles.extend(int(r[2]) for r in results)
        self.sim_seconds.extend(float(r[3]) for r in results)
        logits = None if results[0][1] is None else np.stack([r[1] for r in results]).astype(np.int64)
        return BackendOutput(h_codes=np.stack([r[0] for r in results]).astype(np.int64), logits=logits,
                             seconds=np.full(len(results), self.last_wall_seconds / len(results)))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None
        self._work.cleanup()
