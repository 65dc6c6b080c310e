"""Sound sources for ambience layers, kept as data.

``SOURCES`` maps a source name to its one-line doc, its parameter spec and a
factory, so ``piece sources``, score validation and the docs all read one table.

A generator's ``render(n_samples)`` returns float32 of shape (n_samples, 2).
Generators are block invariant: everything periodic is computed from the
absolute sample index, filter state is carried, and each random stream has its
own child rng consumed strictly in order.  At default parameters the RMS is
about 0.1 (-20 dBFS) per channel; levels are set analytically, never measured
from the rendered block.
"""

from __future__ import annotations

import difflib
import math
import numbers
from dataclasses import dataclass
from typing import Callable, Protocol

import numpy as np
from scipy import signal

from audio.errors import score_error

TARGET_RMS = 0.1
PEAK_LIMIT = 0.9           # tonal sources are scaled down if they could peak above this
CHUNK_SAMPLES = 16384      # render() works in chunks of at most this many frames (cache friendly)
GRID_SAMPLES = 32          # slow signals are computed on this absolute grid, then interpolated
MIN_CORNER_HZ = 10.0


class Generator(Protocol):
    def render(self, n_samples: int) -> np.ndarray: ...


@dataclass(frozen=True)
class Param:
    name: str
    default: float | int | str | bool
    doc: str
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Source:
    name: str
    doc: str
    params: tuple[Param, ...]
    factory: Callable[[dict, int, np.random.Generator], Generator]
    # Optional rule across parameters: full params -> (param name, message) or None.
    check: Callable[[dict], tuple[str, str] | None] | None = None


# --- building blocks ------------------------------------------------------------

def _children(rng: np.random.Generator, k: int) -> list[np.random.Generator]:
    """k independent child rngs, so separate random streams never interleave."""
    return [np.random.default_rng(int(s)) for s in rng.integers(0, 2**63, size=k)]


def _white(rng: np.random.Generator, m: int) -> np.ndarray:
    """(2, m) unit-variance white noise from one 64-bit draw per frame.

    Uniform rather than Gaussian: the same spectrum, Gaussian after any colouring
    filter, bounded, and several times faster than normal draws.
    """
    out = rng.bit_generator.random_raw(m).view(np.int32).reshape(m, 2).T.astype(np.float64, order="C")
    out *= math.sqrt(3.0) / 2.0**31
    return out


def _mix_matrix(correlation: float) -> np.ndarray:
    """2x2 matrix turning two independent unit channels into two with this correlation."""
    theta = math.asin(min(max(correlation, 0.0), 1.0)) / 2
    c, s = math.cos(theta), math.sin(theta)
    return np.array([[c, s], [s, c]])


def _below_nyquist(freq_hz: float, sample_rate_hz: float) -> float:
    return min(freq_hz, 0.45 * sample_rate_hz)


def _db(x_db: float) -> float:
    return 10.0 ** (x_db / 20.0)


def _impulse_energy(sos: np.ndarray, sample_rate_hz: float) -> float:
    """sum of h[n]^2 of a stable sos filter: its output variance for unit white input."""
    if len(sos) == 0:
        return 1.0
    r = max(np.abs(signal.sos2zpk(sos)[1]).max(initial=0.0), 0.5)
    impulse = np.zeros(int(min(30.0 / (1.0 - r) + 1024, 40 * sample_rate_hz)))
    impulse[0] = 1.0
    return float(np.sum(signal.sosfilt(sos, impulse) ** 2))


def _brown_sos(corner_hz: float, dc_block_hz: float, sample_rate_hz: float) -> np.ndarray:
    """-6 dB/oct above both corners: a leaky integrator times a DC-blocking high-pass, one biquad."""
    r_int, r_hp = (math.exp(-2 * math.pi * f / sample_rate_hz) for f in (corner_hz, dc_block_hz))
    return np.array([[1.0, -1.0, 0.0, 1.0, -(r_int + r_hp), r_int * r_hp]])


class _Filter:
    """An sos filter over (2, m) blocks, state carried between blocks."""

    def __init__(self, sos: np.ndarray):
        self.sos = np.atleast_2d(sos)
        self.zi = np.zeros((len(self.sos), 2, 2))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if len(self.sos) == 0:
            return x
        y, self.zi = signal.sosfilt(self.sos, x, axis=-1, zi=self.zi)
        return y


