"""A seamless loop: the end crossfaded into the start, so the piece runs on without a seam."""

from __future__ import annotations

import numpy as np

from audio.errors import RenderError
from audio.files.floatfile import FloatFile
from audio.mixer import BLOCK_SAMPLES


def make_seamless(files: list[FloatFile], crossfade: int) -> None:
    """Crossfade each file's last ``crossfade`` frames into its first (equal power) and cut them
    off, so the end runs on into the start without a seam; reads of the files then wrap around."""
    for f in files:
        n = f.frames
        if n <= 2 * crossfade:
            raise RenderError(f"a seamless loop needs more than twice the crossfade ({crossfade} samples), "
                              f"the piece has {n}")
        theta = (np.arange(crossfade) + 0.5) / crossfade * (np.pi / 2)
        head, tail = f.read(0, crossfade), f.read(n - crossfade, n)
        f.overwrite(0, head * np.sin(theta)[:, None] + tail * np.cos(theta)[:, None])
        f.truncate(n - crossfade)
        f.loop = True


def dc_offset(f: FloatFile) -> np.ndarray:
    """The mean of each channel: the DC a loop must not carry."""
    total = np.zeros(f.channels)
    for block in f.blocks(BLOCK_SAMPLES):
        total += block.sum(axis=0)
    return total / max(1, f.frames)
