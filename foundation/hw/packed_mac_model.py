"""Packing several gate rows into one hardware multiplier: the arithmetic, without Amaranth.

The activation column is broadcast to every gate row, so ``k`` rows' weights can share one
multiplier: the wide operand is ``w_0 + w_1·2^S + … + w_{k-1}·2^{(k-1)S}`` and its product with
the activation ``x`` holds every row's product ``w_r·x`` in a field of ``S`` bits.  A run of
products accumulates in the multiplier's own accumulator; each lower field must stay inside its
``S`` bits (the guard bits above one product bound how many may accumulate), so a longer dot
product is split into runs whose field sums are flushed into wide per-row accumulators.

Signed fields borrow from the field above.  The accumulator therefore starts each run at
``bias = Σ_{r<k-1} 2^{S-1}·2^{rS}``: every lower field then holds ``F_r + 2^{S-1}``, an unsigned
number with no borrow, and ``F_r`` is that field with its top bit inverted; the top field is the
accumulator's upper bits unchanged.  Unpacking costs wires only.

:func:`plan_packing` chooses ``S`` for a multiplier shape (:data:`DSP48E2`, :data:`DSP48E1`);
:func:`accumulate` is the bit-level behaviour of the hardware block
(:class:`lstmfpga.hw.rtl.packed_mac.PackedMac`), usable as a planner or a test oracle.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from lstmfpga.foundation.errors import ConfigError
from lstmfpga.foundation.validation import check_in_range

WEIGHT_BITS_RANGE = (2, 8)
ACT_BITS_RANGE = (4, 8)


@dataclasses.dataclass(frozen=True, kw_only=True)
class DspShape:
    """A hardware multiplier: signed ``a_bits`` × ``b_bits`` into a ``p_bits`` accumulator."""

    name: str
    a_bits: int
    b_bits: int
    p_bits: int


#: UltraScale+ (ZCU104, KV260, Ultra96): 27×18 through the pre-adder path, 48-bit accumulator.
DSP48E2 = DspShape(name="DSP48E2", a_bits=27, b_bits=18, p_bits=48)
#: 7-series (PYNQ-Z2): 25×18, 48-bit accumulator.
DSP48E1 = DspShape(name="DSP48E1", a_bits=25, b_bits=18, p_bits=48)
#: Lattice ECP5: an 18×18 multiplier; the accumulator (ALU54B or fabric) is 54 bits wide.
MULT18X18D = DspShape(name="MULT18X18D", a_bits=18, b_bits=18, p_bits=54)
#: The multiplier of each FPGA family the boards use (:attr:`lstmfpga.hw.boards.Board.family`).
DSP_OF_FAMILY = {"xcup": DSP48E2, "xc7": DSP48E1, "ecp5": MULT18X18D}
#: The multipliers a core's packed fields can be laid out for, by name.
DSP_SHAPES = {dsp.name: dsp for dsp in (DSP48E2, DSP48E1, MULT18X18D)}


def signed_range(bits: int) -> tuple[int, int]:
    """``(lo, hi)`` of a full-range signed ``bits``-bit integer."""
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


def signed_bits(lo: int, hi: int) -> int:
    """Smallest signed width holding every integer in ``[lo, hi]``."""
    bits = 1
    while not (-(1 << (bits - 1)) <= lo and hi <= (1 << (bits - 1)) - 1):
        bits += 1
    return bits


def product_range(weight_bits: int, act_bits: int) -> tuple[int, int]:
    """Range of one signed weight × signed activation product (full range; narrow is inside it).

    The largest is most-negative × most-negative, ``2^(wb+ab-2)``: one bit more than the
    magnitude of the most negative product, which is why a field needs ``wb + ab`` bits.
    """
    wlo, whi = signed_range(weight_bits)
    xlo, xhi = signed_range(act_bits)
    corners = (wlo * xlo, wlo * xhi, whi * xlo, whi * xhi)
    return min(corners), max(corners)


def sum_range(weight_bits: int, act_bits: int, length: int) -> tuple[int, int]:
    """Range of a dot product of ``length`` products."""
    lo, hi = product_range(weight_bits, act_bits)
    return length * lo, length * hi


@dataclasses.dataclass(frozen=True, kw_only=True)
class Packing:
    """How ``macs_per_dsp`` rows share one multiplier.

    Attributes
    ----------
    weight_bits, act_bits, macs_per_dsp :
        The widths and the number of rows (fields) per multiplier.
    dsp :
        The multiplier shape the packing fits.
    shift :
        ``S``, the distance between fields (0 when one row per multiplier).
    packed_bits :
        Signed width of the packed weight operand (≤ ``dsp.a_bits``).
    run :
        Most products that may accumulate before the fields must be separated.
    guard_bits :
        Bits of a lower field above one product's ``wb + ab`` bits (``run = 2^(guard+1) − 1``
        when the positive corner binds); ``None`` when one row per multiplier.
    acc_bits :
        Signed width of the accumulator after a full run (≤ ``dsp.p_bits``).
    """

    weight_bits: int
    act_bits: int
    macs_per_dsp: int
    dsp: DspShape
    shift: int
    packed_bits: int
    run: int
    guard_bits: int | None
    acc_bits: int

    @property
    def bias(self) -> int:
        """Value the accumulator starts each run at: ``2^(S-1)`` in every lower field."""
        return sum(1 << (r * self.shift + self.shift - 1) for r in range(self.macs_per_dsp - 1))

    def accumulator_range(self, products: int) -> tuple[int, int]:
        """Range of the biased accumulator after ``products`` products."""
        lo, hi = sum_range(self.weight_bits, self.act_bits, products)
        top = 1 << ((self.macs_per_dsp - 1) * self.shift)
        return lo * top, hi * top + top - 1

    def dsps(self, rows: int) -> int:
        """Multipliers for ``rows`` rows (the last one's upper fields empty when not divisible)."""
        return -(-rows // self.macs_per_dsp)


def _packed_bits(weight_bits: int, macs: int, shift: int) -> int:
    wlo, whi = signed_range(weight_bits)
    spread = sum(1 << (r * shift) for r in range(macs))
    return signed_bits(wlo * spread, whi * spread)


def _longest_run(weight_bits: int, act_bits: int, macs: int, shift: int, p_bits: int) -> int:
    """Most products for which every lower field stays in ``S`` signed bits and all fits ``p_bits``."""
    lo, hi = product_range(weight_bits, act_bits)
    p_lo, p_hi = signed_range(p_bits)
    top = 1 << ((macs - 1) * shift)
    run = min(-p_lo // (-lo * top), (p_hi - top + 1) // (hi * top))
    if macs > 1:
        f_lo, f_hi = signed_range(shift)
        run = min(run, f_lo // lo, f_hi // hi)
    return run


def _best_shift(weight_bits: int, act_bits: int, macs: int, dsp: DspShape) -> tuple[int, int, int] | None:
    """``(shift, run, packed_bits)`` with the longest run, or ``None`` when nothing fits."""
    best = None
    shifts = [0] if macs == 1 else range(weight_bits + act_bits, dsp.a_bits + 1)
    for shift in shifts:
        packed = _packed_bits(weight_bits, macs, shift)
        if packed > dsp.a_bits:
            break
        run = _longest_run(weight_bits, act_bits, macs, shift, dsp.p_bits)
        if run >= 1 and (best is None or run > best[1]):
            best = shift, run, packed
    return best


def _check_widths(weight_bits: int, act_bits: int, dsp: DspShape) -> None:
    check_in_range("weight_bits", weight_bits, low=WEIGHT_BITS_RANGE[0], high=WEIGHT_BITS_RANGE[1])
    check_in_range("act_bits", act_bits, low=ACT_BITS_RANGE[0], high=ACT_BITS_RANGE[1])
    if act_bits > dsp.b_bits or weight_bits > dsp.a_bits:
        raise ConfigError(f"{weight_bits}-bit weights x {act_bits}-bit activations do not fit a "
                          f"{dsp.a_bits}x{dsp.b_bits} {dsp.name}")


def plan_packing(*, weight_bits: int, act_bits: int, macs_per_dsp: int,
                 dsp: DspShape = DSP48E2) -> Packing:
    """The packing of ``macs_per_dsp`` rows into one ``dsp`` with the longest run.

    Raises
    ------
    ConfigError
        A width or count out of range, or ``macs_per_dsp`` fields that do not fit the multiplier.
    """
    _check_widths(weight_bits, act_bits, dsp)
    check_in_range("macs_per_dsp", macs_per_dsp, low=1)
    best = _best_shift(weight_bits, act_bits, macs_per_dsp, dsp)
    if best is None:
        most = max_macs_per_dsp(weight_bits=weight_bits, act_bits=act_bits, dsp=dsp)
        raise ConfigError(f"macs_per_dsp {macs_per_dsp} does not fit a {dsp.a_bits}x{dsp.b_bits} {dsp.name} "
                          f"with {weight_bits}-bit weights and {act_bits}-bit activations (at most {most})")
    shift, run, packed = best
    packing = Packing(weight_bits=weight_bits, act_bits=act_bits, macs_per_dsp=macs_per_dsp, dsp=dsp,
                      shift=shift, packed_bits=packed, run=run,
                      guard_bits=shift - weight_bits - act_bits if macs_per_dsp > 1 else None, acc_bits=0)
    return dataclasses.replace(packing, acc_bits=signed_bits(*packing.accumulator_range(run)))


@functools.lru_cache(maxsize=1024)
def max_macs_per_dsp(*, weight_bits: int, act_bits: int, dsp: DspShape = DSP48E2, min_run: int = 1) -> int:
    """Most rows one ``dsp`` can hold for these widths with runs of at least ``min_run`` products."""
    _check_widths(weight_bits, act_bits, dsp)
    check_in_range("min_run", min_run, low=1)
    macs = 1
    while (best := _best_shift(weight_bits, act_bits, macs + 1, dsp)) is not None and best[1] >= min_run:
        macs += 1
    return macs


def pack_weights(packing: Packing, weights: np.ndarray) -> np.ndarray:
    """Packed operands ``Σ_r w[r]·2^(rS)`` of weights shaped ``[macs_per_dsp, ...]`` (int64)."""
    w = np.asarray(weights, dtype=np.int64)
    if w.shape[:1] != (packing.macs_per_dsp,):
        raise ConfigError(f"weights must have {packing.macs_per_dsp} rows first, not shape {w.shape}")
    return sum(w[r] << (r * packing.shift) for r in range(packing.macs_per_dsp))


def unpack_fields(packing: Packing, accumulator: int) -> list[int]:
    """Row sums from a biased accumulator: lower fields with the top bit inverted, the rest as is."""
    s, fields = packing.shift, []
    for r in range(packing.macs_per_dsp - 1):
        field = (accumulator >> (r * s)) & ((1 << s) - 1)
        fields.append(field - (1 << (s - 1)))
    fields.append(accumulator >> ((packing.macs_per_dsp - 1) * s))
    return fields


def accumulate(packing: Packing, weights: np.ndarray, activations: np.ndarray, *, run: int | None = None) -> list[int]:
    """Row dot products computed the way the hardware does: packed products, runs, flushes.

    ``weights`` ``[macs_per_dsp, N]``, ``activations`` ``[N]``.  ``run`` (default the packing's)
    is the run length; a longer one shows what the guard bits protect against.
    """
    run = packing.run if run is None else run
    operands = pack_weights(packing, weights).tolist()
    xs = np.asarray(activations, dtype=np.int64).tolist()
    totals = [0] * packing.macs_per_dsp
    for start in range(0, len(xs), run):
        acc = packing.bias + sum(a * x for a, x in zip(operands[start:start + run], xs[start:start + run]))
        totals = [t + f for t, f in zip(totals, unpack_fields(packing, acc))]
    return totals
