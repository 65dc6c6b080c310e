"""pulse (alias ticks): sparse transients at a rate; glitch: a one-shot burst of digital damage."""

from __future__ import annotations

import numpy as np

from audio.schema import show_value

from .core import (PEAK_LIMIT, TARGET_RMS, _band, _children, _Chunked, _damped, _db, _Events, _Grid, _shape,
                   _soft_clip, _white)

PULSE_KINDS = {                # kind: (tone_hz, decay_ms) used when those params are 0
    "click": (4000.0, 1.5),
    "tick": (3000.0, 12.0),
    "thump": (60.0, 90.0),
}


def _click(rng: np.random.Generator, sr: int, tone_hz: float, decay_s: float) -> np.ndarray:
    """1-3 ms of decaying noise, band-limited two octaves either side of tone_hz: a broadband click."""
    t = np.arange(int((5 * decay_s + 0.002) * sr) + 2) / sr
    return _band(rng.standard_normal(len(t)) * np.exp(-t / decay_s), tone_hz / 4, tone_hz * 4, sr)


def _tick(rng: np.random.Generator, sr: int, tone_hz: float, decay_s: float) -> np.ndarray:
    """A clock tick: three ringing modes from tone_hz up over a 1 ms noise transient around tone_hz."""
    y = _damped(sr, 6 * decay_s + 0.002, tone_hz * np.array([1.0, 1.47, 2.09]), [1.0, 0.5, 0.3],
                decay_s * np.array([1.0, 0.6, 0.4]))
    n = min(len(y), int(0.001 * sr) + 2)
    y[:n] += 0.3 * _band(rng.standard_normal(n) * np.linspace(1, 0, n), tone_hz / 1.5, tone_hz * 1.5, sr)
    return y


def _thump(sr: int, tone_hz: float, decay_s: float, second_s: float | None) -> np.ndarray:
    """A heartbeat-like thump gliding down to tone_hz; with second_s, a softer higher second beat (lub-dub)."""
    t = np.arange(int((6 * decay_s + 0.01) * sr)) / sr

    def beat(hz):
        glide = hz * (1 + 0.5 * np.exp(-t / 0.02))
        return (1 - np.exp(-t / 0.004)) * np.exp(-t / decay_s) * np.sin(2 * np.pi * np.cumsum(glide) / sr)

    y = beat(tone_hz)
    if second_s:
        d = int(second_s * sr)
        y = np.pad(y, (0, d))
        y[d:] += 0.7 * beat(min(tone_hz * 1.12, 0.3 * sr))
    return y


class Pulse(_Chunked):
    """Sparse transients (click, tick, thump) at rate_per_min, optionally jittered.

    The first transient sounds at the layer's first sample (so a one-shot layer anchored to a
    moment gets its transient right there); event k then follows when rate_per_min / 60 has
    integrated to k + jitter * U(-0.5, 0.5).  Each transient peaks at level_db dBFS: the level is a
    peak, not an RMS, so the RMS depends on rate and decay; where fast, long transients pile up
    the sum is bent softly above 0.8 so it never clips.
    """

    def __init__(self, p: dict, sample_rate_hz: int, rng: np.random.Generator):
        self.sr, self.kind, self.double = sample_rate_hz, p["kind"], p["double"]
        self.times, self.shapes = _children(rng, 2)
        self.index, self.peak = 0, _db(p["level_db"])
        self.events = _Events(0.0, self._fire)

    def _fire(self, onset: int, grid: _Grid, threshold: float):
        def v(name):
            return float(self.ctl.at(name, grid, onset))

        tone_default, decay_default = PULSE_KINDS[self.kind]
        tone = min(max(v("tone_hz") or tone_default, 20.0), 0.4 * self.sr)
        decay = max(v("decay_ms") or decay_default, 0.1) / 1000
        if self.kind == "thump":
            rate = v("rate_per_min")
            y = _thump(self.sr, min(tone, 0.3 * self.sr), decay,
                       (min(0.28, 24 / rate) if rate > 0 else 0.28) if self.double else None)
        else:
            y = (_click if self.kind == "click" else _tick)(self.shapes, self.sr, tone, decay)
        pan = v("pan_spread") * self.shapes.uniform(-1, 1)
        self.index += 1
        following = self.index + v("jitter") * self.times.uniform(-0.5, 0.5)
        return _shape(y, pan, self.peak), max(following, threshold)

    def _chunk(self, grid: _Grid) -> np.ndarray:
        y = self.events(grid, self.ctl["rate_per_min"] / (60.0 * self.sr))
        if y is None:
            return np.zeros((2, grid.m), np.float32)
        if (r := self.ctl.ratio("level_db", grid)) is not None:
            y *= r
        return _soft_clip(y)            # overlapping transients (fast rate, long decay) must not clip


