"""WeightLoader (Amaranth simulator) against the artifact it loads: drawn shapes, modes, bit
widths and stream widths, random gaps between beats; every weight row and tail parameter is
written once with the artifact's value, and each kind of damaged image ends the load on the right
word with the right error."""

import random

import numpy as np
import pytest
from amaranth.sim import Simulator

from lstmfpga.foundation.hw import weight_image
from lstmfpga.foundation.hw.config import STREAM_WIDTHS, AcceleratorConfig
from lstmfpga.foundation.hw.register_map import Error
from lstmfpga.foundation.hw.stream_format import lanes_per_beat
from lstmfpga.foundation.hw.weight_image import Header, build_weight_image, image_lanes
from lstmfpga.hw.rtl.tail_unit import load_port_shapes
from lstmfpga.hw.rtl.weight_loader import WeightLoader
from lstmfpga.sim.golden.random_artifact import random_artifact

#: tail port group → the ports that address one write (besides ``*_data``)
_TAIL_PORTS = {"bias": ("addr", "lane"), "param": ("layer", "index"), "table": ("gate", "addr"),
               "tanh": ("addr",), "clsw": ("addr", "lane"), "clsb": ("index",)}


def _draw(seed):
    rnd = random.Random(seed)
    mode = rnd.choice(["full", "split"])
    art = random_artifact(input_size=rnd.randint(1, 12), hidden_size=rnd.randint(1, 9), num_layers=rnd.randint(1, 3),
                          num_classes=rnd.choice([0, 1, 3]), weight_bits=rnd.choice([2, 3, 4, 5, 8]), seed=seed)
    config = AcceleratorConfig.from_artifact(art, lanes=rnd.choice([4, 8, 12, 16, 28]), mode=mode, max_timesteps=4,
                                             stream_width=rnd.choice(STREAM_WIDTHS))
    return rnd, art, config


