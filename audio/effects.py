"""Effects for the voice and the layers, kept as data.

``EFFECTS`` maps an effect name to its one-line doc, its parameter spec and a
factory, so ``piece effects``, score validation and the docs all read one table.
A score gives a chain as a list of inline tables, checked by ``check_chain`` and
built by ``make_chain``; ``Chain.process`` takes (n, channels) float64 blocks and
carries all state, so any split into blocks gives the same output (within 1e-6).

Reverb: convolution (convolver.py) with a seeded, decaying stereo noise response, zero latency,
non-uniform partitions.  10 min stereo 44.1 kHz, CPU: 2.3-4.4 s (RT60 0.3-4 s); T20 within 1 % of
the asked RT60; block invariant to 1e-15; identical across processes.  pedalboard.Reverb (Freeverb) is 1.1 s,
but its RT60 cannot go under 0.63 s, explodes past room_size 0.9 (4.6 s, 11 s at 1) and it resets
whenever a block outgrows the previous ones (errors up to 0.15): not used, no dependency added.
Compressor: log-domain decoupled peak detector (Giannoulis et al. 2012) as a cumulative max plus
lfilter, soft knee, 1.1 s; pedalboard.Compressor is 0.4 s but hard-knee, with the same reset.
"""

from __future__ import annotations

import functools
import hashlib
import math
import numbers
from dataclasses import dataclass
from typing import Callable, Protocol

import numpy as np
from scipy import fft as sfft
from scipy import signal

from audio.convolver import Convolver
from audio.errors import score_error
from audio.schema import Param, check_rule, read_table, show_value, suggest

NYQUIST_FRACTION = 0.45        # every corner is clamped to at most this fraction of the sample rate
RMS_WINDOW_MS = 10.0           # time constant of the compressor's RMS detector
RT60_RANGE_S = (0.3, 4.0)      # reverb size 0 .. 1, exponential in between
REVERB_TAIL_DB = 66.0          # the impulse response is cut where it has decayed this far (faded)
MIN_CUT_HZ = 10.0             # lowest filter corner
# Tails add up along a chain and a clip is put through its chain whole: 16 reverbs of size 1 ring
# out 78 s and took 1.3 GB for one clip at 96 kHz (measured); 1,000 ended in MemoryError.
MAX_CHAIN_EFFECTS = 16


class Processor(Protocol):
    def process(self, block: np.ndarray) -> np.ndarray: ...
    def tail_samples(self) -> int: ...


@dataclass(frozen=True)
class Effect:
    name: str
    doc: str
    params: tuple[Param, ...]
    factory: Callable[[dict, int, int], Processor]
    # Optional: (params given, full params) -> full params, e.g. a preset filling in the keys not given.
    resolve: Callable[[dict, dict], dict] | None = None
    # Optional rule across parameters: full params -> (param name, message) or None.
    check: Callable[[dict], tuple[str, str] | None] | None = None
    # Every channel is treated alike (a mono signal can be processed as one channel, then copied).
    alike: bool = True


def _clamp_hz(freq_hz: float, sample_rate_hz: int) -> float:
    return min(float(freq_hz), NYQUIST_FRACTION * sample_rate_hz)


def _ring_samples(sos: np.ndarray) -> int:
    """Samples for an sos filter's impulse response to decay by 60 dB (from its slowest pole)."""
    if len(sos) == 0:
        return 0
    # poles from each section's denominator alone (sos2zpk also factors the numerators, and warns
    # when a low corner makes them tiny)
    r = max((float(np.abs(np.roots(section[3:])).max(initial=0.0)) for section in sos), default=0.0)
    if r <= 1e-9:
        return 2 * len(sos)
    return int(math.ceil(math.log(1e-3) / math.log(min(r, 1 - 1e-12)))) + 2 * len(sos)


