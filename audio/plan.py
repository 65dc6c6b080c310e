"""Resolve a score into a plan: every time, gain, voice setting and seed decided.

``resolve`` speaks every sentence (through the clip cache) to learn its exact length, lays the
sentences and pauses on a sample-exact timeline, and resolves each layer's span and anchors.
``render`` (mixer, master, export) reads only the plan and the clip cache.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from audio import score as score_module
from audio import automation, script
from audio.errors import TTSError, score_error
from audio.speech import helper
from audio.speech.cache import ClipCache
from audio.speech.engine import VoiceSettings, get_engine

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CuePlan:
    index: int
    text: str
    line: int
    start_sample: int
    n_samples: int
    voice: dict  # VoiceSettings as a dict, its engine included
    gain_db: float
    start_s: float
    end_s: float
    words: list = field(default_factory=list)  # [word, start_s, end_s] in piece time, from the engine
    effects: list = field(default_factory=list)  # the voice's effect chain for this sentence


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
    effects: list = field(default_factory=list)  # effect chain on the generator's sound


@dataclass(frozen=True)
class MasterSettings:
    """How the piece is mastered and delivered."""

    preset: str
    loudness_lufs: float
    true_peak_dbtp: float
    formats: tuple
    mp3: str
    bit_depth: int


@dataclass(frozen=True)
class LoopSettings:
    seamless: bool = False
    crossfade_s: float = 2.0


@dataclass(frozen=True)
class Chapter:
    title: str
    start_s: float
    end_s: float


@dataclass(frozen=True)
class Tags:
    """What goes into the files' tags; ``cover`` is an absolute path, or "" for none."""

    title: str = ""
    artist: str = ""
    album: str = ""
    year: str | None = None  # "YYYY"
    genre: str = ""
    comment: str = ""
    cover: str = ""


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
    cues: list  # CuePlan
    layers: list  # LayerPlan
    master: MasterSettings
    score_sha256: str
    engine: str
    warnings: list = field(default_factory=list)
    chapters: list = field(default_factory=list)  # Chapter
    loop: LoopSettings = field(default_factory=LoopSettings)
    tags: Tags = field(default_factory=Tags)
    score: str = ""  # the score file, for messages

    def to_dict(self) -> dict:
        """The plan as JSON-ready data: the manifest's core, which ``from_dict`` reads back."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Plan:
        """The plan a manifest (or ``to_dict``) records; keys a manifest adds besides are ignored."""
        names = {f.name for f in fields(cls)}
        values = {k: v for k, v in d.items() if k in names}
        values["cues"] = [CuePlan(**c) for c in d["cues"]]
        values["layers"] = [LayerPlan(**la) for la in d["layers"]]
        values["master"] = MasterSettings(**{**d["master"], "formats": tuple(d["master"]["formats"])})
        values["chapters"] = [Chapter(**c) for c in d.get("chapters", [])]
        values["loop"] = LoopSettings(**d.get("loop", {}))
        values["tags"] = Tags(**d.get("tags", {}))
        return cls(**values)


def read_manifest(path: Path) -> Plan:
    """The plan recorded in a render's manifest (``NAME.json``); a ScoreError names what is wrong."""
    file = str(path)
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise score_error(file, "", "manifest not found") from None
    except OSError as e:
        raise score_error(file, "", f"cannot read the manifest: {e.strerror}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise score_error(file, "", f"not a JSON manifest: {e}") from None
    try:
        return Plan.from_dict(doc)
    except (KeyError, TypeError, AttributeError) as e:
        raise score_error(file, "", f"not a render manifest: it does not hold a whole plan ({type(e).__name__}: "
                          f"{e})") from None


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


def resolve(sc: score_module.Score, cache: ClipCache, progress=None, duration_s=None) -> Plan:
    """Turn a validated score into a plan. ``progress(n)`` is called after each sentence.

    ``duration_s`` (or the score's ``loop.duration``) makes a long-form piece of that length: the
    layers go on, and the text is spoken once or every ``loop.repeat_every`` seconds.
    """
    file = str(sc.path)
    sr = sc.piece.sample_rate
    sentences = script.parse(sc.text, sc.piece.title_line)
    if not sentences:
        raise score_error(file, "piece.text", f"{sc.text_path} has no sentences to speak")
    if len(sentences) > score_module.MAX_CUES * 10:
        raise score_error(file, "piece.text", f"{len(sentences)} sentences; the limit is {score_module.MAX_CUES * 10}")
    _check_length_estimate(sc, sentences)
    cues, total = _speak(sc, sentences, cache, progress)
    loop = sc.loop
    duration_s = duration_s if duration_s is not None else (loop.duration if loop else None)
    if duration_s is not None:
        spoken_end = cues[-1].start_sample + cues[-1].n_samples
        if round(duration_s * sr) < spoken_end:
            raise score_error(file, "loop.duration", f"{duration_s:g} s is shorter than the spoken text "
                              f"({spoken_end / sr:.1f} s); make it longer")
        total = round(duration_s * sr)
        if loop and loop.repeat_every > 0:
            cues = _repeat(cues, round(loop.repeat_every * sr), total, sr, file)
    if not any(c.n_samples for c in cues) and not sc.layers:
        raise score_error(file, "piece.text", f"{sc.text_path} has nothing to speak (no letters or digits) and the "
                          "score has no layers: the piece would be silent")
    if loop and loop.seamless and 2 * round(loop.crossfade * sr) >= total:
        raise score_error(file, "loop.crossfade", f"{loop.crossfade:g} s is too long for a piece of {total / sr:.2f} s; "
                          "a seamless loop's crossfade must be under half its length")
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
                                [sc.piece.seed, stable_hash(layer.name)], start / sr, end / sr, envelopes,
                                list(layer.effects)))

    p = sc.piece
    return Plan(name=sc.name, title=p.title, author=p.author, sample_rate=sr,
                channels=p.channels, seed=p.seed, total_samples=total, duration_s=total / sr,
                cues=cues, layers=layers, master=MasterSettings(**asdict(sc.master)),
                score_sha256=sc.sha256, engine=_engine_versions(cues), warnings=warnings,
                chapters=_chapters(sc, sentences, cues, time_of, total, sr),
                loop=LoopSettings(bool(loop and loop.seamless), loop.crossfade if loop else 2.0),
                tags=Tags(p.title, p.author, p.album, None if p.year is None else f"{p.year:04d}", p.genre,
                          p.comment, p.cover),
                score=file)


