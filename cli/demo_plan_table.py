"""The report's board plan as HTML tables, read from a :class:`lstmfpga.hw.plan.Plan`."""

from __future__ import annotations

import dataclasses
import html
import math


def tightest_resource(plan) -> tuple[str, float]:
    """The resource nearest its planner limit (shell reserve and utilisation cap applied), and
    its share of that limit."""
    from lstmfpga.hw.plan import RESOURCE_NAMES
    from lstmfpga.hw.resources import RESOURCE_FIELDS

    def share(key):
        used, limit = plan.check.used[key], plan.check.limit[key]
        return used / limit if limit else (math.inf if used else 0.0)

    key = max(RESOURCE_FIELDS, key=share)
    return RESOURCE_NAMES[key], share(key)


def binding_limit(plan) -> str:
    """What keeps the plan from being faster: the model's shape (no lane count is faster by the
    cycle model) or the tightest resource."""
    from lstmfpga.hw.cycle_model import estimate as cycle_estimate
    from lstmfpga.hw.plan import CYCLE_TOLERANCE, candidate_lanes

    fastest = candidate_lanes(plan.config, plan.timesteps)[0]
    best = cycle_estimate(dataclasses.replace(plan.config, lanes=fastest), plan.timesteps).compute_cycles
    name, share = tightest_resource(plan)
    if plan.cycles.compute_cycles <= best * (1 + CYCLE_TOLERANCE):
        return (f"the model's shape: P={plan.lanes} is within {CYCLE_TOLERANCE:.0%} of the fastest lane count "
                f"(P={fastest}); tightest resource {name} at {share:.0%} of its limit")
    return f"{name}: {share:.0%} of its limit; more lanes would not fit"


def _rows(cells_per_row, header) -> str:
    head = "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>"
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>"
                   for row in cells_per_row)
    return f'<table class="plan">{head}{body}</table>'


def plan_tables(plan) -> str:
    """A settings table (board, clock assumption, mode, lanes, timings, binding limit) and a
    resource table (used, available, planner limit)."""
    from lstmfpga.hw.plan import RESOURCE_NAMES, SHELL_RESERVE, UTILIZATION_LIMIT
    from lstmfpga.hw.resources import RESOURCE_FIELDS

    c, b, cycles = plan.config, plan.board, plan.cycles
    assumed = " (the board's assumed fabric clock, not a timing-closure result)" if plan.clock_mhz == b.clock_mhz else ""
    settings = [
        ("board", f"{b.name} ({b.device}, {b.family})"),
        ("model", f"I={c.input_size} H={c.hidden_size} L={c.num_layers}, {c.weight_bits}-bit weights"),
        ("clock", f"{plan.clock_mhz:g} MHz{assumed}"),
        ("mode", c.mode + (" (the host computes layer 0's W_x·x)" if c.mode == "split" else " (W_x·x and W_h·h on chip)")),
        ("MAC lanes P", f"{c.lanes} ({c.groups} row groups per step and layer), {c.macs_per_dsp} per DSP"),
        ("cycles", f"{cycles.compute_cycles:,} compute, {cycles.run_cycles:,} with streams, T={plan.timesteps}; "
                   f"MAC utilisation {cycles.utilization:.1%}"),
        ("time", f"{plan.us_per_step:.2f} µs per step (compute), {plan.us_per_sequence:.1f} µs per sequence "
                 "(streams included)"),
        ("binding limit", binding_limit(plan)),
    ]
    budget = b.budget()
    resources = []
    for key in RESOURCE_FIELDS:
        used, available, limit = plan.check.used[key], budget[key], plan.check.limit[key]
        resources.append((RESOURCE_NAMES[key], f"{used:,.0f}", f"{available:,}",
                          f"{100 * used / available:.1f} %" if available else "—", f"{limit:,.0f}",
                          f"{100 * used / limit:.1f} %" if limit else "—"))
    note = ("Planner limit = available × " + ", ".join(f"{RESOURCE_NAMES[k]} {v:.0%}" for k, v in UTILIZATION_LIMIT.items())
            + "; used includes the shell (AXI DMA + interconnect): "
            + ", ".join(f"{RESOURCE_NAMES[k]} {v:,}" for k, v in SHELL_RESERVE.items() if v) + ".")
    return (_rows(settings, ("setting", "value"))
            + _rows(resources, ("resource", "used", "available", "% of device", "planner limit", "% of limit"))
            + f"<p>{html.escape(note)}</p>")
