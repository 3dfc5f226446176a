"""The CPU/GPU side of the feature stream: send prepared sequences to a board, collect results.

A producer thread prepares payloads into a bounded queue (the GPU never runs far ahead of the
board); the sender keeps at most ``window`` sequences unacknowledged (the board's credits).
Acknowledged results are appended to a durable log, so a rerun with the same log resumes where
a killed run stopped; a dropped connection is re-dialled and the unacknowledged sequences are
sent again.

NumPy and stdlib only.
"""

from __future__ import annotations

import collections
import logging
import queue
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator

import numpy as np

from lstmfpga.foundation.printable import printable
from lstmfpga.foundation.validation import check_integer, is_integer
from lstmfpga.host.result_log import ResultLog, read_results
from lstmfpga.host.stream_protocol import (
    DEFAULT_MAX_PAYLOAD,
    PROTOCOL_VERSION,
    MessageType,
    PayloadKind,
    SequenceMessage,
    StreamClosed,
    StreamError,
    close_socket,
    decode_json,
    encode_json,
    encode_sequence,
    read_frame,
)

log = logging.getLogger(__name__)


class FatalStreamError(StreamError):
    """The board refused this sender (token, artifact, protocol): retrying cannot help."""


@dataclass
class SendReport:
    results: list = field(default_factory=list)  # RESULT records of this run, in arrival order
    errors: list = field(default_factory=list)  # non-fatal ERROR records (skipped sequences)
    skipped: int = 0  # already in the result log from an earlier run
    reconnects: int = 0
    welcome: dict = field(default_factory=dict)


_DONE = object()