def _check_length_estimate(sc, sentences):
    """Refuse a piece that would be over the length limit before speaking a word of it."""
    words = sum(len(s.text.split()) for s in sentences)
    p = sc.pauses
    pause_s = {"sentence": p.sentence, "line": p.line, "paragraph": p.paragraph, "title": p.title, "end": p.tail}
    # espeak-ng was measured at 0.8-1.3x the nominal rate: 1.5x keeps the estimate on the short side
    estimate_s = p.lead_in + words * 60.0 / (1.5 * sc.voice.rate) + sum(pause_s[s.brk] for s in sentences)
    if estimate_s > score_module.MAX_DURATION_S:
        raise score_error(str(sc.path), "piece.text", f"{words} words with their pauses would last at least "
                          f"{estimate_s / 3600:.1f} h; the limit is {score_module.MAX_DURATION_S / 3600:g} h")


def _speak(sc, sentences, cache, progress) -> tuple[list, int]:
    """Every sentence's clip on a sample-exact timeline with its pauses; returns (cues, total samples)."""
    file, sr = str(sc.path), sc.piece.sample_rate
    overrides = {}
    for cue in sc.cues:
        s = _match_one(sentences, cue.match, file, f"{cue.where}.match", "cue")
        if s.index in overrides:
            raise score_error(file, f"{cue.where}.match", f"{cue.match!r} names the same sentence as "
                              f"{overrides[s.index].where}; one cue per sentence")
        overrides[s.index] = cue

    pause_s = {"sentence": sc.pauses.sentence, "line": sc.pauses.line, "paragraph": sc.pauses.paragraph,
               "title": sc.pauses.title, "end": sc.pauses.tail}
    def picker(cue):
        def pick(key, default):
            value = getattr(cue, key) if cue else None
            return default if value is None else value
        return pick

    picks = [picker(overrides.get(s.index)) for s in sentences]
    voices = [_settings(sc, overrides.get(s.index), pick) for s, pick in zip(sentences, picks)]
    spoken = helper.prefetch(cache, [(s.text, v) for s, v in zip(sentences, voices)], progress)  # two at a time

    t = round(sc.pauses.lead_in * sr)
    cues = []
    for i, (s, pick, settings) in enumerate(zip(sentences, picks, voices)):
        t += round(pick("pause_before", 0.0) * sr)
        try:
            clip = cache.get(s.text, settings)
        except TTSError as e:
            raise score_error(file, f"piece.text: line {s.line}", f"{e}; check the text's language against "
                              "the voice (`piece voices`)") from None
        n = round(clip.samples.size * sr / clip.rate_hz)
        words = [[w, round(t / sr + a, 4), round(t / sr + b, 4)] for w, a, b in clip.word_times()]
        cues.append(CuePlan(s.index, s.text, s.line, t, n, asdict(settings), pick("gain_db", sc.voice.gain_db),
                            t / sr, (t + n) / sr, words, list(pick("effects", sc.voice.effects))))
        after = sc.pauses.tail if s.brk == "end" else pick("pause_after", pause_s[s.brk])
        t += n + round(after * sr)
        if progress and i not in spoken:
            progress(1)
        if t > score_module.MAX_DURATION_S * sr:
            raise score_error(file, "piece.text", f"the piece would last over {score_module.MAX_DURATION_S / 3600:g} h "
                              f"(reached at line {s.line}); the limit is {score_module.MAX_DURATION_S / 3600:g} h")
    return cues, t


