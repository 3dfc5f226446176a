"""Wire format of the feature stream between the CPU/GPU side and the board.

Every message is a frame::

    magic b"LF" | version u8 | type u8 | payload length u32 (big endian) | payload

Control messages (HELLO, WELCOME, RESULT, ERROR, BYE) carry UTF-8 JSON objects; a SEQUENCE
carries a small binary header and the raw little-endian array. The type and length are checked
against the receiver's limits before any payload byte is read, so a hostile length cannot make
the receiver allocate, and an optional deadline bounds the time a whole frame may take.

NumPy and stdlib only: the board imports this.
"""

from __future__ import annotations

import enum
import errno
import hmac
import json
import math
import selectors
import socket
import struct
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from lstmfpga.foundation.errors import InputError

PROTOCOL_VERSION = 1
MAGIC = b"LF"
HEADER = struct.Struct(">2sBBI")
#: Default largest payload: a 24 x 2048 float32 sequence is 192 KiB; 16 MiB leaves room for T=512.
DEFAULT_MAX_PAYLOAD = 16 * 1024 * 1024
MAX_CONTROL_PAYLOAD = 64 * 1024


class StreamError(InputError):
    """A frame that breaks the protocol: bad magic, version, type, size, or content."""


class StreamClosed(StreamError):
    """The peer closed the connection at a frame boundary."""


class MessageType(enum.IntEnum):
    HELLO = 1
    WELCOME = 2
    SEQUENCE = 3
    RESULT = 4
    ERROR = 5
    BYE = 6


class PayloadKind(enum.IntEnum):
    """What a SEQUENCE array holds; fixes its dtype and rank."""

    FEATURES_F16 = 1  # float16 [T, D], raw features; the board standardizes and quantizes
    FEATURES_F32 = 2  # float32 [T, D]
    CODES_I8 = 3  # int8 [T, I], quantized layer-0 input codes (full mode)
    PREACT_I32 = 4  # int32 [T, 4, H], layer-0 input products W_i.x (split mode)


PAYLOAD_DTYPES = {
    PayloadKind.FEATURES_F16: np.dtype("<f2"),
    PayloadKind.FEATURES_F32: np.dtype("<f4"),
    PayloadKind.CODES_I8: np.dtype("i1"),
    PayloadKind.PREACT_I32: np.dtype("<i4"),
}
PAYLOAD_RANKS = {
    PayloadKind.FEATURES_F16: 2,
    PayloadKind.FEATURES_F32: 2,
    PayloadKind.CODES_I8: 2,
    PayloadKind.PREACT_I32: 3,
}
# seq u64 | kind u8 | rank u8 | id length u16 ; then id bytes, then rank x u32 dims, then data
SEQUENCE_HEADER = struct.Struct(">QBBH")
MAX_VIDEO_ID_BYTES = 1024


@dataclass(frozen=True, eq=False)
class Frame:
    type: MessageType
    payload: bytes | bytearray


@dataclass(frozen=True)
class SequenceMessage:
    """One sequence of one video, numbered by the sender."""

    seq: int
    video_id: str
    kind: PayloadKind
    array: np.ndarray


def encode_frame(message_type: MessageType, payload: bytes) -> bytes:
    return HEADER.pack(MAGIC, PROTOCOL_VERSION, int(message_type), len(payload)) + payload


def encode_json(message_type: MessageType, obj: dict) -> bytes:
    return encode_frame(message_type, json.dumps(obj, separators=(",", ":")).encode("utf-8"))