class _ProducerFailure(Exception):
    """Carries an exception of the payload-preparing thread to the sending thread."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


class SequenceSender:
    """Stream sequences to a ``SequenceServer``.

    Parameters
    ----------
    address
        ``(host, port)`` of the board.
    token
        The shared secret.
    kind
        Payload kind of every sequence sent.
    artifact_sha256
        The artifact the payloads were prepared with (quantized codes, split pre-activations
        only make sense for that model); the board refuses a mismatch. ``None`` skips the check.
    results_path
        Durable log of acknowledged results; video ids already in it are not sent again.
    queue_size
        Prepared sequences buffered ahead of the network.
    retries, backoff
        Reconnection attempts after a dropped connection and the first delay (doubling).
    timeout
        Seconds to wait for the board on connect and for each whole answer (a board sending a
        byte now and then does not extend it).
    """

    def __init__(
        self,
        *,
        address: tuple[str, int],
        token: str,
        kind: PayloadKind,
        artifact_sha256: str | None = None,
        results_path=None,
        queue_size: int = 16,
        retries: int = 5,
        backoff: float = 0.2,
        timeout: float = 60.0,
        max_payload: int = DEFAULT_MAX_PAYLOAD,
        on_result: Callable[[dict], None] | None = None,
    ) -> None:
        check_integer("queue_size", queue_size, low=1, what="a positive integer", error=ValueError)
        check_integer("retries", retries, low=0, what="a non-negative integer", error=ValueError)
        self.address = (str(address[0]), int(address[1]))
        self._token = token
        self.kind = PayloadKind(kind)
        self.artifact_sha256 = artifact_sha256
        self.results_path = results_path
        self.queue_size = queue_size
        self.retries = retries
        self.backoff = float(backoff)
        self.timeout = float(timeout)
        self.max_payload = max_payload
        self._on_result = on_result

    def run(self, items: Iterable[tuple[str, np.ndarray]]) -> SendReport:
        """Send every ``(video_id, array)`` not yet in the result log; return what came back."""
        report = SendReport()
        done = {r.get("video_id") for r in read_results(self.results_path)} if self.results_path else set()
        ready: queue.Queue = queue.Queue(maxsize=self.queue_size)
        stop = threading.Event()
        producer = threading.Thread(
            target=self._produce, args=(items, done, ready, stop, report), name="lstmfpga-produce", daemon=True
        )
        producer.start()
        # No fsync here: the board's log is the durable one (written before it acknowledges); this
        # log only lets a rerun skip finished videos, and os.write survives the death of this process.
        result_log = ResultLog(path=self.results_path, fsync=False) if self.results_path else None
        try:
            self._pump(ready, report, result_log)
        finally:
            stop.set()
            if result_log is not None:
                result_log.close()
        return report

    def _produce(self, items, done, ready: queue.Queue, stop: threading.Event, report: SendReport) -> None:
        seq = 0
        try:
            for video_id, array in items:
                if video_id in done:
                    report.skipped += 1
                    continue
                message = SequenceMessage(seq=seq, video_id=str(video_id), kind=self.kind, array=array)
                seq += 1
                while not stop.is_set():
                    try:
                        ready.put(message, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
        except BaseException as exc:  # surfaced in the sending thread
            ready.put(_ProducerFailure(exc))
            return
        ready.put(_DONE)

    def _pump(self, ready: queue.Queue, report: SendReport, result_log: ResultLog | None) -> None:
        inflight: collections.OrderedDict[int, SequenceMessage] = collections.OrderedDict()
        exhausted = False
        attempts = 0
        sock = None
        while True:
            try:
                if sock is None:
                    sock, window = self._connect(report)
                    for message in inflight.values():
                        sock.sendall(encode_sequence(message))
                while not exhausted and len(inflight) < window:
                    try:
                        item = ready.get(block=not inflight)
                    except queue.Empty:
                        break
                    if item is _DONE:
                        exhausted = True
                        break
                    if isinstance(item, _ProducerFailure):
                        raise item
                    inflight[item.seq] = item  # before sending: a failed send is resent after reconnecting
                    sock.sendall(encode_sequence(item))
                if exhausted and not inflight:
                    sock.sendall(encode_json(MessageType.BYE, {}))
                    close_socket(sock)
                    return
                frame = read_frame(sock, max_payload=self.max_payload, deadline=time.monotonic() + self.timeout)
                attempts = 0
                self._answer(frame, inflight, report, result_log)
            except FatalStreamError:
                if sock is not None:
                    close_socket(sock)
                raise
            except _ProducerFailure as failure:  # preparing payloads failed: not a network problem
                if sock is not None:
                    close_socket(sock)
                raise failure.error from None
            except (OSError, StreamClosed, StreamError) as exc:
                if sock is not None:
                    close_socket(sock)
                sock = None
                attempts += 1
                if attempts > self.retries:
                    raise StreamError(
                        f"lost the board at {self.address[0]}:{self.address[1]} after {self.retries} retries: {exc}"
                    ) from None
                report.reconnects += 1
                delay = self.backoff * 2 ** (attempts - 1)
                log.warning("connection to the board failed (%s); retrying in %.1f s", exc, delay)
                time.sleep(delay)

    def _answer(self, frame, inflight, report: SendReport, result_log: ResultLog | None) -> None:
        if frame.type == MessageType.RESULT:
            record = decode_json(frame)
            if inflight.pop(record.get("seq"), None) is None:
                return  # a duplicate answer to a sequence resent after a reconnect
            if result_log is not None:
                result_log.append(record)
            report.results.append(record)
            if self._on_result is not None:
                self._on_result(record)
        elif frame.type == MessageType.ERROR:
            body = decode_json(frame)
            if body.get("fatal", True):
                raise FatalStreamError(f"the board refused the stream: {printable(body.get('message', '?'))}")
            inflight.pop(body.get("seq"), None)
            report.errors.append(body)
            log.warning("board skipped %s: %s", printable(body.get("video_id")), printable(body.get("message")))
        else:
            raise StreamError(f"unexpected {frame.type.name} message from the board")

    def _connect(self, report: SendReport):
        sock = socket.create_connection(self.address, timeout=self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            hello = {
                "token": self._token,
                "kind": self.kind.name,
                "artifact_sha256": self.artifact_sha256,
                "protocol": PROTOCOL_VERSION,
            }
            sock.sendall(encode_json(MessageType.HELLO, hello))
            frame = read_frame(sock, max_payload=self.max_payload, deadline=time.monotonic() + self.timeout)
            if frame.type == MessageType.ERROR:
                body = decode_json(frame)
                text = f"the board refused the stream: {printable(body.get('message', '?'))}"
                if body.get("retry") is True:  # a connection cap: a later attempt can succeed
                    raise StreamError(text)
                raise FatalStreamError(text)
            if frame.type != MessageType.WELCOME:
                raise FatalStreamError(f"expected WELCOME from the board, got {frame.type.name}")
            welcome = decode_json(frame)
            kinds = welcome.get("kinds")
            if kinds is not None and self.kind.name not in kinds:
                raise FatalStreamError(f"the board accepts {', '.join(kinds)} payloads, not {self.kind.name}")
            window = welcome.get("window")
            if not is_integer(window) or window < 1:
                raise FatalStreamError(f"the board offered an invalid credit window {window!r}")
        except BaseException:
            close_socket(sock)
            raise
        report.welcome = welcome
        return sock, window


def iter_pairs(video_ids, arrays) -> Iterator[tuple[str, np.ndarray]]:
    """Zip ids with arrays lazily (arrays may be a memory-mapped [N, ...] array)."""
    for i, video_id in enumerate(video_ids):
        yield str(video_id), arrays[i]