class _Lazy:
    """Rows first, first+1, ... of an endless series, made strictly in order by make(count).

    make may return more rows than asked (at least `batch`).  Callers ask for ranges
    whose start never decreases; rows before it are dropped, so memory stays bounded.
    """

    def __init__(self, make: Callable[[int], np.ndarray], first: int = 0, batch: int = 1):
        self.make, self.first, self.batch, self.rows = make, first, batch, None

    def get(self, k0: int, k1: int) -> np.ndarray:
        made = self.first + (0 if self.rows is None else len(self.rows))
        if k1 >= made:
            new = self.make(max(k1 - made + 1, self.batch))
            self.rows = new if self.rows is None else np.concatenate([self.rows, new])
        if k0 > self.first:
            self.rows, self.first = self.rows[k0 - self.first:], k0
        return self.rows[k0 - self.first:k1 - self.first + 1]


_RAMP = np.arange(GRID_SAMPLES, dtype=np.float32)


class _Grid:
    """The control grid under one chunk: a point every GRID_SAMPLES at absolute positions.

    Slow signals are computed at grid points (float64) and expanded to samples by
    linear interpolation (float32), so they depend only on absolute positions.
    """

    def __init__(self, start: int, m: int):
        self.g0, self.off, self.m = start // GRID_SAMPLES, start % GRID_SAMPLES, m
        self.g1 = self.g0 + (self.off + m + GRID_SAMPLES - 1) // GRID_SAMPLES   # last point used
        self.pos = np.arange(self.g0, self.g1 + 1) * float(GRID_SAMPLES)       # in samples

    def expand(self, x: np.ndarray, wrap: bool = False, scale: float = 1.0) -> np.ndarray:
        """Per-sample values of scale * x from values x (..., points) at the grid points.

        wrap: x is a phase in turns; only its fraction matters, which keeps float32 precise.
        """
        x0 = x[..., :-1] - np.floor(x[..., :-1]) if wrap else x[..., :-1]
        step = (np.diff(x) * (scale / GRID_SAMPLES)).astype(np.float32)
        y = (x0 * scale).astype(np.float32)[..., None] + step[..., None] * _RAMP
        return y.reshape(*x.shape[:-1], -1)[..., self.off:self.off + self.m]

    def hold(self, x: np.ndarray) -> np.ndarray:
        """Per-sample values from values x at grid points, held over each cell (slow gains)."""
        return np.repeat(x[:-1], GRID_SAMPLES)[self.off:self.off + self.m]

    def turns(self, freq_hz, sample_rate_hz: float, phase=0.0, scale: float = 1.0) -> np.ndarray:
        """Oscillator phase per sample, in turns times scale (>= 0); phase may vary per grid point."""
        return self.expand(self.pos * (freq_hz / sample_rate_hz) + phase, wrap=True, scale=scale)


