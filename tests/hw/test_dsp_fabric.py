"""The packed units' DSP work left in the fabric, counted on drawn flattened netlists: registers by
any of their names, and the accumulator adder's LUTs (feeding a P flip-flop, or a carry chain whose
sums reach P flip-flops alone) but no LUT that also feeds anything else."""

import random

import pytest

from lstmfpga.hw.dsp_fabric import DSP_ACCUMULATOR, DSP_REGISTERS, dsp_fabric


class _Netlist:
    """A flattened module built cell by cell, each net a fresh bit number."""

    def __init__(self):
        self.names, self.cells, self.bit = {}, {}, 10

    def bits(self, width: int) -> list[int]:
        self.bit += width
        return list(range(self.bit - width, self.bit))

    def cell(self, kind: str, directions: bool, **ports) -> None:
        cell = {"type": kind, "connections": {port: list(bits) for port, bits in ports.items()}}
        if directions:
            out = {"O", "CO", "Q"}
            cell["port_directions"] = {port: "output" if port in out else "input" for port in ports}
        self.cells[f"c{len(self.cells)}"] = cell

    @property
    def module(self) -> dict:
        return {"netnames": self.names, "cells": self.cells}


def test_registers_count_by_any_of_their_names():
    """Flip-flops whose output bit carries a DSP register's name (also as an alias beside a shorter
    one) count; other flip-flops, other cells, other names do not."""
    rnd = random.Random()
    net, expected = _Netlist(), 0
    directions = rnd.random() < 0.5
    for unit in range(rnd.randint(1, 6)):
        for reg in (*DSP_REGISTERS, "row_acc0", "a_regs", "weights"):
            bits = net.bits(rnd.randint(1, 40))
            net.names[f"core.engine.lanes_set0.unit{unit}.{reg}"] = {"bits": bits}
            if rnd.random() < 0.5:
                net.names[f"core.x{unit}{reg}"] = {"bits": bits}          # a shorter alias of the same bits
            for b in bits:
                kind = rnd.choice(["FDRE", "FDSE", "LUT2"])
                net.cell(kind, directions, **({"Q": [b], "D": net.bits(1)} if kind != "LUT2" else {"O": [b]}))
                expected += reg in DSP_REGISTERS and kind != "LUT2"
    assert dsp_fabric(net.module).ff == expected
    with pytest.raises(KeyError):
        dsp_fabric({"cells": {}})


def test_the_accumulator_adder_luts_count_and_nothing_else():
    """Each unit's P: bits fed through carry cells (one half-sum LUT per bit on S) or straight from
    a LUT; beside them LUTs that also feed another flip-flop, carries whose sums reach another
    register, and LUTs of ordinary logic. Only the first kind counts."""
    rnd = random.Random()
    net, expected = _Netlist(), 0
    directions = rnd.random() < 0.5
    for unit in range(rnd.randint(1, 5)):
        p = net.bits(rnd.randint(25, 48) if unit == 0 else rnd.randint(4, 48))
        net.names[f"core.lanes.unit{unit}.{DSP_ACCUMULATOR}"] = {"bits": p}
        other = net.bits(8)
        net.names[f"core.lanes.unit{unit}.row_acc0"] = {"bits": other}
        for b in other:
            net.cell("FDRE", directions, Q=[b], D=net.bits(1))
        d = []
        for b in p:
            d.append(net.bits(1)[0])
            net.cell("FDRE", directions, Q=[b], D=[d[-1]], C=[1], CE=[2], R=[3])
        # every kind of chunk once in the first unit, then drawn
        kinds = ["shared", "stray", "lut", "carry"] if unit == 0 else []
        for start in range(0, len(p), 8):
            chunk = d[start:start + 8]
            kind = kinds.pop() if kinds else rnd.choice(["shared", "stray", "lut", "carry", "carry"])
            if kind in ("lut", "shared"):                # these bits straight from LUTs
                for i, bit in enumerate(chunk):
                    net.cell("LUT3", directions, O=[bit], I0=net.bits(1), I1=net.bits(1), I2=net.bits(1))
                    if kind == "shared" and i == 0:      # one also feeding another register
                        net.cell("FDRE", directions, Q=net.bits(1), D=[bit])
                expected += len(chunk) - (kind == "shared")
                continue
            s = net.bits(len(chunk)) + ["0"] * (8 - len(chunk))      # a partial chain's top: constants
            net.cell(rnd.choice(["CARRY4", "CARRY8"]), directions, O=chunk + net.bits(8 - len(chunk)),
                     CO=net.bits(8), S=s, DI=net.bits(8), CI=net.bits(1))
            if kind == "stray":                          # a sum bit also reaching another register
                net.cell("FDRE", directions, Q=net.bits(1), D=[chunk[-1]])
            for bit in s[:len(chunk)]:
                net.cell(rnd.choice(["LUT2", "LUT3", "LUT4"]), directions, O=[bit], I0=net.bits(1), I1=net.bits(1))
            expected += 0 if kind == "stray" else len(chunk)
        for _ in range(rnd.randint(0, 20)):              # ordinary logic into ordinary flip-flops
            o = net.bits(1)
            net.cell("LUT6", directions, O=o, I0=net.bits(1))
            net.cell("FDRE", directions, Q=net.bits(1), D=o)
    assert dsp_fabric(net.module).lut == expected