def _load(config, image, rnd, *, gap=0.2, checksum_at=None, decided_at=None):
    """Feed ``image`` (padded to whole beats, TLAST on the last beat) until the loader finishes;
    returns the writes and, per 32-bit word read, the verdict (finish, fault, in_header).

    A header word and the checksum word (index ``checksum_at``, default the image's last) take two
    cycles, the first without a write or the beat's TREADY, unless a word before it in its beat
    decided the load's end (the checksum word, or ``decided_at``, a bad header word)."""
    checksum_at = len(image) - 1 if checksum_at is None else checksum_at
    dut = WeightLoader(config=config)
    per = lanes_per_beat(config)
    words = image_lanes(config, np.asarray(image, dtype=np.uint32))
    beats = [sum(int(w) << (32 * i) for i, w in enumerate(words[b:b + per])) for b in range(0, words.size, per)]
    weight_rows, tail_writes, verdicts, flags = {}, [], [], {}

    def take_row(ctx, word_before):
        """A weight row's write, which comes the cycle after its last word."""
        if ctx.get(dut.weight_write.en):
            assert word_before, "a row write without a word the cycle before"
            addr = ctx.get(dut.weight_write.addr)
            assert addr not in weight_rows
            weight_rows[addr] = ctx.get(dut.weight_write.data)

    async def bench(ctx):
        ctx.set(dut.begin, 1)
        await ctx.tick()
        ctx.set(dut.begin, 0)
        flags["in_packet_before"] = ctx.get(dut.in_packet)
        word_before = False
        for b, beat in enumerate(beats):
            while rnd.random() < gap:
                ctx.set(dut.i_stream.valid, 0)
                take_row(ctx, word_before)
                assert not any(ctx.get(getattr(dut.tail_write, f"{g}_we")) for g in _TAIL_PORTS)
                await ctx.tick()
                word_before = False
            ctx.set(dut.i_stream.valid, 1)
            ctx.set(dut.i_stream.payload.data, beat)
            ctx.set(dut.i_stream.payload.last, int(b == len(beats) - 1))
            for lane in range(per):
                i = b * per + lane
                ended = any(d is not None and d < i and d // per == b for d in (checksum_at, decided_at))
                if (i < weight_image.HEADER_WORDS or i == checksum_at) and not ended:
                    assert not ctx.get(dut.i_stream.ready), (b, lane)
                    take_row(ctx, word_before)
                    assert not any(ctx.get(getattr(dut.tail_write, f"{g}_we")) for g in _TAIL_PORTS)
                    await ctx.tick()
                    word_before = False
                assert not ctx.get(dut.finish)
                ready = ctx.get(dut.i_stream.ready)
                # one word per cycle; the beat is taken with its last word
                assert ready == (lane == per - 1), (b, lane)
                take_row(ctx, word_before)
                for group, keys in _TAIL_PORTS.items():
                    port = dut.tail_write
                    if ctx.get(getattr(port, f"{group}_we")):
                        key = tuple(ctx.get(getattr(port, f"{group}_{k}")) for k in keys)
                        tail_writes.append((group, key, ctx.get(getattr(port, f"{group}_data"))))
                in_header = ctx.get(dut.in_header)
                await ctx.tick()
                word_before = True
                # the verdict on this word comes the next cycle, when the loader takes nothing
                finish = ctx.get(dut.finish)
                verdicts.append((finish, ctx.get(dut.fault), in_header))
                if finish:
                    assert not ctx.get(dut.i_stream.ready)
                    flags["last"] = ctx.get(dut.finish_last)
                    break
            if verdicts[-1][0]:
                break
        ctx.set(dut.i_stream.valid, 0)
        take_row(ctx, word_before)
        await ctx.tick()
        assert not ctx.get(dut.finish)     # one pulse
        assert not ctx.get(dut.weight_write.en)
        flags["hash"] = ctx.get(dut.image_hash)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return weight_rows, tail_writes, verdicts, flags


def _param_words(layer):
    words = []
    for rq in (*layer.gate_requant, layer.fc_requant, layer.ig_requant, layer.h_requant):
        words += [rq.multiplier, rq.shift, rq.lo, rq.hi]
    return words + [layer.cell_lo, layer.cell_hi]


@pytest.mark.parametrize("seed", range(6))
def test_weight_loader_writes_the_artifact(seed):
    rnd, art, config = _draw(seed)
    image = build_weight_image(art, config)
    weight_rows, tail_writes, verdicts, flags = _load(config, image, rnd)
    H, u32 = config.hidden_size, (lambda v: int(v) & 0xFFFFFFFF)

    assert not flags["in_packet_before"]
    words = image_lanes(config, image).size   # the checksum's beat ends the load: its padding is read
    assert [v[0] for v in verdicts] == [0] * (words - 1) + [1]
    assert verdicts[-1][1] == 0 and flags["last"] == 1
    assert [v[2] for v in verdicts] == [1] * weight_image.HEADER_WORDS + [0] * (words - weight_image.HEADER_WORDS)
    assert flags["hash"] == sum(w << (32 * i) for i, w in enumerate(weight_image.hash_words(art.sha256)))

    # weight memory: every row once, decoding to the artifact's weights
    assert sorted(weight_rows) == list(range(config.weight_depth))
    rw = weight_image.row_words(config)
    base = 0
    for l, layer in enumerate(art.layers):
        rows = config.weight_rows(l)
        words = [(weight_rows[base + r] >> (32 * w)) & 0xFFFFFFFF for r in range(rows) for w in range(rw)]
        cols = np.asarray(layer.w_h) if (l == 0 and config.mode == "split") else \
            np.concatenate([layer.w_x, layer.w_h], axis=2)
        got = weight_image.unpack_weight_rows(config, np.array(words, dtype=np.uint32), config.on_chip_input_columns(l))
        np.testing.assert_array_equal(got, cols)
        base += rows

    expected = []
    for l, layer in enumerate(art.layers):
        expected += [("bias", (l * H + j, g), u32(layer.bias[g, j])) for j in range(H) for g in range(4)]
        expected += [("param", (l, i), u32(w)) for i, w in enumerate(_param_words(layer))]
        expected += [("table", (g, (l << config.acc_bits) + e), u32(v))
                     for g in range(4) for e, v in enumerate(layer.gate_tables[g])]
        expected += [("tanh", ((l << config.cell_bits) + e,), u32(v)) for e, v in enumerate(layer.tanh_c_table)]
    if config.num_classes:
        cls = art.classifier
        expected += [("clsw", (j, k), u32(cls.weight[k, j])) for k in range(config.num_classes) for j in range(H)]
        expected += [("clsb", (k,), u32(cls.bias[k])) for k in range(config.num_classes)]
    # addresses as wide as the tail's ports
    widths = load_port_shapes(config)
    masked = [(g, tuple(a & ((1 << widths[f"{g}_{k}"]) - 1) for a, k in zip(key, _TAIL_PORTS[g])), d)
              for g, key, d in expected]
    assert tail_writes == masked


@pytest.mark.parametrize("seed", range(18))
def test_weight_loader_faults(seed):
    rnd, art, config = _draw(1000 + seed)
    image = [int(w) for w in build_weight_image(art, config)]
    n, per = len(image), lanes_per_beat(config)
    kind = ["identity", "shape", "payload", "truncated", "long", "header_last"][seed % 6]
    if kind == "identity":
        image[rnd.choice([Header.MAGIC, Header.VERSION])] ^= 1 << rnd.randrange(32)
        at, fault = None, Error.WEIGHT_HEADER
    elif kind == "shape":
        i = rnd.randrange(Header.INPUT_SIZE, Header.HASH0)
        image[i] ^= 1 << rnd.randrange(32)
        at, fault = i, Error.WEIGHT_SHAPE
    elif kind == "payload":
        image[rnd.randrange(weight_image.HEADER_WORDS, n - 1)] ^= 1 << rnd.randrange(32)
        at, fault = n - 1, Error.WEIGHT_CHECKSUM
    elif kind == "truncated":   # whole beats cut off: TLAST on a beat before the checksum's
        image = image[:per * rnd.randrange(-(-(weight_image.HEADER_WORDS + 1) // per), -(-n // per))]
        at, fault = len(image) - 1, Error.WEIGHT_LENGTH
    elif kind == "long":   # the checksum word's beat arrives without TLAST
        image = image + [0] * (-n % per) + [rnd.getrandbits(32) for _ in range(per * rnd.randint(1, 3))]
        at, fault = n - 1, Error.WEIGHT_LENGTH
    else:   # TLAST within the header
        image = image[:per * rnd.randint(1, (weight_image.HEADER_WORDS - 1) // per)]
        at, fault = len(image) - 1, Error.WEIGHT_LENGTH
    if kind == "identity":
        at = next(i for i in (Header.MAGIC, Header.VERSION) if image[i] != build_weight_image(art, config)[i])
    _, _, verdicts, flags = _load(config, image, rnd, gap=0.1, checksum_at=n - 1,
                                  decided_at=at if kind in ("identity", "shape") else None)
    at = (at // per + 1) * per - 1      # the verdict comes with the last word of the deciding word's beat
    assert [v[0] for v in verdicts] == [0] * at + [1]
    assert verdicts[-1][1] == fault
    assert flags["last"] == (at // per == -(-len(image) // per) - 1)     # the deciding beat's TLAST
