"""How data travels over the accelerator's AXI-Stream ports (NumPy only).

A stream is modelled as a ``uint32`` array of 32-bit lanes; ``stream_width // 32`` consecutive
lanes form one beat, lane 0 in TDATA[31:0] (little-endian: the bytes of
``words.astype('<u4').tobytes()`` are the DMA buffer).  TLAST is set on the final beat of every
packet.  Packets:

* **input, full mode** — for each timestep t, the ``input_size`` io codes as int8 bytes in
  columns of S = ``column_sets`` bytes, ``columns_per_word`` columns a beat from its byte 0 (the
  rest of a beat zero when S does not divide its bytes), the last column and beat padded with
  zeros (``input_beats_per_step`` beats per step); T·that beats.  Where S divides the beat's bytes
  (a power of two) that is the codes back to back, padded to a whole beat.
* **input, split mode** — for each timestep t, hidden unit j, gate g (i, f, g, o): the layer-0
  pre-activation Σ_k w_x[0][g, j, k]·x[t, k] as int32; 4·H lanes per step padded to a whole beat.
* **output** — for each timestep t the last layer's ``hidden_size`` h codes as int8 bytes, padded
  to a whole beat; then (``num_classes`` > 0) the logits as int32, padded to a whole beat.
* **weight image** — 32-bit words of :mod:`lstmfpga.foundation.hw.weight_image`, padded to a whole beat.

A **batch** of B sequences of T steps (a core with ``max_batch`` > 1, BATCH = B) travels as one
input packet of T·B steps interleaved step by step — step t of sequence b is the packet's step
t·B + b — and one output packet that is the B sequences' output packets one after the other (TLAST
only on the batch's final beat): :func:`pack_batch_input`, :func:`unpack_batch_output`.
"""

from __future__ import annotations

import numpy as np

from lstmfpga.foundation.errors import InputError


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def lanes_per_beat(config) -> int:
    return config.stream_width // 32


def columns_per_word(config) -> int:
    """Full mode: the input columns (S = ``column_sets`` bytes each) one beat holds; a column never
    straddles two beats."""
    return config.bytes_per_word // config.column_sets


def input_beats_per_step(config) -> int:
    """Beats one timestep occupies in the input packet."""
    if config.mode == "split":
        return _ceil_div(4 * config.hidden_size, lanes_per_beat(config))
    return _ceil_div(_ceil_div(config.input_size, config.column_sets), columns_per_word(config))


