"""Text from outside (video ids, file names, a peer's messages) made safe to print or log.

A newline, carriage return or ANSI escape in a video id would forge or hide lines of a verdict
table or a log; a lone surrogate would make the logging handler fail. Stdlib only: the board
path imports this.
"""

from __future__ import annotations


def printable(text: object, *, limit: int | None = None) -> str:
    """``text`` with every non-printable character escaped (``\\n``, ``\\x1b``, ``\\ud800``).

    Printable characters, spaces included, are kept as they are, so an ordinary id prints
    unchanged. With ``limit``, at most that many characters of the input are shown and ``…``
    marks the cut.
    """
    text = str(text)
    cut = limit is not None and len(text) > limit
    if cut:
        text = text[:limit]
    if not text.isprintable():
        # repr escapes exactly the characters str.isprintable() refuses
        text = "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)
    return text + "…" if cut else text
