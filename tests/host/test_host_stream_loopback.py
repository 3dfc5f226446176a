import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

from lstmfpga.host.payloads import prepare_payloads
from lstmfpga.host.result_log import read_results
from lstmfpga.host.sequence_sender import FatalStreamError, SequenceSender, iter_pairs
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

from stream_helpers import TOKEN, DroppingProxy, golden_logits, golden_server


def _features(rng, artifact, n, steps=(3, 7)):
    """Float features with sequence lengths mixed, so the board batches by shape."""
    xs = [rng.normal(size=(steps[i % len(steps)], artifact.input_size)).astype(np.float32) * 2 for i in range(n)]
    return xs


def _send(artifact, server, ids, payloads, kind, **kw):
    sender = SequenceSender(address=server.address, token=TOKEN, kind=kind,
                            artifact_sha256=artifact.sha256, **kw)
    return sender.run(zip(ids, payloads))


@pytest.mark.parametrize("mode,kind", [
    ("full", PayloadKind.CODES_I8),
    ("split", PayloadKind.PREACT_I32),
    ("full", PayloadKind.FEATURES_F16),
    ("split", PayloadKind.FEATURES_F32),
])
def test_many_sequences_equal_golden(small_artifact, rng, tmp_path, mode, kind):
    xs = _features(rng, small_artifact, 120)
    if kind == PayloadKind.FEATURES_F16:
        xs = [x.astype(np.float16) for x in xs]
    ids = [f"video-{i:03d}" for i in range(len(xs))]
    payloads = [prepare_payloads(small_artifact, x[None], kind)[0] for x in xs]
    with golden_server(small_artifact, mode=mode, window=5, results_path=tmp_path / "board.jsonl") as server:
        report = _send(small_artifact, server, ids, payloads, kind, results_path=tmp_path / "host.jsonl")
    assert report.errors == [] and report.reconnects == 0
    got = {r["video_id"]: r["logits"] for r in report.results}
    assert sorted(got) == ids
    for vid, x in zip(ids, xs):
        assert got[vid] == golden_logits(small_artifact, x[None])[0].tolist(), vid
    # Both durable logs hold every result exactly once.
    for name in ("board.jsonl", "host.jsonl"):
        logged = {r["video_id"]: r["logits"] for r in read_results(tmp_path / name)}
        assert logged == got


def _raw_client(server, hello=None):
    sock = socket.create_connection(server.address, timeout=10)
    sock.sendall(encode_json(MessageType.HELLO, hello or {"token": TOKEN}))
    return sock


def _welcomed(server):
    sock = _raw_client(server)
    assert read_frame(sock).type == MessageType.WELCOME
    return sock


def _error(sock):
    frame = read_frame(sock)
    assert frame.type == MessageType.ERROR, frame
    return decode_json(frame)


def _is_closed(sock):
    try:
        return sock.recv(1) == b""
    except OSError:
        return True


