"""How well each layer is heard in the mix, and how far the bed sits under the voice.

Fed the mix's parts block by block (the voice and each layer, as the mixer makes them), it keeps
only running sums and histograms, so memory stays flat however long the piece:

- **loudness** (BS.1770-4's K-weighting, applied to each frame's spectrum, and its gates) of the
  voice and of the bed (every layer), over the whole piece and over the moments the voice speaks:
  the voice-to-bed ratio;
- per layer, its K-weighted level over its span and while the voice speaks, against the voice's
  loudness: how far it sits under the voice;
- per layer, **masking**: in frames of about 46 ms, the power of every part in the 24 critical bands
  (Zwicker's Bark scale), the rest of the mix's power spread across bands (Schroeder, Atal and Hall
  1979) and lowered by MASK_OFFSET_DB to a masked threshold, plus the threshold in quiet (Terhardt
  1979) at a listening level: a frame in which the layer rises above that threshold in any band is
  one where it is heard. Its own band (where most of its energy lies) and its level there against
  everything else are reported too.

The master's gain is not known until the piece has been mixed, and the threshold in quiet depends
on it: each frame keeps the least gain at which the layer would be heard there, so ``report`` can
judge at any gain.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.fft
from scipy.signal import sosfreqz

from audio.master.meters import k_weighting_sos

# Zwicker's critical band edges (Zwicker 1961, "Subdivision of the audible frequency range into
# critical bands"), Hz; the last band runs on to Nyquist.
BARK_EDGES_HZ = (0, 100, 200, 300, 400, 510, 630, 770, 920, 1080, 1270, 1480, 1720, 2000, 2320, 2700, 3150,
                 3700, 4400, 5300, 6400, 7700, 9500, 12000, 15500)
FRAME_S = 0.046  # analysis frames (the nearest power of two of samples), Hann, half overlapping
STEP_FRAMES = 4  # loudness: steps of this many hops (about 93 ms at 44.1 kHz), gated in blocks of four
# The masked threshold lies this far under the spread masker: between the offsets for noise masking a
# tone (about 2-6 dB) and a tone masking noise (about 6-12 dB) in perceptual coders (Painter and
# Spanias 2000, "Perceptual coding of digital audio", eqs. 14-15).
MASK_OFFSET_DB = 6.0
LISTENING_SPL_DB = 70.0  # the piece at its target loudness is taken to play at this level (dB SPL)
HEARD_MIN_FRACTION = 0.01  # a layer heard in fewer of its frames than this is inaudible: a warning
HIST_LO_DB, HIST_HI_DB, HIST_STEP_DB = -120.0, 120.0, 0.25  # histograms of gains and margins
BLOCK_GATE_LUFS = -70.0


def bark(f_hz):
    """Critical-band rate in Bark (Zwicker and Terhardt 1980)."""
    f = np.asarray(f_hz, dtype=np.float64)
    return 13.0 * np.arctan(0.00076 * f) + 3.5 * np.arctan((f / 7500.0) ** 2)


def threshold_in_quiet_db_spl(f_hz):
    """The absolute threshold of hearing, dB SPL (Terhardt 1979, as in ISO 389-7's shape)."""
    k = np.maximum(np.asarray(f_hz, dtype=np.float64), 20.0) / 1000.0
    return 3.64 * k ** -0.8 - 6.5 * np.exp(-0.6 * (k - 3.3) ** 2) + 1e-3 * k ** 4


def spreading_db(dz):
    """Schroeder's spreading function: how far a masker ``dz`` Bark below a band masks it, dB."""
    dz = np.asarray(dz, dtype=np.float64) + 0.474
    return 15.81 + 7.5 * dz - 17.5 * np.sqrt(1.0 + dz * dz)


def _db(x):
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(x)


class _Histogram:
    """Counts of dB values on a fixed grid (+inf counts as the top bin's overflow)."""

    def __init__(self):
        self.counts = np.zeros(int((HIST_HI_DB - HIST_LO_DB) / HIST_STEP_DB) + 2, np.int64)

    def add(self, db: np.ndarray):
        index = np.clip(np.floor((np.nan_to_num(db, nan=-np.inf, posinf=1e9, neginf=-1e9) - HIST_LO_DB)
                                 / HIST_STEP_DB) + 1, 0, len(self.counts) - 1).astype(np.int64)
        self.counts += np.bincount(index, minlength=len(self.counts))

    @property
    def total(self) -> int:
        return int(self.counts.sum())

    def below(self, db: float) -> int:
        """How many values are below ``db`` (to the grid's resolution)."""
        index = int(np.clip(np.floor((db - HIST_LO_DB) / HIST_STEP_DB) + 1, 0, len(self.counts)))
        return int(self.counts[:index].sum())

    def median(self) -> float | None:
        """The median, to the grid's resolution (at its ends: a median beyond them reads as the end)."""
        if self.total == 0:
            return None
        index = int(np.searchsorted(np.cumsum(self.counts), (self.total + 1) / 2))
        return float(np.clip(HIST_LO_DB + (index - 0.5) * HIST_STEP_DB, HIST_LO_DB, HIST_HI_DB))


class _LayerStats:
    def __init__(self, lp, n_bands: int):
        self.name, self.start, self.end = lp.name, lp.start_sample, lp.end_sample
        self.start_s, self.end_s = lp.start_s, lp.end_s
        self.frames = self.speech_frames = 0
        self.k_power = self.k_power_speech = 0.0
        self.band_energy = np.zeros(n_bands)
        self.need = _Histogram()  # per frame: least gain (dB) at which it is heard there
        self.need_speech = _Histogram()
        self.smr = _Histogram()  # per frame: its level in its own band against the rest there


class Audibility:
    """Feed ``add`` each block of the mix's parts ({"voice": …, layer name: …}, as
    ``mixer.render_parts`` yields them); ``report(gain_db)`` when the master's gain is known."""

    def __init__(self, plan):
        sr = self.sr = plan.sample_rate
        self.target_lufs = plan.master.loudness_lufs
        self.n = 1 << max(8, round(math.log2(FRAME_S * sr)))
        self.hop = self.n // 2
        self.window = np.hanning(self.n + 1)[:-1]
        self.window32 = self.window.astype(np.float32)
        freqs = np.fft.rfftfreq(self.n, 1.0 / sr)
        edges = [e for e in BARK_EDGES_HZ if e < sr / 2] + [sr / 2 + 1]
        self.bands = np.array([edges[:-1], [min(e, sr / 2) for e in edges[1:]]]).T  # (bands, 2) Hz
        band_of = np.clip(np.searchsorted(edges, freqs, side="right") - 1, 0, len(self.bands) - 1)
        self.band_starts = np.searchsorted(band_of, np.arange(len(self.bands)))  # each band's first bin
        # one-sided power per bin as mean square per sample, K-weighted for loudness
        scale = np.full(len(freqs), 2.0)
        scale[0] = 1.0
        if self.n % 2 == 0:
            scale[-1] = 1.0
        self.bin_scale = scale / (self.n * np.sum(self.window ** 2))
        self.k_weight = np.abs(sosfreqz(k_weighting_sos(sr), worN=freqs, fs=sr)[1]) ** 2
        self.bin_scale32 = self.bin_scale.astype(np.float32)
        self.k_weight32 = self.k_weight.astype(np.float32)
        centres = bark(self.bands.mean(axis=1))
        self.spread = 10 ** (spreading_db(centres[:, None] - centres[None, :]) / 10)  # (maskee, masker)
        self.offset = 10 ** (-MASK_OFFSET_DB / 10)
        # the threshold in quiet, as mean-square power in the unmastered mix's units at 0 dB gain:
        # the target loudness (LUFS, about dB of mean square) plays at LISTENING_SPL_DB
        quiet_spl = threshold_in_quiet_db_spl(np.sqrt(np.maximum(self.bands[:, 0], 20.0) * self.bands[:, 1]))
        self.quiet = 10 ** ((quiet_spl - LISTENING_SPL_DB + self.target_lufs) / 10)
        self.spans = sorted((c.start_sample, c.start_sample + c.n_samples) for c in plan.cues if c.n_samples > 0)
        self.span_starts = np.array([a for a, _ in self.spans], np.int64)
        self.span_ends = np.array([b for _, b in self.spans], np.int64)
        self.layers = [_LayerStats(lp, len(self.bands)) for lp in plan.layers]
        # where each part can sound (a layer is silent outside its span), in samples
        self.reach = {"voice": (0, math.inf), **{lp.name: (lp.start_sample, lp.end_sample) for lp in plan.layers}}
        self.step_power = {"voice": [], "bed": []}  # K-weighted power per step of STEP_FRAMES frames
        self.step_speech: list[bool] = []
        self.pending_voice, self.pending_bed, self.pending_speech = [], [], []
        self.carry: dict[str, np.ndarray] = {}
        self.position = 0  # samples fed so far
        self.next_frame = 0  # first sample of the next frame to analyse
        self.held_from = 0  # where the samples kept in ``carry`` start

    # --- feeding ---

    def add(self, parts: dict):
        first = next(iter(parts.values()))
        n, channels = first.shape
        begin, self.position = self.held_from, self.position + n
        # frames [f, f + self.n) wholly inside what has been fed
        starts = np.arange(self.next_frame, self.position - self.n + 1, self.hop)
        held = {}  # each part from self.held_from on, as float32; None while all of it is silence
        for name, (start, end) in self.reach.items():
            x = parts.get(name)
            if x is None or end <= begin or start >= self.position:  # outside its span: silent
                held[name] = None
                continue
            x = np.asarray(x, np.float32)
            kept = self.carry.get(name)
            if kept is None:
                kept = np.zeros((self.position - n - begin, channels), np.float32)
            held[name] = np.concatenate([kept, x])
        if len(starts) == 0:
            self.carry = held
            return
        offsets = starts - self.held_from
        silent = (np.zeros((len(offsets), len(self.bands))), np.zeros(len(offsets)))
        powers = {name: silent if x is None else self._band_powers(x, offsets, n_total=len(offsets))
                  for name, x in held.items()}
        self.next_frame = int(starts[-1]) + self.hop
        self.carry = {name: None if x is None else x[self.next_frame - self.held_from:] for name, x in held.items()}
        self.held_from = self.next_frame
        centres = starts + self.n // 2
        speaking = self._speaking(centres)
        total = sum(p for p, _ in powers.values())
        self._steps(powers["voice"][1], sum((powers[lp.name][1] for lp in self.layers), np.zeros(len(starts))),
                    speaking)
        for stats in self.layers:
            inside = (centres >= stats.start) & (centres < stats.end)
            if inside.any():
                self._judge(stats, powers[stats.name], total, inside, speaking)

    def _band_powers(self, x: np.ndarray, offsets: np.ndarray, n_total: int):
        """(frames, bands) power and (frames,) K-weighted power of ``x`` ((samples, channels)) in the
        frames starting at ``offsets`` (evenly spaced by the hop)."""
        if len(x) == 0 or not np.any(x):
            return np.zeros((n_total, len(self.bands))), np.zeros(n_total)
        # hop = n / 2: frame i is halves i and i + 1, each windowed by its half of the window
        halves = np.ascontiguousarray(x[offsets[0]: offsets[-1] + self.n].T).reshape(x.shape[1], -1, self.hop)
        frames = np.empty((halves.shape[0], halves.shape[1] - 1, self.n), np.float32)  # (channels, frames, n)
        np.multiply(halves[:, :-1], self.window32[:self.hop], out=frames[..., :self.hop])
        np.multiply(halves[:, 1:], self.window32[self.hop:], out=frames[..., self.hop:])
        spectrum = scipy.fft.rfft(frames, axis=-1)  # (channels, frames, bins)
        power = spectrum.real ** 2
        power += spectrum.imag ** 2
        power = power.sum(axis=0) * self.bin_scale32  # (frames, bins)
        bands = np.add.reduceat(power, self.band_starts, axis=1)
        return bands.astype(np.float64), (power @ self.k_weight32).astype(np.float64)

    def _steps(self, voice_k: np.ndarray, bed_k: np.ndarray, speaking: np.ndarray):
        """Keep the voice's and the bed's K-weighted power per STEP_FRAMES frames (about 93 ms at
        44.1 kHz): BS.1770's 100 ms steps, on the frame grid."""
        self.pending_voice.extend(voice_k.tolist())
        self.pending_bed.extend(bed_k.tolist())
        self.pending_speech.extend(speaking.tolist())
        whole = len(self.pending_voice) // STEP_FRAMES * STEP_FRAMES
        for name, pending in (("voice", self.pending_voice), ("bed", self.pending_bed)):
            steps = np.asarray(pending[:whole]).reshape(-1, STEP_FRAMES).mean(axis=1)
            self.step_power[name].extend(steps.tolist())
            del pending[:whole]
        flags = np.asarray(self.pending_speech[:whole], bool).reshape(-1, STEP_FRAMES).mean(axis=1) > 0.5
        self.step_speech.extend(flags.tolist())
        del self.pending_speech[:whole]

    def _speaking(self, samples: np.ndarray) -> np.ndarray:
        out = np.zeros(len(samples), bool)
        if not self.spans:
            return out
        i = np.searchsorted(self.span_starts, samples, side="right") - 1
        ok = i >= 0
        out[ok] = samples[ok] < self.span_ends[i[ok]]
        return out

    def _judge(self, stats: _LayerStats, power, total, inside, speaking):
        bands, k = power[0][inside], power[1][inside]
        rest = np.maximum(total[inside] - bands, 0.0)
        masked = rest @ self.spread.T * self.offset  # (frames, bands)
        # heard at gain g (power ratio G = g^2) in a band when G * bands > G * masked + quiet
        excess = bands - masked
        with np.errstate(divide="ignore", invalid="ignore"):
            need = np.where(excess > 0, self.quiet[None, :] / excess, np.inf).min(axis=1)
        need_db = _db(need)
        stats.need.add(need_db)
        speech = speaking[inside]
        stats.need_speech.add(need_db[speech])
        stats.frames += len(k)
        stats.speech_frames += int(speech.sum())
        stats.k_power += float(k.sum())
        stats.k_power_speech += float(k[speech].sum())
        stats.band_energy += bands.sum(axis=0)
        # its own band at each moment: where most of its power is; its level there against the rest
        live = bands.max(axis=1) > 0
        own = np.argmax(bands[live], axis=1)
        rows = np.flatnonzero(live)
        with np.errstate(divide="ignore", invalid="ignore"):
            stats.smr.add(_db(bands[rows, own]) - _db(rest[rows, own]))

    # --- reporting ---

    def report(self, gain_db: float = 0.0) -> dict:
        """What was measured, with the master's gain ``gain_db`` applied to the levels."""
        speech = np.asarray(self.step_speech, bool)
        voice_lufs = _plus(_integrated(self.step_power["voice"]), gain_db)
        bed_lufs = _plus(_integrated(self.step_power["bed"]), gain_db)
        voice_speech = _plus(_integrated(self.step_power["voice"], speech), gain_db)
        bed_speech = _plus(_integrated(self.step_power["bed"], speech), gain_db)
        layers = [self._layer_report(s, gain_db, voice_lufs) for s in self.layers]
        return {
            "voice_lufs": _round(voice_lufs), "bed_lufs": _round(bed_lufs),
            "voice_to_bed_db": _round(_minus(voice_lufs, bed_lufs)),
            "voice_to_bed_in_speech_db": _round(_minus(voice_speech, bed_speech)),
            "layers": layers,
            "model": {"frame_s": round(self.n / self.sr, 4), "mask_offset_db": MASK_OFFSET_DB,
                      "listening_spl_db": LISTENING_SPL_DB, "heard_min_fraction": HEARD_MIN_FRACTION},
        }

    def _layer_report(self, s: _LayerStats, gain_db: float, voice_lufs) -> dict:
        level = _plus(_lufs(s.k_power, s.frames), gain_db)
        level_speech = _plus(_lufs(s.k_power_speech, s.speech_frames), gain_db)
        # a frame is heard at this gain when it needs less (need is a power ratio: dB of gain)
        heard = s.need.below(gain_db) / s.need.total if s.need.total else 0.0
        heard_speech = s.need_speech.below(gain_db) / s.need_speech.total if s.need_speech.total else None
        own = int(np.argmax(s.band_energy)) if s.band_energy.any() else None
        return {
            "name": s.name, "start_s": round(s.start_s, 3), "end_s": round(s.end_s, 3),
            "level_lufs": _round(level),
            "under_voice_db": _round(_minus(voice_lufs, level)),
            "under_voice_in_speech_db": _round(_minus(voice_lufs, level_speech)),
            "band_hz": None if own is None else [round(float(v)) for v in self.bands[own]],
            "band_margin_db": _round(s.smr.median()),
            "heard_fraction": round(heard, 3),
            "heard_in_speech_fraction": None if heard_speech is None else round(heard_speech, 3),
            "audible": heard >= HEARD_MIN_FRACTION,
        }


def warnings(report: dict, where: str = "") -> list[str]:
    """One warning per layer inaudible over its whole span, with the numbers."""
    out = []
    for layer in report["layers"]:
        if layer["audible"]:
            continue
        band = layer["band_hz"]
        parts = []  # a level too short or quiet to gate (BS.1770's 400 ms blocks) is left out, not shown as "?"
        if layer["under_voice_db"] is not None:
            parts.append(f"{layer['under_voice_db']:.1f} dB under the voice")
        if band and layer["band_margin_db"] is not None:
            parts.append(f"{layer['band_margin_db']:.1f} dB against the rest of the mix in its own band "
                         f"({band[0]}–{band[1]} Hz)")
        parts.append(f"heard in {100 * layer['heard_fraction']:.1f} % of it")
        out.append(f"{where + ': ' if where else ''}layer \"{layer['name']}\" is inaudible over its whole span "
                   f"({layer['start_s']:.1f}–{layer['end_s']:.1f} s): " + ", ".join(parts)
                   + "; raise its gain_db, or lower what covers it")
    return out


def _integrated(step_power, keep: np.ndarray | None = None) -> float | None:
    """Gated integrated loudness (BS.1770-4) of 100 ms step powers; with ``keep``, of the 400 ms
    blocks whose middle two steps are both kept."""
    steps = np.asarray(step_power, dtype=np.float64)
    if steps.size < 4:
        return None
    blocks = np.convolve(steps, np.ones(4) / 4, mode="valid")
    if keep is not None:
        blocks = blocks[keep[1:len(blocks) + 1] & keep[2:len(blocks) + 2]]
    loudness = -0.691 + _db(blocks)
    gated = blocks[loudness > BLOCK_GATE_LUFS]
    if gated.size == 0:
        return None
    relative = -0.691 + 10 * math.log10(gated.mean()) - 10.0
    gated = gated[-0.691 + _db(gated) > relative]
    return -0.691 + 10 * math.log10(gated.mean())


def _lufs(power_sum: float, frames: int) -> float | None:
    if frames == 0 or power_sum <= 0:
        return None
    return -0.691 + 10 * math.log10(power_sum / frames)


def _plus(a, b):
    return None if a is None else a + b


def _minus(a, b):
    return None if a is None or b is None else a - b


def _round(v, digits=2):
    return None if v is None or not math.isfinite(v) else round(float(v), digits)


