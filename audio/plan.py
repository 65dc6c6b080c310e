"""Resolve a score into a plan: every time, gain, voice setting and seed decided.

``resolve`` speaks every sentence (through the clip cache) to learn its exact length, lays the
sentences and pauses on a sample-exact timeline, and resolves each layer's span and anchors.
``render`` (mixer, master, export) reads only the plan and the clip cache.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import asdict, dataclass, field

from audio import score as score_module
from audio import automation, script, voice
from audio.errors import score_error

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CuePlan:
    index: int
    text: str
    line: int
    start_sample: int
    n_samples: int
    voice: dict  # VoiceSettings as a dict
    gain_db: float
    start_s: float
    end_s: float
    words: list = field(default_factory=list)  # [word, start_s, end_s] in piece time, from espeak-ng


@dataclass(frozen=True)
class LayerPlan:
    name: str
    source: str
    params: dict
    gain_db: float
    start_sample: int
    end_sample: int
    fade_in_s: float
    fade_out_s: float
    duck_db: float
    pan: float
    seed: list  # [piece seed, stable hash of the name]
    start_s: float
    end_s: float
    automation: dict = field(default_factory=dict)  # key → [[sample, value, curve], ...]


@dataclass
class Plan:
    name: str
    title: str
    author: str
    sample_rate: int
    channels: int
    seed: int
    total_samples: int
    duration_s: float
    cues: list
    layers: list
    master: dict
    score_sha256: str
    engine: str
    warnings: list = field(default_factory=list)

    def to_dict(self):
        return asdict(self)


def stable_hash(name: str) -> int:
    """A hash of a layer's name that is the same on every machine and Python run."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "little")


def _match_one(sentences, text, file, where, what):
    found, _ = script.find_sentence(sentences, text)
    if not found:
        raise score_error(file, where, f"{what} {text!r} matches no sentence of the text")
    if len(found) > 1:
        lines = ", ".join(str(s.line) for s in found[:5])
        raise score_error(file, where, f"{what} {text!r} matches {len(found)} sentences (on lines {lines}); "
                          "give more of the sentence so it is unique")
    return found[0]


def resolve(sc: score_module.Score, cache: voice.ClipCache, progress=None) -> Plan:
    """Turn a validated score into a plan. ``progress(n)`` is called after each sentence."""
    file = str(sc.path)
    sr = sc.piece.sample_rate
    sentences = script.parse(sc.text, sc.piece.title_line)
    if not sentences:
        raise score_error(file, "piece.text", f"{sc.text_path} has no sentences to speak")
    if len(sentences) > score_module.MAX_CUES * 10:
        raise score_error(file, "piece.text", f"{len(sentences)} sentences; the limit is {score_module.MAX_CUES * 10}")

    overrides = {}
    for cue in sc.cues:
        s = _match_one(sentences, cue.match, file, f"{cue.where}.match", "cue")
        if s.index in overrides:
            raise score_error(file, f"{cue.where}.match", f"{cue.match!r} names the same sentence as "
                              f"{overrides[s.index].where}; one cue per sentence")
        overrides[s.index] = cue

    pause_s = {"sentence": sc.pauses.sentence, "line": sc.pauses.line, "paragraph": sc.pauses.paragraph,
               "title": sc.pauses.title, "end": sc.pauses.tail}
    t = round(sc.pauses.lead_in * sr)
    cues = []
    for s in sentences:
        cue = overrides.get(s.index)
        settings = voice.VoiceSettings(
            name=(cue and cue.voice) or sc.voice.name,
            rate=cue.rate if cue and cue.rate is not None else sc.voice.rate,
            pitch=cue.pitch if cue and cue.pitch is not None else sc.voice.pitch,
            volume=cue.volume if cue and cue.volume is not None else sc.voice.volume,
        )
        gain_db = cue.gain_db if cue and cue.gain_db is not None else sc.voice.gain_db
        if cue and cue.pause_before:
            t += round(cue.pause_before * sr)
        clip = cache.get(s.text, settings)
        n = round(clip.samples.size * sr / voice.ENGINE_RATE_HZ)
        words = [[w, round(t / sr + a, 4), round(t / sr + b, 4)] for w, a, b in clip.word_times()]
        cues.append(CuePlan(s.index, s.text, s.line, t, n, asdict(settings), gain_db, t / sr, (t + n) / sr, words))
        after = cue.pause_after if cue and cue.pause_after is not None else pause_s[s.brk]
        if s.brk == "end":
            after = sc.pauses.tail
        t += n + round(after * sr)
        if progress:
            progress(1)
        if t > score_module.MAX_DURATION_S * sr:
            raise score_error(file, "pauses", f"the piece would last over {score_module.MAX_DURATION_S:g} s; "
                              "that is the limit")
    total = t
    warnings = []

    def time_of(expr, where):
        kind, text, offset = score_module.parse_time_expr(expr)
        if kind == "abs":
            base = 0
        elif kind == "end":
            base = total
        else:
            base = cues[_match_one(sentences, text, file, where, "anchor").index].start_sample
        return base + round(offset * sr)

    layers = []
    for layer in sc.layers:
        start = time_of(layer.start, f"{layer.where}.start")
        end = time_of(layer.end, f"{layer.where}.end")
        if end > total:
            warnings.append(f"{file}: {layer.where}.end: {end / sr:.3f} s is past the end of the piece "
                            f"({total / sr:.3f} s); the layer stops at the end")
            end = total
        start = max(0, start)
        if end <= start:
            raise score_error(file, f"{layer.where}.end", f"the layer ends at {end / sr:.3f} s, not after it "
                              f"starts at {start / sr:.3f} s ({layer.start!r} → {layer.end!r})")
        envelopes = {key: automation.resolve(points, time_of, file, f"{layer.where}.{key}")
                     for key, points in layer.automation.items()}
        layers.append(LayerPlan(layer.name, layer.source, dict(layer.params), layer.gain_db, start, end,
                                layer.fade_in, layer.fade_out, layer.duck_db, layer.pan,
                                [sc.piece.seed, stable_hash(layer.name)], start / sr, end / sr, envelopes))

    return Plan(name=sc.name, title=sc.piece.title, author=sc.piece.author, sample_rate=sr,
                channels=sc.piece.channels, seed=sc.piece.seed, total_samples=total, duration_s=total / sr,
                cues=cues, layers=layers, master=score_module.as_dict(sc.master),
                score_sha256=sc.sha256, engine=voice.engine_id(), warnings=warnings)
