"""The DDR weight image: every row of the on-chip image, each padded to whole port beats, layer
after layer; its weights read back equal the artifact's (drawn shapes, widths, lanes, sets, modes
and port widths)."""

import numpy as np
import pytest

from lstmfpga.foundation.errors import ArtifactError, ConfigError
from lstmfpga.foundation.hw import weight_image
from lstmfpga.foundation.hw.config import AcceleratorConfig
from lstmfpga.foundation.hw.ddr_image import build_ddr_image, layer_offsets, row_bytes
from lstmfpga.sim.golden.random_artifact import random_artifact


def _draw(rng):
    while True:
        I, H, L = int(rng.integers(1, 40)), int(rng.integers(1, 20)), int(rng.integers(1, 4))
        S = int(rng.integers(1, 6))
        art = random_artifact(input_size=I, hidden_size=H, num_layers=L, num_classes=int(rng.integers(0, 3)),
                              weight_bits=int(rng.integers(2, 9)), seed=int(rng.integers(2**31)))
        try:
            config = AcceleratorConfig.from_artifact(art, lanes=4 * S * int(rng.integers(1, 2 * H + 1)),
                                                     mode=str(rng.choice(["full", "split"])), column_sets=S,
                                                     stream_width=128)
        except ConfigError:
            continue
        return art, config


def test_rows_are_the_weight_images_rows_padded_to_beats():
    rng = np.random.default_rng()
    for _ in range(12):
        art, config = _draw(rng)
        width = int(rng.choice([64, 128]))
        image = build_ddr_image(art, config, width)
        words = weight_image.build_weight_image(art, config)
        rb = -(-config.lanes * config.weight_bits // width) * width // 8          # by hand
        assert row_bytes(config, width) == rb and image.dtype == np.uint8
        offsets = layer_offsets(config, width)
        assert image.size == offsets[-1] == rb * config.weight_depth
        pos = weight_image.HEADER_WORDS
        n = weight_image.row_words(config)
        for layer in range(config.num_layers):
            rows = config.weight_rows(layer)
            block = image[offsets[layer]:offsets[layer + 1]].reshape(rows, rb)
            assert not block[:, 4 * n:].any()                                     # padding is zeros
            ddr_words = block[:, :4 * n].copy().view("<u4").reshape(-1)
            np.testing.assert_array_equal(ddr_words, words[pos:pos + rows * n])
            got = weight_image.unpack_weight_rows(config, ddr_words, config.on_chip_input_columns(layer))
            w = art.layers[layer]
            want = w.w_h if (layer == 0 and config.mode == "split") else np.concatenate([w.w_x, w.w_h], axis=2)
            np.testing.assert_array_equal(got, want)
            pos += sum(weight_image.layer_words(config, layer).values())


def test_bad_widths_and_artifacts_are_refused():
    art = random_artifact(input_size=5, hidden_size=3, num_layers=1, weight_bits=4)
    config = AcceleratorConfig.from_artifact(art, lanes=4)
    with pytest.raises(ConfigError, match=r"the DDR port's data width must be 64 or 128 bits, not 32"):
        build_ddr_image(art, config, 32)
    other = AcceleratorConfig.from_artifact(random_artifact(input_size=6, hidden_size=3, weight_bits=4), lanes=4)
    with pytest.raises(ArtifactError, match=r"artifact does not fit this accelerator: input_size"):
        build_ddr_image(art, other, 64)
