"""On-chip memories of a design and the Xilinx RAM tiles they need.

The inventory comes from the elaborated Amaranth design itself (every ``memory.Memory`` it
instantiates, at the real shape), so it cannot drift from the RTL; elaboration takes a fraction
of a second where Yosys would need hours on megabit memories.  The tile arithmetic follows the
block RAM primitives in their simple-dual-port aspect ratios, and the choice between distributed
(LUT) RAM and block RAM follows the cost figures of Yosys's own Xilinx memory library
(``share/xilinx/brams_xc4v.txt``, ``lutrams_xcu.txt``, ``lutrams_xc5v.txt``), so that at a size
Yosys can synthesize the two agree (``tests/hw/test_resources_yosys.py`` checks it).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import typing

#: (depth, width, RAMB36 units) of the block RAM aspect ratios, RAMB18 = half a RAMB36.
BRAM_ASPECTS = (
    (32768, 1, 1.0), (16384, 2, 1.0), (8192, 4, 1.0), (4096, 9, 1.0), (2048, 18, 1.0),
    (1024, 36, 1.0), (512, 72, 1.0),
    (16384, 1, 0.5), (8192, 2, 0.5), (4096, 4, 0.5), (2048, 9, 0.5), (1024, 18, 0.5),
    (512, 36, 0.5),
)
#: URAM288 has one shape, 4096 x 72; deeper memories cascade.
URAM_DEPTH, URAM_WIDTH = 4096, 72
# Yosys memory_libmap costs: RAMB18 129, RAMB36 257; simple-dual-port LUTRAM cells per family:
# (depth, bits per cell, LUT sites per cell, cost per cell).
_BRAM_COST_PER_UNIT = ((0.5, 129), (1.0, 257))
_BRAM_UNITS = ((0.5, 0.5), (1.0, 1.0))
_LUTRAM_CELLS = {
    "xcup": ((32, 14, 8, 16), (64, 7, 8, 16)),     # RAM32M16, RAM64M8
    "xc7": ((32, 6, 4, 8), (64, 3, 4, 8)),         # RAM32M, RAM64M
}


@dataclasses.dataclass(frozen=True)
class MemorySpec:
    """One memory of a design: ``depth`` words of ``width`` bits."""

    name: str
    depth: int
    width: int
    async_read: bool = False
    granularity: int = 0     #: write-enable granule in bits (0 = the whole word)
    read_ports: int = 1      #: 2: both ports of a true-dual-port RAM read (each also writes)
    distributed: bool = False    #: ``ram_style = "distributed"``: in LUTs whatever the cost

    @property
    def bits(self) -> int:
        return self.depth * self.width


@dataclasses.dataclass(frozen=True)
class MemoryTiles:
    """Where one memory lands: block RAM (RAMB36 units), UltraRAM, or LUT sites."""

    memory: MemorySpec
    bram36: float = 0.0
    uram: int = 0
    lut: int = 0             #: LUT sites of LUTRAM cells
    logic_lut: int = 0       #: LUTs of a forced LUTRAM's read multiplexer
    ff: int = 0              #: flip-flops of a forced LUTRAM's output register

    @property
    def kind(self) -> str:
        parts = [name for name, used in (("BRAM", self.bram36), ("URAM", self.uram),
                                          ("LUTRAM", self.lut)) if used]
        return "+".join(parts) or "none"


def bram36_tiles(depth: int, width: int, read_ports: int = 1) -> float:
    """RAMB36 units (RAMB18 = 0.5) for ``depth`` x ``width``.

    Like Yosys's mapper, the depth may split into whole tiles of one aspect ratio plus a
    remainder mapped on its own (4500 x 80 = 4096 rows of 4K x 9 tiles + 404 rows of 512 x 72).
    Two read ports use the true-dual-port ratios (at most 36 bits a port, so no 512 x 72).
    """
    if depth <= 0 or width <= 0:
        return 0.0
    return _bram_split(depth, width, _BRAM_UNITS, read_ports)


def _bram_cost(depth: int, width: int, read_ports: int = 1) -> float:
    """Yosys's memory_libmap cost of the same tiling (RAMB18 129, RAMB36 257)."""
    return _bram_split(depth, width, _BRAM_COST_PER_UNIT, read_ports)


@functools.lru_cache(maxsize=65536)
def _bram_split(depth: int, width: int, price_items: tuple, read_ports: int = 1) -> float:
    price = dict(price_items)
    best = math.inf
    for d, w, units in BRAM_ASPECTS:
        if read_ports > 1 and w > 36 * units:
            continue
        columns = math.ceil(width / w)
        best = min(best, price[units] * columns * math.ceil(depth / d))
        whole, rest = divmod(depth, d)
        if whole and rest:
            best = min(best, price[units] * columns * whole + _bram_split(rest, width, price_items, read_ports))
    return best


