"""The DDR weight image: the weight rows a core with weights in DDR reads over its AXI4 master.

NumPy/stdlib only (the board writes it into its ``pynq.allocate`` buffer).  Layout: the rows of the
on-chip weight memory — layer l's row ``g·K_l + c`` for row group g and issued column c, exactly as
:func:`~lstmfpga.foundation.hw.weight_image.pack_weight_rows` packs them (lane p at bit
p·weight_bits, little-endian) — each padded with zeros to whole beats of the port
(:func:`row_bytes`), layer after layer from byte 0 (:func:`layer_offsets`).  A group's rows are
contiguous, so one read request fetches a group.
"""

from __future__ import annotations

import numpy as np

from lstmfpga.foundation.errors import ArtifactError, ConfigError
from lstmfpga.foundation.hw.config import DDR_WIDTHS


def _check_width(data_width) -> int:
    if data_width not in DDR_WIDTHS:
        raise ConfigError(f"the DDR port's data width must be 64 or 128 bits, not {data_width!r}")
    return int(data_width)


def row_bytes(config, data_width: int) -> int:
    """Bytes of one weight row in DDR: P·weight_bits bits padded to whole ``data_width``-bit beats."""
    width = _check_width(data_width)
    return -(-config.lanes * config.weight_bits // width) * width // 8


def layer_offsets(config, data_width: int) -> list[int]:
    """Byte offset of each layer's first row, and the image's size last."""
    rb = row_bytes(config, data_width)
    offsets = [0]
    for layer in range(config.num_layers):
        offsets.append(offsets[-1] + config.weight_rows(layer) * rb)
    return offsets


def read_extent(config, data_width: int) -> int:
    """Bytes from the image's start to the end of the last row a run reads: the whole image, but
    with W_h on chip (residency ``wx``) the last layer's last group's W_x rows end it (the W_h
    rows after them stay in the image, unread)."""
    offsets = layer_offsets(config, data_width)
    if not config.resident_h_rows:
        return offsets[-1]
    last = config.num_layers - 1
    rb = row_bytes(config, data_width)
    return offsets[last] + ((config.groups - 1) * config.issued_columns(last) + config.x_columns(last)) * rb


def build_ddr_image(artifact, config, data_width: int | None = None) -> np.ndarray:
    """The uint8 DDR image of ``artifact``'s weight rows for a core built for ``config`` (for a
    port of ``data_width`` bits; default ``config.ddr_width``).

    Raises
    ------
    ArtifactError
        The artifact does not fit ``config`` (as :func:`~lstmfpga.foundation.hw.weight_image.build_weight_image`).
    ConfigError
        A port width other than 64 or 128.
    """
    from lstmfpga.foundation.hw.weight_image import layer_payload, row_words

    rb = row_bytes(config, config.ddr_width if data_width is None else data_width)
    problem = config.mismatch(artifact)
    if problem is not None:
        raise ArtifactError(f"artifact does not fit this accelerator: {problem}")
    layers = []
    for layer in range(config.num_layers):
        rows = config.weight_rows(layer)
        words = layer_payload(config, artifact, layer)[:rows * row_words(config)]
        packed = words.astype("<u4").view(np.uint8).reshape(rows, 4 * row_words(config))
        padded = np.zeros((rows, rb), dtype=np.uint8)
        padded[:, :packed.shape[1]] = packed          # rb ≥ the row's 32-bit words: beats are 64 or 128 bits
        layers.append(padded.reshape(-1))
    return np.concatenate(layers)