def _settings(sc, cue, pick) -> VoiceSettings:
    """How a sentence is spoken: its cue's keys over the [voice]'s, in the engine and voice they name."""
    engine, name, model = score_module.voice_of(sc, cue)
    pitch = pick("pitch", sc.voice.pitch) if get_engine(engine).has_pitch else 50  # an engine without pitch: neutral
    return VoiceSettings(name, pick("rate", sc.voice.rate), pitch, pick("volume", sc.voice.volume), engine, model)


def _engine_versions(cues) -> str:
    """The versions of the engines that speak the cues, in order of first use."""
    names = dict.fromkeys(c.voice["engine"] for c in cues)
    return "; ".join(get_engine(name).version for name in names)


def _repeat(cues, every: int, total: int, sr: int, file) -> list:
    """The spoken text again every ``every`` samples, as long as a whole repetition fits."""
    first, last_end = cues[0].start_sample, cues[-1].start_sample + cues[-1].n_samples
    if every < last_end - first:
        raise score_error(file, "loop.repeat_every", f"{every / sr:g} s is shorter than the spoken text "
                          f"({(last_end - first) / sr:.1f} s); the repetitions would overlap")
    out, k = [], 0
    while last_end + k * every <= total:
        shift = k * every
        out += [replace(c, index=len(out) + i, start_sample=c.start_sample + shift,
                        start_s=(c.start_sample + shift) / sr, end_s=(c.start_sample + c.n_samples + shift) / sr,
                        words=[[w, round(a + shift / sr, 4), round(b + shift / sr, 4)] for w, a, b in c.words])
                for i, c in enumerate(cues)]
        k += 1
    return out


def _chapters(sc, sentences, cues, time_of, total: int, sr: int) -> list:
    """[[chapter]] tables, or one chapter per blank-line paragraph."""
    if sc.chapters:
        marks = sorted((max(0, time_of(c.at, f"{c.where}.at")), c.title) for c in sc.chapters)
    else:
        starts = [0] + [i + 1 for i, s in enumerate(sentences[:-1]) if s.brk in ("paragraph", "title")]
        marks = []
        for n, i in enumerate(starts):
            title = sentences[i].text
            title = title if len(title) <= 60 else title[:59].rsplit(" ", 1)[0] + "…"
            marks.append((0 if n == 0 else cues[i].start_sample, title))
    marks = [(min(a, total - 1), title) for a, title in marks]
    ends = [a for a, _ in marks[1:]] + [total]
    return [Chapter(title, a / sr, b / sr) for (a, title), b in zip(marks, ends) if b > a]
