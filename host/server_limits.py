"""What one hostile or broken peer may take from the stream server: bytes, time, connections.

Before authentication a peer may send one HELLO of at most ``hello_payload`` bytes, whole within
``handshake_timeout``. After it, every frame must arrive whole within ``frame_timeout`` (a byte
now and then does not keep a connection open), and a SEQUENCE may be no larger than the largest
sequence the board can run (the negotiated size, never above ``max_payload``). So one
connection holds at most about ``2 * window + 1`` negotiated sequences, all connections together at
most ``max_buffered`` bytes of sequences, and the server at most ``max_connections`` connections,
``max_per_peer`` of them from one address.

NumPy and stdlib only: the board imports this.
"""

from __future__ import annotations

from dataclasses import dataclass

from lstmfpga.foundation.validation import check_integer, is_finite_number
from lstmfpga.host.stream_protocol import DEFAULT_MAX_PAYLOAD

#: A HELLO holds a token, a payload kind, a SHA-256 and a version: a few hundred bytes.
DEFAULT_HELLO_PAYLOAD = 4096


@dataclass(frozen=True)
class ServerLimits:
    """Bounds of the stream server (see the module docstring).

    Attributes
    ----------
    max_payload
        Largest SEQUENCE payload in bytes, whatever the board could run.
    hello_payload
        Largest HELLO payload in bytes: the only frame accepted before authentication.
    handshake_timeout
        Seconds from accepting a connection to its whole HELLO.
    frame_timeout
        Seconds each later frame may take, from the end of the previous one to its last byte.
    max_connections
        Connections open at once, authenticated or not; more are refused with an ERROR.
    max_per_peer
        Connections open at once from one IP address.
    max_buffered
        Bytes of SEQUENCE payloads held at once over all connections (read and not yet answered);
        a connection whose next frame would pass it waits, unread, until answers free room.
    rejection_history
        Recent rejections kept for inspection (``ServerStats.recent``); older ones are only counted.
    """

    max_payload: int = DEFAULT_MAX_PAYLOAD
    hello_payload: int = DEFAULT_HELLO_PAYLOAD
    handshake_timeout: float = 10.0
    frame_timeout: float = 300.0
    max_connections: int = 64
    max_per_peer: int = 8
    max_buffered: int = 256 * 1024 * 1024
    rejection_history: int = 32

    def __post_init__(self) -> None:
        for name in ("max_payload", "hello_payload", "max_connections", "max_per_peer", "max_buffered"):
            check_integer(name, getattr(self, name), low=1, what="a positive integer", error=ValueError)
        check_integer("rejection_history", self.rejection_history, low=0, what="a non-negative integer",
                      error=ValueError)
        for name in ("handshake_timeout", "frame_timeout"):
            value = getattr(self, name)
            if not is_finite_number(value) or not value > 0:
                raise ValueError(f"{name} must be a positive finite number of seconds, not {value!r}")
        if self.max_per_peer > self.max_connections:
            raise ValueError(f"max_per_peer ({self.max_per_peer}) cannot exceed max_connections "
                             f"({self.max_connections})")
