"""Building blocks shared by the generators: the table's types, grids, filters, automation, events.

Conventions: a chunk is a (2, m) float array; slow things live on an absolute grid of points every
GRID_SAMPLES and are expanded to samples by linear interpolation; each random stream has its own
child rng consumed strictly in order; nothing depends on where a caller cuts its blocks.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Callable, Protocol

import numpy as np
from scipy import signal

from audio.schema import Param

TARGET_RMS = 0.1
PEAK_LIMIT = 0.9           # tonal sources are scaled down if they could peak above this
CHUNK_SAMPLES = 16384      # render() works in chunks of at most this many frames (cache friendly)
GRID_SAMPLES = 32          # slow signals are computed on this absolute grid, then interpolated
CONTROL_SAMPLES = 128      # automation: one control point every this many samples (absolute)
MIN_CORNER_HZ = 10.0


class Generator(Protocol):
    def render(self, n_samples: int, controls: dict[str, np.ndarray] | None = None) -> np.ndarray: ...


@dataclass(frozen=True)
class Source:
    name: str
    doc: str
    params: tuple[Param, ...]
    factory: Callable[[dict, int, np.random.Generator], Generator]
    # Optional rule across parameters: full params -> (param name, message) or None.
    check: Callable[[dict], tuple[str, str] | None] | None = None


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


def _below_nyquist(freq_hz, sample_rate_hz: float):
    return np.minimum(freq_hz, 0.45 * sample_rate_hz)


def _db(x_db):
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


IDENTITY_SOS = np.array([1.0, 0.0, 0.0, 1.0, 0.0, 0.0])


def _butter2(kind: str, freq_hz: np.ndarray, sample_rate_hz: float) -> np.ndarray:
    """(k, 6) sos rows of 2nd-order Butterworth "lowpass"/"highpass" filters, one per frequency.

    The same bilinear design as scipy.signal.butter(2, f), vectorised so a moving corner costs
    one numpy expression per chunk.
    """
    k = np.tan(np.pi * np.asarray(freq_hz, float) / sample_rate_hz)
    norm = 1.0 / (1.0 + math.sqrt(2) * k + k * k)
    b0 = k * k * norm if kind == "lowpass" else norm
    b1 = 2 * b0 if kind == "lowpass" else -2 * b0
    ones = np.ones_like(k)
    return np.stack([b0, b1, b0, ones, 2 * (k * k - 1) * norm, (1 - math.sqrt(2) * k + k * k) * norm], axis=-1)


class _Filter:
    """An sos filter over (2, m) blocks, state carried between blocks.

    direct: run it as one transfer function (lfilter), ~25 % faster than sosfilt for the
    4th-order band-passes used here and exact enough at that order in float64.
    """

    def __init__(self, sos: np.ndarray, direct: bool = False):
        self.sos = np.atleast_2d(sos)
        self.ba = signal.sos2tf(self.sos) if direct and len(self.sos) else None
        self.zi = np.zeros((2, 2 * len(self.sos))) if self.ba is not None else np.zeros((len(self.sos), 2, 2))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if len(self.sos) == 0:
            return x
        if self.ba is not None:
            y, self.zi = signal.lfilter(*self.ba, x, axis=-1, zi=self.zi)
        else:
            y, self.zi = signal.sosfilt(self.sos, x, axis=-1, zi=self.zi)
        return y


class _Cascade:
    """sos sections over (2, m) blocks, state carried; some may be retuned every STEP samples.

    moving maps a section index to rows_at(step_starts) -> (k, 6): new coefficients for steps
    starting at those absolute samples.  Each section keeps its own state when retuned (as a
    cascade of biquads does), the step in progress continues into the next block, and runs of
    steps with equal coefficients are filtered in one call.  Identity sections are skipped.
    """

    STEP = 256

    def __init__(self, sos: np.ndarray):
        self.sos = np.array(np.atleast_2d(sos), float)
        self.zi = np.zeros((len(self.sos), 2, 2))

    def __call__(self, x: np.ndarray, start: int = 0, moving: dict | None = None) -> np.ndarray:
        m = x.shape[1]
        cuts = np.arange(-(-start // self.STEP), (start + m - 1) // self.STEP + 1) * self.STEP
        if not moving or not len(cuts):
            return self._run(self.sos, x)
        table = np.repeat(self.sos[None], len(cuts) + 1, axis=0)           # (segments, sections, 6)
        for i, rows_at in moving.items():
            table[1:, i] = rows_at(cuts)
        edges = np.r_[0, cuts - start, m]
        if cuts[0] == start:
            table, edges = table[1:], edges[1:]
        self.sos = table[-1].copy()
        # Section by section over the whole block (a cascade allows it): a section that does not
        # move here is one call; a moving one is one call per run of equal coefficients.
        y = x.copy()
        for i in range(table.shape[1]):
            rows = table[:, i]
            keep = np.r_[True, np.any(rows[1:] != rows[:-1], axis=1)]
            starts, rows = edges[:-1][keep], rows[keep]
            off = np.all(rows == IDENTITY_SOS, axis=1).tolist()
            for row, skip, a, b in zip(rows, off, starts.tolist(), np.r_[starts[1:], m].tolist()):
                if skip:
                    self.zi[i] = 0.0
                else:
                    y[:, a:b], self.zi[i] = signal.lfilter(row[:3], row[3:], y[:, a:b], axis=-1, zi=self.zi[i])
        return y

    def _run(self, sos: np.ndarray, x: np.ndarray) -> np.ndarray:
        live = np.any(sos != IDENTITY_SOS, axis=1)
        self.zi[~live] = 0.0
        if not live.any():
            return x
        y, self.zi[live] = signal.sosfilt(sos[live], x, axis=-1, zi=self.zi[live])
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
    """The control grid under one chunk [start, start + m): a point every GRID_SAMPLES, absolute.

    Slow signals are computed at grid points (float64) and expanded to samples by linear
    interpolation (float32), so they depend only on absolute positions.
    """

    def __init__(self, start: int, m: int):
        self.start, self.m = start, m
        self.g0, self.off = start // GRID_SAMPLES, start % GRID_SAMPLES
        self.g1 = self.g0 + (self.off + m + GRID_SAMPLES - 1) // GRID_SAMPLES   # last point used
        self.pos = np.arange(self.g0, self.g1 + 1) * float(GRID_SAMPLES)       # in samples

    def expand(self, x: np.ndarray, wrap: bool = False, scale: float = 1.0) -> np.ndarray:
        """Per-sample values of scale * x from values x (..., points) at the grid points.

        wrap: x is a phase in turns; only its fraction matters, which keeps float32 precise.
        """
        x0 = x[..., :-1] - np.floor(x[..., :-1]) if wrap else x[..., :-1]
        y = np.multiply((np.diff(x) * (scale / GRID_SAMPLES)).astype(np.float32)[..., None], _RAMP)
        y += (x0 * scale).astype(np.float32)[..., None]
        return y.reshape(*x.shape[:-1], -1)[..., self.off:self.off + self.m]

    def hold(self, x: np.ndarray) -> np.ndarray:
        """Per-sample values from values x at grid points, held over each cell (slow gains)."""
        return np.repeat(x[:-1], GRID_SAMPLES)[self.off:self.off + self.m]


class _Integrator:
    """Running integrals at grid points of k rates (per sample, given at grid points): phases, counts.

    Trapezoid steps from the previous chunk's last points, so any chunking gives the same values;
    an oscillator fed its frequency stays phase continuous however the frequency moves.  wrap
    drops whole turns from the carried state (phases), keeping float64 precise for hours.
    """

    def __init__(self, first, wrap: bool = True):
        self.first, self.wrap = np.atleast_1d(np.asarray(first, float)), wrap
        self.g, self.last = 0, None        # values at grid points g - 1 and g

    def at(self, grid: _Grid, rate) -> np.ndarray:
        """(k, points) values at the chunk's grid points; rate is (k, points), (points,), (k, 1) or scalar."""
        v0 = (self.first if self.last is None else self.last[:, grid.g0 - self.g + 1])[:, None]
        if np.ndim(rate) == 0 or np.shape(rate)[-1] == 1:     # steady over the chunk: a straight line
            out = v0 + (np.reshape(rate, (-1, 1)) * GRID_SAMPLES) * np.arange(len(grid.pos))
        else:
            inc = np.atleast_2d(rate)
            inc = (inc[:, :-1] + inc[:, 1:]) * (GRID_SAMPLES / 2)
            out = np.concatenate([np.broadcast_to(v0, (len(inc), 1)), v0 + np.cumsum(inc, axis=1)], axis=1)
        self.g, self.last = grid.g1, out[:, -2:] - (np.floor(out[:, -2:-1]) if self.wrap else 0.0)
        return out


