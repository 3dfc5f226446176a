"""AXI4-Lite register map of the LSTM accelerator (32-bit registers, byte offsets).

NumPy/stdlib only.  The RTL (``lstmfpga.hw.rtl``), the PYNQ driver and the simulated board all
read offsets and bits from here; never write raw offsets elsewhere.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

from lstmfpga.foundation.errors import ConfigError
from lstmfpga.foundation.hw.config import MODES, AcceleratorConfig

#: Value of the ID register: ASCII "LSTM".
CORE_ID = 0x4C53544D
#: VERSION register: major << 16 | minor.
CORE_VERSION = 0x0001_0000
#: Default of the TIMEOUT register (cycles without stream progress before the watchdog fires).
DEFAULT_TIMEOUT = 1 << 24


class Reg(enum.IntEnum):
    """Register byte offsets."""

    ID = 0x00            #: RO  CORE_ID
    VERSION = 0x04       #: RO  CORE_VERSION
    CTRL = 0x08          #: WO  write-1 pulses, see :class:`Ctrl`
    STATUS = 0x0C        #: RO  see :class:`Status`
    ERROR = 0x10         #: RO  sticky error bits, see :class:`Error`; cleared by CTRL.CLEAR / START
    TIMESTEPS = 0x14     #: RW  T for the next START (1..max_timesteps)
    CYCLES = 0x18        #: RO  compute cycles of the last run (first MAC column to last h/logit)
    TIMEOUT = 0x1C       #: RW  watchdog cycles (0 = off) for a stalled input or output stream
    RUN_CYCLES = 0x20    #: RO  cycles of the last run from START to DONE (input, compute, output)
    DDR_BASE_LO = 0x24   #: RW  weights in DDR: byte address of the DDR weight image, bits 31..0
    DDR_BASE_HI = 0x28   #: RW  ... bits 63..32
    DDR_LENGTH = 0x2C    #: RW  ... bytes of the buffer the core may read, from DDR_BASE
    BATCH = 0x30         #: RW  sequences in the next START's input packet (1..max_batch); unmapped with max_batch 1
    SHAPE_INPUT = 0x40   #: RO  input_size
    SHAPE_HIDDEN = 0x44  #: RO  hidden_size
    SHAPE_LAYERS = 0x48  #: RO  num_layers
    SHAPE_LANES = 0x4C   #: RO  lanes P
    SHAPE_MODE = 0x50    #: RO  0 full, 1 split
    SHAPE_BITS = 0x54    #: RO  packed widths, see :func:`pack_bits`
    SHAPE_CLASSES = 0x58  #: RO num_classes
    SHAPE_MAX_T = 0x5C   #: RO  max_timesteps
    SHAPE_STREAM = 0x60  #: RO  stream width in bits
    SHAPE_PACKING = 0x64  #: RO macs_per_dsp; unmapped (reads 0, meaning 1) on a core without packing
    SHAPE_SETS = 0x68    #: RO  column sets; unmapped (reads 0, meaning 1) on a core with one set
    SHAPE_TAILS = 0x6C   #: RO  tail units; unmapped (reads 0, meaning 1) on a core with one
    SHAPE_DDR = 0x70     #: RO  weights in DDR, see :func:`pack_ddr`; unmapped (reads 0) with weights on chip
    SHAPE_BATCH = 0x74   #: RO  max_batch; unmapped (reads 0, meaning 1) on a core of one sequence a run
    HASH0 = 0x80         #: RO  HASH0..HASH7: SHA-256 of the loaded artifact, HASH0 = first 4 bytes


HASH_WORDS = 8
#: The read-only shape registers, in the order :func:`shape_registers` lists them.
SHAPE_REGS = (Reg.SHAPE_INPUT, Reg.SHAPE_HIDDEN, Reg.SHAPE_LAYERS, Reg.SHAPE_LANES, Reg.SHAPE_MODE,
              Reg.SHAPE_BITS, Reg.SHAPE_CLASSES, Reg.SHAPE_MAX_T, Reg.SHAPE_STREAM, Reg.SHAPE_PACKING,
              Reg.SHAPE_SETS, Reg.SHAPE_TAILS, Reg.SHAPE_DDR, Reg.SHAPE_BATCH)
#: The 4-bit fields of SHAPE_BITS, lowest first.
BIT_FIELDS = ("weight_bits", "io_bits", "acc_bits", "sigmoid_bits", "tanh_bits", "cell_bits",
              "hidden_tanh_bits", "classifier_weight_bits")


def hash_offset(index: int) -> int:
    """Byte offset of HASH<index> (0..7)."""
    if not 0 <= index < HASH_WORDS:
        raise ValueError(f"hash word index must be in [0, 7], not {index!r}")
    return Reg.HASH0 + 4 * index


class Ctrl(enum.IntFlag):
    """CTRL bits (write 1 to act; reads as 0)."""

    START = 1 << 0         #: accept one input packet of TIMESTEPS steps, compute, send the output packet
    SOFT_RESET = 1 << 1    #: abort whatever runs, drop state; loaded weights stay valid
    LOAD_WEIGHTS = 1 << 2  #: the next input packet is a weight image
    CLEAR = 1 << 3         #: clear DONE and ERROR


class Status(enum.IntFlag):
    """STATUS bits."""

    BUSY = 1 << 0           #: a run or a weight load is in progress
    DONE = 1 << 1           #: the last run or load finished (successfully or with ERROR set)
    WEIGHTS_VALID = 1 << 2  #: a weight image was loaded and checked
    ERROR = 1 << 3          #: ERROR != 0
    LOADING = 1 << 4        #: a weight load is in progress


class Error(enum.IntFlag):
    """ERROR bits (sticky until CLEAR or the next START / LOAD_WEIGHTS)."""

    LAST_EARLY = 1 << 0       #: input TLAST before the expected number of beats; run dropped
    LAST_LATE = 1 << 1        #: no TLAST on the expected last beat; input drained up to TLAST, run dropped
    INPUT_TIMEOUT = 1 << 2    #: input stalled TIMEOUT cycles mid-packet (or TLAST missing); back to idle
    WEIGHT_HEADER = 1 << 3    #: weight image magic or format version wrong
    WEIGHT_SHAPE = 1 << 4     #: weight image shape words differ from this bitstream's shape
    WEIGHT_LENGTH = 1 << 5    #: weight image TLAST early or late
    WEIGHT_CHECKSUM = 1 << 6  #: weight image checksum word wrong
    TIMESTEPS = 1 << 7        #: START with TIMESTEPS outside 1..max_timesteps; refused
    NO_WEIGHTS = 1 << 8       #: START without a valid weight image; refused
    OUTPUT_TIMEOUT = 1 << 9   #: output stalled TIMEOUT cycles; output dropped, back to idle
    BUSY = 1 << 10            #: START or LOAD_WEIGHTS while busy; ignored
    #: Weights in DDR: a row fetch outside [DDR_BASE, DDR_BASE + DDR_LENGTH), or DDR_BASE not a
    #: multiple of the port's bytes; refused before any read, run ended without output
    DDR_RANGE = 1 << 11
    DDR_SLVERR = 1 << 12      #: a weight read answered SLVERR; run ended without output
    DDR_DECERR = 1 << 13      #: a weight read answered DECERR; run ended without output
    #: no AXI read handshake for TIMEOUT cycles while a weight read was outstanding; run ended
    #: without output (reset the memory port, e.g. the PL, before the next run)
    DDR_TIMEOUT = 1 << 14
    BATCH = 1 << 15           #: START with BATCH outside 1..max_batch; refused


#: ERROR bit of the row fetcher's first error flag (its flags, in order, are DDR_RANGE ...
#: DDR_TIMEOUT).
DDR_ERROR_SHIFT = 11
#: SHAPE_DDR's residency field: the code of each ``weight_residency`` other than ``chip``.
DDR_RESIDENCY_CODES = {"stream": 1, "all": 2, "wx": 3}


def pack_bits(*, weight_bits: int, io_bits: int, acc_bits: int, sigmoid_bits: int, tanh_bits: int,
              cell_bits: int, hidden_tanh_bits: int, classifier_weight_bits: int) -> int:
    """The SHAPE_BITS word (also header word 7 of a weight image): eight 4-bit fields."""
    fields = dict(weight_bits=weight_bits, io_bits=io_bits, acc_bits=acc_bits, sigmoid_bits=sigmoid_bits,
                  tanh_bits=tanh_bits, cell_bits=cell_bits, hidden_tanh_bits=hidden_tanh_bits,
                  classifier_weight_bits=classifier_weight_bits)
    word = 0
    for index, name in enumerate(BIT_FIELDS):
        word |= (int(fields[name]) & 0xF) << (4 * index)
    return word


def ddr_region_writes(address: int, length: int) -> tuple[tuple[Reg, int], ...]:
    """The register writes that point a core with weights in DDR at its image: DDR_BASE_LO,
    DDR_BASE_HI, DDR_LENGTH, in that order."""
    address, length = int(address), int(length)
    if not 0 <= address < 1 << 64 or not 0 <= length < 1 << 32:
        raise ConfigError(f"a DDR image needs a 64-bit address and a 32-bit length, not {address:#x} and {length}")
    return ((Reg.DDR_BASE_LO, address & 0xFFFFFFFF), (Reg.DDR_BASE_HI, address >> 32), (Reg.DDR_LENGTH, length))


def pack_ddr(config) -> int:
    """The SHAPE_DDR word of a core with weights in DDR: residency code (bits 7..0,
    :data:`DDR_RESIDENCY_CODES`), the read port's bytes per beat (15..8), its longest burst
    (24..16, 1–256) and its bursts in flight (31..25, 1–64 stored as n − 1)."""
    return (DDR_RESIDENCY_CODES[config.weight_residency] | (config.ddr_width // 8) << 8 | config.ddr_burst << 16
            | (config.ddr_outstanding - 1) << 25)


def unpack_ddr(word: int) -> dict[str, object]:
    """The fields of a SHAPE_DDR word (inverse of :func:`pack_ddr`); ``{}`` for 0 (weights on chip).

    Raises
    ------
    ConfigError
        An unknown residency code.
    """
    word = int(word)
    if word == 0:
        return {}
    codes = {code: name for name, code in DDR_RESIDENCY_CODES.items()}
    if word & 0xFF not in codes:
        raise ConfigError(f"SHAPE_DDR {word:#010x} has an unknown weight residency code {word & 0xFF}")
    return {"weight_residency": codes[word & 0xFF], "ddr_width": 8 * (word >> 8 & 0xFF),
            "ddr_burst": word >> 16 & 0x1FF, "ddr_outstanding": (word >> 25) + 1}


def unpack_bits(word: int) -> dict[str, int]:
    """The widths packed in a SHAPE_BITS word (inverse of :func:`pack_bits`)."""
    return {name: (int(word) >> (4 * index)) & 0xF for index, name in enumerate(BIT_FIELDS)}


def config_bits(config) -> int:
    """SHAPE_BITS of an :class:`~lstmfpga.foundation.hw.config.AcceleratorConfig`."""
    return pack_bits(weight_bits=config.weight_bits, io_bits=config.io_bits, acc_bits=config.acc_bits,
                     sigmoid_bits=config.sigmoid_bits, tanh_bits=config.tanh_bits,
                     cell_bits=config.cell_bits, hidden_tanh_bits=config.hidden_tanh_bits,
                     classifier_weight_bits=config.classifier_bits)


def shape_registers(config) -> dict[str, int]:
    """Values of the read-only SHAPE_* registers for ``config``.

    SHAPE_PACKING is listed only when ``config.macs_per_dsp > 1``, SHAPE_SETS only when
    ``config.column_sets > 1``, SHAPE_TAILS only when ``config.tail_units > 1``, SHAPE_DDR only
    with weights in DDR and SHAPE_BATCH only when ``config.max_batch > 1``: a core without them
    leaves the offsets unmapped, as cores built before they existed do, and they read 0.
    """
    registers = {
        "SHAPE_INPUT": config.input_size,
        "SHAPE_HIDDEN": config.hidden_size,
        "SHAPE_LAYERS": config.num_layers,
        "SHAPE_LANES": config.lanes,
        "SHAPE_MODE": MODES.index(config.mode),
        "SHAPE_BITS": config_bits(config),
        "SHAPE_CLASSES": config.num_classes,
        "SHAPE_MAX_T": config.max_timesteps,
        "SHAPE_STREAM": config.stream_width,
    }
    if config.macs_per_dsp > 1:
        registers["SHAPE_PACKING"] = config.macs_per_dsp
    if config.column_sets > 1:
        registers["SHAPE_SETS"] = config.column_sets
    if config.tail_units > 1:
        registers["SHAPE_TAILS"] = config.tail_units
    if config.ddr_weights:
        registers["SHAPE_DDR"] = pack_ddr(config)
    if config.max_batch > 1:
        registers["SHAPE_BATCH"] = config.max_batch
    return registers


def decode_shape(values: Mapping[str, int]) -> AcceleratorConfig:
    """The configuration a core reports in its SHAPE_* registers (inverse of :func:`shape_registers`).

    Parameters
    ----------
    values :
        Register name (``"SHAPE_INPUT"``, ...) → the 32-bit value read; SHAPE_PACKING 0 or
        absent means one MAC per DSP, SHAPE_SETS 0 or absent one column set, SHAPE_TAILS 0 or
        absent one tail unit, SHAPE_DDR 0 or absent weights on chip, SHAPE_BATCH 0 or absent one
        sequence a run.

    Raises
    ------
    ConfigError
        The registers describe no valid configuration.
    """
    bits = unpack_bits(values["SHAPE_BITS"])
    if values["SHAPE_CLASSES"] == 0:
        bits["classifier_weight_bits"] = 8  # packed as 0 without a classifier
    mode = values["SHAPE_MODE"]
    if not 0 <= mode < len(MODES):
        raise ConfigError(f"SHAPE_MODE must be one of {list(range(len(MODES)))} ({', '.join(MODES)}), not {mode!r}")
    return AcceleratorConfig(
        input_size=values["SHAPE_INPUT"], hidden_size=values["SHAPE_HIDDEN"], num_layers=values["SHAPE_LAYERS"],
        lanes=values["SHAPE_LANES"], macs_per_dsp=max(1, values.get("SHAPE_PACKING", 0)),
        column_sets=max(1, values.get("SHAPE_SETS", 0)), tail_units=max(1, values.get("SHAPE_TAILS", 0)),
        mode=MODES[mode],
        num_classes=values["SHAPE_CLASSES"],
        max_timesteps=values["SHAPE_MAX_T"], stream_width=values["SHAPE_STREAM"],
        max_batch=max(1, values.get("SHAPE_BATCH", 0)),
        **unpack_ddr(values.get("SHAPE_DDR", 0)), **bits)


def describe_errors(value: int) -> list[str]:
    """Names of the ERROR bits set in ``value``."""
    return [flag.name for flag in Error if value & flag]


def as_dict() -> dict:
    """The whole map as plain data (written into the hdl manifest)."""
    return {
        "registers": {r.name: int(r) for r in Reg},
        "hash_words": HASH_WORDS,
        "ctrl": {f.name: int(f) for f in Ctrl},
        "status": {f.name: int(f) for f in Status},
        "error": {f.name: int(f) for f in Error},
        "core_id": CORE_ID,
        "core_version": CORE_VERSION,
        "default_timeout": DEFAULT_TIMEOUT,
    }