def test_bad_frames_rejected_while_other_senders_are_served(small_artifact, rng):
    xs = _features(rng, small_artifact, 40)
    ids = [f"good-{i}" for i in range(len(xs))]
    payloads = [prepare_payloads(small_artifact, x[None], PayloadKind.CODES_I8)[0] for x in xs]
    I = small_artifact.input_size
    with golden_server(small_artifact, delay=0.01, window=3, limits=ServerLimits(max_payload=100_000)) as server:
        good = {}
        thread = threading.Thread(target=lambda: good.setdefault(
            "report", _send(small_artifact, server, ids, payloads, PayloadKind.CODES_I8)))
        thread.start()

        sock = _raw_client(server, {"token": "wrong"})
        assert "authentication failed: wrong or missing token" in _error(sock)["message"]
        assert _is_closed(sock)

        sock = _raw_client(server, {"token": TOKEN, "artifact_sha256": "0" * 64})
        assert "sender prepared its data for artifact 0000" in _error(sock)["message"]

        sock = socket.create_connection(server.address, timeout=10)
        sock.sendall(HEADER.pack(MAGIC, 2, int(MessageType.HELLO), 2) + b"{}")
        assert "protocol version 2 is not supported" in _error(sock)["message"]
        assert _is_closed(sock)

        sock = _welcomed(server)
        sock.sendall(HEADER.pack(MAGIC, 1, int(MessageType.SEQUENCE), 100_001))
        body = _error(sock)
        assert body["fatal"] and "SEQUENCE frame length 100001 exceeds the limit of 100000" in body["message"]
        assert _is_closed(sock)

        sock = _welcomed(server)
        frame = encode_sequence(SequenceMessage(seq=0, video_id="t", kind=PayloadKind.CODES_I8,
                                                array=np.zeros((3, I), np.int8)))
        sock.sendall(frame[:-5])
        sock.shutdown(socket.SHUT_WR)
        assert "truncated: connection closed with 5 of" in _error(sock)["message"]

        # Bad content is non-fatal: the sequence is skipped, the connection keeps working.
        sock = _welcomed(server)
        wide = np.zeros((3, I + 1), np.float32)
        nan = np.zeros((4, I), np.float32)
        nan[2, 5] = np.nan
        for seq, (vid, arr) in enumerate([("wide", wide), ("nan", nan), ("ok", np.ones((2, I), np.float32))]):
            sock.sendall(encode_sequence(SequenceMessage(seq=seq, video_id=vid, kind=PayloadKind.FEATURES_F32,
                                                         array=arr)))
        body = _error(sock)
        assert not body["fatal"] and body["video_id"] == "wide"
        assert f"feature width {I + 1}, the model expects {I}" in body["message"]
        body = _error(sock)
        assert body["video_id"] == "nan" and "1 NaN/inf values (first at step 2, feature 5)" in body["message"]
        ok = decode_json(read_frame(sock))
        assert ok["video_id"] == "ok"
        assert ok["logits"] == golden_logits(small_artifact, np.ones((1, 2, I), np.float32))[0].tolist()
        sock.close()

        thread.join(timeout=60)
    report = good["report"]
    assert len(report.results) == len(ids) and report.errors == []
    for r in report.results:
        i = ids.index(r["video_id"])
        assert r["logits"] == golden_logits(small_artifact, xs[i][None])[0].tolist()
    assert server.stats.rejected == 7 and len(server.stats.recent) == 7


def test_sender_refused_gets_fatal_error(small_artifact):
    with golden_server(small_artifact) as server:
        sender = SequenceSender(address=server.address, token="nope", kind=PayloadKind.CODES_I8)
        with pytest.raises(FatalStreamError, match="authentication failed"):
            sender.run(iter([("v", np.zeros((2, small_artifact.input_size), np.int8))]))
        sender = SequenceSender(address=server.address, token=TOKEN, kind=PayloadKind.PREACT_I32)
        with pytest.raises(FatalStreamError, match="accepts FEATURES_F16, FEATURES_F32, CODES_I8 payloads, not PREACT_I32"):
            sender.run(iter([]))


def test_reconnect_resends_unacknowledged(small_artifact, rng, tmp_path):
    xs = _features(rng, small_artifact, 30)
    ids = [f"v{i}" for i in range(len(xs))]
    payloads = [prepare_payloads(small_artifact, x[None], PayloadKind.CODES_I8)[0] for x in xs]
    with golden_server(small_artifact, window=4) as server:
        proxy = DroppingProxy(server.address, cut_after=700)
        sender = SequenceSender(address=proxy.address, token=TOKEN, kind=PayloadKind.CODES_I8,
                                results_path=tmp_path / "host.jsonl", backoff=0.05)
        report = sender.run(zip(ids, payloads))
        proxy.close()
    assert proxy.cuts == 1 and report.reconnects >= 1
    got = {r["video_id"]: r["logits"] for r in read_results(tmp_path / "host.jsonl")}
    assert len(read_results(tmp_path / "host.jsonl")) == len(ids)
    for vid, x in zip(ids, xs):
        assert got[vid] == golden_logits(small_artifact, x[None])[0].tolist()


