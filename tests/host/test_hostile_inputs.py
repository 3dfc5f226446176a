"""Hostile and careless inputs to the host stage: each one refused with one clear message,
skipped and reported, or handled, never a traceback and never a hang.

Three parts: the host command lines (exit status 2 and one ``error:`` line), the stream server
before and after authentication (a fatal ERROR naming the problem, then the close; or a
non-fatal ERROR for one sequence), and the sender facing a hostile board.
"""

import json
import socket
import struct
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from lstmfpga.cli.main import main
from lstmfpga.foundation.printable import printable
from lstmfpga.host.sequence_sender import FatalStreamError, SequenceSender
from lstmfpga.host.server_limits import ServerLimits
from lstmfpga.host.stream_protocol import (
    HEADER,
    MAGIC,
    SEQUENCE_HEADER,
    MessageType,
    PayloadKind,
    SequenceMessage,
    StreamError,
    close_socket,
    decode_json,
    encode_frame,
    encode_json,
    encode_sequence,
    read_frame,
)

from stream_helpers import TOKEN, golden_logits, golden_server

pytestmark = pytest.mark.timeout(120)

I = 37  # small_artifact's input size


@pytest.fixture(autouse=True)
def no_thread_dies(monkeypatch):
    """Fail a case if any thread (a server connection, a worker) ends with an uncaught exception."""
    died = []
    monkeypatch.setattr(threading, "excepthook", lambda args: died.append(args))
    yield
    assert not died, [f"{a.thread.name}: {a.exc_type.__name__}: {a.exc_value}" for a in died]


@pytest.fixture(scope="module")
def files(tmp_path_factory, small_artifact):
    """Model, feature files good and bad, and a feature cache with a damaged chunk."""
    from lstmfpga.model.feature_cache import FeatureSet, save_feature_set

    d = tmp_path_factory.mktemp("hostile")
    rng = np.random.default_rng(5)
    small_artifact.save(d / "model.npz")
    arrays = {
        "X.npy": rng.normal(size=(5, 4, I)).astype(np.float32),
        "X0.npy": np.zeros((0, 4, I), np.float32),
        "XT0.npy": np.zeros((5, 0, I), np.float32),
        "Xwide.npy": np.zeros((5, 4, I + 1), np.float32),
        "X4d.npy": np.zeros((2, 5, 4, I), np.float32),
        "Xstr.npy": np.full((5, 4, I), "a"),
        "y3.npy": np.array([0, 1, 0]),
        "y2.npy": np.array([0, 1, 2, 0, 1]),
        "yfloat.npy": np.array([0.0, 1.0, 0.5, 0.0, 1.0]),
    }
    for name, array in arrays.items():
        np.save(d / name, array)
    with open(d / "renamed.npy", "wb") as handle:  # an .npz archive under an .npy name
        np.savez(handle, x=arrays["X.npy"])
    (d / "folder").mkdir()
    (d / "plain").write_text("a file, not a folder")
    (d / "empty_token").write_text("\nsecond line\n")

    ids = ("real/a.mp4", "fake/evil\n\x1b[32mreal   fake  1.0000.mp4", "fake/c.mp4")
    fs = FeatureSet(features=rng.normal(size=(3, 4, I)).astype(np.float16), labels=np.array([0, 1, 1]),
                    video_ids=ids, splits=np.array(["test"] * 3))
    save_feature_set(fs, d / "cache")
    save_feature_set(fs, d / "short_labels")
    chunk = next((d / "short_labels").glob("chunk-*.npz"))
    with np.load(chunk, allow_pickle=False) as data:
        content = {k: data[k] for k in data.files}
    content["labels"] = content["labels"][:2]
    np.savez(chunk, **content)
    return d


def _run(capsys, args, cwd):
    code = main([str(a).replace("@", str(cwd) + "/") for a in args])
    out, err = capsys.readouterr()
    return code, out, err


