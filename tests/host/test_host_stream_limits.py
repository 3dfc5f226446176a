"""The stream server under hostile load: memory, connection caps, deadlines, rejection history.

The memory test runs the server in its own process and reads that process's RSS from /proc;
everything is on loopback.
"""

import json
import socket
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

from lstmfpga.host.hostile_peers import HostileCrowd, process_memory
from lstmfpga.host.payloads import prepare_payloads
from lstmfpga.host.sequence_sender import SequenceSender
from lstmfpga.host.server_limits import ServerLimits
from lstmfpga.host.stream_protocol import (
    HEADER,
    MAGIC,
    MessageType,
    PayloadKind,
    SequenceMessage,
    decode_json,
    encode_json,
    encode_sequence,
    read_frame,
)

from stream_helpers import TOKEN, golden_logits, golden_server

pytestmark = pytest.mark.timeout(180)

MIB = 1 << 20

SERVER_SCRIPT = textwrap.dedent("""
    import json, sys
    from lstmfpga.foundation.artifact import LstmArtifact
    from lstmfpga.host.backends.golden import GoldenBackend
    from lstmfpga.host.board_handler import BackendHandler
    from lstmfpga.host.sequence_server import SequenceServer
    from lstmfpga.host.server_limits import ServerLimits
    artifact = LstmArtifact.load(sys.argv[1])
    handler = BackendHandler(backend=GoldenBackend(artifact=artifact, mode="full"))
    server = SequenceServer(handler=handler, token=sys.argv[2], limits=ServerLimits(**json.loads(sys.argv[3])))
    server.start()
    print(server.address[1], flush=True)
    sys.stdin.read()
    s = server.stats
    print(json.dumps({"connections": s.connections, "refused": s.refused, "sequences": s.sequences,
                      "rejected_connections": s.rejected_connections, "recent": len(s.recent)}), flush=True)
    server.stop()
""")


def _good_run(artifact, port, xs, ids, **kw):
    payloads = [prepare_payloads(artifact, x[None], PayloadKind.CODES_I8)[0] for x in xs]
    sender = SequenceSender(address=("127.0.0.1", port), token=TOKEN, kind=PayloadKind.CODES_I8,
                            artifact_sha256=artifact.sha256, timeout=30, **kw)
    report = sender.run(zip(ids, payloads))
    assert report.errors == []
    got = {r["video_id"]: r["logits"] for r in report.results}
    assert got == {vid: golden_logits(artifact, x[None])[0].tolist() for vid, x in zip(ids, xs)}


