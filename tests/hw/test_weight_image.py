"""Weight image and stream packing: round trips and layout against independent NumPy reads."""

import numpy as np
import pytest

from lstmfpga.foundation.errors import ArtifactError, InputError
from lstmfpga.foundation.hw import register_map, stream_format, weight_image
from lstmfpga.foundation.hw.config import AcceleratorConfig
from lstmfpga.foundation.integer_lstm import input_products
from lstmfpga.sim.golden.random_artifact import random_artifact


@pytest.mark.parametrize("I,H,L,P,wb,mode", [(37, 19, 2, 8, 4, "full"), (5, 3, 1, 4, 2, "split"),
                                             (9, 16, 3, 12, 8, "full")])
def test_image_layout(I, H, L, P, wb, mode):
    art = random_artifact(input_size=I, hidden_size=H, num_layers=L, num_classes=2, weight_bits=wb, seed=I)
    cfg = AcceleratorConfig.from_artifact(art, lanes=P, mode=mode)
    img = weight_image.build_weight_image(art, cfg)
    assert img.dtype == np.uint32 and img.size == weight_image.image_words(cfg)
    assert img[0] == weight_image.IMAGE_MAGIC and img[1] == weight_image.IMAGE_VERSION
    assert list(img[2:9]) == [I, H, L, P, int(mode == "split"), register_map.config_bits(cfg), 2]
    assert "".join(f"{w:08x}" for w in img[10:18]) == art.sha256
    assert img[-1] == weight_image.checksum(img[:-1])
    pos = weight_image.HEADER_WORDS
    for l, layer in enumerate(art.layers):
        sizes = weight_image.layer_words(cfg, l)
        cols = cfg.on_chip_input_columns(l)
        w = weight_image.unpack_weight_rows(cfg, img[pos:pos + sizes["weights"]], cols)
        want = layer.w_h if (l == 0 and mode == "split") else np.concatenate([layer.w_x, layer.w_h], axis=2)
        np.testing.assert_array_equal(w, want)
        # lane p of row (grp·K + k) holds gate row grp·P + p: check one entry by hand
        row = (cfg.groups - 1) * cols + cols - 1
        lane = 4 * H - 1 - (cfg.groups - 1) * P
        bits = int(sum(int(v) << (32 * i) for i, v in
                       enumerate(img[pos + row * weight_image.row_words(cfg):][:weight_image.row_words(cfg)])))
        code = (bits >> (lane * wb)) & ((1 << wb) - 1)
        assert code - (1 << wb) * (code >> (wb - 1)) == want[3, H - 1, cols - 1]
        pos += sizes["weights"]
        bias = img[pos:pos + 4 * H].astype(np.int64)
        np.testing.assert_array_equal(np.where(bias >= 1 << 31, bias - (1 << 32), bias).reshape(H, 4).T, layer.bias)
        pos += sizes["bias"]
        assert img[pos] == layer.gate_requant[0].multiplier and img[pos + 1] == layer.gate_requant[0].shift
        assert img[pos + 4 * 6 + 1] == layer.h_requant.shift
        pos += sizes["requant"] + sizes["gate_tables"] + sizes["tanh_c_table"]
    assert pos + H * 2 + 2 + 1 == img.size


def test_image_rejects_wrong_shape():
    art = random_artifact(input_size=5, hidden_size=3, num_layers=1, weight_bits=4)
    cfg = AcceleratorConfig(input_size=5, hidden_size=4, weight_bits=4, num_classes=2, classifier_weight_bits=4)
    with pytest.raises(ArtifactError, match="hidden_size: the hardware has 4, the artifact needs 3"):
        weight_image.build_weight_image(art, cfg)


def test_input_columns_never_straddle_a_beat():
    """Full mode with S column sets: column j of a step (codes jS … jS + S − 1) sits in beat
    j div c of the step at bytes (j mod c)·S on, c = beat bytes div S columns a beat, the rest of
    every beat zero; a power of two S packs the codes back to back.  Drawn I, S, widths and T."""
    rng = np.random.default_rng()
    for _ in range(60):
        width = int(rng.choice([32, 64, 128]))
        S = int(rng.integers(1, width // 8 + 1))
        I, T = int(rng.integers(1, 90)), int(rng.integers(1, 6))
        cfg = AcceleratorConfig(input_size=I, hidden_size=3, lanes=4 * S, column_sets=S, stream_width=width)
        W, c = width // 8, width // 8 // S
        x = rng.integers(-128, 128, size=(T, I))
        lanes = stream_format.pack_input(cfg, x)
        beats = -(-(-(-I // S)) // c)
        assert lanes.size == T * beats * (width // 32) == stream_format.input_lanes(cfg, T)
        raw = np.frombuffer(stream_format.to_bytes(lanes), dtype=np.uint8).reshape(T, beats, W)
        want = np.zeros((T, beats, W), dtype=np.uint8)
        for k in range(I):
            j = k // S
            want[:, j // c, (j % c) * S + k % S] = x[:, k].astype(np.int8).view(np.uint8)
        np.testing.assert_array_equal(raw, want, err_msg=f"I={I} S={S} width={width}")
        if W % S == 0:
            np.testing.assert_array_equal(raw.reshape(T, -1)[:, :I].view(np.int8), x)
        np.testing.assert_array_equal(stream_format.unpack_input(cfg, lanes, T), x)


@pytest.mark.parametrize("I,H,T", [(37, 19, 5), (4, 1, 1), (9, 8, 24)])
def test_stream_round_trips(I, H, T):
    rng = np.random.default_rng(T)
    art = random_artifact(input_size=I, hidden_size=H, num_layers=1, num_classes=3, weight_bits=4)
    cfg = AcceleratorConfig.from_artifact(art, lanes=8, mode="full")
    x = rng.integers(-128, 128, size=(T, I))
    lanes = stream_format.pack_input(cfg, x)
    assert lanes.size == stream_format.input_beats(cfg, T)
    np.testing.assert_array_equal(stream_format.unpack_input(cfg, lanes, T), x)
    # byte k of step t sits at byte t·(beats·4) + k of the little-endian buffer
    raw = stream_format.to_bytes(lanes)
    step = stream_format.input_beats_per_step(cfg) * 4
    assert np.int8(raw[(T - 1) * step + I - 1]) == x[T - 1, I - 1]
    split = AcceleratorConfig.from_artifact(art, lanes=8, mode="split")
    pre = input_products(art.layers[0], x[None])[0]
    pl = stream_format.pack_preactivations(split, pre)
    assert pl.size == T * 4 * H and int(np.int32(pl[4 * H * (T - 1) + 4 * (H - 1) + 2])) == pre[T - 1, 2, H - 1]
    np.testing.assert_array_equal(stream_format.unpack_preactivations(split, pl, T), pre)
    h = rng.integers(-128, 128, size=(T, H))
    logits = rng.integers(-(1 << 31), 1 << 31, size=3)
    out = stream_format.pack_output(cfg, h, logits)
    h2, l2 = stream_format.unpack_output(cfg, out, T)
    np.testing.assert_array_equal(h2, h)
    np.testing.assert_array_equal(l2, logits)
    with pytest.raises(InputError, match=r"x codes must have shape \[T, %d\], not \[%d, %d\]" % (I, T, I + 1)):
        stream_format.pack_input(cfg, np.zeros((T, I + 1), dtype=int))
    with pytest.raises(InputError, match=r"timesteps must be in \[1, 24\], not 25"):
        stream_format.pack_input(cfg, np.zeros((25, I), dtype=int))
