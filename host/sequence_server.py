"""The board side of the feature stream: accept senders, run each sequence, acknowledge results.

A sender connects, proves the shared token (HELLO), learns its credit window (WELCOME), then
sends SEQUENCE frames; every sequence is answered by exactly one RESULT or one non-fatal ERROR
(bad content: NaN, wrong width), and each answer returns one credit. A result is appended to the
durable result log *before* its RESULT is sent, so whatever a sender saw acknowledged survives
the sender, the connection, and this process. Protocol violations (version, size, truncation,
token) get a fatal ERROR and close only that connection; other senders are not disturbed.

NumPy and stdlib only: this runs on the board.
"""

from __future__ import annotations

import logging
import queue
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Protocol, Sequence

from lstmfpga.foundation.errors import InputError
from lstmfpga.host.result_log import ResultLog
from lstmfpga.host.stream_protocol import (
    DEFAULT_MAX_PAYLOAD,
    MessageType,
    SequenceMessage,
    StreamClosed,
    StreamError,
    check_token,
    close_socket,
    decode_json,
    decode_sequence,
    encode_json,
    expect,
    read_frame,
)

log = logging.getLogger(__name__)


class SequenceHandler(Protocol):
    """What the server runs: validation per message, then inference on a batch."""

    artifact_sha256: str

    def describe(self) -> dict:
        """Facts for the WELCOME message (mode, sizes, accepted payload kinds)."""

    def check(self, message: SequenceMessage) -> None:
        """Raise ``InputError`` naming the problem if the message cannot be run."""

    def process(self, messages: Sequence[SequenceMessage]) -> list[dict]:
        """One JSON-able result record per message, in order."""


@dataclass
class ServerStats:
    connections: int = 0
    sequences: int = 0
    rejected: list = field(default_factory=list)  # (peer, message) per error sent


_END = object()