SENDER_SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    from lstmfpga.foundation.artifact import LstmArtifact
    from lstmfpga.host.payloads import prepare_payloads
    from lstmfpga.host.sequence_sender import SequenceSender, iter_pairs
    from lstmfpga.host.stream_protocol import PayloadKind
    port, folder = int(sys.argv[1]), sys.argv[2]
    artifact = LstmArtifact.load(folder + "/model.npz")
    x = np.load(folder + "/X.npy")
    codes = prepare_payloads(artifact, x, PayloadKind.CODES_I8)
    sender = SequenceSender(address=("127.0.0.1", port), token=sys.argv[3], kind=PayloadKind.CODES_I8,
                            artifact_sha256=artifact.sha256, results_path=folder + "/host.jsonl")
    sender.run(iter_pairs([f"vid{i}" for i in range(len(x))], codes))
""")


def test_killed_sender_loses_nothing_acknowledged(small_artifact, rng, tmp_path):
    n = 60
    x = rng.normal(size=(n, 4, small_artifact.input_size)).astype(np.float32)
    small_artifact.save(tmp_path / "model.npz")
    np.save(tmp_path / "X.npy", x)
    (tmp_path / "sender.py").write_text(SENDER_SCRIPT)
    with golden_server(small_artifact, delay=0.03, window=2, results_path=tmp_path / "board.jsonl") as server:
        proc = subprocess.Popen([sys.executable, str(tmp_path / "sender.py"), str(server.address[1]),
                                 str(tmp_path), TOKEN])
        deadline = time.monotonic() + 60
        while len(read_results(tmp_path / "host.jsonl")) < 8:
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        acked = read_results(tmp_path / "host.jsonl")
        assert 8 <= len(acked) < n
        board = {r["video_id"]: r["logits"] for r in read_results(tmp_path / "board.jsonl")}
        for r in acked:
            assert board[r["video_id"]] == r["logits"]

        # A rerun with the same log resumes: nothing acknowledged is sent again, nothing is lost.
        codes = prepare_payloads(small_artifact, x, PayloadKind.CODES_I8)
        sender = SequenceSender(address=server.address, token=TOKEN, kind=PayloadKind.CODES_I8,
                                results_path=tmp_path / "host.jsonl")
        report = sender.run(iter_pairs([f"vid{i}" for i in range(n)], codes))
    assert report.skipped == len({r["video_id"] for r in acked})
    final = read_results(tmp_path / "host.jsonl")
    assert len(final) == n and len({r["video_id"] for r in final}) == n
    expected = golden_logits(small_artifact, x)
    for r in final:
        assert r["logits"] == expected[int(r["video_id"][3:])].tolist()


def test_failing_producer_stops_the_sender_with_its_error(small_artifact):
    def items():
        yield "ok", np.zeros((2, small_artifact.input_size), np.int8)
        raise OSError("feature file vanished")

    with golden_server(small_artifact) as server:
        sender = SequenceSender(address=server.address, token=TOKEN, kind=PayloadKind.CODES_I8, retries=1)
        with pytest.raises(OSError, match="feature file vanished"):
            sender.run(items())


def test_stopping_server_closes_idle_connections_without_rejecting_them(small_artifact):
    """stop() closes every connection under its reader (waiting for a frame, or between frames):
    the peer sees the connection end, and it is neither a rejection nor an internal error."""
    with golden_server(small_artifact) as server:
        socks = [_welcomed(server) for _ in range(3)]
        time.sleep(0.2)   # every reader is waiting for its next frame
    for sock in socks:
        assert _is_closed(sock)
        sock.close()
    assert server.stats.rejected == 0 and list(server.stats.recent) == []


def test_reading_a_socket_closed_under_the_reader_is_an_os_error():
    """The race stop() can lose against a reader between two frames: the socket is closed before
    the reader waits on it.  That is a closed stream (OSError, EBADF), which the server logs, not
    a ValueError from deep inside ``selectors`` that it would count as an internal error."""
    import errno

    a, b = socket.socketpair()
    a.close()
    with pytest.raises(OSError) as caught:
        read_frame(a, deadline=time.monotonic() + 1.0)
    assert caught.value.errno == errno.EBADF
    b.close()