class _Phase(_Integrator):
    """Oscillator phases in turns at grid points, for k oscillators with static rates (k, 1).

    While at() gets no rate (the frequency is the static one) the phase is the exact line
    first + rate * position; from the first moving rate on it is integrated, continuing from
    that line, so an automated frequency never makes a phase jump.
    """

    def __init__(self, first, rate):
        super().__init__(first)
        self.rate = np.reshape(rate, (-1, 1))

    def at(self, grid: _Grid, rate=None) -> np.ndarray:
        if self.last is None and rate is None:
            return self.first[:, None] + self.rate * grid.pos
        if self.last is None:
            self.g, self.last = grid.g0, self.first[:, None] + self.rate * (grid.pos[0] + np.array([-1.0, 0.0])
                                                                             * GRID_SAMPLES)
        return super().at(grid, self.rate if rate is None else rate)


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


# --- automation -----------------------------------------------------------------

class _Controls:
    """Automated float params for the chunk being rendered, as values at its grid points.

    A control point every CONTROL_SAMPLES on the absolute sample index takes the value the
    caller gave at that sample.  The curve reaches a point's value one control step later and is
    linear in between (a 128-sample latency), so a chunk never needs values from the next block
    and the output depends only on values at fixed absolute positions, whatever the block sizes.
    Levels (*_db) are turned into linear gains and smoothed by a causal triangular FIR over the
    points first: a step becomes an S-curve over ~6 control steps (about 17 ms at 44.1 kHz, ~12 ms
    more latency), gentler than any tone's own slope, so level moves never click or zipper.
    """

    GAIN_SMOOTHING = np.array([1.0, 2.0, 3.0, 4.0, 3.0, 2.0, 1.0]) / 16.0

    def __init__(self, params: tuple[Param, ...], full: dict):
        self.spec = {p.name: p for p in params if p.auto}
        self.static = {name: float(full[name]) for name in self.spec}
        self.hist: dict[str, np.ndarray] = {}      # values at the last control points passed
        self.now: dict[str, np.ndarray] = {}       # this chunk: values (gain ratios for *_db) at grid points

    def check(self, controls: dict, n: int) -> dict[str, np.ndarray]:
        out = {}
        for name, values in controls.items():
            if name not in self.spec:
                raise ValueError(f'parameter "{name}" cannot be automated here '
                                 f'(automatable: {", ".join(self.spec) or "none"})')
            out[name] = np.asarray(values, dtype=np.float64)
            if out[name].shape != (n,):
                raise ValueError(f"controls[{name!r}] must have shape ({n},), got {out[name].shape}")
        return out

    def feed(self, controls: dict | None, a: int, grid: _Grid):
        """Take this chunk's control values: controls[name][a:a + m] cover samples start... of grid."""
        self.now = {}
        names = self.hist.keys() | (controls.keys() if controls else set())
        if not names:
            return
        C, s, m = CONTROL_SAMPLES, grid.start, grid.m
        ka, kb = -(-s // C), (s + m - 1) // C                    # control points inside the chunk
        knots = np.arange(ka - 1, kb + 2) * float(C)             # where points ka - 2 .. kb take effect
        for name in names:
            level = name.endswith("_db")
            given = controls.get(name) if controls else None
            if given is None:
                points = np.full(max(kb - ka + 1, 0), self.static[name])
            else:                          # only these samples are read: check and clip them
                points = given[a + ka * C - s:a + m:C]
                if not np.isfinite(points).all():
                    raise ValueError(f"controls[{name!r}] must be finite")
                points = np.clip(points, self.spec[name].min, self.spec[name].max)
            if level:
                points = _db(points - self.static[name])
            hist = self.hist.get(name)
            if hist is None:               # only block 0 starts at sample 0, so this is invariant
                first = points[0] if s == 0 and given is not None else (1.0 if level else self.static[name])
                hist = np.full(len(self.GAIN_SMOOTHING) + 1 if level else 2, first)
            values = np.concatenate([hist, points])
            smooth = np.convolve(values, self.GAIN_SMOOTHING, "valid") if level else values
            self.now[name] = np.interp(grid.pos, knots, smooth)
            self.hist[name] = values[-len(hist):]

    def __getitem__(self, name: str):
        """The param at this chunk's grid points (array), or its static value (float); not for *_db."""
        v = self.now.get(name)
        return self.static[name] if v is None else v

    def gain(self, name: str):
        """A *_db param's linear gain relative to its static value, at grid points (or 1.0 if static)."""
        return self.now.get(name, 1.0)

    def ratio(self, name: str, grid: _Grid) -> np.ndarray | None:
        """That gain per sample (float32), or None if the param is static."""
        v = self.now.get(name)
        return None if v is None else grid.expand(v)

    def at(self, name: str, grid: _Grid, sample) -> float:
        """The param at absolute sample(s) inside this chunk."""
        v = self.now.get(name)
        return self.static[name] if v is None else np.interp(sample, grid.pos, v)


class _Chunked:
    """Base: render() cuts a request into chunks; subclasses return (2, m) from _chunk(grid).

    make_generator gives each generator its `ctl` (_Controls); _chunk reads automatable params
    through it.
    """

    pos = 0

    def render(self, n_samples: int, controls: dict[str, np.ndarray] | None = None) -> np.ndarray:
        """The next n_samples as (n, 2) float32.

        controls: {param: float64 array of n values, one per sample}, for automatable params
        (see automatable()); params not given keep their static value.
        """
        if isinstance(n_samples, bool) or not isinstance(n_samples, numbers.Integral) or n_samples < 0:
            raise ValueError(f"n_samples must be a whole number >= 0, got {n_samples!r}")
        controls = self.ctl.check(controls, int(n_samples)) if controls else None
        out = np.empty((int(n_samples), 2), np.float32)
        for a in range(0, len(out), CHUNK_SAMPLES):
            m = min(CHUNK_SAMPLES, len(out) - a)
            grid = _Grid(self.pos, m)
            self.ctl.feed(controls, a, grid)
            y = self._chunk(grid)
            out[a:a + m, 0], out[a:a + m, 1] = y[0], y[1]     # per column: far faster than y.T
            self.pos += m
        return out


# --- sparse events --------------------------------------------------------------

class _Events:
    """Transients starting where a running count (the integral of a rate) reaches thresholds.

    fire(onset, grid, threshold) -> ((2, L) wave, next threshold) is called once per event, in order, so
    its rngs are consumed the same way whatever the block sizes; the count moves with the rate
    (events per sample at grid points), which makes rates automatable.  An event starts at the
    first sample whose count reaches its threshold: a first threshold of 0 sounds at sample 0.
    """

    def __init__(self, first: float, fire: Callable[[int, _Grid, float], tuple[np.ndarray, float]]):
        self.count, self.next, self.fire = _Integrator(0.0, wrap=False), first, fire
        self.active: list[tuple[int, np.ndarray]] = []

    def __call__(self, grid: _Grid, rate) -> np.ndarray | None:
        if not self.active and np.ndim(rate) == 0 and self.count.last is not None:
            v0 = self.count.last[0, grid.g0 - self.count.g + 1]
            if v0 + rate * GRID_SAMPLES * (grid.g1 - grid.g0) < self.next:      # quiet chunk: skip ahead
                self.count.g, self.count.last = grid.g1, v0 + rate * GRID_SAMPLES * (
                    np.arange(grid.g1 - grid.g0 - 1, grid.g1 - grid.g0 + 1)[None])
                return None
        count, end = self.count.at(grid, rate)[0], grid.start + grid.m
        while True:
            j = int(np.searchsorted(count, self.next))
            if j >= len(count):
                break
            x = grid.pos[0] if j == 0 else \
                grid.pos[j - 1] + GRID_SAMPLES * (self.next - count[j - 1]) / (count[j] - count[j - 1])
            onset = max(math.ceil(x), grid.start)
            if onset >= end:
                break
            wave, self.next = self.fire(onset, grid, self.next)
            self.active.append((onset, wave))
        if not self.active:
            return None
        out = np.zeros((2, grid.m), np.float32)
        for onset, wave in self.active:
            a, b = max(onset, grid.start), min(onset + wave.shape[1], end)
            if b > a:
                out[:, a - grid.start:b - grid.start] += wave[:, a - onset:b - onset]
        self.active = [(o, w) for o, w in self.active if o + w.shape[1] > end]
        return out


def _shape(y: np.ndarray, pan: float, peak: float) -> np.ndarray:
    """A mono transient made DC-free, scaled to this peak and panned (-1..1, centre keeps both at peak)."""
    bump = np.hanning(len(y) + 2)[1:-1]
    y = y - bump * (y.sum() / bump.sum())
    y *= peak / max(np.abs(y).max(), 1e-12)
    return np.stack([y * min(1.0, 1.0 - pan), y * min(1.0, 1.0 + pan)]).astype(np.float32)


def _soft_clip(y: np.ndarray, knee: float = 0.8, ceiling: float = 0.99) -> np.ndarray:
    """y unchanged below the knee, bent smoothly (slope 1 at the knee) towards the ceiling above it."""
    big = np.abs(y) > knee
    if big.any():
        room = ceiling - knee
        y[big] = np.sign(y[big]) * (knee + room * np.tanh((np.abs(y[big]) - knee) / room))
    return y


def _damped(sr: float, length_s: float, freqs, amps, decays_s) -> np.ndarray:
    """Sum of exponentially decaying sines (modes of a struck object); freqs near Nyquist dropped."""
    t = np.arange(max(int(length_s * sr), 2)) / sr
    y = np.zeros_like(t)
    for f, a, d in zip(freqs, amps, decays_s):
        if f < 0.45 * sr:
            y += a * np.exp(-t / d) * np.sin(2 * np.pi * f * t)
    return y


def _band(x: np.ndarray, low_hz: float, high_hz: float, sr: float) -> np.ndarray:
    """x through a one-biquad Butterworth band-pass low_hz..high_hz (high clamped below Nyquist).

    The bilinear design of scipy.signal.butter(1, [low, high], "bandpass"), in closed form: it
    runs once per transient, where butter's general machinery would cost more than the filtering.
    """
    high = float(_below_nyquist(high_hz, sr))
    low = min(low_hz, high / 1.2)
    k = 2.0 * sr
    w1, w2 = (k * math.tan(math.pi * f / sr) for f in (low, high))
    bw, w0_sq = (w2 - w1) * k, w1 * w2
    a = np.array([k * k + bw + w0_sq, 2 * (w0_sq - k * k), k * k - bw + w0_sq])
    return signal.lfilter(np.array([bw, 0.0, -bw]) / a[0], a / a[0], x)
