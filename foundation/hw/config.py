"""The shape a bitstream is built for: :class:`AcceleratorConfig`.

NumPy/stdlib only: the board host imports it on a PYNQ image.  Everything the hardware fixes at
build time lives here; the weights (and tables, requant parameters) arrive at run time through the
weight stream, so one bitstream serves every retrained model of the same shape.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from lstmfpga.foundation.errors import ConfigError
from lstmfpga.foundation.hw.packed_mac_model import DSP_SHAPES, DspShape, max_macs_per_dsp, signed_bits, sum_range
from lstmfpga.foundation.validation import check_in_range

MODES = ("full", "split")
#: AXI-Stream TDATA widths the core is built for (Zynq-7000 HP ports are 64-bit, UltraScale+ 128-bit).
STREAM_WIDTHS = (32, 64, 128)
#: Column sets a core can be built with.  Other than a power of two, a full-mode input word holds
#: ``bytes_per_word // S`` columns and pads the rest (:func:`~lstmfpga.foundation.hw.stream_format.columns_per_word`),
#: and the tail divides a unit's index by S for its h-buffer word and byte.
COLUMN_SETS = tuple(range(1, 17))
#: Hidden units the tail finishes per cycle.
TAIL_UNITS = (1, 2)
#: Read ports of the weight memory.
WEIGHT_PORTS = (1, 2)
#: Where the core keeps its weight rows: ``chip`` (the weight memory holds every row, loaded by
#: the weight stream), ``stream`` (every row in DDR, fetched through the AXI4 read port into a
#: double buffer of two row groups, each step), ``all`` (every row in DDR, each layer's W_x
#: fetched once a run for an input pass over all steps, W_h each step) or ``wx`` (W_x in DDR as
#: for ``all``, W_h on chip beside the double buffer, loaded by the weight stream);
#: :mod:`lstmfpga.hw.ddr_schedule`.
WEIGHT_RESIDENCIES = ("chip", "stream", "all", "wx")
#: Data widths of the AXI4 read port (the Zynq-7000 HP ports are 64 bits wide, UltraScale+ 128).
DDR_WIDTHS = (64, 128)


#: Sequences a batch may hold (the per-sequence state — h buffers, cell memory, input and
#: pre-activation buffers — grows with it).
MAX_BATCH = 64


#: Fields that change the hardware but neither the results nor the weight image.
_IMAGE_NEUTRAL = ("macs_per_dsp", "packing_dsp", "tail_units", "weight_ports", "fold_lanes", "fold_rows",
                  "lutram_upper_lanes", "sum_bits", "weight_residency",
                  "ddr_width", "ddr_burst", "ddr_outstanding", "max_batch")


@dataclasses.dataclass(frozen=True, kw_only=True)
class AcceleratorConfig:
    """Build-time shape of the LSTM accelerator.

    Parameters
    ----------
    input_size, hidden_size, num_layers :
        LSTM shape (``num_layers`` 1–3). Layers after the first take ``hidden_size`` inputs.
    lanes :
        MAC lanes P, a positive multiple of 4·``column_sets`` (a group of R = P/S rows holds all
        four gates of R/4 hidden units).
    macs_per_dsp :
        Gate rows sharing one hardware multiplier (field packing,
        :mod:`~lstmfpga.foundation.hw.packed_mac_model`): 1 (a multiplier per lane) up to
        :func:`~lstmfpga.foundation.hw.packed_mac_model.max_macs_per_dsp` for ``weight_bits``,
        ``io_bits`` and ``packing_dsp``.  It changes the multipliers and the engine latency, not the
        results nor the weight image: an artifact loads on a core of any ``macs_per_dsp``.
    packing_dsp :
        The device multiplier the core's multiplies are laid out for, a key of
        :data:`~lstmfpga.foundation.hw.packed_mac_model.DSP_SHAPES`: ``"DSP48E2"`` (UltraScale+,
        27×18), ``"DSP48E1"`` (7-series, 25×18) or ``"MULT18X18D"`` (ECP5, 18×18): the packed
        fields (when ``macs_per_dsp`` > 1) and the requantizers' partial products
        (:func:`~lstmfpga.hw.rtl.requantizer.multiplier_slices`: two multipliers for a gate on a
        DSP48E2, four on a MULT18X18D).  The packed operand must fit the device's multiplier port,
        or synthesis splits each packed product over two multipliers and packing saves nothing; a
        narrower one gives shorter accumulation runs (more fabric adds).  Changes neither results
        nor the weight image.
    mode :
        ``"full"`` (W_x·x and W_h·h on chip) or ``"split"`` (layer 0's W_x·x arrives from the host
        as int32 pre-activations).
    tail_units :
        Hidden units the tail finishes per cycle, one of :data:`TAIL_UNITS`.  Two (a second tail
        datapath, for units 2j and 2j + 1) halve the time a row group's units take, which is what
        binds steps of short rows (split mode, the recurrence); they need ``column_sets`` ≥ 2 (both
        h codes in one h-buffer word) and an even number of units a group (``lanes`` a multiple of
        8·``column_sets``).  Like ``macs_per_dsp`` it changes neither results nor the weight image.
    weight_ports :
        Read ports of the weight memory, one of :data:`WEIGHT_PORTS`.  With two, a row's low half
        sits at word r and its high half at word 2^a + r (a = the row address width) of a memory
        half as wide, read through both ports of a true-dual-port RAM in the same cycle: an
        UltraRAM then gives 144 bits a cycle instead of 72, which is what binds a wide, shallow
        weight memory.  Changes neither results nor the weight image.  Two need weights on chip.
    fold_lanes, fold_rows :
        With two weight ports, which part of the rows sits on both ports (0 = all of it): the weights
        of the first ``fold_lanes`` lanes (even) in rows below ``fold_rows`` (a power of two; the
        halves then sit at words r and ``fold_rows`` + r).  The other lanes' weights sit on a
        one-port memory of every row, the folded lanes' rows from ``fold_rows`` on on another.  An
        UltraRAM holds 4,096 words: folded, 2,048 rows of 144 bits; a weight memory of 2,048 to
        4,096 rows fills the UltraRAMs with both ports only for its first 2,048 rows, so the planner
        folds the lanes the UltraRAMs hold (``fold_rows`` = 2,048) and leaves the other rows and
        lanes to one-port memories.  Changes neither results nor the weight image.
    lutram_upper_lanes :
        Of the folded lanes' rows from ``fold_rows`` on, those of the first ``lutram_upper_lanes``
        lanes (even) in distributed (LUT) RAM: that memory carries ``ram_style = "distributed"``.
        A few hundred rows take a 512-deep block RAM column per 72 bits, most of it empty; where the
        block RAM binds and LUTs are spare, the planner puts some of them in LUTs.  Needs
        ``weight_ports`` 2; changes neither results nor the weight image.
    weight_bits :
        LSTM weight width (2–8), signed.
    io_bits, acc_bits, sigmoid_bits, tanh_bits, cell_bits, hidden_tanh_bits :
        Quantizer widths taken from the artifact (``io`` = x and h codes, signed; ``acc`` =
        gate pre-activation codes, signed; ``sigmoid`` unsigned; ``tanh`` = the cell-gate tanh,
        signed; ``cell`` = cell state, signed; ``hidden_tanh`` = tanh(c), signed).
    num_classes :
        Classifier outputs; 0 = no classifier.
    classifier_weight_bits :
        Classifier weight width (2–8), signed; ignored when ``num_classes`` is 0.
    max_timesteps :
        Largest T the on-chip sequence buffers hold (1–24).
    max_batch :
        Most sequences one run may hold (1–:data:`MAX_BATCH`, set per run in the BATCH register):
        each fetched row group is used by every sequence of the batch before the next one is
        fetched, so DDR traffic per sequence falls by B.  The per-sequence memories (input and h
        buffers, cell state, pre-activations, output words, logits) hold ``max_batch`` sequences.
        More than one needs weights in DDR (an on-chip core gains nothing from a batch).
    stream_width :
        AXI-Stream TDATA width in bits, one of :data:`STREAM_WIDTHS`.
    sum_bits :
        Signed width of the MAC lanes' row sums and of the adder tree over the column sets; 0 (the
        default) is the narrowest exact width for this shape, :attr:`row_sum_bits`.  A wider value
        builds the datapath of a larger shape (the resource proxies synthesize their target's
        width); it changes neither results nor the weight image.
    """

    input_size: int
    hidden_size: int
    num_layers: int = 1
    lanes: int = 8
    macs_per_dsp: int = 1
    packing_dsp: str = "DSP48E2"
    column_sets: int = 1
    tail_units: int = 1
    weight_ports: int = 1
    fold_lanes: int = 0
    fold_rows: int = 0
    lutram_upper_lanes: int = 0
    weight_residency: str = "chip"
    ddr_width: int = 128
    ddr_burst: int = 16
    ddr_outstanding: int = 8
    mode: str = "full"
    weight_bits: int = 8
    io_bits: int = 8
    acc_bits: int = 8
    sigmoid_bits: int = 8
    tanh_bits: int = 8
    cell_bits: int = 8
    hidden_tanh_bits: int = 8
    num_classes: int = 0
    classifier_weight_bits: int = 8
    max_timesteps: int = 24
    max_batch: int = 1
    stream_width: int = 32
    sum_bits: int = 0

    def __post_init__(self) -> None:
        check_in_range("input_size", self.input_size, low=1, high=65535)
        check_in_range("hidden_size", self.hidden_size, low=1, high=65535)
        check_in_range("num_layers", self.num_layers, low=1, high=3)
        check_in_range("lanes", self.lanes, low=4, high=4096)
        if self.lanes % 4:
            raise ConfigError(f"lanes must be a positive multiple of 4, not {self.lanes!r}")
        if self.mode not in MODES:
            raise ConfigError(f"mode must be one of {MODES}, not {self.mode!r}")
        check_in_range("weight_bits", self.weight_bits, low=2, high=8)
        for name in ("io_bits", "acc_bits", "sigmoid_bits", "tanh_bits", "cell_bits", "hidden_tanh_bits"):
            check_in_range(name, getattr(self, name), low=4, high=8)
        check_in_range("macs_per_dsp", self.macs_per_dsp, low=1)
        if not isinstance(self.packing_dsp, str) or self.packing_dsp not in DSP_SHAPES:
            raise ConfigError(f"packing_dsp must be one of {tuple(DSP_SHAPES)}, not {self.packing_dsp!r}")
        if self.macs_per_dsp > 1:
            most = max_macs_per_dsp(weight_bits=self.weight_bits, act_bits=self.io_bits, dsp=self.packing_shape)
            if self.macs_per_dsp > most:
                raise ConfigError(
                    f"macs_per_dsp must be in [1, {most}] for {self.weight_bits}-bit weights and {self.io_bits}-bit"
                    f" activations (a {self.packing_dsp}), not {self.macs_per_dsp!r}")
        if isinstance(self.column_sets, bool) or self.column_sets not in COLUMN_SETS:
            raise ConfigError(f"column_sets must be an integer in [1, {COLUMN_SETS[-1]}], not {self.column_sets!r}")
        if self.lanes % (4 * self.column_sets):
            raise ConfigError(f"lanes must be a multiple of 4 x column_sets = {4 * self.column_sets} (each set"
                              f" holds whole hidden units), not {self.lanes!r}")
        if self.tail_units not in TAIL_UNITS:
            raise ConfigError(f"tail_units must be one of {TAIL_UNITS}, not {self.tail_units!r}")
        if self.weight_ports not in WEIGHT_PORTS:
            raise ConfigError(f"weight_ports must be one of {WEIGHT_PORTS}, not {self.weight_ports!r}")
        if isinstance(self.fold_lanes, bool) or not isinstance(self.fold_lanes, int) or not (
                0 <= self.fold_lanes <= self.lanes and self.fold_lanes % 2 == 0):
            raise ConfigError(f"fold_lanes must be an even integer in [0, lanes = {self.lanes}], not {self.fold_lanes!r}")
        if isinstance(self.fold_rows, bool) or not isinstance(self.fold_rows, int) or self.fold_rows < 0 or (
                self.fold_rows & (self.fold_rows - 1)):
            raise ConfigError(f"fold_rows must be 0 or a power of two, not {self.fold_rows!r}")
        if (self.fold_lanes or self.fold_rows) and self.weight_ports != 2:
            raise ConfigError(f"fold_lanes {self.fold_lanes} and fold_rows {self.fold_rows} need weight_ports 2"
                              f" (they say which part of the rows sits on both ports), not {self.weight_ports!r}")
        if isinstance(self.lutram_upper_lanes, bool) or not isinstance(self.lutram_upper_lanes, int) or not (
                0 <= self.lutram_upper_lanes <= self.lanes and self.lutram_upper_lanes % 2 == 0):
            raise ConfigError(f"lutram_upper_lanes must be an even integer in [0, lanes = {self.lanes}], "
                              f"not {self.lutram_upper_lanes!r}")
        if self.lutram_upper_lanes and self.weight_ports != 2:
            raise ConfigError(f"lutram_upper_lanes needs weight_ports 2 (rows past a fold), not {self.weight_ports!r}")
        if self.weight_residency not in WEIGHT_RESIDENCIES:
            raise ConfigError(f"weight_residency must be one of {WEIGHT_RESIDENCIES}, not {self.weight_residency!r}")
        if self.ddr_width not in DDR_WIDTHS:
            raise ConfigError(f"ddr_width must be one of {DDR_WIDTHS}, not {self.ddr_width!r}")
        if self.weight_residency != "chip" and self.weight_ports != 1:
            raise ConfigError(f"weight_ports {self.weight_ports} needs weights on chip: with weight_residency"
                              f" {self.weight_residency!r} the row fetcher writes the weight memory while the engine"
                              f" reads it, so both ports of a true-dual-port RAM cannot read")
        if self.weight_residency in ("all", "wx") and self.mode != "full":
            raise ConfigError(f"weight_residency {self.weight_residency!r} (an input pass per layer) is built in full"
                              f" mode only; split mode's layer 0 has no W_x on the FPGA: use 'stream'")
        check_in_range("ddr_burst", self.ddr_burst, low=1, high=256)
        check_in_range("ddr_outstanding", self.ddr_outstanding, low=1, high=64)
        if self.tail_units > 1 and self.column_sets < 2:
            raise ConfigError(f"tail_units {self.tail_units} needs column_sets of at least 2 (the units"
                              f" finished together share an h-buffer word), not {self.column_sets!r}")
        if self.tail_units > 1 and self.column_sets % 2:
            raise ConfigError(f"tail_units {self.tail_units} needs an even column_sets (a pair of units shares an"
                              f" h-buffer word), not {self.column_sets!r}")
        if self.tail_units > 1 and self.lanes % (8 * self.column_sets):
            raise ConfigError(f"tail_units {self.tail_units} needs lanes a multiple of 8 x column_sets ="
                              f" {8 * self.column_sets} (an even number of units a group), not {self.lanes!r}")
        if self.mode == "full" and self.column_sets > self.stream_width // 8:
            raise ConfigError(f"column_sets {self.column_sets} needs a stream of at least {8 * self.column_sets} bits"
                              f" in full mode (a column's {self.column_sets} input bytes sit in one word);"
                              f" stream_width is {self.stream_width}")
        check_in_range("num_classes", self.num_classes, low=0, high=255)
        check_in_range("classifier_weight_bits", self.classifier_weight_bits, low=2, high=8)
        check_in_range("max_timesteps", self.max_timesteps, low=1, high=24)
        check_in_range("max_batch", self.max_batch, low=1, high=MAX_BATCH)
        if self.max_batch > 1 and self.weight_residency == "chip":
            raise ConfigError(f"max_batch {self.max_batch} needs weights in DDR (weight_residency 'stream'): an"
                              f" on-chip core reads every row each cycle anyway and runs one sequence at a time")
        if self.stream_width not in STREAM_WIDTHS:
            raise ConfigError(f"stream_width must be one of {STREAM_WIDTHS}, not {self.stream_width!r}")
        if self.sum_bits:
            check_in_range("sum_bits", self.sum_bits, low=self.exact_sum_bits, high=self.accumulator_bits)

    # -- derived shape ------------------------------------------------------------------------

    @property
    def packing_shape(self) -> DspShape:
        """The multiplier :attr:`packing_dsp` names."""
        return DSP_SHAPES[self.packing_dsp]

    def layer_input_size(self, layer: int) -> int:
        return self.input_size if layer == 0 else self.hidden_size

    @property
    def rows_per_group(self) -> int:
        """Gate rows R of a row group: P / S (each of the S column sets holds one lane per row)."""
        return self.lanes // self.column_sets

    @property
    def groups(self) -> int:
        """Row groups per layer and step: ceil(4H / R)."""
        return -(-4 * self.hidden_size // self.rows_per_group)

    @property
    def units_per_group(self) -> int:
        return self.rows_per_group // 4

    @property
    def tail_cycles_per_group(self) -> int:
        """Cycles the tail takes for a group's units: ceil(R/4 / tail_units)."""
        return -(-self.units_per_group // self.tail_units)

    @property
    def multipliers(self) -> int:
        """Multipliers (DSPs) of the MAC block: S·ceil(R / macs_per_dsp) (each column set packs
        its own R rows)."""
        return self.column_sets * -(-self.rows_per_group // self.macs_per_dsp)

    def on_chip_input_columns(self, layer: int) -> int:
        """Columns K the MAC engine streams per row group (x part only where it is on chip)."""
        if layer == 0 and self.mode == "split":
            return self.hidden_size
        return self.layer_input_size(layer) + self.hidden_size

    def x_columns(self, layer: int) -> int:
        """Columns the engine issues per row group for the x part: ceil(X / S)."""
        return -(-(self.on_chip_input_columns(layer) - self.hidden_size) // self.column_sets)

    @property
    def h_columns(self) -> int:
        """Columns the engine issues per row group for the h part, and h-buffer words per step:
        ceil(H / S)."""
        return -(-self.hidden_size // self.column_sets)

    def issued_columns(self, layer: int) -> int:
        """Columns the engine issues per row group (x part, then h part)."""
        return self.x_columns(layer) + self.h_columns

    def weight_rows(self, layer: int) -> int:
        """Rows of the P·weight_bits-wide weight memory used by one layer."""
        return self.groups * self.issued_columns(layer)

    @property
    def weight_depth(self) -> int:
        """Rows of the weight image: every layer's."""
        return sum(self.weight_rows(layer) for layer in range(self.num_layers))

    @property
    def ddr_weights(self) -> bool:
        """Whether the weight rows live in DDR (``weight_residency`` other than ``chip``)."""
        return self.weight_residency != "chip"

    @property
    def early_output(self) -> bool:
        """Whether the output packet's h words stream out while later steps compute (weights on
        chip: once a run's input packet is in, nothing but a soft reset can end it before its
        output, so a packet begun early is always finished).  With weights in DDR a fetch fault may
        end a run at any step, and the packet starts when the computation has finished."""
        return not self.ddr_weights

    @property
    def weight_memory_rows(self) -> int:
        """Rows of the on-chip weight memory: the image's, or with weights in DDR a double buffer
        of two halves of :attr:`fetch_half_rows` (then, residency ``wx``, W_h's rows)."""
        if not self.ddr_weights:
            return self.weight_depth
        return 2 * self.fetch_half_rows + self.resident_h_rows

    @property
    def fetch_half_rows(self) -> int:
        """Rows of one half of the double buffer the DDR rows are fetched into (weights in DDR):
        the longest group's K_l rows, or with an input pass its longest fetch (X_l rows of W_x, or
        H_c of W_h where W_h is in DDR too)."""
        layers = range(self.num_layers)
        if not self.input_pass:
            return max(self.issued_columns(layer) for layer in layers)
        x_longest = max(self.x_columns(layer) for layer in layers)
        return x_longest if self.resident_h_rows else max(x_longest, self.h_columns)

    @property
    def resident_h_rows(self) -> int:
        """Rows of W_h kept on chip after the double buffer (residency ``wx``): every layer's
        groups' H_c rows, layer by layer, group by group."""
        return self.num_layers * self.groups * self.h_columns if self.weight_residency == "wx" else 0

    @property
    def input_pass(self) -> bool:
        """Whether each layer runs an input pass (W_x·x of every step, into the tail's
        pre-activation memory) before its recurrence (residencies ``all`` and ``wx``)."""
        return self.weight_residency in ("all", "wx")

    @property
    def pre_stride(self) -> int:
        """Pre-activation words of one step in each tail's memory: H (split mode, every tail holds
        every unit) or ceil(H / tail_units) (the input pass: a tail stores its own units)."""
        return -(-self.hidden_size // self.tail_units) if self.input_pass else self.hidden_size

    @property
    def max_run_steps(self) -> int:
        """Steps one run's sequence buffers hold: ``max_timesteps`` of each of ``max_batch``
        sequences (step t of sequence b is the run's step t·B + b)."""
        return self.max_timesteps * self.max_batch

    @property
    def bytes_per_word(self) -> int:
        return self.stream_width // 8

    @property
    def accumulator_bits(self) -> int:
        """Signed width of a MAC accumulator (plus int32 bias / pre-activation headroom)."""
        k_max = max(self.layer_input_size(layer) + self.hidden_size for layer in range(self.num_layers))
        products = self.weight_bits + self.io_bits - 1 + math.ceil(math.log2(k_max + 1))
        return max(products, 32) + 2

    @property
    def exact_sum_bits(self) -> int:
        """Narrowest signed width holding any gate row's dot product with one layer's columns
        (no bias: the tail adds it): every weight and io code at its most negative."""
        k_max = max(self.on_chip_input_columns(layer) for layer in range(self.num_layers))
        return signed_bits(*sum_range(self.weight_bits, self.io_bits, k_max))

    @property
    def row_sum_bits(self) -> int:
        """Signed width of the lanes' row sums and the set-sum tree: ``sum_bits`` or, at 0,
        :attr:`exact_sum_bits` (a column set's partial sum is a shorter dot product)."""
        return self.sum_bits or self.exact_sum_bits

    @property
    def table_bits(self) -> int:
        """Signed width of a gate-table entry (unsigned sigmoid codes need one more bit)."""
        return max(self.sigmoid_bits + 1, self.tanh_bits)

    @property
    def classifier_bits(self) -> int:
        return self.classifier_weight_bits if self.num_classes else 0

    # -- artifact ----------------------------------------------------------------------------

    @staticmethod
    def widths_of(artifact) -> dict[str, int]:
        """The quantizer widths an artifact needs, checked to be equal across layers."""
        found: dict[str, set[int]] = {k: set() for k in (
            "weight_bits", "acc_bits", "sigmoid_bits", "tanh_bits", "cell_bits", "hidden_tanh_bits")}
        for layer in artifact.layers:
            q = layer.quant
            found["weight_bits"].update(
                int(q[f"weight_{g}"].bits) for g in ("input", "forget", "cell", "output"))
            found["acc_bits"].update(
                int(q[n].bits) for n in ("input_acc", "forget_acc", "cell_acc", "output_acc"))
            found["sigmoid_bits"].update(
                int(q[n].bits) for n in ("input_sigmoid", "forget_sigmoid", "output_sigmoid"))
            found["tanh_bits"].add(int(q["cell_tanh"].bits))
            found["cell_bits"].add(int(q["cell_state"].bits))
            found["hidden_tanh_bits"].add(int(q["hidden_tanh"].bits))
        widths = {}
        for name, values in found.items():
            if len(values) != 1:
                raise ConfigError(
                    f"the accelerator needs one {name} for all gates and layers; the artifact has {sorted(values)}")
            widths[name] = values.pop()
        widths["io_bits"] = int(artifact.io_quant.bits)
        if artifact.classifier is not None:
            widths["classifier_weight_bits"] = int(artifact.classifier.weight_quant.bits)
        return widths

    @classmethod
    def from_artifact(cls, artifact, *, lanes: int, mode: str = "full", max_timesteps: int = 24,
                      stream_width: int = 32, macs_per_dsp: int = 1, packing_dsp: str = "DSP48E2",
                      column_sets: int = 1, tail_units: int = 1, weight_ports: int = 1, fold_lanes: int = 0,
                      fold_rows: int = 0, lutram_upper_lanes: int = 0, weight_residency: str = "chip",
                      ddr_width: int = 128, ddr_burst: int = 16, ddr_outstanding: int = 8,
                      max_batch: int = 1) -> "AcceleratorConfig":
        """The configuration whose bitstream runs ``artifact`` with ``lanes`` MAC lanes."""
        layers = artifact.layers
        if not 1 <= len(layers) <= 3:
            raise ConfigError(f"num_layers must be in [1, 3], not {len(layers)}")
        hidden = int(layers[0].hidden_size)
        for index, layer in enumerate(layers[1:], start=1):
            if int(layer.hidden_size) != hidden or int(layer.input_size) != hidden:
                raise ConfigError(
                    f"layer {index} has input_size {layer.input_size} and hidden_size {layer.hidden_size};"
                    f" the accelerator needs {hidden} and {hidden}")
        classes = 0 if artifact.classifier is None else int(artifact.classifier.weight.shape[0])
        return cls(input_size=int(layers[0].input_size), hidden_size=hidden, num_layers=len(layers),
                   lanes=lanes, macs_per_dsp=macs_per_dsp, packing_dsp=packing_dsp, column_sets=column_sets,
                   tail_units=tail_units, weight_ports=weight_ports, fold_lanes=fold_lanes, fold_rows=fold_rows,
                   lutram_upper_lanes=lutram_upper_lanes, weight_residency=weight_residency,
                   ddr_width=ddr_width, ddr_burst=ddr_burst, ddr_outstanding=ddr_outstanding, max_batch=max_batch,
                   mode=mode, num_classes=classes, max_timesteps=max_timesteps, stream_width=stream_width,
                   **cls.widths_of(artifact))

    def shape_matches(self, artifact) -> bool:
        """Whether ``artifact`` can be loaded into a bitstream built for this configuration."""
        return self.mismatch(artifact) is None

    def mismatch(self, artifact) -> str | None:
        """A message naming the first field in which ``artifact`` differs from this shape, else None.

        ``macs_per_dsp``, ``packing_dsp``, ``tail_units``, the weight ports and folds, ``sum_bits``, the weight
        residency, the DDR port and ``max_batch`` are not compared: the weight image is the same for all.
        """
        try:
            other = AcceleratorConfig.from_artifact(
                artifact, lanes=self.lanes, mode=self.mode, max_timesteps=self.max_timesteps,
                stream_width=self.stream_width, column_sets=self.column_sets)
        except ConfigError as exc:
            return str(exc)
        for field in dataclasses.fields(self):
            if field.name in _IMAGE_NEUTRAL or (
                    field.name == "classifier_weight_bits" and other.num_classes == 0):
                continue
            mine, theirs = getattr(self, field.name), getattr(other, field.name)
            if mine != theirs:
                return f"{field.name}: the hardware has {mine!r}, the artifact needs {theirs!r}"
        return None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "AcceleratorConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown accelerator config fields {unknown}")
        return cls(**data)
