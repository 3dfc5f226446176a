import socket

import numpy as np
import pytest

from lstmfpga.host.stream_protocol import (
    HEADER,
    MAGIC,
    MessageType,
    PayloadKind,
    SequenceMessage,
    StreamClosed,
    StreamError,
    check_token,
    decode_sequence,
    encode_frame,
    encode_sequence,
    read_frame,
)


def _roundtrip(data: bytes, **kw):
    a, b = socket.socketpair()
    try:
        a.sendall(data)
        a.shutdown(socket.SHUT_WR)
        return read_frame(b, **kw)
    finally:
        a.close()
        b.close()


@pytest.mark.parametrize("kind,shape", [
    (PayloadKind.FEATURES_F16, (1, 1)),
    (PayloadKind.FEATURES_F32, (7, 33)),
    (PayloadKind.CODES_I8, (24, 2048)),
    (PayloadKind.PREACT_I32, (5, 4, 19)),
])
def test_sequence_roundtrip_is_exact(kind, shape, rng):
    from lstmfpga.host.stream_protocol import PAYLOAD_DTYPES
    array = (rng.normal(size=shape) * 100).astype(PAYLOAD_DTYPES[kind])
    msg = SequenceMessage(seq=2**40 + 3, video_id="fake/vid é 01.mp4", kind=kind, array=array)
    got = decode_sequence(_roundtrip(encode_sequence(msg)))
    assert got.seq == msg.seq and got.video_id == msg.video_id and got.kind == kind
    assert got.array.dtype == array.dtype.newbyteorder("<") or got.array.dtype == array.dtype
    np.testing.assert_array_equal(got.array, array)


def test_header_errors_are_named():
    with pytest.raises(StreamError, match="protocol version 9 is not supported"):
        _roundtrip(HEADER.pack(MAGIC, 9, 1, 0))
    with pytest.raises(StreamError, match="bad frame magic"):
        _roundtrip(HEADER.pack(b"XX", 1, 1, 0))
    with pytest.raises(StreamError, match="message type 77 is unknown"):
        _roundtrip(HEADER.pack(MAGIC, 1, 77, 0))
    with pytest.raises(StreamError, match="SEQUENCE frame length 1001 exceeds the limit of 1000"):
        _roundtrip(HEADER.pack(MAGIC, 1, int(MessageType.SEQUENCE), 1001), max_payload=1000)
    with pytest.raises(StreamError, match="HELLO frame length .* exceeds"):
        _roundtrip(HEADER.pack(MAGIC, 1, int(MessageType.HELLO), 1 << 30))
    with pytest.raises(StreamError, match="truncated: connection closed with 6 of 10 bytes missing"):
        _roundtrip(HEADER.pack(MAGIC, 1, int(MessageType.HELLO), 10) + b"abcd")
    with pytest.raises(StreamError, match="truncated"):
        _roundtrip(HEADER.pack(MAGIC, 1, 1, 0)[:3])
    with pytest.raises(StreamClosed):
        _roundtrip(b"")


def test_sequence_body_errors(rng):
    msg = SequenceMessage(seq=1, video_id="v", kind=PayloadKind.CODES_I8, array=np.zeros((3, 4), np.int8))
    frame = _roundtrip(encode_sequence(msg))
    short = type(frame)(frame.type, frame.payload[:-1])
    with pytest.raises(StreamError, match=r"shape \(3, 4\) of CODES_I8 needs 12 data bytes, the frame has 11"):
        decode_sequence(short)
    bad_kind = bytearray(frame.payload)
    bad_kind[8] = 99
    with pytest.raises(StreamError, match="payload kind 99 is unknown"):
        decode_sequence(type(frame)(frame.type, bytes(bad_kind)))
    with pytest.raises(StreamError, match="shorter than its header"):
        decode_sequence(type(frame)(frame.type, b"\x00"))


def test_token_check():
    assert check_token("s3cret", "s3cret")
    assert not check_token("s3cret", "s3cre")
    assert not check_token("s3cret", None)
    assert not check_token("s3cret", 123)


def test_encode_rejects_wrong_rank():
    from lstmfpga.foundation.errors import InputError
    with pytest.raises(InputError, match="PREACT_I32 payload of video 'v' must have rank 3"):
        encode_sequence(SequenceMessage(seq=0, video_id="v", kind=PayloadKind.PREACT_I32, array=np.zeros((2, 3))))
    assert encode_frame(MessageType.BYE, b"")[:2] == MAGIC
