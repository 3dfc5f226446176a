"""The board side of the feature stream: accept senders, run each sequence, acknowledge results.

A sender connects, proves the shared token (HELLO), learns its credit window (WELCOME), then
sends SEQUENCE frames; every sequence is answered by exactly one RESULT or one non-fatal ERROR
(bad content: NaN, wrong width), and each answer returns one credit. A result is appended to the
durable result log *before* its RESULT is sent, so whatever a sender saw acknowledged survives
the sender, the connection, and this process. Protocol violations (version, size, truncation,
token) get a fatal ERROR and close only that connection; other senders are not disturbed.
Every allocation and wait a peer can cause is bounded by ``ServerLimits``; a peer over a
connection cap, or failing before authentication, gets an ERROR saying why before the close.

NumPy and stdlib only: this runs on the board.
"""

from __future__ import annotations

import collections
import logging
import queue
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Protocol, Sequence

from lstmfpga.foundation.errors import ConfigError, InputError
from lstmfpga.foundation.printable import printable
from lstmfpga.foundation.validation import check_integer
from lstmfpga.host.byte_budget import ByteBudget
from lstmfpga.host.result_log import ResultLog
from lstmfpga.host.server_limits import ServerLimits
from lstmfpga.host.stream_protocol import (
    MAX_CONTROL_PAYLOAD,
    MessageType,
    SequenceMessage,
    StreamClosed,
    StreamError,
    check_token,
    close_socket,
    decode_json,
    decode_sequence,
    encode_json,
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

    def max_payload_bytes(self) -> int:
        """Largest SEQUENCE payload this handler could accept (its longest, widest sequence)."""


@dataclass
class ServerStats:
    """Counts since the server started; only the last few rejections are kept as text."""

    connections: int = 0  # accepted and served
    refused: int = 0  # turned away by a connection cap
    sequences: int = 0  # answered with a RESULT
    rejected_connections: int = 0  # closed after a fatal ERROR
    rejected_sequences: int = 0  # skipped with a non-fatal ERROR
    recent: collections.deque = field(default_factory=collections.deque)  # (peer, printable message)

    @property
    def rejected(self) -> int:
        return self.rejected_connections + self.rejected_sequences


_END = object()
#: Bytes read and dropped after a fatal ERROR, so the close does not reset the connection
#: (and discard the ERROR) while the peer's unread data is still arriving.
_LINGER_BYTES = 1 << 20
_LINGER_SECONDS = 1.0


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
    limits
        Sizes, deadlines and connection caps (``ServerLimits``).
    on_result
        Called with every result record, after it is logged and before it is sent.
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
        limits: ServerLimits = ServerLimits(),
        on_result: Callable[[dict], None] | None = None,
    ) -> None:
        if not isinstance(token, str) or not token:
            raise ValueError("token must be a non-empty string")
        check_integer("window", window, low=1, what="a positive integer", error=ValueError)
        if not isinstance(limits, ServerLimits):
            raise ValueError(f"limits must be a ServerLimits, not {type(limits).__name__}")
        self.handler = handler
        self._token = token
        self._bind = (host, int(port))
        self.window = window
        self.limits = limits
        #: The negotiated SEQUENCE size: no frame larger than the longest sequence the board runs.
        self.max_payload = min(limits.max_payload, limits.max_buffered, int(handler.max_payload_bytes()))
        #: SEQUENCE payloads read and not yet answered, over all connections.
        self.buffered = ByteBudget(limits.max_buffered)
        self._log = ResultLog(path=results_path) if results_path is not None else None
        self._on_result = on_result
        self._engine_lock = threading.Lock()
        self._stop = threading.Event()
        self._listener: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        self._conns: dict[socket.socket, str] = {}  # open connection -> peer address
        self._per_peer: collections.Counter = collections.Counter()
        self._conns_lock = threading.Lock()
        self._stats_lock = threading.Lock()
        self.stats = ServerStats(recent=collections.deque(maxlen=limits.rejection_history))

    @property
    def address(self) -> tuple[str, int]:
        if self._listener is None:
            raise RuntimeError("server is not started")
        return self._listener.getsockname()[:2]

    def start(self) -> "SequenceServer":
        """Bind and start accepting; ``ConfigError`` names an address that cannot be listened on."""
        try:
            listener = socket.create_server(self._bind, reuse_port=False)
        except OSError as exc:  # busy port, unknown host, an address of no local interface
            raise ConfigError(f"cannot listen on {self._bind[0]}:{self._bind[1]}: {exc.strerror or exc}") from None
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
            refusal = self._admit(conn, peer[0])
            if refusal is not None:
                self._turn_away(conn, peer, refusal)
                continue
            thread = threading.Thread(
                target=self._serve_connection, args=(conn, peer), name=f"lstmfpga-conn-{peer}", daemon=True
            )
            thread.start()
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]

    def _admit(self, conn: socket.socket, address: str) -> str | None:
        """Register ``conn`` unless a cap is reached; then return why it is refused."""
        limits = self.limits
        with self._conns_lock:
            if len(self._conns) >= limits.max_connections:
                return f"server busy: {len(self._conns)} connections open, the limit is {limits.max_connections}"
            if self._per_peer[address] >= limits.max_per_peer:
                return (f"too many connections from {address}: {self._per_peer[address]} open, "
                        f"the limit is {limits.max_per_peer}")
            self._conns[conn] = address
            self._per_peer[address] += 1
        with self._stats_lock:
            self.stats.connections += 1
        return None

    def _release(self, conn: socket.socket) -> None:
        with self._conns_lock:
            address = self._conns.pop(conn, None)
            if address is not None:
                self._per_peer[address] -= 1
                if not self._per_peer[address]:
                    del self._per_peer[address]

    def _turn_away(self, conn: socket.socket, peer, reason: str) -> None:
        """Refuse a connection over a cap, from the accepting thread, without ever blocking on it."""
        with self._stats_lock:
            self.stats.refused += 1
        log.warning("refused connection from %s: %s", peer, reason)
        try:
            conn.setblocking(False)
            _drain_ready(conn)  # the HELLO already sent, so that closing does not reset the connection
            conn.send(encode_json(MessageType.ERROR, {"message": f"{reason}; try again later", "fatal": True,
                                                      "retry": True}))
        except OSError:
            pass
        close_socket(conn)

    def _serve_connection(self, conn: socket.socket, peer) -> None:
        send_lock = threading.Lock()

        def send(data: bytes) -> None:
            with send_lock:
                conn.sendall(data)

        pending: queue.Queue = queue.Queue(maxsize=self.window)
        worker = None
        waiting_for = f"no complete HELLO within {self.limits.handshake_timeout:g} s"
        try:
            conn.settimeout(self.limits.frame_timeout)  # sends; reads wait on their frame's deadline
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # small RESULTs must not wait for delayed ACKs
            self._handshake(conn, send)
            waiting_for = f"no complete frame within {self.limits.frame_timeout:g} s"
            worker = threading.Thread(
                target=self._work, args=(pending, send, peer, conn), name=f"lstmfpga-work-{peer}", daemon=True
            )
            worker.start()
            self._read_loop(conn, pending, worker)
        except Exception as exc:  # a bug must cost this connection only, never the server
            self._connection_ended(conn, peer, send, exc, waiting_for)
        finally:
            if worker is not None:
                _put_while(pending, _END, worker)
                worker.join()
            while not pending.empty():  # left by a worker that died: give their bytes back
                item = pending.get_nowait()
                if item is not _END:
                    self.buffered.give(item[2])
            self._release(conn)
            close_socket(conn)

    def _connection_ended(self, conn: socket.socket, peer, send, exc: Exception, waiting_for: str) -> None:
        """Say why a connection ended: to the peer where it broke a rule or timed out, to the log
        otherwise.  A server that is stopping closes every connection under its readers: that is
        neither the peer's fault nor a bug."""
        if self._stop.is_set():
            log.info("connection to %s closed: the server is stopping", peer)
        elif isinstance(exc, StreamClosed):
            log.info("sender %s disconnected", peer)
        elif isinstance(exc, (StreamError, InputError)):
            self._refuse(conn, peer, send, str(exc))
        elif isinstance(exc, (socket.timeout, TimeoutError)):
            self._refuse(conn, peer, send, f"{waiting_for}; closing")
        elif isinstance(exc, OSError):
            log.info("connection to %s failed: %s", peer, exc)
        else:
            log.error("connection to %s failed", peer, exc_info=exc)
            self._refuse(conn, peer, send, f"internal error: {type(exc).__name__}")

    def _refuse(self, conn: socket.socket, peer, send, text: str) -> None:
        """Fatal ERROR, then close once the peer's data in flight is drained (bounded in bytes and time)."""
        self._reject(peer, send, text, fatal=True)
        try:
            conn.shutdown(socket.SHUT_WR)
            _drain(conn, deadline=time.monotonic() + _LINGER_SECONDS)
        except OSError:
            pass
        close_socket(conn)

    def _handshake(self, conn: socket.socket, send) -> None:
        frame = read_frame(conn, limits={MessageType.HELLO: self.limits.hello_payload},
                           deadline=time.monotonic() + self.limits.handshake_timeout)
        hello = decode_json(frame)
        if not check_token(self._token, hello.get("token")):
            raise StreamError("authentication failed: wrong or missing token")
        wanted = hello.get("artifact_sha256")
        if wanted is not None and wanted != self.handler.artifact_sha256:
            raise StreamError(
                f"sender prepared its data for artifact {printable(wanted, limit=16)}, this board runs "
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
        limits = {MessageType.SEQUENCE: self.max_payload, MessageType.BYE: MAX_CONTROL_PAYLOAD}
        taken = 0

        def admit(message_type: MessageType, length: int) -> float | None:
            nonlocal taken
            if message_type != MessageType.SEQUENCE:
                return None
            if not self.buffered.take(length, stop=self._stop):
                raise StreamClosed("the server is stopping")
            taken = length
            return time.monotonic() + self.limits.frame_timeout  # the wait for room is not the peer's

        try:
            while not self._stop.is_set():
                frame = read_frame(conn, limits=limits, deadline=time.monotonic() + self.limits.frame_timeout,
                                   admit=admit)
                if frame.type == MessageType.BYE:
                    return
                message = decode_sequence(frame)
                try:
                    self.handler.check(message)
                except InputError as exc:
                    item = (message, str(exc), taken)
                else:
                    item = (message, None, taken)
                if not _put_while(pending, item, worker):
                    return
                taken = 0  # the worker gives it back once the sequence is answered
        finally:
            self.buffered.give(taken)

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
            good = [m for m, err, _ in batch if err is None]
            try:
                if good:
                    with self._engine_lock:
                        records = self.handler.process(good)
                else:
                    records = []
                done = iter(records)
                answers = [(message, err if err is not None else
                            {"seq": message.seq, "video_id": message.video_id, **next(done)})
                           for message, err, _ in batch]
                if self._log is not None:  # durable before any of them is acknowledged; one fsync per batch
                    self._log.append_many([a for _, a in answers if isinstance(a, dict)])
                for message, answer in answers:
                    if isinstance(answer, str):
                        self._reject(peer, send, answer, fatal=False, message=message)
                        continue
                    with self._stats_lock:
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
            finally:
                self.buffered.give(sum(size for _, _, size in batch))
        try:
            send(encode_json(MessageType.BYE, {"sequences": self.stats.sequences}))
        except OSError:
            pass

    def _reject(self, peer, send, text: str, *, fatal: bool, message: SequenceMessage | None = None) -> None:
        shown = printable(text)
        with self._stats_lock:
            if fatal:
                self.stats.rejected_connections += 1
            else:
                self.stats.rejected_sequences += 1
            self.stats.recent.append((peer, shown))
        log.warning("rejected %s from %s: %s", "connection" if fatal else "sequence", peer, shown)
        body = {"message": text, "fatal": fatal}
        if message is not None:
            body.update(seq=message.seq, video_id=message.video_id)
        try:
            send(encode_json(MessageType.ERROR, body))
        except OSError:
            pass


def _drain_ready(conn: socket.socket) -> None:
    """Read and drop what a non-blocking socket already holds, up to ``_LINGER_BYTES``."""
    dropped = 0
    while dropped < _LINGER_BYTES:
        try:
            count = len(conn.recv(65536))
        except (BlockingIOError, InterruptedError):
            return
        if not count:
            return
        dropped += count


def _drain(conn: socket.socket, *, deadline: float) -> None:
    """Read and drop the peer's data until it closes, ``_LINGER_BYTES`` are read, or ``deadline``."""
    scratch = bytearray(65536)
    dropped = 0
    while dropped < _LINGER_BYTES:
        left = deadline - time.monotonic()
        if left <= 0:
            return
        conn.settimeout(left)
        try:
            count = conn.recv_into(scratch)
        except (socket.timeout, TimeoutError):
            return
        if not count:
            return
        dropped += count


def _put_while(pending: queue.Queue, item, worker: threading.Thread) -> bool:
    """Put ``item`` unless the worker that drains the queue has died (then False)."""
    while worker.is_alive():
        try:
            pending.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False