def decode_json(frame: Frame) -> dict:
    try:
        obj = json.loads(frame.payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise StreamError(f"{frame.type.name} message is not valid UTF-8 JSON: {exc}") from None
    except RecursionError:
        raise StreamError(f"{frame.type.name} message nests JSON too deeply") from None
    if not isinstance(obj, dict):
        raise StreamError(f"{frame.type.name} message must be a JSON object, not {type(obj).__name__}")
    return obj


def encode_sequence(message: SequenceMessage) -> bytes:
    kind = PayloadKind(message.kind)
    dtype = PAYLOAD_DTYPES[kind]
    array = np.ascontiguousarray(message.array, dtype=dtype)
    if array.ndim != PAYLOAD_RANKS[kind]:
        raise InputError(
            f"{kind.name} payload of video {message.video_id!r} must have rank "
            f"{PAYLOAD_RANKS[kind]}, not shape {array.shape}"
        )
    vid = message.video_id.encode("utf-8")
    if len(vid) > MAX_VIDEO_ID_BYTES:
        raise InputError(f"video id is {len(vid)} bytes long; the limit is {MAX_VIDEO_ID_BYTES}")
    head = SEQUENCE_HEADER.pack(message.seq, int(kind), array.ndim, len(vid))
    dims = struct.pack(f">{array.ndim}I", *array.shape)
    return encode_frame(MessageType.SEQUENCE, head + vid + dims + array.tobytes())


def decode_sequence(frame: Frame) -> SequenceMessage:
    payload = frame.payload
    if len(payload) < SEQUENCE_HEADER.size:
        raise StreamError(f"SEQUENCE payload of {len(payload)} bytes is shorter than its header")
    seq, kind_code, rank, id_len = SEQUENCE_HEADER.unpack_from(payload)
    try:
        kind = PayloadKind(kind_code)
    except ValueError:
        raise StreamError(f"SEQUENCE payload kind {kind_code} is unknown") from None
    if rank != PAYLOAD_RANKS[kind]:
        raise StreamError(f"SEQUENCE of kind {kind.name} must have rank {PAYLOAD_RANKS[kind]}, not {rank}")
    if id_len > MAX_VIDEO_ID_BYTES:
        raise StreamError(f"SEQUENCE video id is {id_len} bytes long; the limit is {MAX_VIDEO_ID_BYTES}")
    offset = SEQUENCE_HEADER.size
    dims_at = offset + id_len
    data_at = dims_at + 4 * rank
    if len(payload) < data_at:
        raise StreamError("SEQUENCE payload is truncated inside its header")
    try:
        video_id = payload[offset:dims_at].decode("utf-8")
    except UnicodeDecodeError:
        raise StreamError("SEQUENCE video id is not valid UTF-8") from None
    shape = struct.unpack_from(f">{rank}I", payload, dims_at)
    dtype = PAYLOAD_DTYPES[kind]
    expected = math.prod(shape) * dtype.itemsize
    if len(payload) - data_at != expected:
        raise StreamError(
            f"SEQUENCE {video_id!r}: shape {shape} of {kind.name} needs {expected} data bytes, "
            f"the frame has {len(payload) - data_at}"
        )
    array = np.frombuffer(payload, dtype=dtype, offset=data_at, count=math.prod(shape)).reshape(shape)
    return SequenceMessage(seq=seq, video_id=video_id, kind=kind, array=array)


def sequence_payload_bytes(kind: PayloadKind, row_shape: tuple[int, ...], steps: int) -> int:
    """Largest SEQUENCE payload of ``steps`` rows of ``row_shape`` (id of the longest length allowed)."""
    kind = PayloadKind(kind)
    row = math.prod(row_shape) * PAYLOAD_DTYPES[kind].itemsize
    return SEQUENCE_HEADER.size + MAX_VIDEO_ID_BYTES + 4 * PAYLOAD_RANKS[kind] + steps * row


def check_token(expected: str, offered: object) -> bool:
    """Constant-time token comparison; a missing or non-string token never matches.

    Lone surrogates (a JSON ``"\\ud800"``, an undecodable command-line byte) are compared as
    their code points rather than refused with an encoding error.
    """
    if not isinstance(offered, str):
        return False
    return hmac.compare_digest(expected.encode("utf-8", "surrogatepass"), offered.encode("utf-8", "surrogatepass"))


def _wait_readable(sock: socket.socket, deadline: float) -> None:
    """Block until ``sock`` has data (or EOF) or ``deadline`` passes, without touching its timeout:
    another thread may be sending on it under its own."""
    with selectors.DefaultSelector() as selector:
        try:
            selector.register(sock, selectors.EVENT_READ)
        except ValueError:  # closed under us by another thread (fd -1): a closed stream, not a bug
            raise OSError(errno.EBADF, "the socket was closed") from None
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("frame deadline passed")
            if selector.select(left):
                return


def _recv_exact(sock: socket.socket, n: int, *, at_boundary: bool, deadline: float | None) -> bytearray:
    """Exactly ``n`` bytes into one buffer of that size (no chunk list, no joined copy)."""
    buffer = bytearray(n)
    view = memoryview(buffer)
    got = 0
    while got < n:
        if deadline is not None:
            _wait_readable(sock, deadline)
        count = sock.recv_into(view[got:], min(n - got, 1 << 20))
        if not count:
            if at_boundary and got == 0:
                raise StreamClosed("peer closed the connection")
            raise StreamError(f"message truncated: connection closed with {n - got} of {n} bytes missing")
        got += count
    return buffer


def read_frame(sock: socket.socket, *, max_payload: int = DEFAULT_MAX_PAYLOAD,
               limits: Mapping[MessageType, int] | None = None, deadline: float | None = None,
               admit: Callable[[MessageType, int], float | None] | None = None) -> Frame:
    """Read one frame, validating its header before reading the payload.

    Parameters
    ----------
    max_payload
        Largest SEQUENCE payload when ``limits`` is not given (control messages: 64 KiB).
    limits
        The message types accepted here, each with its largest payload in bytes; any other type
        is refused from its header alone.
    deadline
        ``time.monotonic()`` value by which the whole frame must have arrived.
    admit
        Called with the type and length once the header passed its checks, before the payload
        is read; it may wait (a memory budget) and returns the payload's deadline (``None``:
        keep ``deadline``). If reading the payload then fails, the caller still owns what
        ``admit`` granted.

    Raises
    ------
    StreamClosed
        The peer closed the connection between frames.
    StreamError
        Bad magic, version, type, an oversized length, or a truncated message.
    socket.timeout
        The deadline passed (or, without one, the socket's own timeout).
    """
    header = _recv_exact(sock, HEADER.size, at_boundary=True, deadline=deadline)
    magic, version, type_code, length = HEADER.unpack(header)
    if magic != MAGIC:
        raise StreamError(f"bad frame magic {magic!r}; expected {MAGIC!r} (not an lstmfpga stream?)")
    if version != PROTOCOL_VERSION:
        raise StreamError(f"protocol version {version} is not supported; this side speaks version {PROTOCOL_VERSION}")
    try:
        message_type = MessageType(type_code)
    except ValueError:
        raise StreamError(f"message type {type_code} is unknown") from None
    if limits is None:
        limit = max_payload if message_type == MessageType.SEQUENCE else MAX_CONTROL_PAYLOAD
    elif message_type in limits:
        limit = limits[message_type]
    else:
        raise StreamError(f"expected a {' or '.join(t.name for t in limits)} message, got {message_type.name}")
    if length > limit:
        raise StreamError(f"{message_type.name} frame length {length} exceeds the limit of {limit} bytes")
    if admit is not None:
        deadline = admit(message_type, length) or deadline
    return Frame(message_type, _recv_exact(sock, length, at_boundary=False, deadline=deadline))


def expect(frame: Frame, *types: MessageType) -> Frame:
    """Return ``frame`` if its type is one of ``types``; turn a peer's ERROR into a StreamError."""
    if frame.type in types:
        return frame
    if frame.type == MessageType.ERROR:
        raise StreamError(f"peer reported: {decode_json(frame).get('message', '?')}")
    names = " or ".join(t.name for t in types)
    raise StreamError(f"expected a {names} message, got {frame.type.name}")


def close_socket(sock: socket.socket) -> None:
    """Shut both directions down (the peer sees EOF at once), then close; a dead peer is fine."""
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
