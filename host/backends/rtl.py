"""The ``rtl`` backend: the generated Verilog under Verilator as a simulated board.

Each ``run`` launches one simulation (cocotb test ``lstmfpga.host.simboard.cocotb_board``) in
which ``LstmCoreDriver`` identifies the core, loads the weight image through the input stream
and runs the batch, exactly as on a board. The Verilator build is shared per configuration
(``lstmfpga.sim.verilator.build``: one build folder per Verilog hash, file-locked).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from lstmfpga.foundation.errors import ConfigError
from lstmfpga.host.backends.base import Backend, BackendOutput
from lstmfpga.host.driver import errors as driver_errors
from lstmfpga.foundation.hw.config import AcceleratorConfig

TEST_MODULE = "lstmfpga.host.simboard.cocotb_board"


class RtlBackend(Backend):
    """Run batches on the Verilated core through the unchanged driver.

    Parameters
    ----------
    lanes, max_steps
        Build-time shape of the simulated core (the rest comes from the artifact).
    double_buffer
        Pack the next sequence while the core computes.
    cache_dir
        Where Verilator builds are kept and shared (default ``~/.cache/lstmfpga/verilator``).
    timeout_s
        The driver's per-sequence timeout in *simulated* seconds.
    watchdog_cycles
        The core's stream watchdog (TIMEOUT register); 0 disables it.
    stall_output
        Hold ``m_axis_tready`` low for ever (timeout tests).
    input_pause, output_pause
        Probability of an idle beat on the input / output stream (random backpressure).
    work_dir
        Where each run's job, log and results go (a temporary folder inside it, removed on close).
    via
        ``"driver"``: the driver with simulated-time deadlines; ``"pynq"``: the ``pynq`` backend
        itself over a stand-in ``pynq`` package whose overlay is the simulation (wall-clock
        deadlines, ``wall_timeout_s``).
    """

    name = "rtl"

    def __init__(self, *, artifact, mode: str = "full", lanes: int = 8, max_steps: int = 24,
                 double_buffer: bool = True, cache_dir=None, timeout_s: float = 0.05,
                 watchdog_cycles: int = 1 << 20, poll_cycles: int = 32, stall_output: bool = False,
                 input_pause: float = 0.0, output_pause: float = 0.0, seed: int = 0,
                 max_transfer_bytes: int = (1 << 23) - 1, via: str = "driver",
                 wall_timeout_s: float = 30.0, work_dir=None) -> None:
        super().__init__(artifact=artifact, mode=mode)
        if via not in ("driver", "pynq"):
            raise ConfigError(f"via must be 'driver' or 'pynq', not {via!r}")
        from lstmfpga.sim.verilator import DEFAULT_CACHE, build

        self.config = AcceleratorConfig.from_artifact(artifact, lanes=lanes, mode=mode, max_timesteps=max_steps)
        self.build_dir = build(self.config, Path(cache_dir) if cache_dir else DEFAULT_CACHE)
        self.job = {
            "double_buffer": bool(double_buffer), "timeout_s": float(timeout_s),
            "watchdog_cycles": int(watchdog_cycles), "poll_cycles": int(poll_cycles),
            "stall_output": bool(stall_output), "input_pause": float(input_pause),
            "output_pause": float(output_pause), "seed": int(seed), "max_transfer_bytes": int(max_transfer_bytes),
            "via": via, "mode": mode, "wall_timeout_s": float(wall_timeout_s),
        }
        self._work = tempfile.TemporaryDirectory(prefix="lstmfpga-rtl-", dir=work_dir)
        self.artifact_path = Path(self._work.name) / "artifact.npz"
        artifact.save(self.artifact_path)
        self.cycles: list[int] = []
        self.sim_seconds: list[float] = []  # per sequence, simulated START-to-result time (via="driver")
        self.last_wall_seconds = 0.0

    def run(self, data: np.ndarray) -> BackendOutput:
        from lstmfpga.sim.verilator import run_job

        data = self.check_input(data)
        if data.shape[1] > self.config.max_timesteps:
            raise ConfigError(f"the simulated core holds {self.config.max_timesteps} steps, not {data.shape[1]}")
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

    def close(self) -> None:
        self._work.cleanup()