def _input_byte_index(config) -> np.ndarray:
    """Full mode: the byte of a step's beats that holds each of the ``input_size`` codes."""
    S, c = config.column_sets, columns_per_word(config)
    k = np.arange(config.input_size)
    column = k // S
    return (column // c) * config.bytes_per_word + (column % c) * S + k % S


def output_step_beats(config) -> int:
    return _ceil_div(config.hidden_size, config.bytes_per_word)


def output_logit_beats(config) -> int:
    return _ceil_div(config.num_classes, lanes_per_beat(config))


def input_beats(config, timesteps: int) -> int:
    return timesteps * input_beats_per_step(config)


def output_beats(config, timesteps: int) -> int:
    return timesteps * output_step_beats(config) + output_logit_beats(config)


def input_lanes(config, timesteps: int) -> int:
    """32-bit words of an input packet of ``timesteps`` steps (what the DMA moves)."""
    return input_beats(config, timesteps) * lanes_per_beat(config)


def output_lanes(config, timesteps: int) -> int:
    """32-bit words of an output packet of ``timesteps`` steps."""
    return output_beats(config, timesteps) * lanes_per_beat(config)


def _check_timesteps(config, timesteps: int) -> None:
    if not 1 <= timesteps <= config.max_timesteps:
        raise InputError(f"timesteps must be in [1, {config.max_timesteps}], not {timesteps}")


def _bytes_to_lanes(data: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(data, dtype=np.uint8).view("<u4").astype(np.uint32)


def pack_input(config, x_codes: np.ndarray) -> np.ndarray:
    """Full mode: int io codes ``[T, input_size]`` → uint32 lanes of one input packet."""
    x = np.asarray(x_codes)
    if x.ndim != 2 or x.shape[1] != config.input_size:
        raise InputError(f"x codes must have shape [T, {config.input_size}], not {list(x.shape)}")
    _check_timesteps(config, x.shape[0])
    return _pack_steps(config, x)


def _pack_steps(config, x: np.ndarray) -> np.ndarray:
    lo, hi = -(1 << (config.io_bits - 1)), (1 << (config.io_bits - 1)) - 1
    if x.size and (x.min() < lo or x.max() > hi):
        raise InputError(f"x codes must lie in [{lo}, {hi}] (io_bits={config.io_bits})")
    step_bytes = input_beats_per_step(config) * config.bytes_per_word
    buf = np.zeros((x.shape[0], step_bytes), dtype=np.uint8)
    buf[:, _input_byte_index(config)] = x.astype(np.int8).view(np.uint8)
    return _bytes_to_lanes(buf.reshape(-1))


def unpack_input(config, lanes: np.ndarray, timesteps: int) -> np.ndarray:
    """Inverse of :func:`pack_input`: int64 ``[T, input_size]``."""
    step_bytes = input_beats_per_step(config) * config.bytes_per_word
    data = np.asarray(lanes, dtype="<u4").astype("<u4").view(np.uint8).reshape(timesteps, step_bytes)
    return data[:, _input_byte_index(config)].view(np.int8).astype(np.int64)


def pack_preactivations(config, pre: np.ndarray) -> np.ndarray:
    """Split mode: int32 pre-activations ``[T, 4, H]`` (gate-major, as the golden returns them)
    → uint32 lanes of one input packet (order t, j, g)."""
    p = np.asarray(pre)
    H = config.hidden_size
    if p.ndim != 3 or p.shape[1:] != (4, H):
        raise InputError(f"pre-activations must have shape [T, 4, {H}], not {list(p.shape)}")
    _check_timesteps(config, p.shape[0])
    return _pack_preactivation_steps(config, p)


def _pack_preactivation_steps(config, p: np.ndarray) -> np.ndarray:
    H = config.hidden_size
    if p.size and (p.min() < -(1 << 31) or p.max() >= (1 << 31)):
        raise InputError("pre-activations must fit in int32")
    lanes = input_beats_per_step(config) * lanes_per_beat(config)
    buf = np.zeros((p.shape[0], lanes), dtype=np.int64)
    buf[:, : 4 * H] = p.transpose(0, 2, 1).reshape(p.shape[0], 4 * H)
    return (buf.reshape(-1) & 0xFFFFFFFF).astype(np.uint32)


def unpack_preactivations(config, lanes: np.ndarray, timesteps: int) -> np.ndarray:
    H = config.hidden_size
    per_step = input_beats_per_step(config) * lanes_per_beat(config)
    v = np.asarray(lanes, dtype=np.uint32).astype(np.int64).reshape(timesteps, per_step)[:, : 4 * H]
    v = np.where(v >= 1 << 31, v - (1 << 32), v)
    return v.reshape(timesteps, H, 4).transpose(0, 2, 1)


def pack_output(config, h_codes: np.ndarray, logits: np.ndarray | None) -> np.ndarray:
    """Last-layer h codes ``[T, H]`` and logits ``[C]`` → uint32 lanes of one output packet."""
    h = np.asarray(h_codes)
    T = h.shape[0]
    step_bytes = output_step_beats(config) * config.bytes_per_word
    buf = np.zeros((T, step_bytes), dtype=np.uint8)
    buf[:, : config.hidden_size] = h.astype(np.int8).view(np.uint8)
    parts = [_bytes_to_lanes(buf.reshape(-1))]
    if config.num_classes:
        lanes = np.zeros(output_logit_beats(config) * lanes_per_beat(config), dtype=np.int64)
        lanes[: config.num_classes] = np.asarray(logits, dtype=np.int64)
        parts.append((lanes & 0xFFFFFFFF).astype(np.uint32))
    return np.concatenate(parts)


def unpack_output(config, lanes: np.ndarray, timesteps: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Output packet lanes → (h codes int64 ``[T, H]``, logits int64 ``[C]`` or None)."""
    lanes = np.asarray(lanes, dtype=np.uint32)
    expected = output_lanes(config, timesteps)
    if lanes.size != expected:
        raise InputError(f"output packet has {lanes.size} 32-bit lanes, expected {expected} for T={timesteps}")
    h_lanes = timesteps * output_step_beats(config) * lanes_per_beat(config)
    data = lanes[:h_lanes].astype("<u4").view(np.uint8).reshape(timesteps, -1)
    h = data[:, : config.hidden_size].view(np.int8).astype(np.int64)
    if not config.num_classes:
        return h, None
    v = lanes[h_lanes:h_lanes + config.num_classes].astype(np.int64)
    return h, np.where(v >= 1 << 31, v - (1 << 32), v)


def _check_batch(config, batch: int) -> None:
    most = config.max_batch
    if not 1 <= batch <= most:
        raise InputError(f"a batch must hold 1 to {most} sequences on this core, not {batch}")


def batch_groups(lengths, most: int) -> list[list[int]]:
    """Indices of sequences of ``lengths`` steps grouped into runs: consecutive sequences of one
    length, up to ``most`` a batch (in order; a different length starts a new batch)."""
    groups: list[list[int]] = []
    for index, length in enumerate(lengths):
        if groups and len(groups[-1]) < most and lengths[groups[-1][0]] == length:
            groups[-1].append(index)
        else:
            groups.append([index])
    return groups


def interleave_steps(sequences: np.ndarray) -> np.ndarray:
    """``[B, T, ...]`` → ``[T·B, ...]``, step t of sequence b at t·B + b: a batch's packet order."""
    s = np.asarray(sequences)
    return s.swapaxes(0, 1).reshape(s.shape[0] * s.shape[1], *s.shape[2:])


def pack_batch_input(config, sequences: np.ndarray) -> np.ndarray:
    """A batch's input packet: full mode int io codes ``[B, T, input_size]``, split mode int32
    pre-activations ``[B, T, 4, H]`` → uint32 lanes (steps interleaved)."""
    s = np.asarray(sequences)
    full = config.mode == "full"
    step = (config.input_size,) if full else (4, config.hidden_size)
    if s.ndim != 2 + len(step) or s.shape[2:] != step:
        raise InputError(f"a batch must have shape [B, T, {', '.join(map(str, step))}], not {list(s.shape)}")
    _check_batch(config, s.shape[0])
    _check_timesteps(config, s.shape[1])
    flat = interleave_steps(s)
    return _pack_steps(config, flat) if full else _pack_preactivation_steps(config, flat)


def unpack_batch_output(config, lanes: np.ndarray, timesteps: int, batch: int):
    """A batch's output packet → (h codes int64 ``[B, T, H]``, logits int64 ``[B, C]`` or None)."""
    _check_batch(config, batch)
    lanes = np.asarray(lanes, dtype=np.uint32)
    per = output_lanes(config, timesteps)
    if lanes.size != batch * per:
        raise InputError(f"output packet has {lanes.size} 32-bit lanes, expected {batch * per} for a batch of"
                         f" {batch} sequences of T={timesteps}")
    parts = [unpack_output(config, lanes[b * per:(b + 1) * per], timesteps) for b in range(batch)]
    h = np.stack([p[0] for p in parts])
    return h, (np.stack([p[1] for p in parts]) if config.num_classes else None)


def pack_batch_output(config, h_codes: np.ndarray, logits: np.ndarray | None) -> np.ndarray:
    """h codes ``[B, T, H]`` and logits ``[B, C]`` → a batch's output packet lanes."""
    return np.concatenate([pack_output(config, h, None if logits is None else logits[b])
                           for b, h in enumerate(np.asarray(h_codes))])


def to_bytes(lanes: np.ndarray) -> bytes:
    """32-bit lanes → the little-endian bytes of a stream packet."""
    return np.asarray(lanes, dtype="<u4").tobytes()


def from_bytes(data: bytes) -> np.ndarray:
    """A stream packet's bytes → its 32-bit lanes."""
    if len(data) % 4:
        raise InputError(f"stream byte count {len(data)} is not a multiple of 4")
    return np.frombuffer(data, dtype="<u4").astype(np.uint32)


def describe(config) -> dict:
    """Plain-data description of every packet (written into the hdl manifest)."""
    return {
        "lane_bits": 32,
        "byte_order": "little",
        "stream_width": config.stream_width,
        "input": {
            "kind": "preactivations_int32_t_j_g" if config.mode == "split" else "io_codes_int8_t_k",
            "beats_per_step": input_beats_per_step(config),
        },
        "output": {
            "h_codes_int8_beats_per_step": output_step_beats(config),
            "logit_int32_beats": output_logit_beats(config),
        },
        "last": "final beat of every packet",
        **({"batch": {"max_batch": config.max_batch, "input": "step t of sequence b at step t*B + b",
                      "output": "the B sequences' output packets one after another, last on the final beat"}}
           if config.max_batch > 1 else {}),
    }
