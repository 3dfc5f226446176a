"""The report's performance section: µs per sequence on the FPGA plans, this CPU and the GPU reference.

FPGA bars are planned configurations (:func:`lstmfpga.hw.plan.make_plan`): the cycle model of one
sequence, input and output streams included, at the board's assumed clock.  The CPU bar is
``torch.nn.LSTM`` measured in this run.  GPU bars are the H100 reference of
:mod:`lstmfpga.cli.lstm_latency`, drawn hatched and labelled as not measured here.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass
from pathlib import Path

from lstmfpga.foundation.atomic import atomic_path

FPGA, CPU, REFERENCE = "FPGA (planned, cycle model)", "this CPU (measured now)", "GPU (H100 reference, not measured here)"
_STYLE = {FPGA: {"facecolor": "tab:blue"}, CPU: {"facecolor": "tab:orange"},
          REFERENCE: {"facecolor": "0.8", "hatch": "//", "edgecolor": "0.35"}}


@dataclass(frozen=True)
class LatencyBar:
    label: str
    us: float
    kind: str
    note: str


@dataclass(frozen=True)
class LatencyPanel:
    """One model shape: its bars, and the boards on which nothing fits."""

    title: str
    bars: tuple[LatencyBar, ...]
    no_fit: tuple[str, ...] = ()
    plans: tuple = ()


def latency_panel(title: str, template, boards, *, timesteps: int, cache_dir=None) -> LatencyPanel:
    """Plan ``template`` on every board, measure ``torch.nn.LSTM`` at its shape, add the GPU reference."""
    import torch

    from lstmfpga.cli.lstm_latency import GPU_REFERENCE_SHAPE, cpu_lstm_us, gpu_reference_us
    from lstmfpga.hw.boards import get_board
    from lstmfpga.hw.plan import NoFitError, make_plan

    bars, no_fit, plans = [], [], []
    for key in boards:
        board = get_board(key)
        try:
            plan = make_plan(template, board, timesteps=timesteps, cache_dir=cache_dir, compare=False)
        except NoFitError as exc:
            no_fit.append(f"{board.name}: {str(exc).splitlines()[-1]}")
            continue
        plans.append(plan)
        sets = f" S={plan.config.column_sets}" if plan.config.column_sets > 1 else ""
        if plan.residency != "chip":
            sets += f", weights in DDR ({plan.residency}, batch {plan.batch})"
        bars.append(LatencyBar(f"FPGA {board.name}, {plan.mode} P={plan.lanes}{sets} @ {plan.clock_mhz:g} MHz",
                               plan.us_per_sequence, FPGA,
                               f"cycle model, streams included, MAC utilisation {plan.cycles.utilization:.1%}"))
    I, H, L = template.input_size, template.hidden_size, template.num_layers
    cpu = cpu_lstm_us(I, H, L, timesteps)
    bars.append(LatencyBar(f"CPU torch.nn.LSTM fp32, {torch.get_num_threads()} threads", cpu, CPU,
                           f"measured, {platform.processor() or platform.machine()}"))
    shape = {"input_size": I, "num_layers": L, "timesteps": timesteps}
    if shape == GPU_REFERENCE_SHAPE:
        for name, us in gpu_reference_us(H).items():
            bars.append(LatencyBar(f"GPU H100 {name.replace(f' H={H}', '')}", us, REFERENCE,
                                   "reference (docs/PERFORMANCE.md), not measured here"))
    return LatencyPanel(title, tuple(bars), tuple(no_fit), tuple(plans))


def latency_figure(panels):
    """Horizontal bars per panel on a log axis, each bar with its µs written on it."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    rows = sum(len(p.bars) for p in panels)
    fig = Figure(figsize=(10, 1.4 + 0.55 * rows + 0.6 * len(panels)), layout="constrained")
    axes = fig.subplots(len(panels), 1, squeeze=False,
                        gridspec_kw={"height_ratios": [max(len(p.bars), 1) for p in panels]})[:, 0]
    top = max(b.us for p in panels for b in p.bars)
    low = min(b.us for p in panels for b in p.bars)
    for ax, panel in zip(axes, panels):
        labels = [b.label for b in panel.bars]
        for y, bar in enumerate(panel.bars):
            ax.barh(y, bar.us, height=0.65, **_STYLE[bar.kind])
            ax.text(bar.us * 1.06, y, f"{bar.us:,.1f} µs", va="center", fontsize=9)
        ax.set_yticks(range(len(labels)), labels, fontsize=9)
        ax.invert_yaxis()
        ax.set_xscale("log")
        ax.set_xlim(low / 2, top * 4)
        ax.set_title(panel.title, fontsize=10, loc="left")
        ax.grid(axis="x", alpha=0.3, which="both")
    axes[-1].set_xlabel("µs per sequence, batch 1 (log scale; shorter is faster)")
    kinds = [k for k in (FPGA, CPU, REFERENCE) if any(b.kind == k for p in panels for b in p.bars)]
    fig.legend(handles=[Patch(label=k, **_STYLE[k]) for k in kinds], loc="outside lower center",
               ncols=len(kinds), fontsize=9, frameon=False)
    return fig


def plot_latency(panels, path) -> Path:
    """:func:`latency_figure` as a PNG, written atomically."""
    with atomic_path(path, suffix=".png") as tmp:
        latency_figure(panels).savefig(tmp, dpi=100, format="png")
    return Path(path)


def latency_rows(panels) -> list[dict]:
    """The bars as plain records (for summary.json)."""
    return [{"shape": p.title, "configuration": b.label, "us_per_sequence": round(b.us, 3), "kind": b.kind,
             "note": b.note} for p in panels for b in p.bars]


def speedups(panel: LatencyPanel) -> str:
    """One sentence: the fastest FPGA plan against the CPU and the reference GPU figures."""
    fpga = [b for b in panel.bars if b.kind == FPGA]
    if not fpga:
        return "no board holds this model"
    best = min(fpga, key=lambda b: b.us)
    parts = []
    for other in panel.bars:
        if other.kind == FPGA:
            continue
        ratio = f"{other.us / best.us:.1f}× faster" if other.us >= best.us else f"{best.us / other.us:.1f}× slower"
        parts.append(f"{ratio} than {'this CPU' if other.kind == CPU else other.label + ' (reference)'}")
    return f"{best.label.split(',')[0]}: " + "; ".join(parts)
