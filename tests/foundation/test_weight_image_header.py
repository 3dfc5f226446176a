"""The weight-image header: each named word holds its field, for drawn configurations."""

import numpy as np

from lstmfpga.foundation.hw import register_map
from lstmfpga.foundation.hw.config import MODES, AcceleratorConfig
from lstmfpga.foundation.hw.weight_image import (HEADER_WORDS, IMAGE_MAGIC, IMAGE_VERSION, Header, header,
                                                 payload_words)


def test_header_words_sit_at_their_named_indices():
    rng = np.random.default_rng(11)
    for _ in range(100):
        config = AcceleratorConfig(input_size=int(rng.integers(1, 4000)), hidden_size=int(rng.integers(1, 700)),
                                   num_layers=int(rng.integers(1, 4)), lanes=4 * int(rng.integers(1, 40)),
                                   mode=str(rng.choice(MODES)), weight_bits=int(rng.integers(2, 9)),
                                   num_classes=int(rng.integers(0, 6)))
        sha = "".join(rng.choice(list("0123456789abcdef"), size=64))
        words = header(config, sha)
        assert len(words) == HEADER_WORDS
        assert words[Header.MAGIC] == IMAGE_MAGIC and words[Header.VERSION] == IMAGE_VERSION
        assert words[Header.PAYLOAD_WORDS] == payload_words(config)
        shape = register_map.shape_registers(config)
        assert [words[i] for i in (Header.INPUT_SIZE, Header.HIDDEN_SIZE, Header.NUM_LAYERS, Header.LANES,
                                   Header.MODE, Header.BITS, Header.NUM_CLASSES)] == \
            [shape[name] for name in ("SHAPE_INPUT", "SHAPE_HIDDEN", "SHAPE_LAYERS", "SHAPE_LANES", "SHAPE_MODE",
                                      "SHAPE_BITS", "SHAPE_CLASSES")]
        assert register_map.decode_shape({**shape, "SHAPE_MODE": words[Header.MODE]}).mode == config.mode
        assert "".join(f"{w:08x}" for w in words[Header.HASH0:]) == sha
