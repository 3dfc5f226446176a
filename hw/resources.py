"""Resource estimate of the generated accelerator: Yosys-measured logic, extrapolated in P, plus
analytic on-chip memory.

Yosys (``synth_xilinx``, WebAssembly build) needs minutes on the logic of a small configuration
and hours on the megabit weight memories of a real one, so the estimate is made of two honest
halves:

1. **Logic (LUT, FF, DSP) — measured, then extrapolated linearly in P.**  The generated Verilog of
   *proxy* configurations (the target's layers, mode, bit widths, packing and classifier, but a
   small I × H and sample lane counts P ∈ ``sample_lanes``) is synthesized; its distributed-RAM
   LUTs are taken out, and ``a + b·P`` is fitted per resource (exact through two samples,
   least squares through more, with the worst residual reported).  DSPs are fitted against the
   lanes' multipliers, ``ceil(P / macs_per_dsp)`` (P without packing), because a packed core
   holds ``macs_per_dsp`` lanes per multiplier and the last one may be partly empty.  What this misses: logic whose
   width grows with log2(I), log2(H) (counters, address registers) — a few dozen LUT/FF.
2. **Memory (BRAM36, URAM, LUTRAM) — analytic at the real shape.**  Every memory the elaborated
   design instantiates is listed (:func:`lstmfpga.hw.memory_map.accelerator_memories`) and
   tiled onto the primitives; large memories move 72-bit columns into UltraRAM when the board's
   block RAM runs out.  The same rules are checked against Yosys at the proxy sizes
   (:attr:`LogicFit.memory_check`).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import tempfile
from collections.abc import Sequence
from pathlib import Path

from lstmfpga.foundation.errors import ConfigError
from lstmfpga.foundation.validation import is_integer
from lstmfpga.hw.memory_map import (URAM_DEPTH, URAM_WIDTH, MemorySpec, MemoryTiles, accelerator_memories,
                                    bram36_tiles, memories_at, place_small, split_uram_bram)
from lstmfpga.hw.yosys_synth import ResourceCount, synthesize

DEFAULT_SAMPLE_LANES = (8, 16)
LOGIC_FIELDS = ("lut", "ff", "dsp")
RESOURCE_FIELDS = ("lut", "ff", "dsp", "bram36", "uram")


def proxy_shape(sample_lanes: Sequence[int], column_sets: int = 1) -> tuple[int, int]:
    """(input_size, hidden_size) shared by all proxies of one fit: H >= P/(4S) gives every lane a
    row (S column sets)."""
    hidden = max(16, max(sample_lanes) // (4 * column_sets))
    return 2 * hidden, hidden


def proxy_config(config, lanes: int, sample_lanes: Sequence[int]):
    """The configuration synthesized for ``lanes``: the target's layers, mode, widths and
    classifier at the small I × H of :func:`proxy_shape`, its row sums as wide as the target's
    (or as the proxy's own rows need, if wider)."""
    input_size, hidden_size = proxy_shape(sample_lanes, config.column_sets)
    proxy = dataclasses.replace(config, lanes=lanes, input_size=input_size, hidden_size=hidden_size, sum_bits=0)
    return dataclasses.replace(proxy, sum_bits=max(config.row_sum_bits, proxy.exact_sum_bits))


def _check_sample_lanes(sample_lanes) -> tuple[int, ...]:
    lanes = tuple(sample_lanes)
    if len(set(lanes)) < 2:
        raise ConfigError(f"sample_lanes needs at least two different lane counts, not {lanes!r}")
    for p in lanes:
        if not is_integer(p) or p < 4 or p % 4:
            raise ConfigError(f"sample_lanes must be positive multiples of 4, not {p!r}")
    return tuple(sorted(set(lanes)))


@dataclasses.dataclass(frozen=True)
class LogicSample:
    """One Yosys run on a proxy configuration."""

    lanes: int
    input_size: int
    hidden_size: int
    measured: ResourceCount
    model_bram36: float       #: what the memory model predicts for this proxy's memories
    model_lutram: int
    seconds: float
    cached: bool


@dataclasses.dataclass(frozen=True)
class LogicFit:
    """``resource(P) = intercept + slope·P`` for LUT (without LUTRAM), FF and DSP.

    Attributes
    ----------
    coefficients :
        resource name → (intercept, slope per lane).
    max_residual :
        resource name → largest |measured − fitted| over the samples (0 with two samples).
    """

    family: str
    mode: str
    samples: tuple[LogicSample, ...]
    coefficients: dict
    max_residual: dict
    #: Lanes per multiplier of the fitted cores: the DSP line is in ``ceil(P / macs_per_dsp)``.
    macs_per_dsp: int = 1
    #: Column sets of the fitted cores.
    column_sets: int = 1
    #: Tail units of the fitted cores (a second tail is in the lines' constants).
    tail_units: int = 1

    def logic_at(self, lanes: int) -> dict[str, int]:
        return {name: max(0, round(a + b * fit_variable(name, lanes, self.macs_per_dsp, self.column_sets)))
                for name, (a, b) in self.coefficients.items()}

    @property
    def memory_check(self) -> tuple[tuple[int, float, float, int, int], ...]:
        """(P, Yosys BRAM36, model BRAM36, Yosys LUTRAM LUTs, model LUTRAM LUTs) per sample."""
        return tuple((s.lanes, s.measured.bram36, s.model_bram36, s.measured.lutram, s.model_lutram)
                     for s in self.samples)

    def describe(self) -> str:
        k = self.macs_per_dsp
        fit = "; ".join(f"{name.upper()} {a:.0f} + {b:.2f}·{'ceil(P/%d)' % k if name == 'dsp' and k > 1 else 'P'}"
                        for name, (a, b) in self.coefficients.items())
        if not self.samples:
            return "logic from a given fit (no Yosys samples): " + fit
        lanes = ", ".join(str(s.lanes) for s in self.samples)
        first = self.samples[0]
        how = "exact line through 2 points" if len(self.samples) == 2 else (
            "least squares, worst residual " + ", ".join(
                f"{k.upper()} {v:.0f}" for k, v in self.max_residual.items()))
        return (f"logic measured by Yosys synth_xilinx -family {self.family} on the generated Verilog "
                f"at P = {lanes} (proxy I={first.input_size}, H={first.hidden_size}, {self.mode} mode), "
                f"extrapolated linearly in P ({how}): {fit}"
                + ("; LUT and FF without the packed MAC units' accumulator adders and A/B/M/P registers, which "
                   "the DSP48E2s hold (Yosys's xilinx_dsp packs them into a DSP48E1 on xc7, into no DSP48E2; "
                   + ", ".join(f"P={s.lanes}: {s.measured.dsp_lut} of {s.measured.lut} LUT, "
                               f"{s.measured.dsp_ff} of {s.measured.ff} FF" for s in self.samples) + ")"
                   if any(s.measured.dsp_ff or s.measured.dsp_lut for s in self.samples) else ""))


def _linear_fit(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float, float]:
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
    intercept = my - slope * mx
    residual = max(abs(y - (intercept + slope * x)) for x, y in zip(xs, ys))
    return intercept, slope, residual


def logic_only(measured: ResourceCount) -> dict[str, int]:
    """LUT (distributed RAM taken out: the memory model adds it back at the real shape), FF and DSP;
    the MAC units' accumulator adders and registers a DSP48E2 holds taken out of LUT and FF
    (:attr:`ResourceCount.dsp_lut`, :attr:`ResourceCount.dsp_ff`)."""
    return {"lut": measured.lut - measured.lutram - measured.dsp_lut, "ff": measured.ff - measured.dsp_ff,
            "dsp": measured.dsp}


def fit_variable(name: str, lanes: int, macs_per_dsp: int = 1, column_sets: int = 1) -> int:
    """What a logic resource is linear in: the multipliers ``S·ceil(P / S / macs_per_dsp)`` for
    DSPs (each of the S column sets packs its own rows), the lanes P for LUTs and FFs."""
    return column_sets * -(-(lanes // column_sets) // macs_per_dsp) if name == "dsp" else lanes


def fit_lines(samples: Sequence[tuple[int, ResourceCount]], *, macs_per_dsp: int = 1,
              column_sets: int = 1) -> tuple[dict, dict]:
    """Per logic resource, ``(intercept, slope)`` of ``a + b·x`` through measured ``(P, count)``
    samples (``x`` of :func:`fit_variable`), and the worst residual."""
    lanes = [p for p, _ in samples]
    if len(set(lanes)) < 2:
        raise ConfigError(f"a linear fit needs at least two different lane counts, not {lanes!r}")
    coefficients, residuals = {}, {}
    for name in LOGIC_FIELDS:
        xs = [fit_variable(name, p, macs_per_dsp, column_sets) for p in lanes]
        if len(set(xs)) < 2:
            raise ConfigError(f"sample lanes {lanes!r} give one multiplier count {xs[0]} at macs_per_dsp "
                              f"{macs_per_dsp}: no line can be fitted")
        a, b, r = _linear_fit(xs, [logic_only(count)[name] for _, count in samples])
        coefficients[name], residuals[name] = (a, b), r
    return coefficients, residuals


def _memory_model(config, family: str) -> tuple[float, int]:
    placed = [place_small(m, family) for m in accelerator_memories(config)]
    return sum(t.bram36 for t in placed), sum(t.lut for t in placed)


def fit_logic(config, *, family: str, sample_lanes: Sequence[int] = DEFAULT_SAMPLE_LANES,
              cache_dir=None, progress: bool = False, jobs: int = 2) -> LogicFit:
    """Synthesize the proxies of ``config`` (its mode, layers and widths) and fit logic vs P."""
    from lstmfpga.hw.generate import generate_verilog

    lanes = _check_sample_lanes(sample_lanes)
    proxies = [proxy_config(config, p, lanes) for p in lanes]
    with tempfile.TemporaryDirectory(prefix="lstmfpga-proxy-") as work:
        tops = []
        for proxy in proxies:
            out = Path(work) / f"p{proxy.lanes}"
            generate_verilog(proxy, out)
            tops.append(sorted(out.glob("*.v")))
        from lstmfpga.hw.generate import TOP_NAME

        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            futures = [pool.submit(synthesize, files, top=TOP_NAME, family=family, cache_dir=cache_dir)
                       for files in tops]
            results = []
            iterator = futures
            if progress:
                from tqdm import tqdm

                iterator = tqdm(futures, desc=f"yosys synth_xilinx ({family}, P={list(lanes)})",
                                unit="run")
            for future in iterator:
                results.append(future.result())

    samples = []
    for proxy, result in zip(proxies, results):
        bram, lutram = _memory_model(proxy, family)
        samples.append(LogicSample(proxy.lanes, proxy.input_size, proxy.hidden_size, result.resources,
                                   bram, lutram, result.seconds, result.cached))
    coefficients, residuals = fit_lines([(s.lanes, s.measured) for s in samples], macs_per_dsp=config.macs_per_dsp,
                                        column_sets=config.column_sets)
    return LogicFit(family, config.mode, tuple(samples), coefficients, residuals, config.macs_per_dsp,
                    config.column_sets, config.tail_units)


@dataclasses.dataclass(frozen=True)
class ResourceEstimate:
    """Estimated resources of ``config`` on one board (see the module docstring for the method)."""

    lanes: int
    mode: str
    logic: dict              #: extrapolated LUT (logic only), FF, DSP; zeros without a fit
    memories: tuple[MemoryTiles, ...]
    fit: LogicFit | None     #: None: memory only, the logic was not synthesized

    @property
    def totals(self) -> dict[str, float]:
        return {
            "lut": self.logic["lut"] + sum(t.lut + t.logic_lut for t in self.memories),
            "ff": self.logic["ff"] + sum(t.ff for t in self.memories),
            "dsp": self.logic["dsp"],
            "bram36": sum(t.bram36 for t in self.memories),
            "uram": sum(t.uram for t in self.memories),
        }

    @property
    def memory_bits(self) -> int:
        return sum(t.memory.bits for t in self.memories)

    def describe(self) -> list[str]:
        if self.fit is None:
            return ["memory only (analytic, from the elaborated design); logic not synthesized"]
        return [
            self.fit.describe(),
            "BRAM36/URAM/LUTRAM computed from the memories of the elaborated design at the real shape "
            "(tiles of the 512x72 … 32Kx1 block RAM and 4Kx72 UltraRAM aspect ratios; LUTRAM vs BRAM "
            "by Yosys's cost model); at the proxy sizes Yosys measured "
            + ", ".join(f"P={p}: {yb:g} BRAM36/{yl} LUTRAM LUTs (model {mb:g}/{ml})"
                        for p, yb, mb, yl, ml in self.fit.memory_check),
        ]


def place_memories(memories, *, family: str, bram36_budget: float, uram_budget: int) -> tuple[MemoryTiles, ...]:
    """Place each memory in LUTRAM/BRAM as Yosys would, then move 72-bit columns of the deepest
    block memories (the largest first among those 4K deep or more) into UltraRAM until the block
    RAM fits ``bram36_budget`` (or URAM runs out)."""
    placed = {m: place_small(m, family) for m in memories}
    if uram_budget <= 0:
        return tuple(placed.values())
    uram_left = uram_budget
    # deepest first: a 72-bit URAM column of a 4K-deep memory frees 8 RAMB36, of a 512-deep one 1
    block = sorted((m for m, t in placed.items() if t.bram36), key=lambda m: (min(m.depth, URAM_DEPTH), m.bits),
                   reverse=True)
    for memory in block:
        total_bram = sum(t.bram36 for t in placed.values())
        if total_bram <= bram36_budget:
            break
        others = total_bram - placed[memory].bram36
        best = placed[memory]
        for columns in range(1, -(-memory.width // URAM_WIDTH) + 1):
            option = split_uram_bram(memory, columns)
            if option.uram > uram_left:
                break
            if option.bram36 < best.bram36 or (best.uram and option.bram36 == best.bram36):
                best = option
            if others + option.bram36 <= bram36_budget:
                best = option
                break
        placed[memory] = best
        uram_left -= best.uram
    return tuple(placed.values())


def estimate_resources(config, fit: LogicFit | None, *, family: str | None = None,
                       bram36_budget: float = float("inf"), uram_budget: int = 0,
                       memories: Sequence[MemorySpec] | None = None) -> ResourceEstimate:
    """Resources of ``config``: ``fit``'s logic at ``config.lanes`` plus its placed memories
    (``fit=None``: memories only, for ``family``; ``memories``: these instead of the core's own)."""
    if fit is not None and fit.mode != config.mode:
        raise ConfigError(f"the logic fit is for {fit.mode} mode, the configuration is {config.mode}")
    if fit is not None and fit.macs_per_dsp != config.macs_per_dsp:
        raise ConfigError(f"the logic fit is for macs_per_dsp {fit.macs_per_dsp}, the configuration has "
                          f"{config.macs_per_dsp}")
    if fit is not None and fit.column_sets != config.column_sets:
        raise ConfigError(f"the logic fit is for {fit.column_sets} column sets, the configuration has "
                          f"{config.column_sets}")
    if fit is not None and fit.tail_units != config.tail_units:
        raise ConfigError(f"the logic fit is for {fit.tail_units} tail units, the configuration has "
                          f"{config.tail_units}")
    family = fit.family if fit is not None else family
    if family is None:
        raise ConfigError("estimate_resources needs a logic fit or a family")
    memories = place_memories(memories_at(config) if memories is None else memories, family=family,
                              bram36_budget=bram36_budget, uram_budget=uram_budget)
    logic = fit.logic_at(config.lanes) if fit is not None else {name: 0 for name in LOGIC_FIELDS}
    return ResourceEstimate(config.lanes, config.mode, logic, memories, fit)


__all__ = ["DEFAULT_SAMPLE_LANES", "LogicFit", "LogicSample", "ResourceEstimate", "bram36_tiles",
           "estimate_resources", "fit_logic", "place_memories", "proxy_config", "proxy_shape"]
