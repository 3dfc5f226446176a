"""The weight image: everything a loaded model needs, as 32-bit words for the input stream.

NumPy/stdlib only.  Sent as one input packet after CTRL.LOAD_WEIGHTS (padded to whole beats, see
:mod:`lstmfpga.foundation.hw.stream_format`).  Layout (``w`` = 32-bit word, little-endian in the stream):

header (``HEADER_WORDS``, word indices named by :class:`Header`)
    0 magic ``IMAGE_MAGIC``, 1 format version, 2 input_size, 3 hidden_size, 4 num_layers,
    5 lanes and column sets (:func:`lanes_word`), 6 mode (SHAPE_MODE), 7 SHAPE_BITS (:func:`~lstmfpga.foundation.hw.register_map.pack_bits`),
    8 num_classes, 9 payload words (everything between header and checksum),
    10..17 artifact SHA-256 (word i = hex digits 8i..8i+7, so HASH0 reads as the first 8 digits).
per layer l
    weight rows: ``config.weight_rows(l)`` rows of P weights, ``row_words`` words each; row
    ``grp·Kc + c`` holds, for lane p = s·R + r (R = P/S rows per group, S column sets), the
    weight of gate row grp·R + r (hidden unit j = r // 4, gate g = r % 4; rows with j ≥ H are 0)
    at element c·S + s of the x part for c < ceil(X/S), else at element (c − ceil(X/S))·S + s of
    the h part (0 past the part's end; layer 0 of split mode has the h part only), packed as
    ``weight_bits``-bit two's complement at bit p·weight_bits of the row, lane 0 in the least
    significant bits of the first word;
    bias: 4·H words, order j then g (int32);
    requant: 7 × (multiplier, shift, lo, hi) for gates i, f, g, o, then fc, ig, h; then cell_lo,
    cell_hi (``REQUANT_WORDS`` words);
    gate tables: 4 × 2^acc_bits entries (sign-extended), gate-major;
    tanh(c) table: 2^cell_bits entries.
classifier (num_classes > 0)
    weights: C·H words (class-major, sign-extended); bias: C words (int32).
checksum
    one word: c = 0; for every header and payload word w: c = rotl32(c, 1) xor w.
"""

from __future__ import annotations

import enum

import numpy as np

from lstmfpga.foundation.errors import ArtifactError
from lstmfpga.foundation.hw import register_map

IMAGE_MAGIC = 0x574C5354  # "TSLW" little-endian: "LSTW"
IMAGE_VERSION = 1


class Header(enum.IntEnum):
    """Word index of each header field."""

    MAGIC = 0
    VERSION = 1
    INPUT_SIZE = 2
    HIDDEN_SIZE = 3
    NUM_LAYERS = 4
    LANES = 5
    MODE = 6
    BITS = 7
    NUM_CLASSES = 8
    PAYLOAD_WORDS = 9
    HASH0 = 10  #: HASH0 .. HASH0 + HASH_WORDS - 1


#: The words a core compares with its own build (magic and version: WEIGHT_HEADER; the rest: WEIGHT_SHAPE).
IDENTITY_WORDS = (Header.MAGIC, Header.VERSION)
HEADER_WORDS = Header.HASH0 + register_map.HASH_WORDS
REQUANT_COUNT = 7
REQUANT_WORDS = 4 * REQUANT_COUNT + 2
MAX_SHIFT = 126