CLI_CASES = {
    # infer: features
    "infer-no-sequences": (["infer", "--model", "@model.npz", "--features", "@X0.npy"],
                           "X0.npy: no sequences (shape (0, 4, 37))"),
    "infer-no-steps": (["infer", "--model", "@model.npz", "--features", "@XT0.npy"],
                       "XT0.npy: no time steps (shape (5, 0, 37))"),
    "infer-npz-named-npy": (["infer", "--model", "@model.npz", "--features", "@renamed.npy"],
                            "renamed.npy: an .npz archive, not one .npy feature array"),
    "infer-wrong-width": (["infer", "--model", "@model.npz", "--features", "@Xwide.npy"],
                          "Xwide.npy: 38 features per step, the model expects 37"),
    "infer-rank-4": (["infer", "--model", "@model.npz", "--features", "@X4d.npy"],
                     "X4d.npy: features must be [N, T, D], got shape (2, 5, 4, 37)"),
    "infer-strings": (["infer", "--model", "@model.npz", "--features", "@Xstr.npy"],
                      "Xstr.npy: features must be numeric, got dtype <U1"),
    "infer-missing-features": (["infer", "--model", "@model.npz", "--features", "@nope.npy"],
                               "nope.npy is neither a feature-cache folder nor a .npy file"),
    "infer-split-of-npy": (["infer", "--model", "@model.npz", "--features", "@X.npy", "--split", "val"],
                           "--split applies to a feature-cache folder, not to an X.npy input"),
    # infer: labels
    "infer-fewer-labels": (["infer", "--model", "@model.npz", "--features", "@X.npy", "--labels", "@y3.npy"],
                           "y3.npy: labels must have shape (5,), got (3,)"),
    "infer-label-2": (["infer", "--model", "@model.npz", "--features", "@X.npy", "--labels", "@y2.npy"],
                      "y2.npy: labels must be 0 (real) or 1 (fake)"),
    "infer-float-labels": (["infer", "--model", "@model.npz", "--features", "@X.npy", "--labels", "@yfloat.npy"],
                           "yfloat.npy: labels must be integers 0 or 1, got dtype float64"),
    "infer-npz-labels": (["infer", "--model", "@model.npz", "--features", "@X.npy", "--labels", "@renamed.npy"],
                         "renamed.npy: an .npz archive, not one .npy label array"),
    "infer-labels-folder": (["infer", "--model", "@model.npz", "--features", "@X.npy", "--labels", "@folder"],
                            "label array not found: "),
    "infer-labels-with-cache": (["infer", "--model", "@model.npz", "--features", "@cache", "--labels", "@y3.npy"],
                                "--labels applies to an X.npy input; a feature cache carries its own labels"),
    "infer-chunk-fewer-labels": (["infer", "--model", "@model.npz", "--features", "@short_labels"],
                                 "holds 3 feature rows but labels of shape (2,)"),
    # infer: options
    "infer-batch-0": (["infer", "--model", "@model.npz", "--features", "@X.npy", "--batch", "0"],
                      "--batch must be a positive integer, not 0"),
    "infer-batch-negative": (["infer", "--model", "@model.npz", "--features", "@X.npy", "--batch", "-7"],
                             "--batch must be a positive integer, not -7"),
    "infer-lanes-0": (["infer", "--model", "@model.npz", "--features", "@X.npy", "--lanes", "0"],
                      "--lanes must be a positive integer, not 0"),
    "infer-timeout-nan": (["infer", "--model", "@model.npz", "--features", "@X.npy", "--timeout", "nan"],
                          "--timeout must be a positive number of seconds, not nan"),
    # infer: model and output paths
    "infer-model-folder": (["infer", "--model", "@folder", "--features", "@X.npy"],
                           "folder is a folder; give the artifact .npz or the .onnx file"),
    "infer-model-missing": (["infer", "--model", "@none.npz", "--features", "@X.npy"], "model file not found: "),
    "infer-out-folder": (["infer", "--model", "@model.npz", "--features", "@X.npy", "--out", "@folder"],
                         "folder is a folder; give a .npy file name"),
    "infer-out-under-a-file": (["infer", "--model", "@model.npz", "--features", "@X.npy", "--out", "@plain/y.npy"],
                               "plain/y.npy: plain is not a folder"),
    # golden
    "golden-out-folder": (["golden", "--model", "@model.npz", "--input", "@X.npy", "--out", "@folder"],
                          "folder is a folder; give a .npy file name"),
    "golden-out-under-a-file": (["golden", "--model", "@model.npz", "--input", "@X.npy", "--out", "@plain/y.npy"],
                                "plain/y.npy: plain is not a folder"),
    "golden-model-folder": (["golden", "--model", "@folder", "--input", "@X.npy", "--out", "@y.npy"],
                            "is a folder; give the artifact .npz or the .onnx file"),
    # board-infer
    "board-listen-and-features": (["board-infer", "--backend", "golden", "--model", "@model.npz", "--features",
                                   "@X.npy", "--listen", "0", "--token", "t"],
                                  "give exactly one of --features FILE and --listen [HOST:]PORT"),
    "board-listen-not-a-port": (["board-infer", "--backend", "golden", "--model", "@model.npz", "--listen", "abc",
                                 "--token", "t"], "address 'abc' must be HOST:PORT or PORT"),
    "board-listen-port-range": (["board-infer", "--backend", "golden", "--model", "@model.npz", "--listen",
                                 "127.0.0.1:70000", "--token", "t"], "port must be in [0, 65535], not 70000"),
    "board-listen-unresolvable": (["board-infer", "--backend", "golden", "--model", "@model.npz", "--listen",
                                   "no-such-host.invalid:7000", "--token", "t"],
                                  "cannot listen on no-such-host.invalid:7000: "),
    "board-listen-foreign-address": (["board-infer", "--backend", "golden", "--model", "@model.npz", "--listen",
                                      "192.0.2.1:7000", "--token", "t"],
                                     "cannot listen on 192.0.2.1:7000: Cannot assign requested address"),
    "board-window-0": (["board-infer", "--backend", "golden", "--model", "@model.npz", "--listen", "0",
                        "--token", "t", "--window", "0"], "--window must be a positive integer, not 0"),
    "board-no-token": (["board-infer", "--backend", "golden", "--model", "@model.npz", "--listen", "0"],
                       "the stream needs a shared token"),
    "board-token-file-missing": (["board-infer", "--backend", "golden", "--model", "@model.npz", "--listen", "0",
                                  "--token-file", "@nope.txt"], "cannot read a token from "),
    "board-token-file-empty-line": (["board-infer", "--backend", "golden", "--model", "@model.npz", "--listen", "0",
                                     "--token-file", "@empty_token"], "empty_token starts with an empty line"),
    "board-pynq-without-overlay": (["board-infer", "--model", "@model.npz", "--features", "@X.npy"],
                                   "the pynq backend needs --overlay (the .bit file)"),
    # serve-features
    "serve-queue-0": (["serve-features", "--model", "@model.npz", "--features", "@X.npy", "--token", "t",
                       "--queue", "0"], "--queue must be a positive integer, not 0"),
    "serve-retries-negative": (["serve-features", "--model", "@model.npz", "--features", "@X.npy", "--token", "t",
                                "--retries", "-1"], "--retries must be a non-negative integer, not -1"),
    "serve-batch-0": (["serve-features", "--model", "@model.npz", "--features", "@X.npy", "--token", "t",
                       "--batch", "0"], "--batch must be a positive integer, not 0"),
    "serve-frames-0": (["serve-features", "--model", "@model.npz", "--features", "@X.npy", "--token", "t",
                        "--frames", "0"], "--frames must be a positive integer, not 0"),
    "serve-board-not-a-port": (["serve-features", "--model", "@model.npz", "--features", "@X.npy", "--token", "t",
                                "--board", "host:port"], "address 'host:port' must be HOST:PORT or PORT"),
    "serve-board-port-range": (["serve-features", "--model", "@model.npz", "--features", "@X.npy", "--token", "t",
                                "--board", "99999"], "port must be in [0, 65535], not 99999"),
    "serve-results-folder": (["serve-features", "--model", "@model.npz", "--features", "@X.npy", "--token", "t",
                              "--board", "1", "--retries", "0", "--results", "@folder"],
                             "folder cannot be read: Is a directory"),
    "serve-no-board": (["serve-features", "--model", "@model.npz", "--features", "@X.npy", "--token", "t",
                        "--board", "127.0.0.1:1", "--retries", "0", "--results", "@r.jsonl"],
                       "lost the board at 127.0.0.1:1 after 0 retries: [Errno 111] Connection refused"),
    "serve-videos-missing": (["serve-features", "--model", "@model.npz", "--features", "@newcache", "--token", "t",
                              "--videos", "@no_dataset"], "no_dataset does not exist"),
    "serve-videos-unknown-dataset": (["serve-features", "--model", "@model.npz", "--features", "@newcache",
                                      "--token", "t", "--videos", "@folder", "--dataset", "nope"],
                                     "dataset must be one of "),
    "serve-videos-empty-dataset": (["serve-features", "--model", "@model.npz", "--features", "@newcache",
                                    "--token", "t", "--videos", "@folder"], "folder has none of "),
}


