"""A load of unauthenticated peers that try to make a stream server hold memory or time.

Used by the limits test and ``bench/stream_hostile.py`` to check ``ServerLimits``: every peer
here must be answered with an ERROR and closed, and the server's memory must not follow the
sizes the peers claim. Stdlib only.
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

from lstmfpga.host.stream_protocol import HEADER, MAGIC, PROTOCOL_VERSION, MessageType, decode_json, encode_json, read_frame

#: What each kind of peer does, and the ERROR a server with default ``ServerLimits`` answers.
KINDS = {
    "slow": "sends a 330-byte HELLO one byte per tick",
    "silent": "connects and sends nothing",
    "big-sequence": "claims a 16 MiB SEQUENCE before any HELLO and pushes data as fast as it is taken",
    "big-hello": "claims a 60 KiB HELLO (under the control-message limit) and sends it",
}
_BULK = b"\0" * (256 * 1024)


def process_memory(pid: int) -> dict[str, int]:
    """Resident size ``VmRSS`` and its high-water mark ``VmHWM`` of process ``pid``, in bytes (Linux)."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) * 1024
    return fields


def _opening(kind: str) -> bytes:
    if kind == "slow":
        return encode_json(MessageType.HELLO, {"token": "-", "pad": "x" * 300})
    if kind == "big-sequence":
        return HEADER.pack(MAGIC, PROTOCOL_VERSION, int(MessageType.SEQUENCE), 16 << 20)
    if kind == "big-hello":
        return HEADER.pack(MAGIC, PROTOCOL_VERSION, int(MessageType.HELLO), 60 << 10)
    return b""


class HostileCrowd:
    """``n`` connections to ``address``, kinds taken in turn from ``kinds``, driven by one thread.

    Parameters
    ----------
    address
        ``(host, port)`` of the server.
    n
        Number of connections, all opened before this returns.
    kinds
        Names from ``KINDS``.
    tick
        Seconds between two rounds of sends (one byte per round for ``slow`` peers).
    source
        Local address to connect from (on Linux any ``127.x.y.z`` is a distinct loopback peer).
    """

    def __init__(self, address: tuple[str, int], n: int, *, kinds=tuple(KINDS), tick: float = 0.05,
                 source: str | None = None) -> None:
        unknown = set(kinds) - set(KINDS)
        if unknown:
            raise ValueError(f"unknown peer kinds {sorted(unknown)}; known: {', '.join(KINDS)}")
        self.tick = tick
        self.kinds = [kinds[i % len(kinds)] for i in range(n)]
        self._openings = [_opening(kind) for kind in self.kinds]
        self._sent = [0] * n
        self.socks = []
        for _ in range(n):
            sock = socket.create_connection(address, timeout=10, source_address=(source, 0) if source else None)
            sock.setblocking(False)
            self.socks.append(sock)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._drive, name="hostile-crowd", daemon=True)
        self._thread.start()

    def _drive(self) -> None:
        while not self._stop.is_set():
            for i, sock in enumerate(self.socks):
                data, sent = self._openings[i], self._sent[i]
                try:
                    if sent < len(data):
                        step = 1 if self.kinds[i] == "slow" else len(data) - sent
                        self._sent[i] += sock.send(data[sent:sent + step])
                    elif self.kinds[i] in ("big-sequence", "big-hello"):
                        sock.send(_BULK)
                except OSError:  # full buffers (BlockingIOError) and closed connections alike
                    continue
            time.sleep(self.tick)

    def answers(self, timeout: float) -> list:
        """Stop sending; the ERROR message each peer got before its close (None: no ERROR or no close)."""
        self._stop.set()
        self._thread.join()
        deadline = time.monotonic() + timeout
        messages = []
        for sock in self.socks:
            sock.setblocking(True)
            sock.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                frame = read_frame(sock)
                body = decode_json(frame) if frame.type == MessageType.ERROR else None
                closed = sock.recv(1) == b""
            except OSError:
                body, closed = None, False
            messages.append(body.get("message") if body and closed else None)
            sock.close()
        return messages