def pulse_check(p: dict) -> tuple[str, str] | None:
    if 0 < p["tone_hz"] < 20:
        return "tone_hz", f"must be 0 (the kind's default) or at least 20, got {show_value(p['tone_hz'])}"
    return None


# --- glitch ---------------------------------------------------------------------------

def _material(kind: str, rng: np.random.Generator, sr: int, n: int, tone_hz: float) -> np.ndarray:
    """(2, n) raw material at about unit level: white noise, a tone, or a server-hum-like 60 Hz buzz."""
    t = np.arange(n) / sr
    if kind == "noise":
        return _white(rng, n)
    if kind == "tone":
        f = min(tone_hz, 0.4 * sr)
        x = np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi)) + 0.3 * np.sin(6 * np.pi * f * t)
        return np.stack([x, x])
    k = np.arange(1, 26)[:, None]                   # hum: 60 Hz sawtooth-like buzz with a little fan hiss
    buzz = ((k * 60.0 < 0.45 * sr) / k * np.sin(2 * np.pi * 60.0 * k * t + rng.uniform(0, 2 * np.pi, (25, 1)))).sum(0)
    return buzz + 0.15 * _band(_white(rng, n), 200.0, 3000.0, sr)


class Glitch(_Chunked):
    """A one-shot burst of digital damage made once, at the layer's start, then silence.

    material -> stutter (the first slice_ms played `stutter` times, then the material goes on
    from there) -> bit crush (2**bits levels spanning the burst's peak) -> sample-and-hold at
    downsample_hz -> dropouts (random 5-40 ms gaps) -> mean removed -> scaled to RMS 0.1 over the
    burst (peak <= 0.9).  Deterministic from the rng.
    """

    def __init__(self, p: dict, sample_rate_hz: int, rng: np.random.Generator):
        sr = sample_rate_hz
        material_rng, drop_rng = _children(rng, 2)
        n = max(round(p["length_ms"] * sr / 1000), 1)
        cut = min(max(round(p["slice_ms"] * sr / 1000), 1), n)
        plays = max(min(p["stutter"], n // cut), 1)
        x = _material(p["material"], material_rng, sr, cut + max(n - plays * cut, 0), p["tone_hz"])
        burst = np.concatenate([np.tile(x[:, :cut], plays), x[:, cut:]], axis=1)[:, :n]
        if p["bitcrush_bits"]:
            half = 2 ** (p["bitcrush_bits"] - 1)
            burst = (np.clip(np.floor(burst / np.abs(burst).max() * half), -half, half - 1) + 0.5) / half
        if 0 < p["downsample_hz"] < sr:
            hold = sr / max(p["downsample_hz"], 1.0)            # below 1 Hz: one value per second
            burst = burst[:, (np.floor(np.arange(n) / hold) * hold).astype(int)]
        kept = np.ones(n, bool)
        if p["dropouts"] > 0:
            edges = np.cumsum(drop_rng.uniform(0.005, 0.04, int(n / (0.005 * sr)) + 2) * sr).astype(int)
            for a, b in zip(np.r_[0, edges[:-1]], edges):
                if a < n and drop_rng.uniform() < p["dropouts"]:
                    kept[a:b] = False
        burst[:, ~kept] = 0.0
        if kept.any():          # crushed, stuttered material can sit off zero: shift it (levels stay levels)
            burst[:, kept] -= burst[:, kept].mean(axis=1, keepdims=True)
        rms, peak = np.sqrt(np.mean(burst**2)), np.abs(burst).max()
        self.burst = (burst * (min(TARGET_RMS / rms, PEAK_LIMIT / peak) if peak > 1e-6 else 0.0)).astype(np.float32)

    def _chunk(self, grid: _Grid) -> np.ndarray:
        out = np.zeros((2, grid.m), np.float32)
        part = self.burst[:, grid.start:grid.start + grid.m]
        out[:, :part.shape[1]] = part
        return out