@pytest.mark.slow
def test_memory_stays_bounded_under_100_hostile_connections(small_artifact, rng, tmp_path):
    small_artifact.save(tmp_path / "model.npz")
    limits = {"handshake_timeout": 3.0, "max_connections": 128, "max_per_peer": 128}
    proc = subprocess.Popen([sys.executable, "-c", SERVER_SCRIPT, str(tmp_path / "model.npz"), TOKEN,
                             json.dumps(limits)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        port = int(proc.stdout.readline())
        xs = [rng.normal(size=(int(rng.integers(1, 9)), small_artifact.input_size)).astype(np.float32)
              for _ in range(60)]
        _good_run(small_artifact, port, xs[:20], [f"before-{i}" for i in range(20)])  # warm every code path
        before = process_memory(proc.pid)

        crowd = HostileCrowd(("127.0.0.1", port), 100)
        time.sleep(1.0)  # every hostile connection is open and sending
        _good_run(small_artifact, port, xs[20:40], [f"during-{i}" for i in range(20)])
        during = process_memory(proc.pid)
        answers = crowd.answers(timeout=15)
        _good_run(small_artifact, port, xs[40:], [f"after-{i}" for i in range(20)])
        after = process_memory(proc.pid)
    finally:
        out, _ = proc.communicate("", timeout=30)
    stats = json.loads(out.strip().splitlines()[-1])

    growth = max(during["VmHWM"], after["VmHWM"]) - before["VmRSS"]
    assert growth < 64 * MIB, f"server RSS grew by {growth / MIB:.1f} MiB ({before}, {during}, {after})"
    expected = {
        "slow": "no complete HELLO within 3 s; closing",
        "silent": "no complete HELLO within 3 s; closing",
        "big-sequence": "expected a HELLO message, got SEQUENCE",
        "big-hello": "HELLO frame length 61440 exceeds the limit of 4096 bytes",
    }
    assert answers == [expected[kind] for kind in crowd.kinds]
    assert stats["connections"] == 103 and stats["refused"] == 0 and stats["sequences"] == 60
    assert stats["rejected_connections"] == 100 and stats["recent"] == ServerLimits().rejection_history


def _connect_from(address: str, server, hello=None):
    """A raw connection from the loopback address ``address`` (all of 127/8 is local on Linux)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(10)
    sock.bind((address, 0))
    sock.connect(server.address)
    if hello is not False:
        sock.sendall(encode_json(MessageType.HELLO, hello or {"token": TOKEN}))
    return sock


def _answer(sock) -> tuple[MessageType, dict]:
    frame = read_frame(sock)
    return frame.type, decode_json(frame)


def test_connection_caps_refuse_with_a_retryable_error(small_artifact, rng):
    limits = ServerLimits(max_connections=5, max_per_peer=3, handshake_timeout=30)
    with golden_server(small_artifact, limits=limits) as server:
        held = [_connect_from("127.0.0.1", server, hello=False) for _ in range(3)]
        kind, body = _answer(_connect_from("127.0.0.1", server))
        assert kind == MessageType.ERROR and body == {
            "message": "too many connections from 127.0.0.1: 3 open, the limit is 3; try again later",
            "fatal": True, "retry": True}

        other = _connect_from("127.0.0.2", server)  # another peer is still served
        assert _answer(other)[0] == MessageType.WELCOME
        held += [other, _connect_from("127.0.0.3", server, hello=False)]
        time.sleep(0.2)
        kind, body = _answer(_connect_from("127.0.0.4", server))
        assert body["message"] == "server busy: 5 connections open, the limit is 5; try again later"

        # A sender refused for capacity retries; it gets in once a slot frees.
        x = rng.normal(size=(3, small_artifact.input_size)).astype(np.float32)
        codes = prepare_payloads(small_artifact, x[None], PayloadKind.CODES_I8)[0]
        sender = SequenceSender(address=server.address, token=TOKEN, kind=PayloadKind.CODES_I8, backoff=0.2)
        threading.Timer(0.3, held.pop(0).close).start()  # frees a slot of 127.0.0.1, where the sender dials from
        report = sender.run(iter([("late", codes)]))
        assert report.reconnects >= 1 and report.results[0]["logits"] == golden_logits(small_artifact, x[None])[0].tolist()
        for sock in held:
            sock.close()
        stats = server.stats
    assert stats.refused >= 3


def test_frame_deadline_counts_whole_frames_not_bytes(small_artifact):
    limits = ServerLimits(handshake_timeout=0.6, frame_timeout=0.8)
    with golden_server(small_artifact, limits=limits) as server:
        hello = encode_json(MessageType.HELLO, {"token": TOKEN})
        sock = _connect_from("127.0.0.1", server, hello=False)
        start = time.monotonic()
        try:
            for byte in hello:  # one byte every 0.1 s would keep a per-byte timeout from ever firing
                sock.send(bytes([byte]))
                time.sleep(0.1)
        except OSError:
            pass
        kind, body = _answer(sock)
        assert body["message"] == "no complete HELLO within 0.6 s; closing"
        assert time.monotonic() - start < 0.6 + 1.5

        sock = _connect_from("127.0.0.1", server)
        assert _answer(sock)[0] == MessageType.WELCOME
        frame = encode_sequence(SequenceMessage(seq=0, video_id="v", kind=PayloadKind.CODES_I8,
                                                array=np.zeros((2, small_artifact.input_size), np.int8)))
        start = time.monotonic()
        try:
            for i in range(0, len(frame) - 1, 4):
                sock.send(frame[i:i + 4])
                time.sleep(0.05)
        except OSError:
            pass
        kind, body = _answer(sock)
        assert kind == MessageType.ERROR and body["message"] == "no complete frame within 0.8 s; closing"
        assert time.monotonic() - start < 0.8 + 1.5


def test_sequence_size_is_negotiated_from_what_the_board_runs(small_artifact):
    with golden_server(small_artifact) as server:
        sock = _connect_from("127.0.0.1", server)
        kind, welcome = _answer(sock)
        I, H, steps = small_artifact.input_size, small_artifact.hidden_size, 4096
        # widest accepted row: float32 features (4 I bytes) or int8 codes (I bytes) in full mode
        negotiated = 12 + 1024 + 8 + steps * 4 * I
        assert welcome["max_payload"] == negotiated == server.max_payload
        assert negotiated < 16 * MIB and H  # far below the protocol's 16 MiB default
        sock.sendall(HEADER.pack(MAGIC, 1, int(MessageType.SEQUENCE), negotiated + 1))
        kind, body = _answer(sock)
        assert body["message"] == f"SEQUENCE frame length {negotiated + 1} exceeds the limit of {negotiated} bytes"


def test_rejection_history_is_counted_not_kept(small_artifact):
    limits = ServerLimits(rejection_history=4)
    with golden_server(small_artifact, limits=limits) as server:
        for i in range(30):
            sock = _connect_from("127.0.0.1", server, hello={"token": f"wrong-{i}"})
            assert _answer(sock)[1]["message"] == "authentication failed: wrong or missing token"
            sock.close()
        deadline = time.monotonic() + 10
        while server.stats.rejected_connections < 30 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert server.stats.rejected_connections == 30 and server.stats.rejected == 30
        assert len(server.stats.recent) == 4


@pytest.mark.parametrize("field,value,message", [
    ("max_payload", 0, "max_payload must be a positive integer, not 0"),
    ("hello_payload", True, "hello_payload must be a positive integer, not True"),
    ("max_connections", 2.5, "max_connections must be a positive integer, not 2.5"),
    ("rejection_history", -1, "rejection_history must be a non-negative integer, not -1"),
    ("handshake_timeout", 0, "handshake_timeout must be a positive finite number of seconds, not 0"),
    ("frame_timeout", float("nan"), "frame_timeout must be a positive finite number of seconds, not nan"),
    ("frame_timeout", float("inf"), "frame_timeout must be a positive finite number of seconds, not inf"),
    ("max_per_peer", 100, "max_per_peer (100) cannot exceed max_connections (64)"),
    ("max_buffered", 0, "max_buffered must be a positive integer, not 0"),
])
def test_limits_are_validated(field, value, message):
    with pytest.raises(ValueError) as info:
        ServerLimits(**{field: value})
    assert str(info.value) == message


def test_sequences_held_over_all_connections_stay_within_the_budget(small_artifact, rng):
    steps = 512
    frame = 12 + 10 + 8 + steps * 4 * small_artifact.input_size  # one float32 sequence with its header
    limits = ServerLimits(max_buffered=3 * frame + 100)  # three in flight over all four senders
    xs = [rng.normal(size=(steps, small_artifact.input_size)).astype(np.float32) for _ in range(24)]
    reports = {}
    with golden_server(small_artifact, delay=0.02, window=4, limits=limits) as server:
        def send(k):
            sender = SequenceSender(address=server.address, token=TOKEN, kind=PayloadKind.FEATURES_F32, timeout=60)
            reports[k] = sender.run((f"s{k}-v{i:03d}", xs[i]) for i in range(k, len(xs), 4))

        threads = [threading.Thread(target=send, args=(k,)) for k in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        budget = server.buffered
    assert budget.waits > 0 and frame < budget.peak <= budget.total and budget.used == 0
    got = {r["video_id"]: r["logits"] for report in reports.values() for r in report.results}
    assert got == {f"s{i % 4}-v{i:03d}": golden_logits(small_artifact, xs[i][None])[0].tolist() for i in range(len(xs))}


def test_byte_budget_refuses_what_can_never_fit_and_stops_waiting():
    from lstmfpga.host.byte_budget import ByteBudget

    budget = ByteBudget(100)
    stop = threading.Event()
    assert budget.take(60, stop=stop) and budget.used == 60
    with pytest.raises(ValueError, match="101 bytes can never fit a budget of 100"):
        budget.take(101, stop=stop)
    threading.Timer(0.3, stop.set).start()
    start = time.monotonic()
    assert budget.take(50, stop=stop) is False and budget.used == 60 and budget.waits == 1
    assert 0.25 < time.monotonic() - start < 2
    threading.Timer(0.2, budget.give, args=(60,)).start()
    assert budget.take(100, stop=threading.Event()) and budget.peak == 100
