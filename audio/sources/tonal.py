"""drone and tone: oscillators whose phases integrate their (automatable) frequencies."""

from __future__ import annotations

import math

import numpy as np

from audio.schema import show_value

from .core import PEAK_LIMIT, TARGET_RMS, _below_nyquist, _children, _Chunked, _Grid, _Phase, _Wavetable

CHORDS = {
    "octave": (1.0, 2.0),
    "fifth": (1.0, 1.5, 2.0),
    "major": (1.0, 1.25, 1.5),
    "minor": (1.0, 1.2, 1.5),
    "tritone": (1.0, 45 / 32, 2.0),
    "cluster": (1.0, 16 / 15, 9 / 8, 6 / 5),
}
WAVEFORMS = {                  # harmonic amplitudes; few harmonics keep them soft
    "sine": (1.0,),
    "soft_saw": tuple(1.0 / k for k in range(1, 7)),
    "soft_square": tuple(1.0 / k if k % 2 else 0.0 for k in range(1, 8)),
}


class Drone(_Chunked):
    """A chord of detuned oscillator pairs; slow amplitude LFO, slow dark <-> bright crossfade.

    Wavetables are band-limited for the static root, so an automated root far above it may alias.
    """

    PAN = np.array([[0.9, 0.45], [0.45, 0.9]])    # copy A leans left, copy B right

    def __init__(self, p: dict, sample_rate_hz: int, rng: np.random.Generator):
        sr = self.sr = sample_rate_hz
        (setup,) = _children(rng, 1)
        spread = 2.0 ** (p["detune_cents"] / 2400.0)
        limit = min(0.45 * sr, 16000.0)
        # Harmonic k is scaled by ratio**(k-1); the crossfade moves between a dark and a bright ratio.
        ratios = (0.2 + 0.3 * p["brightness"], 0.35 + 0.5 * p["brightness"])
        self.oscs, intervals, phases = [], [], []     # oscs: (copy 0/1, dark + bright wavetable)
        for i, interval in enumerate(CHORDS[p["chord"]]):
            for copy in (0, 1):
                f = _below_nyquist(p["root_hz"] * interval * spread ** (2 * copy - 1), sr)
                amps = [(1.0 if i == 0 else 0.7) * a * (k * f < limit) for k, a in enumerate(WAVEFORMS[p["waveform"]], 1)]
                self.oscs.append((copy, _Wavetable(*[[a * r**k for k, a in enumerate(amps)] for r in ratios])))
                intervals.append(interval)
                phases.append(setup.uniform(0, 1))
        self.intervals = np.array(intervals)[:, None]
        self.signs = np.resize([-1.0, 1.0], len(intervals))[:, None]     # copy A below, copy B above
        self.osc_phase = _Phase(phases, self._hz(p["root_hz"], p["detune_cents"]) / sr)
        self.lfo_phase = _Phase(setup.uniform(0, 1, 2), np.array([p["lfo_hz"], p["brightness_lfo_hz"]]) / sr)

        # Level: mean power over the crossfade and the amplitude LFO, capped by the peak bound.
        fade = 0.5 - 0.5 * np.cos(np.linspace(0, 2 * np.pi, 32, endpoint=False))[:, None]
        power = peak = 0.0
        for copy, table in self.oscs:
            y = (1 - fade) * table.table[0] + fade * table.table[1]
            power += float(np.mean(y.astype(np.float64) ** 2)) * self.PAN[0, copy] ** 2
            peak += table.peak.max() * self.PAN[0, copy]
        d = p["lfo_depth"]
        lfo_mean_square = (1 - d / 2) ** 2 + d * d / 8
        self.gain = np.float32(min(TARGET_RMS / math.sqrt(power * lfo_mean_square), PEAK_LIMIT / peak))

    def _hz(self, root_hz, detune_cents):
        """Oscillator frequencies (k, 1) or (k, points) for a root and detune (floats or grid arrays)."""
        return _below_nyquist(root_hz * self.intervals * (2.0 ** (detune_cents / 2400.0)) ** self.signs, self.sr)

    def _chunk(self, grid: _Grid) -> np.ndarray:
        c, sr, auto = self.ctl, self.sr, self.ctl.now.keys()
        moving = auto & {"root_hz", "detune_cents"}
        turns = self.osc_phase.at(grid, self._hz(c["root_hz"], c["detune_cents"]) / sr if moving else None)
        pos = grid.expand(turns, wrap=True, scale=_Wavetable.SIZE)
        dark, bright = np.zeros((2, 2, grid.m), np.float32)      # each (copy, m)
        for (copy, table), x in zip(self.oscs, pos):
            y = table(x)
            dark[copy] += y[0]
            bright[copy] += y[1]
        rates = None
        if auto & {"lfo_hz", "brightness_lfo_hz"}:
            rates = np.empty((2, len(grid.pos)))
            rates[0], rates[1] = c["lfo_hz"], c["brightness_lfo_hz"]
        lfo_turns, fade_turns = self.lfo_phase.at(grid, None if rates is None else rates / sr)
        lfo = 1 - c["lfo_depth"] * (0.5 - 0.5 * np.cos(2 * np.pi * lfo_turns))
        fade = 0.5 - 0.5 * np.cos(2 * np.pi * fade_turns)
        copies = dark + (bright - dark) * grid.expand(fade)
        return (self.PAN @ copies) * (grid.expand(lfo) * self.gain)


class Tone(_Chunked):
    """Sine at RMS 0.1 (amplitude 0.1414), optionally swept once then held.

    An automated freq_hz is the frequency before the sweep: the sweep multiplies it.
    """

    def __init__(self, p: dict, sample_rate_hz: int, rng: np.random.Generator):
        sr = self.sr = sample_rate_hz
        f0 = _below_nyquist(p["freq_hz"], sr)
        sweeping = p["to_hz"] > 0 and p["sweep_s"] > 0
        self.sweep_ratio = _below_nyquist(p["to_hz"], sr) / f0 if sweeping else 1.0
        self.sweep_samples = max(p["sweep_s"] * sr, 1.0) if sweeping else 0.0
        self.exponential = p["sweep_curve"] == "exponential"
        self.phase = _Phase(0.0, f0 / sr)

    def _chunk(self, grid: _Grid) -> np.ndarray:
        hz = self.ctl["freq_hz"]
        if self.sweep_samples > 0:
            t = np.minimum(grid.pos / self.sweep_samples, 1.0)
            hz = hz * (self.sweep_ratio ** t if self.exponential else 1 + (self.sweep_ratio - 1) * t)
        moving = self.sweep_samples > 0 or "freq_hz" in self.ctl.now
        turns = self.phase.at(grid, _below_nyquist(hz, self.sr) / self.sr if moving else None)
        x = (TARGET_RMS * math.sqrt(2)) * np.sin(grid.expand(turns, wrap=True, scale=2 * np.pi))
        return np.stack([x, x])


def tone_check(p: dict) -> tuple[str, str] | None:
    if 0 < p["to_hz"] < 10:
        return "to_hz", f"must be 0 (no sweep) or at least 10, got {show_value(p['to_hz'])}"
    return None
