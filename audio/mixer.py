"""Mix a plan block by block: layers (with fades, gain, pan and ducking) and the speech clips.

Memory stays flat however long the piece: generators carry their state from block to block, and a
speech clip is only held while a block overlaps it.

Every sentence, after its own effect chain, is levelled: brought to VOICE_LUFS plus its gain_db
(BS.1770-4 loudness over the sentence, gated; a reverb's ring-out after it follows along), so a
cue whose effects drop the voice's compressor, or a voice that speaks louder, never makes a line
jump, and a gain_db means exactly what it says.
Ducking holds: across a gap between sentences shorter than a layer's duck_hold the bed stays
down; after longer gaps it comes up, the more the longer the gap (fully from twice the hold on).
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Iterator

import numpy as np
from scipy.signal import sosfilt

from audio import automation, convolver, effects, sources
from audio.master.meters import k_weighting_sos
from audio.plan import Plan
from audio.speech.cache import ClipCache
from audio.speech.clip import Clip, resample
from audio.speech.engine import VoiceSettings

BLOCK_SAMPLES = 1 << 17  # about 3 s at 44.1 kHz
DUCK_ATTACK_S = 0.25  # the bed starts to dip this long before a sentence, so it is down on the first word
DUCK_RELEASE_S = 1.0  # and, after a gap long enough to come up in, comes back over this long
# A sentence at gain_db 0 measures this (as it plays, a mono clip in both channels): about as loud
# as a continuous layer at 0 dB (-16 to -19 LUFS), and as espeak-ng speaks at volume 1.
VOICE_LUFS = -18.0
LEVEL_BLOCK_S, LEVEL_STEP_S = 0.4, 0.1  # BS.1770-4 gating blocks; a shorter clip is one block


def db_to_gain(db):
    return np.exp(np.asarray(db, dtype=np.float64) * (np.log(10.0) / 20.0))  # 10 ** (db / 20), faster


def raised_cosine(x):
    """0 → 1 on x in [0, 1] with zero slope at both ends (clipped outside)."""
    x = np.clip(x, 0.0, 1.0)
    return 0.5 - 0.5 * np.cos(np.pi * x)


def pan_gains(pan):
    """Constant-power balance, normalised so the centre leaves both channels unchanged.

    ``pan`` is a number or an array of per-sample values; returns (left, right) of the same shape."""
    angle = (np.asarray(pan, dtype=np.float64) + 1.0) * np.pi / 4.0
    return np.cos(angle) * np.sqrt(2.0), np.sin(angle) * np.sqrt(2.0)


def sentence_lufs(x: np.ndarray, rate_hz: int) -> float | None:
    """Loudness of one voiced clip ((n, 1) or (n, 2)) as it plays: BS.1770-4 K-weighting, 400 ms
    blocks every 100 ms (one block for a shorter clip), absolute and relative gates. None if silent."""
    y = sosfilt(k_weighting_sos(rate_hz), x, axis=0)
    power = (y * y).sum(axis=1) * (2 / x.shape[1])  # a mono clip plays in both channels
    block, step = round(LEVEL_BLOCK_S * rate_hz), round(LEVEL_STEP_S * rate_hz)
    if power.size == 0:
        return None
    if power.size <= block:
        blocks = np.array([power.mean()])
    else:
        total = np.concatenate([[0.0], np.cumsum(power)])
        starts = np.arange(0, power.size - block + 1, step)
        blocks = (total[starts + block] - total[starts]) / block
    with np.errstate(divide="ignore"):
        loudness = -0.691 + 10 * np.log10(blocks)
    blocks, loudness = blocks[loudness > -70.0], loudness[loudness > -70.0]
    if blocks.size == 0:
        return None
    blocks = blocks[loudness > -0.691 + 10 * np.log10(blocks.mean()) - 10.0]
    return float(-0.691 + 10 * np.log10(blocks.mean()))


def level_db(cue) -> float:
    """The loudness a sentence is brought to: VOICE_LUFS, its gain_db, its synthesizer volume."""
    volume = float(cue.voice.get("volume", 1.0))
    return VOICE_LUFS + cue.gain_db + (20 * np.log10(volume) if volume > 0 else -np.inf)


def held_spans(spans, hold: float) -> list:
    """Sentence spans (start, end in samples, in order) with the gaps shorter than ``hold`` closed."""
    out = []
    for start, end in spans:
        if out and start - out[-1][1] < hold:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def voice_activity(spans, first_sample: int, n: int, rate_hz: int, hold_s: float = 0.0) -> np.ndarray:
    """How much the voice speaks at each of ``n`` samples from ``first_sample``: 0..1. 1 over each
    span (start, end in samples, in time order, the gaps shorter than ``hold_s`` closed: see
    ``held_spans``); in a gap it falls over DUCK_RELEASE_S after the span and rises over
    DUCK_ATTACK_S before the next, by an amount growing from nothing at a gap of ``hold_s`` to all
    of it at twice that."""
    activity = np.zeros(n)
    attack, release, hold = DUCK_ATTACK_S * rate_hz, DUCK_RELEASE_S * rate_hz, hold_s * rate_hz
    lo_block, hi_block = first_sample, first_sample + n
    # the spans that reach this block with their ramps, and the gap after each
    first = max(0, bisect.bisect_left(spans, (first_sample - release - 1,)) - 1)
    for k in range(first, len(spans)):
        start, end = spans[k]
        following = spans[k + 1][0] if k + 1 < len(spans) else None
        previous_end = spans[k - 1][1] if k > 0 else None
        if start - attack > hi_block:
            break
        # the span itself
        lo, hi = max(lo_block, start), min(hi_block, end)
        if hi > lo:
            activity[lo - first_sample: hi - first_sample] = 1.0
        if previous_end is None:  # the attack out of the lead-in
            lo, hi = max(lo_block, int(np.floor(start - attack))), min(hi_block, start)
            if hi > lo:
                idx = np.arange(lo, hi, dtype=np.float64)
                activity[lo - first_sample: hi - first_sample] = raised_cosine((idx - (start - attack)) / attack)
        # the gap after it: down after the span, up before the next, scaled by the gap's depth
        gap_end = following if following is not None else hi_block
        lo, hi = max(lo_block, end), min(hi_block, gap_end)
        if hi <= lo:
            continue
        idx = np.arange(lo, hi, dtype=np.float64)
        shape = raised_cosine((end + release - idx) / release)
        if following is not None:
            np.maximum(shape, raised_cosine((idx - (following - attack)) / attack), out=shape)
            depth = 1.0 if hold <= 0 else raised_cosine((following - end - hold) / hold)
            shape = 1.0 - depth * (1.0 - shape)
        activity[lo - first_sample: hi - first_sample] = shape
    return activity


class _Layer:
    """A layer being played: its generator, created when the first block reaches its start."""

    def __init__(self, lp, plan: Plan):
        self.lp = lp
        self.sr = plan.sample_rate
        self.generator = None
        self.gain = float(db_to_gain(lp.gain_db))
        self.pan = pan_gains(lp.pan)
        # a fade shorter than one sample is no fade (and would divide by almost nothing)
        self.fade_in = lp.fade_in_s * self.sr if lp.fade_in_s * self.sr >= 1 else 0.0
        self.fade_out = lp.fade_out_s * self.sr if lp.fade_out_s * self.sr >= 1 else 0.0

    def envelope(self, lo: int, hi: int, activity: np.ndarray | None) -> np.ndarray:
        """Gain per sample over [lo, hi): gain × fade-in × fade-out × ducking (activity over the same span)."""
        lp = self.lp
        if "gain_db" in lp.automation:
            env = db_to_gain(automation.values(lp.automation["gain_db"], lo, hi))
        else:
            env = np.full(hi - lo, self.gain)
        fade_in_end = min(hi, lp.start_sample + int(np.ceil(self.fade_in)))
        if self.fade_in and fade_in_end > lo:
            idx = np.arange(lo, fade_in_end, dtype=np.float64)
            env[: fade_in_end - lo] *= raised_cosine((idx - lp.start_sample) / self.fade_in)
        fade_out_start = max(lo, lp.end_sample - int(np.ceil(self.fade_out)))
        if self.fade_out and fade_out_start < hi:
            idx = np.arange(fade_out_start, hi, dtype=np.float64)
            env[fade_out_start - lo:] *= raised_cosine((lp.end_sample - idx) / self.fade_out)
        if lp.duck_db > 0 and activity is not None:
            env *= np.exp(activity * (-lp.duck_db * np.log(10) / 20))
        return env

    def render(self, a: int, b: int, activity: np.ndarray | None) -> tuple[int, np.ndarray] | None:
        """The layer's samples over block [a, b), as (offset in block, (n, 2) array), or None."""
        lo, hi = max(a, self.lp.start_sample), min(b, self.lp.end_sample)
        if hi <= lo:
            return None
        if self.generator is None:
            rng = np.random.default_rng(self.lp.seed)
            self.generator = sources.make_generator(self.lp.source, self.lp.params, self.sr, rng)
            self.chain = effects.make_chain(self.lp.effects, self.sr, 2) if self.lp.effects else None
        controls = {key.removeprefix("params."): automation.values(points, lo, hi)
                    for key, points in self.lp.automation.items() if key.startswith("params.")}
        x = (self.generator.render(hi - lo, controls) if controls else self.generator.render(hi - lo)).astype(np.float64)
        if self.chain:
            x = self.chain.process(x)
        env = self.envelope(lo, hi, None if activity is None else activity[lo - a: hi - a])
        left, right = pan_gains(automation.values(self.lp.automation["pan"], lo, hi)) \
            if "pan" in self.lp.automation else self.pan
        x[:, 0] *= env * left
        x[:, 1] *= env * right
        return lo - a, x


