"""sample: a user's audio file, trimmed, resampled, looped with an equal-power crossfade."""

from __future__ import annotations

import math
import os

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from audio.files import reading
from audio.files.fsname import sndfile_name
from audio.schema import show_value

from .core import _Chunked, _db, _Grid

MAX_SAMPLE_S = 600.0           # a sample is loaded whole, so it must be short


def _to_stereo(x: np.ndarray) -> np.ndarray:
    """(n, channels) -> (n, 2): mono doubled; beyond two, channels 3+ go to both sides at -3 dB."""
    if x.shape[1] == 1:
        return np.repeat(x, 2, axis=1)
    if x.shape[1] == 2:
        return x
    rest = x[:, 2:].sum(axis=1, keepdims=True) * math.sqrt(0.5)
    return (x[:, :2] + rest) / (1 + math.sqrt(0.5) * (x.shape[1] - 2))


def _crossfade(tail: np.ndarray, head: np.ndarray) -> np.ndarray:
    """tail fading out into head: equal power, normalised by the ends' correlation rho >= 0.

    Gains cos and sin of (pi/2) t, divided by sqrt(1 + rho sin(pi t)): plain equal power for
    unrelated ends (rho = 0), constant amplitude for ends in phase (rho = 1), no +3 dB bump between.
    """
    energy = math.sqrt(float(np.sum(tail.astype(np.float64) ** 2) * np.sum(head.astype(np.float64) ** 2)))
    rho = max(float(np.sum(tail * head, dtype=np.float64)) / energy, 0.0) if energy > 0 else 0.0
    t = np.arange(head.shape[1]) / head.shape[1]
    norm = np.sqrt(1 + rho * np.sin(np.pi * t))
    return (tail * (np.cos(np.pi / 2 * t) / norm) + head * (np.sin(np.pi / 2 * t) / norm)).astype(np.float32)


def sample_check(p: dict) -> tuple[str, str] | None:
    """The file exists, soundfile can read it, and the trim is inside it and short enough."""
    path = p["path"]
    if not path:
        return "path", "is required: the audio file to play (WAV, FLAC or OGG)"
    if os.path.isdir(path):
        return "path", f'"{path}" is a directory, not an audio file'
    try:
        reading.check_regular(path)  # before soundfile opens it: a named pipe would block it for good
    except FileNotFoundError:
        return "path", f'file not found: "{path}"'
    except PermissionError:
        return "path", f'"{path}" cannot be read (permission denied)'
    except OSError as e:
        return "path", f'"{path}" cannot be read: {e.strerror or e}'
    try:
        info = sf.info(sndfile_name(path))
    except Exception as err:                # soundfile raises several types for unreadable files
        reason = getattr(err, "error_string", None) or str(err)
        return "path", f'"{path}" is not a readable audio file ({reason.strip().rstrip(".")})'
    duration = info.frames / info.samplerate
    if info.frames <= 0:
        return "path", f'"{path}" holds no audio'
    if p["start_s"] >= duration:
        return "start_s", f"must be before the end of the file ({duration:g} s), got {show_value(p['start_s'])}"
    end = p["end_s"] or duration
    if p["end_s"] and not p["start_s"] < p["end_s"] <= duration + 1e-9:
        return "end_s", (f"must be 0 (the file's end) or after start_s ({show_value(p['start_s'])}) and within "
                         f"the file ({duration:g} s), got {show_value(p['end_s'])}")
    if end - p["start_s"] > MAX_SAMPLE_S:
        return ("end_s" if p["end_s"] else "path"), (f'"{path}" would play {end - p["start_s"]:.0f} s; a sample '
                                                     f"is at most {MAX_SAMPLE_S:.0f} s (trim it with start_s/end_s)")
    return None


class Sample(_Chunked):
    """A user's file, trimmed to start_s..end_s, resampled, at its own level times gain_db (not normalised).

    Looped: the end crossfades into the start over crossfade_ms (equal power, corrected for how
    alike the two ends are), so the seam has no step; the first pass still starts with the file's
    own first sample.  Not looped: plays once,
    then silence.  The trimmed file is loaded once (at most MAX_SAMPLE_S).
    """

    def __init__(self, p: dict, sample_rate_hz: int, rng: np.random.Generator):
        sr = sample_rate_hz
        info = sf.info(sndfile_name(p["path"]))
        start = round(p["start_s"] * info.samplerate)
        stop = round(p["end_s"] * info.samplerate) if p["end_s"] else info.frames
        x, file_sr = sf.read(sndfile_name(p["path"]), start=start, stop=stop, dtype="float32", always_2d=True)
        x = _to_stereo(x)
        if file_sr != sr:
            g = math.gcd(sr, file_sr)
            x = resample_poly(x, sr // g, file_sr // g, axis=0)
        x = np.ascontiguousarray(x.T, dtype=np.float32)
        self.loop, self.head = p["loop"] and x.shape[1] > 1, x[:, :0]
        if self.loop:
            fade = min(round(p["crossfade_ms"] * sr / 1000), x.shape[1] // 2)
            if fade > 0:
                self.head = x[:, :fade].copy()                  # the first pass plays the true start
                x = np.concatenate([_crossfade(x[:, -fade:], x[:, :fade]), x[:, fade:-fade]], axis=1)
        self.x, self.gain = x, np.float32(_db(p["gain_db"]))

    def _chunk(self, grid: _Grid) -> np.ndarray:
        n, idx = self.x.shape[1], grid.start + np.arange(grid.m)
        if self.loop:
            y = np.take(self.x, idx % n, axis=1)
            first = idx < self.head.shape[1]
            y[:, first] = self.head[:, idx[first]]
        else:
            y = np.zeros((2, grid.m), np.float32)
            part = self.x[:, grid.start:grid.start + grid.m]
            y[:, :part.shape[1]] = part
        y *= self.gain
        if (r := self.ctl.ratio("gain_db", grid)) is not None:
            y *= r
        return y
