"""Append-only JSON-lines log of per-sequence results, durable before acknowledgement.

Each record is one ``os.write`` of one complete line to an ``O_APPEND`` descriptor followed by
``fsync``: a process killed at any instant leaves whole lines plus at most one torn last line,
which ``read_results`` drops. NumPy-free; the board imports this.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

from lstmfpga.foundation.errors import InputError


class ResultLog:
    """Durable appender; thread-safe.

    Parameters
    ----------
    path
        The ``.jsonl`` file; created (with its folder) if missing, appended to otherwise.
    fsync
        Flush to disk before ``append`` returns (default). Without it a record still survives
        the death of this process (``os.write`` is unbuffered), not a power cut.
    """

    def __init__(self, *, path: str | os.PathLike, fsync: bool = True) -> None:
        self.path = Path(path)
        self._fsync = bool(fsync)
        self._lock = threading.Lock()
        self._fd = -1
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            self._repair_torn_tail()
        except OSError as exc:
            self.close()
            raise InputError(f"result log {self.path} cannot be opened: {exc.strerror or exc}") from None

    def _repair_torn_tail(self) -> None:
        # A previous writer killed mid-line leaves no trailing newline; start our records on a fresh line.
        size = os.fstat(self._fd).st_size
        if size:
            with open(self.path, "rb") as fh:
                fh.seek(size - 1)
                if fh.read(1) != b"\n":
                    os.write(self._fd, b"\n")

    def append(self, record: dict) -> None:
        self.append_many([record])

    def append_many(self, records: list) -> None:
        """Append records (each one whole line, one write each) and flush them with one fsync."""
        if not records:
            return
        with self._lock:
            for record in records:
                self._write(record)
            if self._fsync:
                os.fsync(self._fd)

    def _write(self, record: dict) -> None:
        if self._fd < 0:
            raise ValueError(f"result log {self.path} is closed")
        view = memoryview((json.dumps(record, separators=(",", ":"), sort_keys=True) + "\n").encode("utf-8"))
        while view:
            written = os.write(self._fd, view)
            view = view[written:]

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1

    def __enter__(self) -> "ResultLog":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_results(path: str | os.PathLike) -> list[dict]:
    """All complete records of a result log, in order; a missing file reads as empty."""
    path = Path(path)
    if not path.exists():
        return []
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"result log {path} cannot be read: {exc.strerror or exc}") from None
    records = []
    for line in data.split(b"\n"):
        if not line.strip():
            continue
        try:
            record = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            continue  # a torn line from a killed writer: never acknowledged
        if isinstance(record, dict):
            records.append(record)
    return records