class _Speech:
    """Speech clips placed on the timeline; each is loaded (resampled, gained, through its effect
    chain, whose ring-out runs on into the pause after it) when a block first reaches it."""

    def __init__(self, plan: Plan, cache: ClipCache):
        self.plan = plan
        self.cache = cache
        self.cues = [c for c in plan.cues if c.n_samples > 0]
        tails = {}
        for c in self.cues:
            key = _chain_key(c.effects)
            if key not in tails:
                tails[key] = effects.make_chain(c.effects, plan.sample_rate, 2).tail_samples() if c.effects else 0
        self.length = {c.index: c.n_samples + tails[_chain_key(c.effects)] for c in self.cues}
        self.starts = [c.start_sample for c in self.cues]
        self.end = {c.index: c.start_sample + self.length[c.index] for c in self.cues}
        self.longest = max(self.length.values(), default=0)
        self.loaded: dict[int, np.ndarray] = {}

    def clip(self, cue) -> np.ndarray:
        """(length, 1) for a dry clip, (length, 2) once effects have made it stereo. A clip with
        effects comes from the cache when nothing that made it has changed (float32 either way, so
        a cached clip plays exactly as a fresh one)."""
        if cue.index not in self.loaded:
            spoken = self.cache.get(cue.said, VoiceSettings(**cue.voice))
            if cue.effects:
                recipe = {"rate_hz": self.plan.sample_rate, "n_samples": cue.n_samples, "gain_db": cue.gain_db,
                          "effects": cue.effects, "length": self.length[cue.index], "level_db": level_db(cue)}
                made_by = (effects, convolver, resample, _Speech._voice, sentence_lufs)
                self.loaded[cue.index] = self.cache.voiced(spoken, recipe, made_by, lambda: self._voice(cue, spoken))
            else:
                self.loaded[cue.index] = self._voice(cue, spoken)
        return self.loaded[cue.index]

    def _voice(self, cue, spoken: Clip) -> np.ndarray:
        x = resample(spoken.samples, spoken.rate_hz, self.plan.sample_rate)
        x = np.pad(x, (0, max(0, cue.n_samples - x.size)))[: cue.n_samples] * float(db_to_gain(cue.gain_db))
        x = x[:, None].astype(np.float64)
        if cue.effects:
            tail = np.zeros((self.length[cue.index] - cue.n_samples, 1))
            alike = effects.alike_prefix(cue.effects)  # as one channel until an effect makes it stereo
            mono = effects.make_chain(cue.effects[:alike], self.plan.sample_rate, 1)
            x = np.concatenate([mono.process(x), mono.process(tail)])
            stereo = effects.make_chain(cue.effects[alike:], self.plan.sample_rate, 2)
            x = stereo.process(np.repeat(x, 2, axis=1))
        # the leveller: after the sentence's own chain, over the sentence (not the ring-out after it)
        measured = sentence_lufs(x[: cue.n_samples], self.plan.sample_rate)
        if measured is not None:
            x *= float(db_to_gain(level_db(cue) - measured))
        return x

    def add(self, out: np.ndarray, a: int, b: int):
        self.loaded = {i: x for i, x in self.loaded.items() if self.end[i] > a}  # done with the rest
        first = bisect.bisect_left(self.starts, a - self.longest)
        for cue in self.cues[first:]:
            if cue.start_sample >= b:
                break
            lo, hi = max(a, cue.start_sample), min(b, cue.start_sample + self.length[cue.index])
            if hi <= lo:
                continue
            out[lo - a: hi - a] += self.clip(cue)[lo - cue.start_sample: hi - cue.start_sample]