class _SlowCurves:
    """n smooth random curves of about [-1, 1] (slow drifts), as rows at grid points.

    A control point per curve every ~step_s, drawn lazily in order from a dedicated
    rng; Catmull-Rom in between, made a whole segment at a time.
    """

    def __init__(self, rng: np.random.Generator, n: int, step_s: float, sample_rate_hz: float):
        self.seg = max(round(step_s * sample_rate_hz / GRID_SAMPLES), 1)     # grid points per segment
        t = np.arange(self.seg)[:, None] / self.seg
        self.basis = 0.5 * np.hstack([-t + 2 * t**2 - t**3, 2 - 5 * t**2 + 3 * t**3,
                                      t + 4 * t**2 - 3 * t**3, t**3 - t**2])
        self.points = _Lazy(lambda count: rng.uniform(-1, 1, (count, n)), first=-1)
        self.next_segment = 0
        self.rows = _Lazy(self._make)

    def _make(self, count: int) -> np.ndarray:
        out = []
        for _ in range(-(-count // self.seg)):
            k = self.next_segment
            out.append(self.basis @ self.points.get(k - 1, k + 2))
            self.next_segment += 1
        return np.concatenate(out)

    def at(self, grid: _Grid) -> np.ndarray:
        return self.rows.get(grid.g0, grid.g1)


class _Wavetable:
    """Rows of one period of sum_k amps[k-1] sin(2 pi k t), read with linear interpolation."""

    SIZE = 2048

    def __init__(self, *amps_rows):
        phase = 2 * np.pi * np.arange(self.SIZE) / self.SIZE
        y = np.array([sum(a * np.sin(k * phase) for k, a in enumerate(amps, 1)) for amps in amps_rows])
        self.table = y.astype(np.float32)
        self.slope = (np.roll(y, -1, axis=1) - y).astype(np.float32)
        self.rms = np.sqrt(np.mean(y**2, axis=1))
        self.peak = np.abs(y).max(axis=1)

    def __call__(self, pos: np.ndarray) -> np.ndarray:
        """(rows, m) values at table positions pos (turns * SIZE, >= 0)."""
        whole = np.floor(pos)
        i = whole.astype(np.int32) & (self.SIZE - 1)
        return np.take(self.table, i, axis=1) + np.take(self.slope, i, axis=1) * (pos - whole)


class _Chunked:
    """Base: render() cuts a request into chunks; subclasses return (2, m) from _chunk(start, m)."""

    pos = 0

    def render(self, n_samples: int) -> np.ndarray:
        if isinstance(n_samples, bool) or not isinstance(n_samples, numbers.Integral) or n_samples < 0:
            raise ValueError(f"n_samples must be a whole number >= 0, got {n_samples!r}")
        out = np.empty((int(n_samples), 2), np.float32)
        for a in range(0, len(out), CHUNK_SAMPLES):
            m = min(CHUNK_SAMPLES, len(out) - a)
            y = self._chunk(self.pos, m)
            out[a:a + m, 0], out[a:a + m, 1] = y[0], y[1]     # per column: far faster than y.T
            self.pos += m
        return out


# --- server_hum -----------------------------------------------------------------

class ServerHum(_Chunked):
    """Mains hum + fan noise with blade-pass tones + HVAC rumble."""

    HUM_WOBBLE = 0.0003        # mains frequency wobble scale (peak ~0.6x this, so < 0.05 %)
    FAN_DETUNE = 0.015         # fans sit 1-2 % apart
    RPM_DRIFT = 0.02           # rpm drift scale at drift = 1 (peak ~0.6x this)
    LEVEL_DRIFT = 0.25         # fan-noise level drift at drift = 1, relative
    STEP_S = 2.0               # spacing of the drift control points

    def __init__(self, p: dict, sample_rate_hz: int, rng: np.random.Generator):
        sr = self.sr = sample_rate_hz
        setup, self.noise_rng, curve_rng, rumble_rng = _children(rng, 4)
        drift, n = p["drift"], p["fans"]
        # Each component is made at unit RMS and weighted by its dB; the whole mix sits at TARGET_RMS.
        w = {k: _db(p[k + "_db"]) for k in ("hum", "fan", "blade", "rumble")}
        scale = TARGET_RMS / math.sqrt(sum(v * v for v in w.values()))

        # Hum: odd harmonics stronger than even (transformer), nearly mono.
        self.mains_hz = p["mains_hz"]
        self.hum = _Wavetable([(1.0 if k % 2 else 0.5) / k if k * self.mains_hz < 0.45 * sr else 0.0
                               for k in range(1, p["harmonics"] + 1)])
        self.hum_gain = (w["hum"] * scale / self.hum.rms[0]) * np.array([[1.02], [0.98]])

        # Blade-pass tones: fan 1 at the nominal frequency, the others 1-2 % off, spread in stereo.
        blade_hz = p["fan_rpm"] / 60.0 * p["fan_blades"]
        detune = [0.0] + [sign * self.FAN_DETUNE * setup.uniform(0.7, 1.3) for sign in np.resize([1, -1], n - 1)]
        self.fan_hz = np.array([[_below_nyquist(blade_hz * (1 + d), sr)] for d in detune])    # (n, 1)
        self.fan_phase = setup.uniform(0, 1, (n, 1))
        angle = (1 + (np.linspace(-0.6, 0.6, n) if n > 1 else np.zeros(1))) * np.pi / 4
        pan = np.stack([np.cos(angle), np.sin(angle)]) * math.sqrt(2)                     # (2, n)
        self.blade_gain = (w["blade"] * scale * math.sqrt(2.0 / n) * pan).astype(np.float32)

        # Slow curves: hum wobble, each fan's rpm drift (both as phase offsets in turns), fan level.
        self.curves = _SlowCurves(curve_rng, n + 2, self.STEP_S, sr)
        self.hum_wobble_turns = self.HUM_WOBBLE * self.mains_hz * self.STEP_S / 2
        self.fan_drift_turns = self.fan_hz * (drift * self.RPM_DRIFT * self.STEP_S / 2)
        self.level_drift = self.LEVEL_DRIFT * drift

        # Fan noise: air through the racks, strongest 120 Hz - 2.5 kHz and falling 12 dB/oct beyond,
        # so it reads as a room's rush rather than hiss; partly shared between channels.
        fan_sos = signal.butter(2, [120.0, _below_nyquist(2500.0, sr)], "bandpass", fs=sr, output="sos")
        self.fan_filter = _Filter(fan_sos)
        fan_mean_square = _impulse_energy(fan_sos, sr) * (1 + self.level_drift**2 / 3)
        self.fan_mix = _mix_matrix(0.35) * (w["fan"] * scale / math.sqrt(fan_mean_square))

        # Rumble: brown below 120 Hz, so made at sr / GRID_SAMPLES and interpolated up; mostly shared.
        low_sr = sr / GRID_SAMPLES
        rumble_sos = np.vstack([_brown_sos(5.0, 20.0, low_sr),
                                signal.butter(2, _below_nyquist(120.0, low_sr), fs=low_sr, output="sos")])
        rumble_filter = _Filter(rumble_sos)
        rumble_mix = _mix_matrix(0.8) * (w["rumble"] * scale / math.sqrt(_impulse_energy(rumble_sos, low_sr)))
        self.rumble = _Lazy(lambda count: (rumble_mix @ rumble_filter(_white(rumble_rng, count))).T, batch=2048)

    def _chunk(self, start: int, m: int) -> np.ndarray:
        grid = _Grid(start, m)
        u = self.curves.at(grid)
        hum_pos = grid.turns(self.mains_hz, self.sr, self.hum_wobble_turns * u[:, 0], scale=_Wavetable.SIZE)
        out = self.hum_gain * self.hum(hum_pos)[0]
        fan_turns = grid.pos * (self.fan_hz / self.sr) + self.fan_phase + self.fan_drift_turns * u[:, 1:-1].T
        out += self.blade_gain @ np.sin(grid.expand(fan_turns, wrap=True, scale=2 * np.pi))
        fan = self.fan_mix @ self.fan_filter(_white(self.noise_rng, m))
        fan *= grid.hold(1 + self.level_drift * u[:, -1])
        out += fan
        out += grid.expand(self.rumble.get(grid.g0, grid.g1).T)
        return out


# --- noise ------------------------------------------------------------------------

_PINK_B = [0.049922035, -0.095993537, 0.050612699, -0.004408786]     # the classic -3 dB/oct IIR
_PINK_A = [1.0, -2.494956002, 2.017265875, -0.522189400]


def _pink_sos(sr: float, invert: bool = False) -> np.ndarray:
    """Pink with a DC block (zero at 1, pole at 10 Hz) in its spare slot; inverted (blue) without."""
    z, p = np.roots(_PINK_B), np.roots(_PINK_A)       # both inside |z| = 1, so either way is stable
    if invert:
        return signal.zpk2sos(p, z, 1.0)
    return signal.zpk2sos(np.r_[z, 1.0], np.r_[p, math.exp(-2 * math.pi * 10.0 / sr)], 1.0)


_COLOURS = {
    "white": lambda sr: np.zeros((0, 6)),
    "pink": _pink_sos,
    "brown": lambda sr: _brown_sos(5.0, 20.0, sr),
    "blue": lambda sr: _pink_sos(sr, invert=True),
    "violet": lambda sr: np.array([[1.0, -1.0, 0.0, 1.0, 0.0, 0.0]]),   # first difference
}


class Noise(_Chunked):
    """Coloured noise with optional band limits and stereo width."""

    def __init__(self, p: dict, sample_rate_hz: int, rng: np.random.Generator):
        sr = sample_rate_hz
        (self.rng,) = _children(rng, 1)
        sections = [_COLOURS[p["color"]](sr)]
        if p["low_hz"] > 0:
            low = _below_nyquist(max(p["low_hz"], MIN_CORNER_HZ), sr)
            sections.append(signal.butter(2, low, "highpass", fs=sr, output="sos"))
        if 0 < p["high_hz"] < 0.45 * sr:
            sections.append(signal.butter(2, max(p["high_hz"], MIN_CORNER_HZ), fs=sr, output="sos"))
        sos = np.vstack(sections)
        self.filter = _Filter(sos)
        self.mix = _mix_matrix(1.0 - p["stereo_width"]) * (TARGET_RMS / math.sqrt(_impulse_energy(sos, sr)))

    def _chunk(self, start: int, m: int) -> np.ndarray:
        return self.filter(self.mix @ _white(self.rng, m))


def _noise_check(p: dict) -> tuple[str, str] | None:
    if p["low_hz"] > 0 and p["high_hz"] > 0 and p["high_hz"] <= p["low_hz"]:
        return "high_hz", f"must be above low_hz ({_show(p['low_hz'])}) when both are set, got {_show(p['high_hz'])}"
    return None


# --- drone ------------------------------------------------------------------------

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
    """A chord of detuned oscillator pairs; slow amplitude LFO, slow dark <-> bright crossfade."""

    PAN = np.array([[0.9, 0.45], [0.45, 0.9]])    # copy A leans left, copy B right

    def __init__(self, p: dict, sample_rate_hz: int, rng: np.random.Generator):
        sr = self.sr = sample_rate_hz
        (setup,) = _children(rng, 1)
        spread = 2.0 ** (p["detune_cents"] / 2400.0)
        limit = min(0.45 * sr, 16000.0)
        # Harmonic k is scaled by ratio**(k-1); the crossfade moves between a dark and a bright ratio.
        ratios = (0.2 + 0.3 * p["brightness"], 0.35 + 0.5 * p["brightness"])
        self.oscs = []             # (freq_hz, start phase in turns, copy 0/1, dark + bright wavetable)
        for i, interval in enumerate(CHORDS[p["chord"]]):
            for copy, f in enumerate((p["root_hz"] * interval / spread, p["root_hz"] * interval * spread)):
                f = _below_nyquist(f, sr)
                amps = [(1.0 if i == 0 else 0.7) * a * (k * f < limit) for k, a in enumerate(WAVEFORMS[p["waveform"]], 1)]
                table = _Wavetable(*[[a * r**k for k, a in enumerate(amps)] for r in ratios])
                self.oscs.append((f, setup.uniform(0, 1), copy, table))
        self.lfo_hz, self.lfo_depth, self.bright_hz = p["lfo_hz"], p["lfo_depth"], p["brightness_lfo_hz"]
        self.lfo_phase, self.bright_phase = setup.uniform(0, 1, 2)

        # Level: mean power over the crossfade and the amplitude LFO, capped by the peak bound.
        fade = 0.5 - 0.5 * np.cos(np.linspace(0, 2 * np.pi, 32, endpoint=False))[:, None]
        power = peak = 0.0
        for _, _, copy, table in self.oscs:
            y = (1 - fade) * table.table[0] + fade * table.table[1]
            power += float(np.mean(y.astype(np.float64) ** 2)) * self.PAN[0, copy] ** 2
            peak += table.peak.max() * self.PAN[0, copy]
        d = self.lfo_depth
        lfo_mean_square = (1 - d / 2) ** 2 + d * d / 8
        self.gain = np.float32(min(TARGET_RMS / math.sqrt(power * lfo_mean_square), PEAK_LIMIT / peak))

    def _chunk(self, start: int, m: int) -> np.ndarray:
        grid = _Grid(start, m)
        dark, bright = np.zeros((2, 2, m), np.float32)      # each (copy, m)
        for f, phase, copy, table in self.oscs:
            y = table(grid.turns(f, self.sr, phase, scale=_Wavetable.SIZE))
            dark[copy] += y[0]
            bright[copy] += y[1]
        fade = 0.5 - 0.5 * np.cos(2 * np.pi * (grid.pos * (self.bright_hz / self.sr) + self.bright_phase))
        lfo = 1 - self.lfo_depth * (0.5 - 0.5 * np.cos(2 * np.pi * (grid.pos * (self.lfo_hz / self.sr)
                                                                    + self.lfo_phase)))
        copies = dark + (bright - dark) * grid.expand(fade)
        return (self.PAN @ copies) * (grid.expand(lfo) * self.gain)


# --- tone -------------------------------------------------------------------------

class Tone(_Chunked):
    """Sine at RMS 0.1 (amplitude 0.1414), optionally swept once then held; float64 phase."""

    def __init__(self, p: dict, sample_rate_hz: int, rng: np.random.Generator):
        sr = self.sr = sample_rate_hz
        self.f0 = _below_nyquist(p["freq_hz"], sr)
        sweeping = p["to_hz"] > 0 and p["sweep_s"] > 0
        self.f1 = _below_nyquist(p["to_hz"], sr) if sweeping else self.f0
        self.sweep_samples = max(p["sweep_s"] * sr, 1.0) if sweeping else 0.0
        self.exponential = p["sweep_curve"] == "exponential" and self.f1 != self.f0

    def _chunk(self, start: int, m: int) -> np.ndarray:
        idx = np.arange(start, start + m, dtype=np.float64)
        if self.sweep_samples <= 0:
            turns = idx * (self.f0 / self.sr)
        else:       # integral of the swept frequency up to the sweep's end, then steady at f1
            t, dur = np.minimum(idx / self.sweep_samples, 1.0), self.sweep_samples / self.sr
            if self.exponential:
                k = math.log(self.f1 / self.f0)
                swept = self.f0 * dur * np.expm1(k * t) / k
            else:
                swept = dur * (self.f0 * t + (self.f1 - self.f0) * t * t / 2)
            turns = swept + np.maximum(idx - self.sweep_samples, 0.0) * (self.f1 / self.sr)
        x = (TARGET_RMS * math.sqrt(2)) * np.sin(2 * np.pi * (turns - np.floor(turns)))
        return np.stack([x, x])


def _tone_check(p: dict) -> tuple[str, str] | None:
    if 0 < p["to_hz"] < 10:
        return "to_hz", f"must be 0 (no sweep) or at least 10, got {_show(p['to_hz'])}"
    return None


# --- the table --------------------------------------------------------------------

SOURCES: dict[str, Source] = {s.name: s for s in (
    Source("server_hum", "server room: mains hum, fan noise with blade-pass tones, HVAC rumble", (
        Param("mains_hz", 60.0, "mains frequency, Hz (50 or 60 in practice)", 40, 70),
        Param("harmonics", 6, "mains harmonics including the fundamental, count", 1, 16),
        Param("hum_db", -6.0, "hum level relative to the whole mix, dB", -60, 0),
        Param("fans", 3, "fans, each detuned 1-2 % from the others so they beat, count", 1, 8),
        Param("fan_rpm", 2400.0, "fan speed, revolutions per minute", 300, 15000),
        Param("fan_blades", 7, "blades per fan (blade-pass Hz = rpm / 60 * blades), count", 2, 15),
        Param("drift", 0.3, "amount of slow rpm and fan-level drift, 0..1", 0, 1),
        Param("fan_db", -3.0, "broadband fan noise level relative to the whole mix, dB", -60, 0),
        Param("blade_db", -12.0, "blade-pass tones level relative to the whole mix, dB", -60, 0),
        Param("rumble_db", -9.0, "HVAC rumble (below 120 Hz) level relative to the whole mix, dB", -60, 0),
    ), ServerHum),
    Source("noise", "coloured noise (white, pink, brown, blue, violet) with optional band limits", (
        Param("color", "pink", "slope: white 0, pink -3, brown -6, blue +3, violet +6 dB/oct",
              choices=tuple(_COLOURS)),
        Param("low_hz", 0.0, "high-pass corner, Hz (0 = off)", 0, 20000),
        Param("high_hz", 0.0, "low-pass corner, Hz (0 = off)", 0, 20000),
        Param("stereo_width", 1.0, "0 = same noise in both channels, 1 = independent, fraction", 0, 1),
    ), Noise, _noise_check),
    Source("drone", "sustained chord of slowly beating oscillator pairs with slow motion", (
        Param("root_hz", 55.0, "root frequency, Hz", 20, 2000),
        Param("chord", "fifth", "intervals above the root, preset name", choices=tuple(CHORDS)),
        Param("detune_cents", 6.0, "spread of each partial's detuned pair, cents", 0, 50),
        Param("waveform", "soft_saw", "band-limited oscillator shape, name", choices=tuple(WAVEFORMS)),
        Param("brightness", 0.5, "weight of upper harmonics, 0..1", 0, 1),
        Param("brightness_lfo_hz", 0.03, "rate of the slow brightness motion, Hz", 0, 2),
        Param("lfo_hz", 0.05, "rate of the slow amplitude motion, Hz", 0, 5),
        Param("lfo_depth", 0.3, "depth of the slow amplitude motion, 0..1", 0, 1),
    ), Drone),
    Source("tone", "plain sine at -20 dBFS RMS, optionally swept (tests and calibration)", (
        Param("freq_hz", 440.0, "frequency, Hz", 10, 20000),
        Param("to_hz", 0.0, "sweep end frequency, Hz (0 = no sweep)", 0, 20000),
        Param("sweep_s", 0.0, "sweep duration, s (0 = no sweep); held at to_hz afterwards", 0, 3600),
        Param("sweep_curve", "exponential", "sweep shape, name", choices=("linear", "exponential")),
    ), Tone, _tone_check),
)}


# --- validation -------------------------------------------------------------------

def _show(v) -> str:
    """A value as the message shows it: TOML-ish, strings quoted, 40.0 as 40."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return f'"{v}"'
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() else f"{v:g}"
    return str(v)


def _suggest(word, known) -> str:
    close = difflib.get_close_matches(word, known, n=1) if isinstance(word, str) else []
    return f'; did you mean "{close[0]}"?' if close else ""


def _check_value(p: Param, v, file: str, where: str):
    def fail(what):
        return score_error(file, where, what)

    if isinstance(p.default, bool):
        if not isinstance(v, bool):
            raise fail(f"must be true or false, got {_show(v)}")
        return v
    if isinstance(p.default, str):
        if p.choices and v not in p.choices:
            raise fail(f"must be one of {', '.join(p.choices)}, got {_show(v)}{_suggest(v, p.choices)}")
        if not isinstance(v, str):
            raise fail(f"must be a string, got {_show(v)}")
        return v
    whole = isinstance(p.default, int)
    if not isinstance(v, numbers.Real) or isinstance(v, bool):
        raise fail(f"must be a {'whole number' if whole else 'number'}, got {_show(v)}")
    if not math.isfinite(v):
        raise fail(f"must be a finite number, got {_show(v)}")
    if whole and not float(v).is_integer():
        raise fail(f"must be a whole number, got {_show(v)}")
    v = int(v) if whole else float(v)
    if (p.min is not None and v < p.min) or (p.max is not None and v > p.max):
        rule = (f"between {_show(p.min)} and {_show(p.max)}" if p.min is not None and p.max is not None
                else f"at least {_show(p.min)}" if p.min is not None else f"at most {_show(p.max)}")
        raise fail(f"must be {rule}, got {_show(v)}")
    return v


def check_params(source_name: str, params: dict, file: str, where: str) -> dict:
    """Validate a layer's [layer.params] table; return a new dict with every param (defaults filled in)."""
    if source_name not in SOURCES:
        raise score_error(file, where, f'unknown source "{source_name}"{_suggest(source_name, SOURCES)}'
                                       f' (known: {", ".join(SOURCES)})')
    source = SOURCES[source_name]
    if not isinstance(params, dict):
        raise score_error(file, where, f"must be a table of parameters, got {_show(params)}")

    def at(key):
        return f"{where}.{key}" if where else str(key)

    names = [p.name for p in source.params]
    for key in params:
        if key not in names:
            raise score_error(file, at(key), f'unknown parameter "{key}" for source {source_name}'
                                             f'{_suggest(key, names)} (known: {", ".join(names)})')
    full = {p.name: _check_value(p, params[p.name], file, at(p.name)) if p.name in params else p.default
            for p in source.params}
    problem = source.check(full) if source.check else None
    if problem:
        raise score_error(file, at(problem[0]), problem[1])
    return full


def make_generator(source_name: str, params: dict, sample_rate_hz: int,
                   rng: np.random.Generator) -> Generator:
    """Validate params (defaults filled in) and build the source's generator."""
    full = check_params(source_name, params, "", "params")
    if isinstance(sample_rate_hz, bool) or not isinstance(sample_rate_hz, numbers.Integral) \
            or not 8000 <= sample_rate_hz <= 384000:
        raise ValueError(f"sample_rate_hz must be a whole number from 8000 to 384000, got {sample_rate_hz!r}")
    return SOURCES[source_name].factory(full, int(sample_rate_hz), rng)