class SequenceServer:
    """Threaded TCP server; loopback by default.

    Parameters
    ----------
    handler
        Runs the sequences (see ``SequenceHandler``); calls are serialised: one accelerator.
    token
        Shared secret every sender must present in its HELLO.
    host, port
        Where to listen; ``port=0`` picks a free port (see ``address``).
    window
        Credits per connection: sequences a sender may have unacknowledged.
    results_path
        Durable JSON-lines log of every result, written before the RESULT is sent.
    max_payload
        Largest SEQUENCE payload in bytes.
    idle_timeout
        Seconds a connection may stay silent before it is closed.
    """

    def __init__(
        self,
        *,
        handler: SequenceHandler,
        token: str,
        host: str = "127.0.0.1",
        port: int = 0,
        window: int = 8,
        results_path=None,
        max_payload: int = DEFAULT_MAX_PAYLOAD,
        idle_timeout: float = 300.0,
        on_result: Callable[[dict], None] | None = None,
    ) -> None:
        if not isinstance(token, str) or not token:
            raise ValueError("token must be a non-empty string")
        if not isinstance(window, int) or window < 1:
            raise ValueError(f"window must be a positive integer, not {window!r}")
        if not isinstance(max_payload, int) or max_payload < 1:
            raise ValueError(f"max_payload must be a positive integer, not {max_payload!r}")
        if not idle_timeout > 0:
            raise ValueError(f"idle_timeout must be positive, not {idle_timeout!r}")
        self.handler = handler
        self._token = token
        self._bind = (host, int(port))
        self.window = window
        self.max_payload = max_payload
        self.idle_timeout = float(idle_timeout)
        self._log = ResultLog(path=results_path) if results_path is not None else None
        self._on_result = on_result
        self._engine_lock = threading.Lock()
        self._stop = threading.Event()
        self._listener: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        self.stats = ServerStats()

    @property
    def address(self) -> tuple[str, int]:
        if self._listener is None:
            raise RuntimeError("server is not started")
        return self._listener.getsockname()[:2]

    def start(self) -> "SequenceServer":
        listener = socket.create_server(self._bind, reuse_port=False)
        listener.settimeout(0.2)
        self._listener = listener
        thread = threading.Thread(target=self._accept_loop, name="lstmfpga-accept", daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def serve_forever(self) -> None:
        if self._listener is None:
            self.start()
        try:
            while not self._stop.is_set():
                time.sleep(0.2)
        finally:
            self.stop()

    def stop(self) -> None:
        self._stop.set()
        with self._conns_lock:
            for conn in list(self._conns):
                close_socket(conn)
        for thread in list(self._threads):
            thread.join(timeout=5)
        if self._listener is not None:
            self._listener.close()
        if self._log is not None:
            self._log.close()

    def __enter__(self) -> "SequenceServer":
        return self.start() if self._listener is None else self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, peer = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.stats.connections += 1
            with self._conns_lock:
                self._conns.add(conn)
            thread = threading.Thread(
                target=self._serve_connection, args=(conn, peer), name=f"lstmfpga-conn-{peer}", daemon=True
            )
            thread.start()
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]

    def _serve_connection(self, conn: socket.socket, peer) -> None:
        send_lock = threading.Lock()

        def send(data: bytes) -> None:
            with send_lock:
                conn.sendall(data)

        pending: queue.Queue = queue.Queue(maxsize=self.window)
        worker = None
        try:
            conn.settimeout(self.idle_timeout)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # small RESULTs must not wait for delayed ACKs
            self._handshake(conn, send)
            worker = threading.Thread(
                target=self._work, args=(pending, send, peer, conn), name=f"lstmfpga-work-{peer}", daemon=True
            )
            worker.start()
            self._read_loop(conn, pending, worker)
        except StreamClosed:
            log.info("sender %s disconnected", peer)
        except (StreamError, InputError) as exc:
            self._reject(peer, send, str(exc), fatal=True)
            close_socket(conn)  # nothing more goes to a peer that broke the protocol
        except (socket.timeout, TimeoutError):
            self._reject(peer, send, f"no message for {self.idle_timeout:g} s; closing", fatal=True)
            close_socket(conn)
        except OSError as exc:
            log.info("connection to %s failed: %s", peer, exc)
        finally:
            if worker is not None:
                _put_while(pending, _END, worker)
                worker.join()
            with self._conns_lock:
                self._conns.discard(conn)
            close_socket(conn)

    def _handshake(self, conn: socket.socket, send) -> None:
        hello = decode_json(expect(read_frame(conn, max_payload=self.max_payload), MessageType.HELLO))
        if not check_token(self._token, hello.get("token")):
            raise StreamError("authentication failed: wrong or missing token")
        wanted = hello.get("artifact_sha256")
        if wanted is not None and wanted != self.handler.artifact_sha256:
            raise StreamError(
                f"sender prepared its data for artifact {str(wanted)[:16]}…, this board runs "
                f"{self.handler.artifact_sha256[:16]}…"
            )
        welcome = {
            "window": self.window,
            "max_payload": self.max_payload,
            "artifact_sha256": self.handler.artifact_sha256,
            **self.handler.describe(),
        }
        send(encode_json(MessageType.WELCOME, welcome))

    def _read_loop(self, conn: socket.socket, pending: queue.Queue, worker: threading.Thread) -> None:
        while not self._stop.is_set():
            frame = expect(read_frame(conn, max_payload=self.max_payload), MessageType.SEQUENCE, MessageType.BYE)
            if frame.type == MessageType.BYE:
                return
            message = decode_sequence(frame)
            try:
                self.handler.check(message)
            except InputError as exc:
                item = (message, str(exc))
            else:
                item = (message, None)
            if not _put_while(pending, item, worker):
                return

    def _work(self, pending: queue.Queue, send, peer, conn: socket.socket) -> None:
        alive = True
        while alive:
            batch = [pending.get()]
            while len(batch) < self.window:
                try:
                    batch.append(pending.get_nowait())
                except queue.Empty:
                    break
            if batch[-1] is _END:
                batch.pop()
                alive = False
            good = [m for m, err in batch if err is None]
            try:
                if good:
                    with self._engine_lock:
                        records = self.handler.process(good)
                else:
                    records = []
                done = iter(records)
                answers = [(message, err if err is not None else
                            {"seq": message.seq, "video_id": message.video_id, **next(done)})
                           for message, err in batch]
                if self._log is not None:  # durable before any of them is acknowledged; one fsync per batch
                    self._log.append_many([a for _, a in answers if isinstance(a, dict)])
                for message, answer in answers:
                    if isinstance(answer, str):
                        self._reject(peer, send, answer, fatal=False, message=message)
                        continue
                    self.stats.sequences += 1
                    if self._on_result is not None:
                        self._on_result(answer)
                    send(encode_json(MessageType.RESULT, answer))
            except OSError as exc:
                log.info("sender %s went away before its results were sent: %s", peer, exc)
                alive = False
            except Exception as exc:  # the board failed (timeout, core error): tell the sender, stop
                log.exception("inference failed for %s", peer)
                self._reject(peer, send, f"board inference failed: {type(exc).__name__}: {exc}", fatal=True)
                close_socket(conn)
                alive = False
        try:
            send(encode_json(MessageType.BYE, {"sequences": self.stats.sequences}))
        except OSError:
            pass

    def _reject(self, peer, send, text: str, *, fatal: bool, message: SequenceMessage | None = None) -> None:
        self.stats.rejected.append((peer, text))
        log.warning("rejected %s from %s: %s", "connection" if fatal else "sequence", peer, text)
        body = {"message": text, "fatal": fatal}
        if message is not None:
            body.update(seq=message.seq, video_id=message.video_id)
        try:
            send(encode_json(MessageType.ERROR, body))
        except OSError:
            pass


def _put_while(pending: queue.Queue, item, worker: threading.Thread) -> bool:
    """Put ``item`` unless the worker that drains the queue has died (then False)."""
    while worker.is_alive():
        try:
            pending.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False