@pytest.mark.parametrize("name", list(CLI_CASES))
def test_host_command_refuses_bad_input(name, files, capsys, monkeypatch):
    monkeypatch.delenv("LSTMFPGA_STREAM_TOKEN", raising=False)
    args, message = CLI_CASES[name]
    code, out, err = _run(capsys, args, files)
    lines = [line for line in err.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert code == 2, (out, err)
    assert lines == errors and len(errors) == 1, err
    assert message in errors[0]
    assert "Traceback" not in out + err


def test_board_infer_on_a_busy_port(files, capsys):
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        code, _, err = _run(capsys, ["board-infer", "--backend", "golden", "--model", "@model.npz", "--listen",
                                     str(port), "--token", "t"], files)
    assert code == 2 and err.strip().splitlines() == [
        f"error: cannot listen on 127.0.0.1:{port}: Address already in use "
        f"(while attempting to bind on address ('127.0.0.1', {port}))"]


def test_forged_video_ids_print_escaped(files, capsys):
    code, out, err = _run(capsys, ["infer", "--model", "@model.npz", "--features", "@cache"], files)
    assert code == 0, err
    rows = out.splitlines()
    # header, 3 videos, then a blank line before the metrics: an id adds no line, no escape sequence
    table = rows[rows.index(next(r for r in rows if r.startswith("video"))):]
    assert table[4] == "" and table[5].startswith("accuracy") and "\x1b" not in out
    assert sorted(r.split()[0] for r in table[1:4]) == ["fake/c.mp4", "fake/evil\\n\\x1b[32mreal", "real/a.mp4"]


@pytest.mark.parametrize("text,shown", [
    ("plain id é 01.mp4", "plain id é 01.mp4"),
    ("a\nb\rc", "a\\nb\\rc"),
    ("\x1b[2Jcleared", "\\x1b[2Jcleared"),
    ("lone \ud800 surrogate", "lone \\ud800 surrogate"),
    ("\u202egnp.exe", "\\u202egnp.exe"),
    ("x" * 40, "x" * 16 + "…"),
])
def test_printable_escapes_what_would_forge_a_line(text, shown):
    assert printable(text, limit=16 if len(text) == 40 else None) == shown


# --- the stream server ------------------------------------------------------------------------


def _refusal(server, data: bytes, *, shutdown: bool = False) -> dict:
    """Send ``data`` on a fresh connection; the ERROR the server answers, after which it must close."""
    sock = socket.create_connection(server.address, timeout=10)
    try:
        sock.sendall(data)
        if shutdown:
            sock.shutdown(socket.SHUT_WR)
        frame = read_frame(sock)
        assert frame.type == MessageType.ERROR, frame
        body = decode_json(frame)
        assert body["fatal"] is True
        assert sock.recv(1) == b"", "the connection stays open after a fatal ERROR"
        return body
    finally:
        sock.close()


def _hello(payload: bytes) -> bytes:
    return encode_frame(MessageType.HELLO, payload)


def _welcomed(server) -> socket.socket:
    sock = socket.create_connection(server.address, timeout=10)
    sock.sendall(encode_json(MessageType.HELLO, {"token": TOKEN}))
    assert read_frame(sock).type == MessageType.WELCOME
    return sock


def _raw_sequence(*, seq=0, kind=int(PayloadKind.CODES_I8), rank=2, video_id=b"v", dims=(2, I), data=None):
    data = bytes(int(np.prod(dims))) if data is None else data
    body = SEQUENCE_HEADER.pack(seq, kind, rank, len(video_id)) + video_id + struct.pack(f">{len(dims)}I", *dims)
    return encode_frame(MessageType.SEQUENCE, body + data)


DEEP = b"[" * 60_000 + b"]" * 60_000
DEEP_UNDER_64_KIB = b"[" * 30_000 + b"]" * 30_000

PRE_AUTH_CASES = {
    "sequence-before-hello": (_raw_sequence(), "expected a HELLO message, got SEQUENCE"),
    "bye-before-hello": (encode_json(MessageType.BYE, {}), "expected a HELLO message, got BYE"),
    "result-before-hello": (encode_json(MessageType.RESULT, {}), "expected a HELLO message, got RESULT"),
    "hello-over-4-KiB": (_hello(b"{" + b" " * 5000 + b"}"), "HELLO frame length 5002 exceeds the limit of 4096 bytes"),
    "hello-claims-4-GiB": (HEADER.pack(MAGIC, 1, int(MessageType.HELLO), 2**32 - 1),
                           "HELLO frame length 4294967295 exceeds the limit of 4096 bytes"),
    "hello-60000-deep": (_hello(DEEP), "HELLO frame length 120000 exceeds the limit of 4096 bytes"),
    "hello-lone-surrogate-token": (_hello(b'{"token": "\\ud800"}'), "authentication failed: wrong or missing token"),
    "hello-token-number": (_hello(b'{"token": 12345}'), "authentication failed: wrong or missing token"),
    "hello-no-token": (_hello(b"{}"), "authentication failed: wrong or missing token"),
    "hello-list": (_hello(b"[1, 2]"), "HELLO message must be a JSON object, not list"),
    "hello-not-utf8": (_hello(b'{"token": "\xff\xfe"}'), "HELLO message is not valid UTF-8 JSON"),
    "hello-4000-digit-token": (_hello(b'{"token": ' + b"9" * 4000 + b"}"), "authentication failed: wrong or missing token"),
    "bad-magic": (b"GET / HTTP/1.1\r\n\r\n", "bad frame magic b'GE'; expected b'LF' (not an lstmfpga stream?)"),
    "protocol-version-7": (HEADER.pack(MAGIC, 7, int(MessageType.HELLO), 2) + b"{}",
                           "protocol version 7 is not supported; this side speaks version 1"),
    "unknown-type": (HEADER.pack(MAGIC, 1, 99, 0), "message type 99 is unknown"),
    "artifact-id-with-escapes": (encode_json(MessageType.HELLO, {"token": TOKEN, "artifact_sha256": "\x1b[2J\n" * 9}),
                                 "sender prepared its data for artifact \\x1b[2J\\n\\x1b[2J\\n\\x1b[2J\\n\\x1b…, "),
}


@pytest.fixture(scope="module")
def server(small_artifact):
    with golden_server(small_artifact, window=2) as s:
        yield s


@pytest.mark.parametrize("name", list(PRE_AUTH_CASES))
def test_server_refuses_before_authentication(name, server, caplog):
    data, message = PRE_AUTH_CASES[name]
    body = _refusal(server, data)
    assert body["message"].startswith(message) if name != "hello-not-utf8" else message in body["message"]
    # every logged line is one line: nothing the peer sent reaches the log raw
    assert all("\n" not in r.getMessage() and "\x1b" not in r.getMessage() for r in caplog.records)


def test_deep_json_within_the_hello_limit_is_refused_in_the_server_thread(small_artifact):
    with golden_server(small_artifact, limits=ServerLimits(hello_payload=200_000)) as s:
        body = _refusal(s, _hello(DEEP))
    assert body["message"] == "HELLO message nests JSON too deeply"


def test_truncated_hello_is_refused_when_the_peer_stops(server):
    body = _refusal(server, HEADER.pack(MAGIC, 1, int(MessageType.HELLO), 100) + b'{"tok', shutdown=True)
    assert body["message"] == "message truncated: connection closed with 95 of 100 bytes missing"


AUTH_FATAL_CASES = {
    "id-over-1024-bytes": (_raw_sequence(video_id=b"v" * 1025), "SEQUENCE video id is 1025 bytes long; the limit is 1024"),
    "huge-shape-no-data": (_raw_sequence(dims=(2**32 - 1, 2**32 - 1), data=b""),
                           "SEQUENCE 'v': shape (4294967295, 4294967295) of CODES_I8 needs 18446744065119617025 "
                           "data bytes, the frame has 0"),
    "unknown-kind": (_raw_sequence(kind=9), "SEQUENCE payload kind 9 is unknown"),
    "rank-3-codes": (_raw_sequence(rank=3, dims=(2, 1, I)), "SEQUENCE of kind CODES_I8 must have rank 2, not 3"),
    "id-not-utf8": (_raw_sequence(video_id=b"\xff\xfe"), "SEQUENCE video id is not valid UTF-8"),
    "short-header": (encode_frame(MessageType.SEQUENCE, b"\0" * 5), "SEQUENCE payload of 5 bytes is shorter than its header"),
    "hello-again": (encode_json(MessageType.HELLO, {"token": TOKEN}), "expected a SEQUENCE or BYE message, got HELLO"),
    "error-frame": (encode_json(MessageType.ERROR, {"message": "boo"}), "expected a SEQUENCE or BYE message, got ERROR"),
}


@pytest.mark.parametrize("name", list(AUTH_FATAL_CASES))
def test_server_refuses_malformed_sequences_after_authentication(name, server):
    data, message = AUTH_FATAL_CASES[name]
    sock = _welcomed(server)
    try:
        sock.sendall(data)
        frame = read_frame(sock)
        body = decode_json(frame)
        assert frame.type == MessageType.ERROR and body["fatal"] and body["message"] == message
        assert sock.recv(1) == b""
    finally:
        sock.close()


def test_bad_content_is_skipped_and_forged_ids_travel_escaped(server, small_artifact, caplog):
    sock = _welcomed(server)
    forged = "evil\n\x1b[31mfake  p(fake)=1.0"
    nan = np.zeros((2, I), np.float32)
    nan[1, 3] = np.nan
    good = np.random.default_rng(3).normal(size=(3, I)).astype(np.float32)
    frames = [
        SequenceMessage(seq=0, video_id="empty", kind=PayloadKind.CODES_I8, array=np.zeros((0, I), np.int8)),
        SequenceMessage(seq=1, video_id=forged, kind=PayloadKind.FEATURES_F32, array=nan),
        SequenceMessage(seq=2, video_id=forged, kind=PayloadKind.FEATURES_F32, array=good),
    ]
    sock.sendall(b"".join(encode_sequence(m) for m in frames))
    answers = [decode_json(read_frame(sock)) for _ in frames]
    sock.close()
    assert answers[0] == {"message": "sequence 0 (video 'empty'): 0 time steps; this board runs 1 to 4096",
                          "fatal": False, "seq": 0, "video_id": "empty"}
    assert answers[1] == {"message": "sequence 1 (video 'evil\\n\\x1b[31mfake  p(fake)=1.0'): 1 NaN/inf values "
                                     "(first at step 1, feature 3)", "fatal": False, "seq": 1, "video_id": forged}
    assert answers[2]["video_id"] == forged  # JSON carries the id exactly; printing escapes it
    assert answers[2]["logits"] == golden_logits(small_artifact, good[None])[0].tolist()
    assert all("\n" not in r.getMessage() and "\x1b" not in r.getMessage() for r in caplog.records)


# --- the sender facing a hostile board ------------------------------------------------------------


class FakeBoard:
    """Accepts one connection, reads the HELLO and answers with ``reply`` bytes (one every
    ``dribble`` seconds when given)."""

    def __init__(self, reply: bytes, *, dribble: float | None = None) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.address = self.listener.getsockname()
        self.reply = reply
        self.dribble = dribble
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        conn, _ = self.listener.accept()
        try:
            read_frame(conn)
            if self.dribble is None:
                conn.sendall(self.reply)
            else:
                for i in range(len(self.reply)):
                    conn.sendall(self.reply[i:i + 1])
                    time.sleep(self.dribble)
            conn.recv(1)
        except OSError:
            pass
        close_socket(conn)
        self.listener.close()


SENDER_CASES = {
    "welcome-30000-deep": (encode_frame(MessageType.WELCOME, DEEP_UNDER_64_KIB), StreamError,
                           "WELCOME message nests JSON too deeply"),
    "result-claims-1-GiB": (HEADER.pack(MAGIC, 1, int(MessageType.WELCOME), 1 << 30), StreamError,
                            "WELCOME frame length 1073741824 exceeds the limit of 65536 bytes"),
    "error-with-escapes": (encode_json(MessageType.ERROR, {"message": "\x1b[2Jerror: all good\n", "fatal": True}),
                           FatalStreamError, "the board refused the stream: \\x1b[2Jerror: all good\\n"),
    "welcome-window-0": (encode_json(MessageType.WELCOME, {"window": 0}), FatalStreamError,
                         "the board offered an invalid credit window 0"),
    "welcome-not-json": (encode_frame(MessageType.WELCOME, b"\xff"), StreamError,
                         "WELCOME message is not valid UTF-8 JSON"),
}


@pytest.mark.parametrize("name", list(SENDER_CASES))
def test_sender_refuses_a_hostile_board(name):
    reply, error, message = SENDER_CASES[name]
    board = FakeBoard(reply)
    sender = SequenceSender(address=board.address, token=TOKEN, kind=PayloadKind.CODES_I8, retries=0, timeout=10)
    with pytest.raises(error) as info:
        sender.run(iter([("v", np.zeros((2, I), np.int8))]))
    assert message in str(info.value)
    assert "\n" not in str(info.value) and "\x1b" not in str(info.value)


def test_sender_gives_up_on_a_board_that_dribbles_its_answer():
    board = FakeBoard(encode_json(MessageType.WELCOME, {"window": 4, "pad": "x" * 100}), dribble=0.05)
    sender = SequenceSender(address=board.address, token=TOKEN, kind=PayloadKind.CODES_I8, retries=0, timeout=1.0)
    start = time.monotonic()
    with pytest.raises(StreamError) as info:
        sender.run(iter([("v", np.zeros((2, I), np.int8))]))
    assert str(info.value).endswith("after 0 retries: frame deadline passed")
    assert time.monotonic() - start < 3


def test_server_rejection_text_is_json_and_one_line(server):
    body = _refusal(server, encode_json(MessageType.HELLO, {"token": TOKEN, "artifact_sha256": "\ud800" * 20}))
    assert body["message"].startswith("sender prepared its data for artifact \\ud800\\ud800")
    json.dumps(body)


def test_board_infer_listen_prints_forged_ids_escaped_and_bounds_sequences(files, small_artifact):
    import os
    import signal
    import subprocess
    import sys

    board = subprocess.Popen([sys.executable, "-m", "lstmfpga.cli.main", "board-infer", "--backend", "golden",
                              "--model", str(files / "model.npz"), "--listen", "127.0.0.1:0", "--max-steps", "8"],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             env={**os.environ, "LSTMFPGA_STREAM_TOKEN": TOKEN})
    try:
        line = ""
        deadline = time.monotonic() + 60
        while "listening on" not in line:
            assert board.poll() is None and time.monotonic() < deadline
            line = board.stdout.readline()
        port = int(line.split("listening on ")[1].split()[0].rsplit(":", 1)[1])
        sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        sock.sendall(encode_json(MessageType.HELLO, {"token": TOKEN}))
        welcome = decode_json(read_frame(sock))
        # --max-steps 8: frames are negotiated down to 8 float32 rows of 37 plus header and longest id
        assert welcome["max_steps"] == 8 and welcome["max_payload"] == 12 + 1024 + 8 + 8 * 4 * I
        forged = "a.mp4  real  p(fake)=0.0000  1.0 µs\n\x1b[2Kb.mp4"
        sock.sendall(encode_sequence(SequenceMessage(seq=0, video_id="long", kind=PayloadKind.CODES_I8,
                                                     array=np.ones((9, I), np.int8))))
        assert decode_json(read_frame(sock))["message"] == ("sequence 0 (video 'long'): 9 time steps; "
                                                            "this board runs 1 to 8")
        sock.sendall(encode_sequence(SequenceMessage(seq=1, video_id=forged, kind=PayloadKind.CODES_I8,
                                                     array=np.ones((3, I), np.int8))))
        assert decode_json(read_frame(sock))["video_id"] == forged
        sock.sendall(encode_json(MessageType.BYE, {}))
        sock.close()
    finally:
        board.send_signal(signal.SIGINT)
        out, _ = board.communicate(timeout=60)
    verdicts = [r for r in out.splitlines() if "p(fake)=" in r]
    assert "\x1b" not in out and len(verdicts) == 1
    assert verdicts[0].startswith("a.mp4  real  p(fake)=0.0000  1.0 µs\\n\\x1b[2Kb.mp4  ")
