"""Audio as raw float32 frames on disk: appended in blocks, read back anywhere with context."""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np

from audio.files.diskspace import named


class FloatFile:
    """Raw float32 frames in a file, appended in blocks and read back with context."""

    def __init__(self, path: Path, channels: int):
        self.path, self.channels = path, channels
        self.frames = 0
        self._w = open(path, "wb")
        self.loop = False  # reads wrap around the end (a seamless loop's limiter sees its own start)

    def append(self, block: np.ndarray):
        try:
            self._w.write(np.ascontiguousarray(block, dtype=np.float32).tobytes())
        except OSError as e:  # a full disk: name the file, and let it go
            with contextlib.suppress(OSError):
                self._w.close()
            raise named(e, self.path)
        self.frames += block.shape[0]

    def close_writing(self):
        self._w.close()

    def read(self, a: int, b: int) -> np.ndarray:
        """Frames [a, b): zero outside the file, or wrapped around it for a loop."""
        if self.loop and (a < 0 or b > self.frames):
            return np.concatenate([self._read(lo, hi) for lo, hi in _wrapped_ranges(a, b, self.frames)])
        return self._read(a, b)

    def _read(self, a: int, b: int) -> np.ndarray:
        lo, hi = max(a, 0), min(b, self.frames)
        out = np.zeros((b - a, self.channels))
        if hi > lo:
            with open(self.path, "rb") as f:
                f.seek(lo * self.channels * 4)
                data = np.fromfile(f, dtype=np.float32, count=(hi - lo) * self.channels)
            out[lo - a: hi - a] = data.reshape(-1, self.channels)
        return out

    def overwrite(self, a: int, block: np.ndarray):
        with open(self.path, "r+b") as f:
            f.seek(a * self.channels * 4)
            f.write(np.ascontiguousarray(block, dtype=np.float32).tobytes())

    def truncate(self, frames: int):
        with open(self.path, "r+b") as f:
            f.truncate(frames * self.channels * 4)
        self.frames = frames

    def blocks(self, size: int):
        """The whole file, ``size`` frames at a time."""
        for a in range(0, self.frames, size):
            yield self._read(a, min(a + size, self.frames))


def _wrapped_ranges(a: int, b: int, n: int):
    """[a, b) cut into ranges inside [0, n), wrapping around."""
    while a < b:
        start = a % n
        length = min(b - a, n - start)
        yield start, start + length
        a += length
