"""Verification runs on the compiled harness: weight image in, then input packets whose output
packets are compared word for word with the golden's (what the cocotb bench
``lstmfpga.sim.benches.accel_bench`` does for normal runs, at compiled speed).

Each worker of a :class:`~lstmfpga.sim.harness.pool.WorkerPool` holds one core; the runs are
split into contiguous shares.  Results have the bench's format (``index``, ``T``, ``ok``,
``status``, ``error``, ``cycles``, ``run_cycles``, and ``arrivals``: the cycles the input packet's
beats were accepted, for :func:`~lstmfpga.hw.cycle_model.estimate`), and ``B``, the sequences of
the run (a batch on a core with ``max_batch`` > 1).
"""

from __future__ import annotations

import numpy as np

from lstmfpga.foundation.errors import ConfigError
from lstmfpga.foundation.hw import stream_format
from lstmfpga.foundation.hw.register_map import Ctrl, Reg, Status, ddr_region_writes
from lstmfpga.sim.harness.deadlines import deadline_cycles, image_beats, work_cycles
from lstmfpga.sim.harness.library import Harness, HarnessTimeout
from lstmfpga.sim.harness.pool import WorkerPool

#: Cycles between STATUS polls while the core finishes.
POLL_CYCLES = 32


class PacketBoard:
    """One harness with the register-level steps of a run (no driver: the bench's view)."""

    def __init__(self, harness: Harness, deadline: int) -> None:
        self.harness = harness
        self.deadline = deadline
        self.load_error = 0

    def _state(self) -> str:
        h = self.harness
        return f"{h.describe()}, STATUS={h.read(Reg.STATUS):#x}, ERROR={h.read(Reg.ERROR):#x}"

    def _expect(self, done: bool, what: str) -> None:
        if not done:
            raise HarnessTimeout(f"{what} did not complete within {self.deadline} cycles ({self._state()})")

    def wait_idle(self, what: str) -> int:
        for _ in range(self.deadline // POLL_CYCLES + 1):
            status = self.harness.read(Reg.STATUS)
            if not status & Status.BUSY:
                return status
            self.harness.run(POLL_CYCLES)
        self._expect(False, what)

    def attach_ddr(self, ddr, image: np.ndarray) -> None:
        """Weights in DDR: ``image`` in the harness's memory at ``ddr.base``, the registers at it."""
        ddr.attach(self.harness, image)
        for register, value in ddr_region_writes(ddr.base, image.nbytes):
            self.harness.write(register, value)

    def load(self, image: np.ndarray) -> int:
        """Load a weight image (uint32 lanes); the ERROR word after it."""
        h = self.harness
        h.write(Reg.CTRL, Ctrl.LOAD_WEIGHTS)
        h.send(image, image.size * 4)
        self._expect(h.wait_send(self.deadline), "the weight image send")
        self.wait_idle("the weight load")
        return h.read(Reg.ERROR)

    def run(self, lanes: np.ndarray, timesteps: int, expected: np.ndarray, batch: int | None = None) -> dict:
        """One sequence, or a batch of ``batch`` (BATCH written): START, input packet, output
        packet; the bench's result entry."""
        h = self.harness
        out = np.zeros(expected.size, dtype=np.uint32)
        h.write(Reg.TIMESTEPS, timesteps)
        if batch is not None:
            h.write(Reg.BATCH, batch)
        h.receive(out, out.nbytes)
        h.write(Reg.CTRL, Ctrl.START)
        h.send(lanes, lanes.size * 4)
        self._expect(h.wait_send(self.deadline), f"the input packet send (T={timesteps})")
        received = h.wait_receive(self.deadline)
        self._expect(received, f"the output packet receive up to TLAST (T={timesteps})")
        status = self.wait_idle(f"the run of T={timesteps}")
        entry = {"T": int(timesteps), "B": int(batch or 1), "status": status, "error": h.read(Reg.ERROR),
                 "cycles": h.read(Reg.CYCLES), "run_cycles": h.read(Reg.RUN_CYCLES),
                 "received_bytes": h.counters()["received_bytes"], "arrivals": h.send_cycles()}
        entry["ok"] = bool(entry["received_bytes"] == out.nbytes and np.array_equal(out, expected))
        if not entry["ok"]:
            entry["got"], entry["want"] = out.tolist(), expected.tolist()
        h.write(Reg.CTRL, Ctrl.CLEAR)
        return entry

    def close(self) -> None:
        self.harness.close()


def run_packets(library, config, image: np.ndarray, packets: list[tuple[np.ndarray, int, np.ndarray]], *,
                jobs: int = 1, input_pause: float = 0.0, output_pause: float = 0.0, seed: int = 0,
                watchdog_s: float | None = None, ddr_image: np.ndarray | None = None, ddr=None) -> dict:
    """Load ``image`` into ``jobs`` cores and run ``packets`` (input lanes, T, expected output
    lanes, and optionally B: a batch of B sequences).

    With weights in DDR, ``ddr_image`` (uint8, :mod:`~lstmfpga.foundation.hw.ddr_image`) lies in
    the harness's memory as ``ddr`` (a :class:`~lstmfpga.sim.harness.simulated_ddr.SimulatedDdr`,
    its default when None) says, and DDR_BASE/DDR_LENGTH point at it.

    Returns the bench's results: ``{"load_error": [..per worker], "runs": [..]}``.
    """
    from lstmfpga.sim.harness.simulated_ddr import SimulatedDdr

    if config.ddr_weights and ddr_image is None:
        raise ConfigError("a core with weights in DDR needs the DDR image (foundation.hw.ddr_image)")
    ddr = ddr or SimulatedDdr()
    pause = max(input_pause, output_pause)
    deadline = deadline_cycles(config, pause=pause, ddr=ddr)

    def setup(index: int) -> PacketBoard:
        harness = Harness(library, lanes_per_beat=stream_format.lanes_per_beat(config), seed=seed + 7919 * index,
                          input_pause=input_pause, output_pause=output_pause)
        board = PacketBoard(harness, deadline)
        if config.ddr_weights:
            board.attach_ddr(ddr, np.ascontiguousarray(ddr_image, dtype=np.uint8))
        board.load_error = board.load(image)
        return board

    def handle(board: PacketBoard, share: list) -> dict:
        return {"load_error": board.load_error, "runs": [board.run(*packet) for packet in share]}

    shares = [s for s in np.array_split(np.arange(len(packets)), jobs) if s.size]
    pool = WorkerPool(setup=setup, handle=handle, describe=PacketBoard._state, jobs=len(shares),
                      setup_cycles=int(image_beats(config) / (1.0 - pause)), watchdog_s=watchdog_s)
    try:
        requests = [[packets[i] for i in share] for share in shares]
        work = max(work_cycles(config, [p[1] for p in r], pause=pause, ddr=ddr,
                               batches=[p[3] if len(p) > 3 else 1 for p in r]) for r in requests)
        replies = pool.map(requests, work, [f"sequences {s[0]}..{s[-1]}" for s in shares])
    finally:
        pool.close()
    runs = [run for reply in replies for run in reply["runs"]]
    for index, run in enumerate(runs):
        run["index"] = index
    return {"load_error": [reply["load_error"] for reply in replies], "runs": runs}