def uram_tiles(depth: int, width: int) -> int:
    """URAM288 count for ``depth`` x ``width``: 72-bit columns in 4096-deep cascades; a narrower
    last column folds 2^k words into one 72-bit word (as Yosys maps it)."""
    if depth <= 0 or width <= 0:
        return 0
    full, rest = divmod(width, URAM_WIDTH)
    tiles = full * math.ceil(depth / URAM_DEPTH)
    if rest:
        fold = 1 << int(math.floor(math.log2(URAM_WIDTH // rest)))
        tiles += math.ceil(depth / (URAM_DEPTH * fold))
    return tiles


def mux_luts(inputs: int) -> int:
    """LUT6s of one bit's ``inputs``-to-1 multiplexer as Yosys and ABC build it, measured on
    LUTRAM read paths: up to six inputs a LUT takes four and each next one three more
    (ceil((n - 1) / 3)); past six ABC's trees vary (4.0 at 7 rows, 3.0 at 8, 5.0 at 9, 4.3 at
    10): half a LUT an input."""
    if inputs <= 6:
        return math.ceil((inputs - 1) / 3)
    return math.ceil(inputs / 2)


#: What Yosys's LUTRAM choice weighs an extra row of cells at, per bit, in its cost units (a cell
#: is 16): fitted to the cells it chose on eleven measured memories (any value in 0.30-0.45 fits).
ROW_MUX_COST = 0.375


class _LutramOption(typing.NamedTuple):
    choice_cost: float   # what Yosys's choice weighs: the cells' cost and the extra rows' multiplexer
    sites: int
    cost: int            # the library's cost alone, which Yosys weighs against block RAM
    mux: int


def lutram_luts(depth: int, width: int, family: str, granularity: int = 0) -> tuple[int, int, int]:
    """(LUT sites, Yosys cost, read-multiplexer LUTs) of the distributed RAM Yosys builds for
    ``depth`` x ``width``: of its library's cells, the lowest cost with :data:`ROW_MUX_COST` for
    each row of cells past the first (measured: past 32 words Yosys mostly builds RAM64M8, though
    RAM32M16 costs less by the library's figures alone), its LUT sites and :func:`mux_luts` a bit;
    the cost is the library's, which Yosys weighs against block RAM.

    Each write-enable granule packs into LUTRAM cells on its own.
    """
    granule = granularity if 0 < granularity < width else width
    options = []
    for cell_depth, cell_bits, sites, cost in _LUTRAM_CELLS[family]:
        rows = math.ceil(depth / cell_depth)
        cells = rows * (width // granule) * math.ceil(granule / cell_bits)
        cells += rows * math.ceil((width % granule) / cell_bits)
        options.append(_LutramOption(choice_cost=cost * cells + ROW_MUX_COST * width * (rows - 1),
                                     sites=cells * sites, cost=cost * cells, mux=width * mux_luts(rows)))
    best = min(options, key=lambda option: option.choice_cost)   # the first of equals, as Yosys
    return best.sites, best.cost, best.mux


@functools.lru_cache(maxsize=16384)
def place_small(memory: MemorySpec, family: str) -> MemoryTiles:
    """LUTRAM or block RAM, whichever Yosys's cost model prefers (async reads and
    ``ram_style = "distributed"`` force LUTRAM; a second read port, counted as a copy of the LUTRAM).

    A memory forced into LUTs also gets its read multiplexer's LUTs and its output register's
    flip-flops (:attr:`MemoryTiles.logic_lut`, :attr:`MemoryTiles.ff`): it is deep and wide, and
    absent from the small cores whose logic Yosys measures; those Yosys puts in LUTs itself are
    shallow, and their logic is in that measurement."""
    luts, lut_cost, mux = lutram_luts(memory.depth, memory.width, family, memory.granularity)
    ports = memory.read_ports
    if memory.distributed:
        return MemoryTiles(memory, lut=luts * ports, logic_lut=mux * ports, ff=memory.width * ports)
    if memory.async_read or lut_cost * ports < _bram_cost(memory.depth, memory.width, ports):
        return MemoryTiles(memory, lut=luts * ports)
    return MemoryTiles(memory, bram36=bram36_tiles(memory.depth, memory.width, memory.read_ports))


@functools.lru_cache(maxsize=65536)
def split_uram_bram(memory: MemorySpec, uram_columns: int) -> MemoryTiles:
    """The first ``uram_columns`` x 72 bits of ``memory``'s width in URAM, the rest in block RAM."""
    in_uram = max(0, min(uram_columns * URAM_WIDTH, memory.width))
    return MemoryTiles(memory, uram=uram_tiles(memory.depth, in_uram),
                       bram36=bram36_tiles(memory.depth, memory.width - in_uram, memory.read_ports))


def design_memories(fragment) -> tuple[MemorySpec, ...]:
    """Every memory instance in an elaborated Amaranth ``Fragment``, with hierarchical names."""
    from amaranth.hdl import Shape
    from amaranth.hdl._mem import MemoryInstance

    found = []

    def walk(frag, path):
        if isinstance(frag, MemoryInstance):
            data = frag._data
            width = Shape.cast(data.shape).width if isinstance(data.shape, (int, Shape)) else len(data.shape)
            async_read = any(port._domain == "comb" for port in frag._read_ports)
            granules = [len(port._data) // len(port._en) for port in frag._write_ports
                        if len(port._en) > 1]
            distributed = frag._attrs.get("ram_style") == "distributed"
            found.append(MemorySpec("/".join(path), int(data.depth), int(width), async_read,
                                    min(granules, default=0), len(frag._read_ports), distributed))
        for sub, name, *_ in frag.subfragments:
            walk(sub, (*path, str(name)))

    walk(fragment, ())
    return tuple(found)


@functools.lru_cache(maxsize=64)
def accelerator_memories(config) -> tuple[MemorySpec, ...]:
    """The memories of the accelerator generated for ``config`` (elaborated, not synthesized)."""
    from amaranth.hdl import Fragment

    from lstmfpga.hw.rtl.top import LstmAcceleratorTop

    return design_memories(Fragment.get(LstmAcceleratorTop(config=config), None))


@functools.lru_cache(maxsize=4096)
def memories_at(config) -> tuple[MemorySpec, ...]:
    """:func:`accelerator_memories` of ``config`` without elaborating it for every lane count.

    The design is elaborated at P = 4 and P = 8 with its weight memory on one port; memories that
    differ between the two must be the weight memory, which is then replaced by the banks
    :func:`~lstmfpga.hw.rtl.weight_memory.weight_banks` gives ``config``.  Anything else that
    depends on P falls back to elaborating.  A core of S > 1 column sets is that of one set with
    its weight memory and h buffers resized; a core of two tail units has a copy of the tail's
    memories under ``tail2``.
    """
    import dataclasses

    S = config.column_sets
    if config.tail_units > 1:
        one = memories_at(dataclasses.replace(config, tail_units=1))
        copies = [dataclasses.replace(m, name=m.name.replace("/tail/", f"/tail{i + 1}/"))
                  for i in range(1, config.tail_units) for m in one if "/tail/" in m.name]
        index = max(i for i, m in enumerate(one) if "/tail/" in m.name) + 1
        return tuple(one[:index]) + tuple(copies) + tuple(one[index:])
    if S > 1:
        # the core of one column set at the same P, with the memories the sets change resized: the
        # weight memory's rows (groups of P/S rows, ceil(K/S) columns), the h buffers (words of S
        # codes written a byte at a time) and the input buffer (a word holds whole columns of S)
        from lstmfpga.hw.rtl.mac_engine import h_buffer_depth
        from lstmfpga.hw.rtl.payloads import input_buffer_depth

        resized = []
        for m in memories_at(_one_port(dataclasses.replace(config, column_sets=1))):
            leaf = m.name.rsplit("/", 1)[-1]
            if "weight_mem" in m.name.split("/"):
                resized.extend(_weight_banks_as(m, config))
                continue
            if leaf.startswith("h_buf"):
                m = dataclasses.replace(m, depth=max(2, h_buffer_depth(config)), width=8 * S, granularity=8)
            elif leaf == "input_buf":
                m = dataclasses.replace(m, depth=max(2, input_buffer_depth(config)))
            resized.append(m)
        return tuple(resized)
    one_port = _one_port(config)
    at4 = accelerator_memories(dataclasses.replace(one_port, lanes=4))
    at8 = accelerator_memories(dataclasses.replace(one_port, lanes=8))
    if [m.name for m in at4] != [m.name for m in at8]:
        return accelerator_memories(config)
    result = []
    for m4, m8 in zip(at4, at8):
        if m4 == m8:
            result.append(m4)
            continue
        for lanes, m in ((4, m4), (8, m8)):
            (bank,) = _weight_banks_as(m4, dataclasses.replace(one_port, lanes=lanes))
            if (m.depth, m.width) != (bank.depth, bank.width):
                return accelerator_memories(config)
        result.extend(_weight_banks_as(m4, config))
    return tuple(result)


def _one_port(config):
    """``config`` with its weight memory on one port (the shape the shortcut elaborates)."""
    import dataclasses

    return dataclasses.replace(config, weight_ports=1, fold_lanes=0, fold_rows=0, lutram_upper_lanes=0)


def _weight_banks_as(memory: MemorySpec, config) -> list[MemorySpec]:
    """``config``'s weight-memory banks, named beside ``memory`` (the one-port ``mem``)."""
    import dataclasses

    from lstmfpga.hw.rtl.weight_memory import weight_banks

    parent = memory.name.rsplit("/", 1)[0]
    return [dataclasses.replace(memory, name=f"{parent}/{bank.name}", depth=bank.depth, width=bank.width,
                                read_ports=bank.read_ports, distributed=bank.distributed)
            for bank in weight_banks(config)]
