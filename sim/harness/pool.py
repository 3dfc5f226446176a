"""Harness instances in worker processes, under a wall-clock watchdog.

A :class:`WorkerPool` forks ``jobs`` processes.  Each calls ``setup(index)`` once (build its
harness, load weights: its state) and then ``handle(state, request)`` for every request sent to
it; a batch of independent requests is spread over the workers and the replies come back in order.

The watchdog: a worker that does not answer within the simulated cycles it was given at
:data:`MIN_CYCLES_PER_S` (plus :data:`START_S`) is killed and :class:`HarnessTimeout` names what it
held, so a wedged simulation can never hang its caller.  A project error raised in a worker
(:class:`~lstmfpga.foundation.errors.LstmfpgaError`) is raised again in the caller with its class
and message, plus ``describe(state)`` (the harness's cycle and stream counters).
"""

from __future__ import annotations

import importlib
import multiprocessing
import time
import traceback
from multiprocessing.connection import wait as wait_any
from typing import Any, Callable

from lstmfpga.foundation.errors import LstmfpgaError
from lstmfpga.foundation.process_lifetime import die_with_parent
from lstmfpga.foundation.validation import check_integer
from lstmfpga.sim.harness.library import HarnessTimeout

#: The slowest speed the watchdog allows a worker (simulated cycles per wall second; the
#: full-size core runs well above it) and the start-up it grants (fork, library load).
MIN_CYCLES_PER_S = 2_000
START_S = 60.0


def _error_reply(exc: LstmfpgaError, state_line: str) -> tuple:
    cls = type(exc)
    return ("error", cls.__module__, cls.__qualname__, f"{exc}{state_line}")


def _serve(connection, index: int, setup: Callable, handle: Callable, describe: Callable) -> None:
    die_with_parent()  # a forked worker keeps the parent's end of its pipe: EOF alone would never come
    state = None
    try:
        state = setup(index)
        connection.send(("ok", None))
        while True:
            request = connection.recv()
            if request is None:
                return
            connection.send(("ok", handle(state, request)))
    except LstmfpgaError as exc:
        line = ""
        if state is not None:
            try:
                line = f" [{describe(state)}]"
            except LstmfpgaError:
                pass
        connection.send(_error_reply(exc, line))
    except Exception:  # a bug: hand the traceback to the caller rather than die silently
        connection.send(("crash", traceback.format_exc()))
    finally:
        close = getattr(state, "close", None)
        if callable(close):
            close()
        connection.close()


def _raise(reply: tuple) -> None:
    if reply[0] == "error":
        _, module, name, message = reply
        try:
            cls = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError):
            cls = LstmfpgaError
        if not (isinstance(cls, type) and issubclass(cls, LstmfpgaError)):
            cls = LstmfpgaError
        raise cls(f"simulated board: {message}")
    raise RuntimeError(f"a harness worker failed:\n{reply[1]}")


class WorkerPool:
    """``jobs`` forked workers, each with the state ``setup`` made.

    Parameters
    ----------
    setup
        ``setup(index) -> state``, run once in each worker (its errors end the pool).
    handle
        ``handle(state, request) -> reply``, run in the worker for each request.
    describe
        ``describe(state) -> str``: the worker's state, appended to a project error's message.
    jobs
        Number of workers.
    setup_cycles
        Simulated cycles ``setup`` may take (the watchdog's measure).
    watchdog_s
        Fixed wall-clock limit per request instead of the cycle-derived one.
    """

    def __init__(self, *, setup: Callable[[int], Any], handle: Callable[[Any, Any], Any],
                 describe: Callable[[Any], str] = lambda state: "", jobs: int = 1, setup_cycles: int = 0,
                 watchdog_s: float | None = None) -> None:
        check_integer("jobs", jobs, low=1, what="a positive integer")
        self.watchdog_s = watchdog_s
        # fork: no re-import of the caller's main module and a start in milliseconds; the workers
        # use NumPy and the harness library only
        context = multiprocessing.get_context("fork")
        self._workers = []
        for index in range(jobs):
            parent, child = context.Pipe()
            process = context.Process(target=_serve, args=(child, index, setup, handle, describe), daemon=True,
                                      name=f"lstmfpga-harness-{index}")
            process.start()
            child.close()
            self._workers.append((process, parent))
        self._gather([(n, f"the setup of worker {n}") for n in range(jobs)], setup_cycles)

    @property
    def jobs(self) -> int:
        return len(self._workers)

    def limit_s(self, cycles: int) -> float:
        """Wall-clock limit for a request worth ``cycles`` simulated cycles."""
        return self.watchdog_s if self.watchdog_s is not None else START_S + cycles / MIN_CYCLES_PER_S

    def map(self, requests: list, cycles: int, names: list[str]) -> list:
        """Send ``requests[k]`` to worker ``k`` (at most one each); the replies in order.

        ``cycles`` is the largest request's simulated work; ``names`` say what each request holds.
        """
        if not self._workers:
            raise HarnessTimeout("the harness pool is closed (a previous request failed or timed out)")
        if len(requests) > len(self._workers):
            raise ValueError(f"{len(requests)} requests for {len(self._workers)} workers")
        for (_, connection), request in zip(self._workers, requests):
            connection.send(request)
        return self._gather(list(enumerate(names)), cycles)

    def _gather(self, pending: list[tuple[int, str]], cycles: int) -> list:
        limit = self.limit_s(cycles)
        deadline = time.monotonic() + limit
        waiting = {self._workers[n][1]: (n, what) for n, what in pending}
        replies = {}
        while waiting:
            ready = wait_any(list(waiting), timeout=max(deadline - time.monotonic(), 0.0))
            if not ready:
                names = "; ".join(what for _, what in waiting.values())
                self.close(kill=True)
                raise HarnessTimeout(f"the harness did not answer within {limit:.0f} s (process watchdog): {names}")
            for connection in ready:
                n, what = waiting.pop(connection)
                try:
                    reply = connection.recv()
                except EOFError:
                    self.close(kill=True)
                    raise RuntimeError(f"a harness worker died during {what}") from None
                if reply[0] != "ok":
                    self.close(kill=True)
                    _raise(reply)
                replies[n] = reply[1]
        return [replies[n] for n, _ in pending]

    def close(self, *, kill: bool = False) -> None:
        for process, connection in self._workers:
            if not kill:
                try:
                    connection.send(None)
                except OSError:
                    pass
            connection.close()
        for process, _ in self._workers:
            if kill:
                process.kill()
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
                process.join()
        self._workers = []