def _chain_key(chain) -> str:
    return json.dumps(chain, sort_keys=True)


def render_blocks(plan: Plan, cache: ClipCache, voice_on=True, layer_names=None,
                  block_samples=BLOCK_SAMPLES) -> Iterator[np.ndarray]:
    """Yield the mix as float64 blocks of shape (n, channels), before mastering.

    ``voice_on`` and ``layer_names`` select what sounds (tests); the default is everything.
    """
    for parts in render_parts(plan, cache, voice_on, layer_names, block_samples, split=False):
        yield parts["mix"]


def render_parts(plan: Plan, cache: ClipCache, voice_on=True, layer_names=None,
                 block_samples=BLOCK_SAMPLES, split=True) -> Iterator[dict]:
    """Yield each block as {"voice": block, layer name: block, …}: the stems, which sum to the mix;
    or, with ``split`` false, as {"mix": block} summed in place."""
    layers = [_Layer(lp, plan) for lp in plan.layers if layer_names is None or lp.name in layer_names]
    speech = _Speech(plan, cache) if voice_on else None
    spans = sorted((c.start_sample, c.start_sample + c.n_samples) for c in plan.cues if c.n_samples > 0)
    held = {hold: held_spans(spans, hold * plan.sample_rate)
            for hold in sorted({layer.lp.duck_hold_s for layer in layers if layer.lp.duck_db > 0})}
    for a in range(0, plan.total_samples, block_samples):
        b = min(a + block_samples, plan.total_samples)
        activity = {hold: voice_activity(s, a, b - a, plan.sample_rate, hold) for hold, s in held.items()}
        mix = np.zeros((b - a, 2))
        parts = {}
        if speech:
            out = parts["voice"] = np.zeros((b - a, 2)) if split else mix
            speech.add(out, a, b)
        silent = None  # one read-only block of zeros for every layer outside its span
        for layer in layers:
            part = layer.render(a, b, activity.get(layer.lp.duck_hold_s))
            if split and part is None:
                if silent is None:
                    silent = np.zeros((b - a, 2))
                    silent.flags.writeable = False
                parts[layer.lp.name] = silent
                continue
            out = parts[layer.lp.name] = np.zeros((b - a, 2)) if split else mix
            if part is not None:
                offset, x = part
                out[offset: offset + x.shape[0]] += x
        if not split:
            parts = {"mix": mix}
        if plan.channels == 1:
            parts = {name: x.mean(axis=1, keepdims=True) for name, x in parts.items()}
        yield parts
