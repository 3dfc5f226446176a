"""Worker processes that die with their parent.

A worker (a feature-decoding DataLoader process, a search worker, a simulation run) whose parent
is killed with SIGKILL is re-parented and keeps running: it holds its memory for as long as
nobody kills it, and a search worker would race the resumed search. Each worker entry calls
``die_with_parent()`` first. On Linux the kernel then sends SIGKILL the moment the parent dies
(``prctl(PR_SET_PDEATHSIG)``); everywhere, a daemon thread also polls ``os.getppid()`` and
ends the process once the parent is gone.

Stdlib only: the board path imports this.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

#: ``PR_SET_PDEATHSIG`` from ``<linux/prctl.h>``.
PR_SET_PDEATHSIG = 1
#: Exit status of a worker that ends because its parent is gone.
ORPHAN_EXIT_STATUS = 1

_watched: set[int] = set()
_watched_lock = threading.Lock()


def parent_death_signal() -> bool:
    """Ask the kernel to SIGKILL this process when its parent dies; ``False`` where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        # the running program's own symbols include libc's (find_library would start ldconfig)
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def die_with_parent(parent: int | None = None, *, poll_s: float = 0.5) -> None:
    """End this process as soon as ``parent`` (default: the current parent) has died.

    Parameters
    ----------
    parent
        The process id this worker must not outlive. Pass the id the parent gave the worker
        when it may already be gone by the time the worker starts: a worker whose parent is
        already not ``parent`` exits at once.
    poll_s
        Period of the watchdog thread, the fallback where no parent-death signal exists.
    """
    if not poll_s > 0:
        raise ValueError(f"poll_s must be positive, not {poll_s!r}")
    parent = os.getppid() if parent is None else int(parent)
    parent_death_signal()
    # The parent may have died before the signal was armed: the kernel would never send it.
    if os.getppid() != parent:
        os._exit(ORPHAN_EXIT_STATUS)
    with _watched_lock:
        if parent in _watched:
            return
        _watched.add(parent)
    threading.Thread(target=_watch, args=(parent, float(poll_s)), name="lstmfpga-parent-watchdog",
                     daemon=True).start()


def _watch(parent: int, poll_s: float) -> None:
    while os.getppid() == parent:
        time.sleep(poll_s)
    os._exit(ORPHAN_EXIT_STATUS)
