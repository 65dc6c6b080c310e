"""noise: coloured noise with optional band limits and stereo width, all three automatable."""

from __future__ import annotations

import math

import numpy as np
from scipy import signal

from audio.schema import show_value

from .core import (IDENTITY_SOS, MIN_CORNER_HZ, TARGET_RMS, _brown_sos, _butter2, _Cascade, _children, _Chunked,
                   _Filter, _Grid, _impulse_energy, _mix_matrix, _soft_clip, _white)

_PINK_B = [0.049922035, -0.095993537, 0.050612699, -0.004408786]     # the classic -3 dB/oct IIR
_PINK_A = [1.0, -2.494956002, 2.017265875, -0.522189400]


def _pink_sos(sr: float, invert: bool = False) -> np.ndarray:
    """Pink with a DC block (zero at 1, pole at 10 Hz) in its spare slot; inverted (blue) without."""
    z, p = np.roots(_PINK_B), np.roots(_PINK_A)       # both inside |z| = 1, so either way is stable
    if invert:
        return signal.zpk2sos(p, z, 1.0)
    return signal.zpk2sos(np.r_[z, 1.0], np.r_[p, math.exp(-2 * math.pi * 10.0 / sr)], 1.0)


def _dc_block(sr: float) -> np.ndarray:
    """A zero at DC and a pole at 10 Hz: takes out DC and drift, inaudible above 50 Hz."""
    return np.array([[1.0, -1.0, 0.0, 1.0, -math.exp(-2 * math.pi * 10.0 / sr), 0.0]])


COLOURS = {
    "white": _dc_block,
    "pink": _pink_sos,
    "brown": lambda sr: _brown_sos(5.0, 20.0, sr),
    "blue": lambda sr: _pink_sos(sr, invert=True),
    "violet": lambda sr: np.array([[1.0, -1.0, 0.0, 1.0, 0.0, 0.0]]),   # first difference
}


CORNERS = ("low_hz", "high_hz")
MIN_LOWPASS_HZ = 40.0          # lower, a normalised low-pass would be all infrasound (a wandering offset)


