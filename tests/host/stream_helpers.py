"""Shared pieces of the streaming tests: a golden-backed server and golden expectations."""

import socket
import threading
import time

import numpy as np

from lstmfpga.host.backends.golden import GoldenBackend
from lstmfpga.host.board_handler import BackendHandler
from lstmfpga.host.sequence_server import SequenceServer
from lstmfpga.host.stream_protocol import close_socket
from lstmfpga.foundation.integer_lstm import quantize_input, run_integer

TOKEN = "t0ken-for-tests"


class SlowHandler(BackendHandler):
    """Golden handler that takes ``delay`` seconds per batch, so tests can act mid-stream."""

    def __init__(self, *, delay: float, **kw):
        super().__init__(**kw)
        self.delay = delay

    def process(self, messages):
        time.sleep(self.delay)
        return super().process(messages)


def golden_server(artifact, *, mode="full", delay=0.0, **kw) -> SequenceServer:
    handler = SlowHandler(backend=GoldenBackend(artifact=artifact, mode=mode), delay=delay)
    return SequenceServer(handler=handler, token=TOKEN, **kw)


def golden_logits(artifact, x) -> np.ndarray:
    return run_integer(artifact, quantize_input(artifact, np.asarray(x))).logits


class DroppingProxy:
    """TCP proxy that cuts its first connection after ``cut_after`` bytes from the server."""

    def __init__(self, upstream, *, cut_after: int):
        self.upstream = upstream
        self.cut_after = cut_after
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.address = self.listener.getsockname()
        self.cuts = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        first = True
        while True:
            try:
                down, _ = self.listener.accept()
            except OSError:
                return
            up = socket.create_connection(self.upstream)
            limit = self.cut_after if first else None
            first = False
            threading.Thread(target=self._pump, args=(down, up, None), daemon=True).start()
            threading.Thread(target=self._pump, args=(up, down, limit), daemon=True).start()

    def _pump(self, src, dst, limit):
        sent = 0
        try:
            while True:
                data = src.recv(4096)
                if not data:
                    break
                if limit is not None and sent + len(data) >= limit:
                    dst.sendall(data[: max(limit - sent, 0)])
                    self.cuts += 1
                    break
                dst.sendall(data)
                sent += len(data)
        except OSError:
            pass
        for s in (src, dst):
            close_socket(s)

    def close(self):
        self.listener.close()
