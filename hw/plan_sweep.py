"""The study's whole model grid on one board: :func:`sweep` plans every units × layers shape.

For each shape it keeps :func:`~lstmfpga.hw.plan.make_plan`'s choice (lanes, packing, mode, weight
residency and batch, sized at the middle sequence length), times one batch at every sequence length
of the study with the cycle model (:mod:`~lstmfpga.hw.ddr_schedule` for weights in DDR), and names
what binds: the DDR bandwidth, the resource nearest its limit, the engine's row parallelism
(P = 4H·S), or — when nothing fits — the resource that rules the shape out.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from lstmfpga.foundation.errors import ConfigError
from lstmfpga.hw.boards import Board
from lstmfpga.hw.plan import MAX_LANES, RESOURCE_NAMES, NoFitError, Plan, make_plan, shape_config


@dataclasses.dataclass(frozen=True)
class SweepRow:
    """One shape of the grid: its plan (None when nothing fits) and what binds it."""

    units: int
    layers: int
    plan: Plan | None
    binding: str
    timesteps: tuple[int, ...]
    us_per_sequence: dict[int, float]   #: T → µs per sequence (a batch's), streams included (empty without a plan)

    @property
    def sequences_per_s(self) -> dict[int, float]:
        batch = self.plan.batch if self.plan is not None else 1
        return {t: batch * 1e6 / us for t, us in self.us_per_sequence.items()}


#: A DDR-bound plan below this share of its bandwidth bound is bound by its phases in turn.
DDR_BOUND_SHARE = 0.85


def binding_limit(plan: Plan) -> str:
    """What stops a faster plan: the DDR's bandwidth (a DDR-bound plan), one lane per gate row and
    column set already, else the fullest resource."""
    c = plan.config
    if plan.residency != "chip" and plan.cycles.ddr_bound:
        what = f"{plan.port.data_width}-bit port" if plan.port.port_bound else "DDR"
        cycles = plan.cycles
        if cycles.bandwidth_fraction >= DDR_BOUND_SHARE:
            return f"DDR bandwidth ({what}; {cycles.bandwidth_fraction:.0%} of its bound)"
        # the phases bind in turn: an input pass on the MACs, a recurrence on the port
        return (f"DDR bandwidth and MAC lanes by phase ({what}; {cycles.phase_fraction:.0%} of the phases' bound, "
                f"{cycles.bandwidth_fraction:.0%} of the DDR bound, {cycles.utilization:.0%} of the MAC bound)")
    if c.lanes >= min(4 * c.hidden_size * c.column_sets, MAX_LANES // (4 * c.column_sets) * 4 * c.column_sets):
        return "lanes (P = 4H·S, one per gate row and column set)"
    key, fraction = max(((k, plan.check.used[k] / plan.check.limit[k]) for k in plan.check.used
                         if plan.check.limit[k]), key=lambda kv: kv[1])
    return f"{RESOURCE_NAMES[key]} ({fraction:.0%} of its limit)"


def sweep(board: Board, *, units: Sequence[int], layers: Sequence[int], timesteps: Sequence[int],
          input_size: int = 2048, weight_bits: int = 4, clock_mhz: float | None = None,
          stream_width: int | None = None, residency: str = "auto", ddr_gbps: float | None = None, cache_dir=None,
          progress: bool = False, rank: str = "latency") -> list[SweepRow]:
    """Plan every ``units`` × ``layers`` shape on ``board``; time each at every ``timesteps``.

    The cores' streams are ``stream_width`` bits wide, by default as wide as the board's HP ports;
    ``rank`` is :func:`~lstmfpga.hw.plan.make_plan`'s (the fastest sequence, or the most a second).
    """
    from lstmfpga.hw.cycle_model import estimate
    from lstmfpga.hw.ddr_schedule import estimate_ddr

    timesteps = sorted(set(int(t) for t in timesteps))
    if not timesteps or not units or not layers:
        raise ConfigError("the sweep needs at least one unit count, layer count and sequence length")
    sized_at = timesteps[len(timesteps) // 2]
    rows = []
    for h in units:
        for n in layers:
            template = dataclasses.replace(shape_config(input_size=input_size, hidden_size=int(h),
                                                        num_layers=int(n), weight_bits=weight_bits),
                                           stream_width=stream_width or board.hp_width)
            if not 1 <= timesteps[0] <= timesteps[-1] <= template.max_timesteps:
                raise ConfigError(f"sequence lengths must be in [1, {template.max_timesteps}], not {timesteps}")
            if progress:
                print(f"plan {board.name}: H={h} L={n}...", flush=True)
            try:
                plan = make_plan(template, board, clock_mhz=clock_mhz, timesteps=sized_at, cache_dir=cache_dir,
                                 compare=False, residency=residency, ddr_gbps=ddr_gbps, rank=rank)
            except NoFitError as exc:
                rows.append(SweepRow(int(h), int(n), None, str(exc).splitlines()[-1].removeprefix(
                    "binding resource: "), tuple(timesteps), {}))
                continue
            if plan.residency == "chip":
                us = {t: estimate(plan.config, t).run_cycles / plan.clock_mhz for t in timesteps}
            else:
                us = {t: estimate_ddr(plan.config, t, residency=plan.residency, batch=plan.batch,
                                      port=plan.port).run_cycles / plan.clock_mhz for t in timesteps}
            rows.append(SweepRow(int(h), int(n), plan, binding_limit(plan), tuple(timesteps), us))
    return rows


def sweep_table(board: Board, rows: list[SweepRow]) -> str:
    """The grid as an aligned text table."""
    timesteps = rows[0].timesteps
    middle = timesteps[len(timesteps) // 2]
    header = ["H", "L", "mode", "weights", "B", "P", "k", "S", *(f"µs/seq T={t}" for t in timesteps),
              f"seq/s T={middle}", "binding limit"]
    body = []
    for row in rows:
        if row.plan is None:
            body.append([row.units, row.layers, "—", "—", "—", "—", "—", "—", *("—" for _ in timesteps), "—",
                         f"nothing fits: {row.binding}"])
            continue
        body.append([row.units, row.layers, row.plan.mode, row.plan.residency, row.plan.batch, row.plan.lanes,
                     row.plan.config.macs_per_dsp, row.plan.config.column_sets,
                     *(f"{row.us_per_sequence[t]:,.1f}" for t in timesteps),
                     f"{row.sequences_per_s[middle]:,.0f}", row.binding])
    cells = [[str(c) for c in header]] + [[str(c) for c in r] for r in body]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    clock = next((r.plan.clock_mhz for r in rows if r.plan is not None), board.clock_mhz)
    lines = [f"{board.name} ({board.device}) at {clock:g} MHz: the study's grid, streams included; weights on "
             f"chip or in DDR (B sequences a batch, µs per batch = each sequence's latency)"]
    lines += ["  ".join(c.rjust(w) if i < len(header) - 1 else c for i, (c, w) in enumerate(zip(r, widths)))
              for r in cells]
    lines.insert(2, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