class Noise(_Chunked):
    """Coloured noise with optional band limits and stereo width, at RMS 0.1 whatever the corners.

    An automated corner retunes its biquad every _Cascade.STEP samples, keeping its state, and a
    gain after the filter follows its power so the RMS stays 0.1 as it moves (as it is for any
    static corner); an automated width mixes per sample.
    """

    ROUND = 24                 # moving corners snap to 1/ROUND octave (50 cents)
    MAX_BOOST = 1000.0         # level correction limit for corners that nearly close the band
    RISE = 10 ** (2 / 20)      # the correction rises at most 2 dB per filter step (~345 dB/s at 44.1 kHz)

    def __init__(self, p: dict, sample_rate_hz: int, rng: np.random.Generator):
        self.sr = sample_rate_hz
        (self.rng,) = _children(rng, 1)
        colour = COLOURS[p["color"]](self.sr)
        self.sos = np.vstack([colour] + [self._corner(name, p[name]) for name in CORNERS])   # colour, corners
        self.live = np.any(self.sos != IDENTITY_SOS, axis=1)
        self.filter = _Filter(self.sos[self.live])         # static: the live sections in one call
        self.cascade = None                                # made when a corner first moves
        self.corner_index = {name: len(self.sos) - 2 + i for i, name in enumerate(CORNERS)}
        self.level = TARGET_RMS / math.sqrt(_impulse_energy(self.sos[self.live], self.sr))
        self.mix = _mix_matrix(1.0 - p["stereo_width"]) * self.level
        # Power response on a log-spaced frequency grid (trapezoid weights), for level corrections.
        w = np.pi * np.r_[0.0, np.geomspace(1e-6, 1.0, 1500)]
        self.tan = np.tan(np.minimum(w, np.pi * 0.9999) / 2)
        self.weights = np.diff(w, prepend=0.0) / 2 + np.diff(w, append=w[-1]) / 2
        self.weights *= (np.abs(signal.sosfreqz(colour, worN=w)[1]) ** 2 if len(colour) else 1.0) / np.pi
        self.energies: dict[tuple[float, float], float] = {}
        self.static_corners = tuple(float(self._snap(name, p[name])[0]) for name in CORNERS)
        self.ramp = (0, 1.0, 1.0)          # level correction: (step start, gain there, gain at its end)

    def _snap(self, name: str, hz) -> np.ndarray:
        """Corner frequencies actually used, 0 = off; moving ones rounded to 1/ROUND octave on a grid
        through the static corner, so steps of a slow sweep share coefficients (one filter call) and
        an envelope holding the static value gives exactly the static filter."""
        hz = np.atleast_1d(np.asarray(hz, float))
        top = 0.45 * self.sr
        corner = np.clip(hz, MIN_CORNER_HZ if name == "low_hz" else MIN_LOWPASS_HZ, top)
        if getattr(self, "ctl", None) is not None and name in self.ctl.now:
            static = self.ctl.static[name]
            anchor = np.log2(min(max(static, MIN_CORNER_HZ), top) if static > 0 else 1000.0)
            corner = np.minimum(2.0 ** (anchor + np.round((np.log2(corner) - anchor) * self.ROUND) / self.ROUND), top)
        return np.where((hz <= 0) | ((hz >= top) if name == "high_hz" else False), 0.0, corner)

    def _corner(self, name: str, hz) -> np.ndarray:
        """(k, 6) biquads for corner values hz; 0 (and a low-pass at or above 0.45 x sr) is off."""
        corner = self._snap(name, hz)
        rows = _butter2("highpass" if name == "low_hz" else "lowpass", np.maximum(corner, MIN_CORNER_HZ), self.sr)
        rows[corner == 0] = IDENTITY_SOS
        return rows

    def _energy(self, low: float, high: float) -> float:
        """Output power for unit white input with these corners (bilinear Butterworth magnitudes)."""
        key = (low, high)
        if key not in self.energies:
            power = self.weights
            if low > 0:
                power = power / (1 + (np.tan(np.pi * low / self.sr) / np.maximum(self.tan, 1e-12)) ** 4)
            if high > 0:
                power = power / (1 + (self.tan / np.tan(np.pi * high / self.sr)) ** 4)
            self.energies[key] = float(power.sum())
        return self.energies[key]

    def _correction(self, grid: _Grid, corners_at) -> np.ndarray | float:
        """Per-sample output gain keeping the static corners' RMS while corners move, step by step.

        Each coefficient step's target is sqrt(static power / its power).  The gain falls at once
        where a step lets more through (from the grid point before it), and rises at most RISE per
        step, ramped over the step, so a switching transient has died down before a narrowed band
        is brought up.  Linear within steps, it is made at grid points and expanded.
        """
        start, m, size = grid.start, grid.m, _Cascade.STEP
        cuts = np.arange(-(-start // size), (grid.pos[-1] - 1) // size + 1) * size   # steps starting by g1
        s0, low, high = [self.ramp[0]], [self.ramp[1]], [self.ramp[2]]       # the step in progress
        if len(cuts) and cuts[0] == start:
            s0, low, high = [], [], []
        if len(cuts):
            corners = np.stack([corners_at(name, cuts) for name in CORNERS])
            runs = np.flatnonzero(np.r_[True, np.any(corners[:, 1:] != corners[:, :-1], axis=0)])
            reference, previous = self._energy(*self.static_corners), self.ramp[2]
            for a, b in zip(runs.tolist(), np.r_[runs[1:], len(cuts)].tolist()):   # steps a..b-1 share corners
                target = min(math.sqrt(reference / max(self._energy(*corners[:, a].tolist()), 1e-30)),
                             self.MAX_BOOST)
                if target <= previous:
                    low += [target] * (b - a)
                    high += [target] * (b - a)
                else:
                    ramp = np.minimum(previous * self.RISE ** np.arange(1, b - a + 1), target).tolist()
                    low += [previous] + ramp[:-1]
                    high += ramp
                previous = high[-1]
            s0 += cuts.tolist()
        done = int(np.searchsorted(s0, start + m, side="left"))        # steps begun inside this chunk
        self.ramp = (s0[done - 1], low[done - 1], high[done - 1])
        if low == high and min(low) == max(low):
            return low[0]
        s0, low, high = np.array(s0), np.array(low), np.array(high)
        k = np.searchsorted(s0, grid.pos, side="right") - 1
        return grid.expand(low[k] + (high[k] - low[k]) * ((grid.pos - s0[k]) / size))

    def _chunk(self, grid: _Grid) -> np.ndarray:
        c = self.ctl
        x = _white(self.rng, grid.m)
        if "stereo_width" in c.now:
            theta = np.arcsin(1.0 - c["stereo_width"]) / 2
            cos, sin = grid.expand(np.cos(theta) * self.level), grid.expand(np.sin(theta) * self.level)
            x = np.stack([cos * x[0] + sin * x[1], sin * x[0] + cos * x[1]])
        else:
            x = self.mix @ x
        if self.cascade is None:
            if not c.now.keys() & set(CORNERS):
                return self.filter(x)
            self.cascade = _Cascade(self.sos)                 # continue each section's state
            self.cascade.zi[self.live] = self.filter.zi

        def corners_at(name, cuts):
            return self._snap(name, c.at(name, grid, cuts)) if name in c.now else \
                np.full(len(cuts), self.static_corners[CORNERS.index(name)])

        moving = {self.corner_index[name]: (lambda cuts, name=name: self._corner(name, c.at(name, grid, cuts)))
                  for name in CORNERS if name in c.now}
        y = self.cascade(x, grid.start, moving)
        y *= self._correction(grid, corners_at)
        return _soft_clip(y)        # an octaves-wide jump in one step can ring past the level; never clip


def noise_check(p: dict) -> tuple[str, str] | None:
    if 0 < p["high_hz"] < MIN_LOWPASS_HZ:
        return "high_hz", f"must be 0 (off) or at least {MIN_LOWPASS_HZ:.0f}, got {show_value(p['high_hz'])}"
    if p["low_hz"] > 0 and p["high_hz"] > 0 and p["high_hz"] <= p["low_hz"]:
        return "high_hz", f"must be above low_hz ({show_value(p['low_hz'])}) when both are set, got {show_value(p['high_hz'])}"
    return None
