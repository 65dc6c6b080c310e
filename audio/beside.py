"""Run a consumer over blocks on a thread of its own, beside the caller's loop."""

from __future__ import annotations

import queue
import threading

import numpy as np


class Beside:
    """Run ``consume(block)`` over blocks in a thread of its own, beside the caller's loop (numpy and
    scipy let go of the GIL in their loops, so it takes the other core). Blocks must not change
    after ``put``. Leaving the ``with`` waits for the last block, and raises what the thread raised."""

    def __init__(self, consume):
        self.consume = consume
        self.queue = queue.Queue(maxsize=2)  # bounded: memory stays flat if the thread falls behind
        self.error = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while (block := self.queue.get()) is not None:
            if self.error is None:
                try:
                    self.consume(block)
                except BaseException as e:  # handed to the caller on leaving the with
                    self.error = e

    def put(self, block: np.ndarray):
        if self.error is not None:
            raise self.error
        self.queue.put(block)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, kind, value, tb):
        self.queue.put(None)
        self.thread.join()
        if kind is None and self.error is not None:
            raise self.error
        return False