def row_words(config) -> int:
    """32-bit words per weight-memory row (P·weight_bits bits, zero padded)."""
    return -(-config.lanes * config.weight_bits // 32)


def layer_words(config, layer: int) -> dict[str, int]:
    """Word counts of one layer's sections, in image order."""
    return {
        "weights": config.weight_rows(layer) * row_words(config),
        "bias": 4 * config.hidden_size,
        "requant": REQUANT_WORDS,
        "gate_tables": 4 * (1 << config.acc_bits),
        "tanh_c_table": 1 << config.cell_bits,
    }


def classifier_words(config) -> dict[str, int]:
    if not config.num_classes:
        return {}
    return {"weights": config.num_classes * config.hidden_size, "bias": config.num_classes}


def payload_words(config) -> int:
    total = sum(sum(layer_words(config, l).values()) for l in range(config.num_layers))
    return total + sum(classifier_words(config).values())


def image_words(config) -> int:
    """Header + payload + checksum."""
    return HEADER_WORDS + payload_words(config) + 1


def hash_words(sha256_hex: str) -> list[int]:
    if len(sha256_hex) != 8 * register_map.HASH_WORDS:
        raise ArtifactError(f"artifact sha256 must be 64 hex digits, not {sha256_hex!r}")
    return [int(sha256_hex[8 * i: 8 * i + 8], 16) for i in range(register_map.HASH_WORDS)]


def lanes_word(config) -> int:
    """Header word 5: lanes P, and the column sets S (the layout of the weight rows): log2 S in
    bits 16–19 where S is a power of two (0 for one set, as in images made before column sets
    existed), else S in bits 20–24."""
    S = config.column_sets
    if S & (S - 1) == 0:
        return config.lanes | (S.bit_length() - 1) << 16
    return config.lanes | S << 20


def header(config, sha256_hex: str) -> list[int]:
    """The ``HEADER_WORDS`` header words, in :class:`Header` order."""
    shape = register_map.shape_registers(config)
    fields = {
        Header.MAGIC: IMAGE_MAGIC, Header.VERSION: IMAGE_VERSION, Header.INPUT_SIZE: shape["SHAPE_INPUT"],
        Header.HIDDEN_SIZE: shape["SHAPE_HIDDEN"], Header.NUM_LAYERS: shape["SHAPE_LAYERS"],
        Header.LANES: lanes_word(config), Header.MODE: shape["SHAPE_MODE"], Header.BITS: shape["SHAPE_BITS"],
        Header.NUM_CLASSES: shape["SHAPE_CLASSES"], Header.PAYLOAD_WORDS: payload_words(config),
    }
    return [fields[index] for index in sorted(fields)] + hash_words(sha256_hex)


def checksum(words: np.ndarray) -> int:
    c = 0
    for w in np.asarray(words, dtype=np.uint32).tolist():
        c = (((c << 1) | (c >> 31)) & 0xFFFFFFFF) ^ w
    return c


def _u32(values) -> np.ndarray:
    return (np.asarray(values, dtype=np.int64).reshape(-1) & 0xFFFFFFFF).astype(np.uint32)


def column_elements(config, columns: int) -> np.ndarray:
    """``[issued columns, S]``: the element of a layer's K = ``columns`` weight columns (x part, then
    the H of the h part) that column set s takes at each issued column, -1 past a part's end."""
    S, H = config.column_sets, config.hidden_size
    parts = []
    for start, length in ((0, columns - H), (columns - H, H)):
        index = np.arange(-(-length // S) * S).reshape(-1, S)
        parts.append(np.where(index < length, start + index, -1))
    return np.concatenate(parts)


def _lane_elements(config, columns: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column element of every lane of every memory row ``grp·Kc + c`` (``[rows, P]``;
    -1 where the lane holds a zero)."""
    G, R, S = config.groups, config.rows_per_group, config.column_sets
    elements = column_elements(config, columns)                    # [Kc, S]
    Kc = elements.shape[0]
    row = (np.arange(G)[:, None, None, None] * R + np.arange(R)[None, None, None, :])   # [G, 1, 1, R]
    row = np.broadcast_to(row, (G, Kc, S, R))
    col = np.broadcast_to(elements[None, :, :, None], (G, Kc, S, R))
    keep = (row < 4 * config.hidden_size) & (col >= 0)
    # lane p = s·R + r
    return np.where(keep, row, -1).reshape(G * Kc, S * R), np.where(keep, col, -1).reshape(G * Kc, S * R)


def pack_weight_rows(config, w_cols: np.ndarray) -> np.ndarray:
    """Gate-row-major weights ``[4, H, K]`` → words of the ``groups·Kc`` memory rows.

    Lane p = s·R + r of memory row ``grp·Kc + c`` holds gate row grp·R + r at the element column
    set s takes at issued column c (:func:`column_elements`), zero past H and past a part's end.
    """
    H, P, wb = config.hidden_size, config.lanes, config.weight_bits
    K = w_cols.shape[2]
    rows = w_cols.transpose(1, 0, 2).reshape(4 * H, K)    # gate row r = 4 j + g
    row, col = _lane_elements(config, K)
    lanes = np.where(row >= 0, rows[np.maximum(row, 0), np.maximum(col, 0)], 0)
    codes = (lanes & ((1 << wb) - 1)).astype(np.uint64)
    n_words = row_words(config)
    bits = np.zeros((lanes.shape[0], n_words * 32), dtype=np.uint8)
    for b in range(wb):
        bits[:, b: P * wb: wb] = (codes >> np.uint64(b)) & np.uint64(1)
    weights = (1 << np.arange(32, dtype=np.uint64))
    words = (bits.reshape(lanes.shape[0], n_words, 32).astype(np.uint64) * weights).sum(axis=2)
    return words.astype(np.uint32).reshape(-1)


def unpack_weight_rows(config, words: np.ndarray, columns: int) -> np.ndarray:
    """Inverse of :func:`pack_weight_rows` (for tests and the simulated board): ``[4, H, K]``."""
    P, wb, H = config.lanes, config.weight_bits, config.hidden_size
    n_words = row_words(config)
    w = np.asarray(words, dtype=np.uint32).reshape(-1, n_words).astype(np.uint64)
    bits = ((w[:, :, None] >> np.arange(32, dtype=np.uint64)) & np.uint64(1)).reshape(w.shape[0], -1)
    codes = np.zeros((w.shape[0], P), dtype=np.int64)
    for b in range(wb):
        codes |= bits[:, b: P * wb: wb].astype(np.int64) << b
    codes = np.where(codes >= 1 << (wb - 1), codes - (1 << wb), codes)
    row, col = _lane_elements(config, columns)
    rows = np.zeros((4 * H, columns), dtype=np.int64)
    keep = row >= 0
    rows[row[keep], col[keep]] = codes[keep]
    return rows.reshape(H, 4, columns).transpose(1, 0, 2)


def _check_range(name: str, values: np.ndarray, bits: int) -> None:
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    if values.size and (values.min() < lo or values.max() > hi):
        raise ArtifactError(f"{name}: values in [{values.min()}, {values.max()}] do not fit {bits}-bit codes")


def _requant_words(name: str, rq) -> list[int]:
    if not 0 < rq.multiplier < (1 << 31):
        raise ArtifactError(f"{name}: multiplier {rq.multiplier} is outside [1, 2**31)")
    if not 0 <= rq.shift <= MAX_SHIFT:
        raise ArtifactError(f"{name}: shift {rq.shift} is outside [0, {MAX_SHIFT}]")
    return [rq.multiplier, rq.shift, rq.lo, rq.hi]


def layer_payload(config, artifact, layer_index: int) -> np.ndarray:
    layer = artifact.layers[layer_index]
    w_x = np.asarray(layer.w_x, dtype=np.int64)
    w_h = np.asarray(layer.w_h, dtype=np.int64)
    _check_range(f"layer {layer_index} weights", np.concatenate([w_x.ravel(), w_h.ravel()]), config.weight_bits)
    cols = w_h if (layer_index == 0 and config.mode == "split") else np.concatenate([w_x, w_h], axis=2)
    parts = [pack_weight_rows(config, cols)]
    bias = np.asarray(layer.bias, dtype=np.int64)
    _check_range(f"layer {layer_index} bias", bias, 32)
    parts.append(_u32(bias.T))
    rq_words = []
    for name, rq in zip(("gate_i", "gate_f", "gate_g", "gate_o", "fc", "ig", "h"),
                        (*layer.gate_requant, layer.fc_requant, layer.ig_requant, layer.h_requant)):
        rq_words += _requant_words(f"layer {layer_index} {name} requant", rq)
    rq_words += [layer.cell_lo, layer.cell_hi]
    parts.append(_u32(rq_words))
    tables = np.asarray(layer.gate_tables, dtype=np.int64)
    if tables.shape != (4, 1 << config.acc_bits):
        raise ArtifactError(f"layer {layer_index} gate_tables: shape {tables.shape} != {(4, 1 << config.acc_bits)}")
    _check_range(f"layer {layer_index} gate tables", tables, config.table_bits)
    parts.append(_u32(tables))
    tanh_c = np.asarray(layer.tanh_c_table, dtype=np.int64)
    _check_range(f"layer {layer_index} tanh(c) table", tanh_c, config.hidden_tanh_bits)
    parts.append(_u32(tanh_c))
    return np.concatenate(parts)


def build_weight_image(artifact, config) -> np.ndarray:
    """The uint32 word image that loads ``artifact`` into a core built for ``config``.

    Raises
    ------
    ArtifactError
        The artifact's shape or bit widths differ from ``config``, or a value does not fit.
    """
    problem = config.mismatch(artifact)
    if problem is not None:
        raise ArtifactError(f"artifact does not fit this accelerator: {problem}")
    parts = [layer_payload(config, artifact, l) for l in range(config.num_layers)]
    if config.num_classes:
        cls = artifact.classifier
        weight = np.asarray(cls.weight, dtype=np.int64)
        _check_range("classifier weights", weight, config.classifier_weight_bits)
        bias = np.asarray(cls.bias, dtype=np.int64)
        _check_range("classifier bias", bias, 32)
        # the core sends logits as int32: the largest reachable magnitude must fit
        worst = int((np.abs(weight).sum(axis=1) * (1 << (config.io_bits - 1)) + np.abs(bias)).max())
        if worst >= 1 << 31:
            raise ArtifactError(f"classifier logits can reach {worst}, beyond the int32 the core sends")
        parts += [_u32(weight), _u32(bias)]
    body = np.concatenate([np.asarray(header(config, artifact.sha256), dtype=np.uint32), *parts])
    if body.size != HEADER_WORDS + payload_words(config):
        raise AssertionError("weight image length disagrees with payload_words")
    return np.concatenate([body, np.asarray([checksum(body)], dtype=np.uint32)])


def image_lanes(config, image: np.ndarray) -> np.ndarray:
    """Pad an image to whole beats (for stream widths above 32 bits)."""
    per = config.stream_width // 32
    pad = (-image.size) % per
    return np.concatenate([image, np.zeros(pad, dtype=np.uint32)]) if pad else image