def _as_block(block: np.ndarray, channels: int) -> np.ndarray:
    x = np.asarray(block, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != channels:
        raise ValueError(f"expected a block of shape (n, {channels}), got {x.shape}")
    return x


class _Sos:
    """An sos filter over (n, channels) blocks, state carried between blocks."""

    def __init__(self, sos: np.ndarray, channels: int):
        self.sos = np.atleast_2d(np.asarray(sos, dtype=np.float64)).reshape(-1, 6)
        self.zi = np.zeros((len(self.sos), 2, channels))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if len(self.sos) == 0 or len(x) == 0:
            return x
        y, self.zi = signal.sosfilt(self.sos, x, axis=0, zi=self.zi)
        return y


def _butter(kind: str, cutoff_hz: float, order: int, sample_rate_hz: int) -> np.ndarray:
    return signal.butter(order, _clamp_hz(cutoff_hz, sample_rate_hz), kind, fs=sample_rate_hz, output="sos")


def _peaking(freq_hz: float, gain_db: float, q: float, sample_rate_hz: int) -> np.ndarray:
    """RBJ peaking biquad as one sos row."""
    a = 10 ** (gain_db / 40)
    w = 2 * math.pi * _clamp_hz(freq_hz, sample_rate_hz) / sample_rate_hz
    alpha = math.sin(w) / (2 * q)
    b = np.array([1 + alpha * a, -2 * math.cos(w), 1 - alpha * a])
    den = np.array([1 + alpha / a, -2 * math.cos(w), 1 - alpha / a])
    return np.concatenate([b / den[0], den / den[0]])[None, :]


# --- filters ------------------------------------------------------------------------

class Filter:
    """A fixed filter: high-pass, then optional drive (tanh), then low-pass and presence."""

    def __init__(self, channels: int, pre: np.ndarray, post: np.ndarray, drive: float = 0.0):
        self.channels = channels
        self.pre, self.post = _Sos(pre, channels), _Sos(post, channels)
        self.gain = 1.0 + 4.0 * drive          # tanh(g x) / g: unity gain for small signals
        self._tail = _ring_samples(self.pre.sos) + _ring_samples(self.post.sos)

    def process(self, block: np.ndarray) -> np.ndarray:
        x = self.pre(_as_block(block, self.channels))
        if self.gain != 1.0:
            x = np.tanh(self.gain * x) / self.gain
        return self.post(x)

    def tail_samples(self) -> int:
        return self._tail


PRESENCE_HZ, PRESENCE_Q = 2500.0, 0.9
EQ_PRESETS = {
    "none": {},
    # AM / small-speaker broadcast: 12 dB/oct band, a presence lift, a little saturation.
    "radio": {"low_cut_hz": 300.0, "high_cut_hz": 3400.0, "order": 2, "presence_db": 3.0, "drive": 0.2},
    # Handset: the same band with 24 dB/oct skirts, so narrower well below -3 dB.
    "telephone": {"low_cut_hz": 300.0, "high_cut_hz": 3400.0, "order": 4, "presence_db": 0.0, "drive": 0.0},
}


def _eq_resolve(given: dict, full: dict) -> dict:
    out = dict(full)
    for key, value in EQ_PRESETS[full["preset"]].items():
        if key not in given:
            out[key] = value
    return out


def _eq_check(p: dict) -> tuple[str, str] | None:
    for key in ("low_cut_hz", "high_cut_hz"):
        if 0 < p[key] < MIN_CUT_HZ:
            return key, f"must be 0 (off) or at least {MIN_CUT_HZ:g}, got {show_value(p[key])}"
    if p["low_cut_hz"] > 0 and p["high_cut_hz"] > 0 and p["low_cut_hz"] >= p["high_cut_hz"]:
        hint = f'; preset "{p["preset"]}" sets the cuts not given' if p["preset"] != "none" else ""
        return "high_cut_hz", (f"must be above low_cut_hz ({show_value(p['low_cut_hz'])}), "
                               f"got {show_value(p['high_cut_hz'])}{hint}")
    return None


def _eq(p: dict, sample_rate_hz: int, channels: int) -> Filter:
    pre = _butter("highpass", p["low_cut_hz"], p["order"], sample_rate_hz) if p["low_cut_hz"] > 0 \
        else np.zeros((0, 6))
    post = [np.zeros((0, 6))]
    if p["high_cut_hz"] > 0:
        post.append(_butter("lowpass", p["high_cut_hz"], p["order"], sample_rate_hz))
    if p["presence_db"] != 0:
        post.append(_peaking(PRESENCE_HZ, p["presence_db"], PRESENCE_Q, sample_rate_hz))
    return Filter(channels, pre, np.concatenate(post), p["drive"])


def _pass(kind: str):
    def make(p: dict, sample_rate_hz: int, channels: int) -> Filter:
        return Filter(channels, _butter(kind, p["cutoff_hz"], p["order"], sample_rate_hz), np.zeros((0, 6)))
    return make


# --- compressor -----------------------------------------------------------------------

class Compressor:
    """Feed-forward, stereo-linked, soft knee, log-domain decoupled peak detector.

    Gain reduction g (dB, >= 0) from the static curve, then release as
    y1[n] = max(g[n], a_r * y1[n-1]), then attack as a one-pole low-pass of y1.
    The release stage is a running maximum of g[m] * a_r**(n-m): in the log domain
    that is a cumulative max of log g[m] - m log a_r, so the whole block is
    vectorised and the state is two numbers (plus the RMS filter's).
    """

    LOG_FLOOR = -60.0          # log of the smallest reduction tracked (~1e-26 dB)

    def __init__(self, p: dict, sample_rate_hz: int, channels: int):
        self.channels = channels
        self.threshold, self.ratio, self.knee = p["threshold_db"], p["ratio"], p["knee_db"]
        self.makeup = p["makeup_db"]
        self.rms = p["detector"] == "rms"
        self.a_rms = math.exp(-1000.0 / (RMS_WINDOW_MS * sample_rate_hz))
        self.log_release = -1000.0 / (p["release_ms"] * sample_rate_hz)       # log a_r
        self.a_attack = math.exp(-1000.0 / (p["attack_ms"] * sample_rate_hz))
        self.ms_zi = np.zeros((1, channels))
        self.log_held = self.LOG_FLOOR      # log of y1 at the previous sample
        self.smooth = 0.0                   # attack stage output at the previous sample

    def reduction_db(self, level_db: np.ndarray) -> np.ndarray:
        """Static curve: dB of gain reduction (>= 0) for an input level in dB."""
        over = level_db - self.threshold
        slope = 1.0 - 1.0 / self.ratio
        out = np.where(over > 0, slope * over, 0.0)
        if self.knee > 0:
            w = self.knee
            inside = np.abs(over) <= w / 2
            out = np.where(inside, slope * (over + w / 2) ** 2 / (2 * w), out)
        return out

    def process(self, block: np.ndarray) -> np.ndarray:
        x = _as_block(block, self.channels)
        n = len(x)
        if n == 0:
            return x.copy()
        sq = x * x
        if self.rms:
            b, a = [1.0 - self.a_rms], [1.0, -self.a_rms]
            sq, self.ms_zi = signal.lfilter(b, a, sq, axis=0, zi=self.ms_zi)
        peak = sq[:, 0].copy()
        for c in range(1, self.channels):                     # faster than sq.max(axis=1)
            np.maximum(peak, sq[:, c], out=peak)
        level_db = (10.0 / math.log(10.0)) * np.log(np.maximum(peak, 1e-20, out=peak))
        g = self.reduction_db(level_db)

        # release: y1[i] = max(held * a^(i+1), max_{j<=i} g[j] a^(i-j)), in logs
        c = self.log_release
        ramp = np.arange(n) * c
        log_g = np.log(np.maximum(g, math.exp(self.LOG_FLOOR)))
        log_y1 = np.maximum.accumulate(log_g - ramp) + ramp
        np.maximum(log_y1, self.log_held + ramp + c, out=log_y1)
        self.log_held = float(log_y1[-1])
        y1 = np.exp(log_y1)

        # attack: one-pole low-pass of y1
        aa = self.a_attack
        y, _ = signal.lfilter([1.0 - aa], [1.0, -aa], y1, zi=[aa * self.smooth])
        self.smooth = float(y[-1])
        gain = np.exp((self.makeup - y) * (math.log(10.0) / 20.0))
        return x * gain[:, None]

    def tail_samples(self) -> int:
        return 0


# --- reverb -------------------------------------------------------------------------

def rt60_for_size(size: float) -> float:
    lo, hi = RT60_RANGE_S
    return lo * (hi / lo) ** size


def _band_rt60(rt60: float, damping: float, centre_hz: float) -> float:
    """Decay time of a band: rt60 up to 1 kHz, then shorter by (1 - 0.8 damping) every 3 octaves."""
    octaves_above = max(0.0, math.log2(centre_hz / 1000.0))
    return rt60 * (1.0 - 0.8 * damping) ** (octaves_above / 3.0)


def _seed(*values) -> int:
    text = repr(tuple(round(v, 12) if isinstance(v, float) else v for v in values))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")


@functools.lru_cache(maxsize=8)
def reverb_ir(rt60: float, damping: float, predelay: int, sample_rate_hz: int, channels: int) -> np.ndarray:
    """(length, channels) impulse response, unit energy per channel, seeded from the arguments.

    Uniform white noise split into octave bands by complementary cos^2 masks
    (they sum to 1), each band times its exponential decay; silent for `predelay`
    samples, a 2 ms fade-in, cut (with a fade-out) after REVERB_TAIL_DB of decay.
    """
    decay_s = rt60 * REVERB_TAIL_DB / 60.0
    m = int(math.ceil(decay_s * sample_rate_hz))
    t = np.arange(m) / sample_rate_hz
    rng = np.random.default_rng(_seed("reverb", rt60, damping, predelay, sample_rate_hz, channels))
    noise = rng.uniform(-1.0, 1.0, (channels, m))
    if damping > 0:
        nfft = sfft.next_fast_len(m, real=True)
        spec = sfft.rfft(noise, nfft, axis=-1)
        octave = np.log2(np.maximum(np.fft.rfftfreq(nfft, 1.0 / sample_rate_hz), 1.0) / 1000.0)
        centres = np.arange(-3, math.floor(math.log2(sample_rate_hz / 2000.0)) + 1)   # 125 Hz .. Nyquist
        out = np.zeros_like(noise)
        for k in centres:
            d = octave - k
            mask = np.where(np.abs(d) < 1, np.cos(0.5 * np.pi * d) ** 2, 0.0)
            if k == centres[0]:
                mask[d <= 0] = 1.0
            if k == centres[-1]:
                mask[d >= 0] = 1.0
            band = sfft.irfft(spec * mask, nfft, axis=-1)[:, :m]
            out += band * np.exp(-6.907755 * t / _band_rt60(rt60, damping, 1000.0 * 2.0 ** k))
        noise = out
    else:
        noise *= np.exp(-6.907755 * t / rt60)
    fade_in = min(m, int(0.002 * sample_rate_hz))
    noise[:, :fade_in] *= np.sin(0.5 * np.pi * (np.arange(fade_in) + 0.5) / fade_in) ** 2
    fade_out = min(m, int(0.1 * decay_s * sample_rate_hz))
    noise[:, m - fade_out:] *= np.cos(0.5 * np.pi * (np.arange(fade_out) + 0.5) / fade_out) ** 2
    noise /= np.sqrt(np.sum(noise ** 2, axis=1, keepdims=True))
    ir = np.zeros((predelay + m, channels))
    ir[predelay:] = noise.T
    ir.flags.writeable = False
    return ir


class Reverb:
    def __init__(self, p: dict, sample_rate_hz: int, channels: int):
        self.channels, self.wet = channels, p["wet"]
        self.rt60 = rt60_for_size(p["size"])
        predelay = int(round(p["predelay_ms"] * sample_rate_hz / 1000.0))
        self.conv = None
        if self.wet > 0:
            self.conv = Convolver(reverb_ir(self.rt60, p["damping"], predelay, sample_rate_hz, channels))

    def process(self, block: np.ndarray) -> np.ndarray:
        x = _as_block(block, self.channels)
        if self.conv is None or len(x) == 0:
            return x.copy()
        return (1.0 - self.wet) * x + self.wet * self.conv.process(x)

    def tail_samples(self) -> int:
        return 0 if self.conv is None else self.conv.length


# --- the table ----------------------------------------------------------------------

_CUT_DOC = "Hz (0 = off); clamped below Nyquist"

class Glitch:
    """Digital damage of what passes through, from the start of the signal: the first slice played
    ``stutter`` times (over what would have followed), then bit crush, sample-and-hold and
    dropouts. Everything depends on the absolute sample position and a seed from the parameters,
    so any block sizes give the same result. On a [[cue]] it damages the voice at that moment."""

    DROP_GRID_S = 0.02  # dropouts come and go on this grid

    def __init__(self, p: dict, sample_rate_hz: int, channels: int):
        self.sr, self.channels = sample_rate_hz, channels
        self.slice = max(1, round(p["slice_ms"] * sample_rate_hz / 1000))
        self.repeats = p["stutter"]
        self.bits = p["bitcrush_bits"]
        # below 1 Hz: one value a second (as the glitch generator does), never an endless hold
        self.hold = sample_rate_hz / max(p["downsample_hz"], 1.0) if 0 < p["downsample_hz"] < sample_rate_hz else 0.0
        self.dropouts = p["dropouts"]
        self.seed = _seed(p["slice_ms"], p["stutter"], p["bitcrush_bits"], p["downsample_hz"], p["dropouts"])
        self.first = np.zeros((0, channels))  # the first slice, kept for the stutter
        self.held = np.zeros(channels)  # the sample being held when the previous block ended
        self.position = 0

    def process(self, block: np.ndarray) -> np.ndarray:
        x = _as_block(block, self.channels).copy()
        n, pos = x.shape[0], self.position
        if n == 0:
            return x
        if self.first.shape[0] < self.slice:
            self.first = np.concatenate([self.first, x[: self.slice - self.first.shape[0]]])
        stutter_end = self.slice * self.repeats
        if pos < stutter_end and self.repeats > 1:
            idx = np.arange(pos, min(pos + n, stutter_end))
            have = idx % self.slice < self.first.shape[0]
            x[: idx.size][have] = self.first[idx[have] % self.slice]
        if self.hold:
            # each hold period starts at the first whole sample at or after k * hold
            idx = np.arange(pos, pos + n)
            held = np.minimum(np.ceil(np.floor(idx / self.hold) * self.hold).astype(np.int64), idx) - pos
            x = np.where((held >= 0)[:, None], x[np.maximum(held, 0)], self.held)
            self.held = x[-1].copy()
        if self.bits:
            half = 2.0 ** (self.bits - 1)
            x = (np.floor(np.clip(x, -1, 1 - 1 / half) * half) + 0.5) / half
        if self.dropouts > 0:
            grid = max(1, round(self.DROP_GRID_S * self.sr))
            cells = np.arange(pos // grid, (pos + n - 1) // grid + 1)
            lost = np.array([np.random.default_rng([self.seed, int(c)]).random() < self.dropouts for c in cells])
            x[lost[np.arange(pos, pos + n) // grid - cells[0]]] = 0.0
        self.position += n
        return x

    def tail_samples(self) -> int:
        return 0


EFFECTS: dict[str, Effect] = {e.name: e for e in (
    Effect("eq", "high-pass and low-pass (Butterworth), presence and drive; presets radio, telephone", (
        Param("preset", "none", "sets the cuts, order, presence and drive not given explicitly",
              choices=tuple(EQ_PRESETS)),
        Param("low_cut_hz", 0.0, f"high-pass corner, {_CUT_DOC}", 0, 20000),
        Param("high_cut_hz", 0.0, f"low-pass corner, {_CUT_DOC}", 0, 20000),
        Param("order", 2, "Butterworth order of each cut (2 = 12 dB/oct)", 1, 8),
        Param("presence_db", 0.0, f"peak at {PRESENCE_HZ:g} Hz, dB", -12, 12),
        Param("drive", 0.0, "tanh saturation after the high-pass, 0..1", 0, 1),
    ), _eq, _eq_resolve, _eq_check),
    Effect("compressor", "soft-knee speech compressor, stereo linked", (
        Param("threshold_db", -24.0, "level where compression starts, dBFS (RMS or peak)", -80, 0),
        Param("ratio", 3.0, "input dB over threshold per output dB", 1, 30),
        Param("attack_ms", 5.0, "attack time constant, ms", 0.1, 500),
        Param("release_ms", 80.0, "release time constant, ms", 1, 5000),
        Param("knee_db", 6.0, "width of the soft knee, dB", 0, 24),
        Param("makeup_db", 0.0, "gain after compression, dB", -24, 24),
        Param("detector", "rms", f"level detector ({RMS_WINDOW_MS:g} ms RMS or sample peak)",
              choices=("rms", "peak")),
    ), Compressor),
    Effect("reverb", "room: seeded noise impulse response, exponential decay, per-channel decorrelated", (
        Param("size", 0.5, f"room size 0..1: RT60 {RT60_RANGE_S[0]:g}..{RT60_RANGE_S[1]:g} s, exponential",
              0, 1),
        Param("wet", 0.25, "reverb share of the output: (1 - wet) dry + wet reverb", 0, 1),
        Param("damping", 0.5, "high frequencies decay faster: RT60 at 8 kHz is (1 - 0.8 damping) of 1 kHz's",
              0, 1),
        Param("predelay_ms", 20.0, "delay before the reverb starts, ms", 0, 500),
    ), Reverb, alike=False),
    Effect("glitch", "digital damage: stutter of the first slice, bit crush, sample-and-hold, dropouts", (
        Param("slice_ms", 60.0, "length of the stuttered slice, ms", 1, 1000),
        Param("stutter", 3, "times the first slice plays (1 = no stutter), count", 1, 64),
        Param("bitcrush_bits", 6, "quantise to 2**bits levels (0 = off), bits", 0, 16),
        Param("downsample_hz", 6000.0, "sample-and-hold rate, Hz (0 = off)", 0, 192000),
        Param("dropouts", 0.1, "share of 20 ms cells lost, 0..1", 0, 1),
    ), Glitch),
    Effect("lowpass", "Butterworth low-pass (for layers)", (
        Param("cutoff_hz", 4000.0, "-3 dB corner, Hz; clamped below Nyquist", 10, 20000),
        Param("order", 2, "Butterworth order (2 = 12 dB/oct)", 1, 8),
    ), _pass("lowpass")),
    Effect("highpass", "Butterworth high-pass (for layers)", (
        Param("cutoff_hz", 120.0, "-3 dB corner, Hz; clamped below Nyquist", 10, 20000),
        Param("order", 2, "Butterworth order (2 = 12 dB/oct)", 1, 8),
    ), _pass("highpass")),
)}


# --- validation -------------------------------------------------------------------

def check_effect(item, file: str, where: str) -> dict:
    """Validate one chain entry {effect = "...", ...}; return {"effect": name, **every param}."""
    if not isinstance(item, dict):
        raise score_error(file, where, f'must be a table like {{effect = "reverb", wet = 0.2}}, got {show_value(item)}')
    if "effect" not in item:
        raise score_error(file, where, f'needs an effect key (known: {", ".join(EFFECTS)})')
    name = item["effect"]
    if not isinstance(name, str) or name not in EFFECTS:
        raise score_error(file, f"{where}.effect", f"unknown effect {show_value(name)}{suggest(name, EFFECTS)}"
                                                   f' (known: {", ".join(EFFECTS)})')
    effect = EFFECTS[name]
    given = {k: v for k, v in item.items() if k != "effect"}
    full = read_table(effect.params, given, file, where, owner=f"effect {name}")
    if effect.resolve:
        full = effect.resolve(given, full)
    check_rule(effect.check, full, file, where)
    return {"effect": name, **full}


def check_chain(chain, file: str, where: str) -> list[dict]:
    """Validate a chain (a list of inline tables); return full entries, defaults and presets filled in.

    Idempotent: check_chain(check_chain(c)) == check_chain(c).
    """
    if not isinstance(chain, list):
        raise score_error(file, where, f'must be a list of tables like [{{effect = "eq", preset = "radio"}}], '
                                       f'got {show_value(chain)}')
    if len(chain) > MAX_CHAIN_EFFECTS:
        raise score_error(file, where, f"{len(chain)} effects; a chain holds at most {MAX_CHAIN_EFFECTS}")
    return [check_effect(item, file, f"{where}[{i}]") for i, item in enumerate(chain)]


class Chain:
    """Effects in series over (n, channels) float64 blocks."""

    def __init__(self, processors: list[Processor], channels: int):
        self.processors, self.channels = processors, channels

    def process(self, block: np.ndarray) -> np.ndarray:
        x = y = _as_block(block, self.channels)
        for p in self.processors:
            y = p.process(y)
        return y.copy() if y is x or y is block else y      # never hand back the caller's array

    def tail_samples(self) -> int:
        """Samples of ring-out after the input stops (sum over the chain: tails add up in series)."""
        return sum(p.tail_samples() for p in self.processors)


def alike_prefix(chain: list[dict]) -> int:
    """How many effects at the start of a chain treat every channel alike: a mono clip can go
    through them as one channel (half the work of two equal ones, the same numbers)."""
    full = check_chain(chain, "", "effects")
    return next((i for i, e in enumerate(full) if not EFFECTS[e["effect"]].alike), len(full))


def make_chain(chain: list[dict], sample_rate_hz: int, channels: int) -> Chain:
    """Build a chain from check_chain's output (it is checked again, so raw entries work too)."""
    if isinstance(sample_rate_hz, bool) or not isinstance(sample_rate_hz, numbers.Integral) \
            or not 8000 <= sample_rate_hz <= 384000:
        raise ValueError(f"sample_rate_hz must be a whole number from 8000 to 384000, got {sample_rate_hz!r}")
    if isinstance(channels, bool) or not isinstance(channels, numbers.Integral) or channels < 1:
        raise ValueError(f"channels must be a whole number >= 1, got {channels!r}")
    full = check_chain(chain, "", "effects")
    return Chain([EFFECTS[e["effect"]].factory({k: v for k, v in e.items() if k != "effect"},
                                               int(sample_rate_hz), int(channels)) for e in full],
                 int(channels))
