"""Resolve a score into a plan: every time, gain, voice setting and seed decided.

``resolve`` speaks every sentence (through the clip cache) to learn its exact length, lays the
sentences and pauses on a sample-exact timeline, and resolves each layer's span and anchors.
``render`` (mixer, master, export) reads only the plan and the clip cache.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import asdict, dataclass, field, fields, replace

from audio import score as score_module
from audio import automation, cast, export, lexicon, script, timeexpr
from audio.cast import match_one
from audio.errors import TTSError, score_error
from audio.files import cover
from audio.speech import helper
from audio.speech import words as speech_words
from audio.speech.cache import ClipCache
from audio.speech.engine import get_engine

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
    spoken: str = ""  # the text as handed to the engine (reading rules and [[say]] applied); "" = ``text``
    speaker: str = ""  # the [[speaker]] who says it; "" for the narrator

    @property
    def said(self) -> str:
        """The text the engine speaks for this cue (what its clip is cached under)."""
        return self.spoken or self.text


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
    duck_hold_s: float = score_module.DUCK_HOLD_S


MasterSettings = score_module.Master  # how the piece is mastered and delivered: the [master] table as checked


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
    total_samples: int  # mixed; a seamless loop mixes its crossfade past the end, folded into the start
    duration_s: float  # of the file as written
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


def stable_hash(name: str) -> int:
    """A hash of a layer's name that is the same on every machine and Python run."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "little")


def sentences_of(sc: score_module.Score) -> list:
    """The score's text as the sentences that are spoken, each with its speaker."""
    return script.parse(sc.text, sc.piece.title_line, tuple(sp.name for sp in sc.speakers))


def resolve(sc: score_module.Score, cache: ClipCache, progress=None, duration_s=None) -> Plan:
    """Turn a validated score into a plan. ``progress(n)`` is called after each sentence.

    ``duration_s`` (or the score's ``loop.duration``) makes a long-form piece of that length: the
    layers go on, and the text is spoken once or every ``loop.repeat_every`` seconds.
    """
    file = str(sc.path)
    sr = sc.piece.sample_rate
    sentences = sentences_of(sc)
    if not sentences:
        raise score_error(file, "piece.text", f"{sc.text_path} has no sentences to speak")
    if len(sentences) > score_module.MAX_SENTENCES:
        raise score_error(file, "piece.text", f"{len(sentences)} sentences; the limit is {score_module.MAX_SENTENCES}")
    directions = cast.direct(sc, sentences, sc.text_path)
    _check_length_estimate(sc, sentences, directions)
    cues, total = _speak(sc, sentences, directions, cache, progress)
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
    seam = round(loop.crossfade * sr) if loop and loop.seamless else 0  # mixed past the end, folded into the start
    if seam and 2 * seam >= total:
        raise score_error(file, "loop.crossfade", f"{loop.crossfade:g} s is too long for a piece of {total / sr:.2f} s; "
                          "a seamless loop's crossfade must be under half its length")
    warnings = list(sc.warnings) + _check_cover(sc) + export.rate_warnings(sc.master.formats, sr, file)

    def time_of(expr, where):
        kind, text, offset = timeexpr.parse_time_expr(expr)
        if kind == "abs":
            base = 0
        elif kind == "end":
            base = total
        elif kind == "word":
            base = _word_start(cues[match_one(sentences, text, file, where, "anchor").index], text, sr)
        else:
            base = cues[match_one(sentences, text, file, where, "anchor").index].start_sample
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
                                list(layer.effects), duck_hold_s=layer.duck_hold))
    if seam:
        layers = _through_the_seam(layers, total, seam, warnings, file)

    p = sc.piece
    return Plan(name=sc.name, title=p.title, author=p.author, sample_rate=sr,
                channels=p.channels, seed=p.seed, total_samples=total + seam, duration_s=total / sr,
                cues=cues, layers=layers, master=sc.master,
                score_sha256=sc.sha256, engine=_engine_versions(cues), warnings=warnings,
                chapters=_chapters(sc, sentences, cues, time_of, total, sr, warnings),
                loop=LoopSettings(bool(loop and loop.seamless), loop.crossfade if loop else 2.0),
                tags=Tags(p.title, p.author, p.album, None if p.year is None else f"{p.year:04d}", p.genre,
                          p.comment, p.cover),
                score=file)


def _through_the_seam(layers: list, total: int, seam: int, warnings: list, file: str) -> list:
    """A seamless loop's layers: one running to the end goes on ``seam`` samples more, which the
    loop folds into its start, and the fades at the seam are left out (a loop has no start or end:
    faded, every repeat would dip). Leaving out fades is a warning that names them."""
    out, dropped = [], []
    for lp in layers:
        changes = {}
        if lp.start_sample == 0 and lp.fade_in_s > 0:
            changes["fade_in_s"] = 0.0
            dropped.append(f'layer "{lp.name}" fade_in {lp.fade_in_s:g} s')
        if lp.end_sample == total:
            changes["end_sample"] = total + seam
            if lp.fade_out_s > 0:
                changes["fade_out_s"] = 0.0
                dropped.append(f'layer "{lp.name}" fade_out {lp.fade_out_s:g} s')
        out.append(replace(lp, **changes))
    if dropped:
        warnings.append(f"{file}: loop.seamless: the fades at the seam are left out, so the loop does not dip "
                        f"where it repeats: {', '.join(dropped)}")
    return out


def _check_cover(sc) -> list:
    """A cover that misses Apple's artwork rules is refused under a podcast preset, else a warning."""
    if not sc.piece.cover:
        return []
    problems = cover.apple_problems(cover.read_image(sc.piece.cover))
    if not problems:
        return []
    low, high = cover.APPLE_SIDE_PX
    what = (f"{sc.piece.cover}: {'; '.join(problems)} (Apple Podcasts takes a square JPEG or PNG in RGB, "
            f"{low} to {high} px a side)")
    if score_module.is_podcast(sc.master.preset):
        raise score_error(str(sc.path), "piece.cover", f"{what}; preset {sc.master.preset!r} is for Apple Podcasts")
    return [f"{sc.path}: piece.cover: {what}"]


def _check_length_estimate(sc, sentences, directions):
    """Refuse a piece that would be over the length limit before speaking a word of it: its words at
    each sentence's rate and every pause (the text's, its <break>s, and the cues' pause_before and
    pause_after), as the timeline will lay them."""
    words = sum(len(s.text.split()) for s in sentences)
    # espeak-ng was measured at 0.8-1.3x the nominal rate: 1.5x keeps the estimate on the short side
    speech_s = sum(len(s.text.split()) * 60.0 / (1.5 * d.values["rate"]) for s, d in zip(sentences, directions))
    pauses_s = sum((d.values.get("pause_before") or 0.0) + _pause_after_s(sc, s, d.values)
                   for s, d in zip(sentences, directions))
    estimate_s = sc.pauses.lead_in + speech_s + pauses_s
    if estimate_s > score_module.MAX_DURATION_S:
        raise score_error(str(sc.path), "piece.text", f"{words} words with their pauses would last at least "
                          f"{estimate_s / 3600:.1f} h ({pauses_s / 3600:.1f} h of it pauses); the limit is "
                          f"{score_module.MAX_DURATION_S / 3600:g} h")


def _pause_after_s(sc, s, values: dict) -> float:
    """The seconds of silence after sentence ``s`` spoken with ``values`` (its Direction's)."""
    if s.brk == "end":
        return sc.pauses.tail
    if values.get("pause_after") is not None:  # a cue's pause wins over the text's
        return values["pause_after"]
    pause_s = {"sentence": sc.pauses.sentence, "line": sc.pauses.line, "paragraph": sc.pauses.paragraph,
               "title": sc.pauses.title}
    if s.pause is not None:  # a <break> in the text: seconds, or the kind of pause it stands for
        return pause_s[s.pause] if isinstance(s.pause, str) else s.pause
    return pause_s[s.brk]


def _speak(sc, sentences, directions, cache, progress) -> tuple[list, int]:
    """Every sentence's clip on a sample-exact timeline with its pauses; returns (cues, total samples)."""
    file, sr = str(sc.path), sc.piece.sample_rate
    voices = [d.settings() for d in directions]
    lexicon.check_used(sc.says, sentences, file)
    readings = lexicon.readings(sc.says, sentences, voices, file)
    spoken = helper.prefetch(cache, [(r.spoken, v) for r, v in zip(readings, voices)], progress)  # two at a time

    t = round(sc.pauses.lead_in * sr)
    cues = []
    for i, (s, direction, settings, reading) in enumerate(zip(sentences, directions, voices, readings)):
        values = direction.values
        t += round((values.get("pause_before") or 0.0) * sr)
        try:
            clip = cache.get(reading.spoken, settings)
        except TTSError as e:
            raise score_error(file, f"piece.text: line {s.line}", f"{e}; check the text's language against "
                              "the voice (`piece voices`)") from None
        n = round(clip.samples.size * sr / clip.rate_hz)
        timed = reading.word_starts(clip.words, clip.samples.size)
        words = [[w, round(t / sr + a, 4), round(t / sr + b, 4)]
                 for w, a, b in speech_words.times(timed, clip.samples.size, clip.rate_hz)]
        cues.append(CuePlan(s.index, s.text, s.line, t, n, asdict(settings), values["gain_db"],
                            t / sr, (t + n) / sr, words, list(values["effects"]),
                            spoken=reading.spoken, speaker=direction.speaker))
        t += n + round(_pause_after_s(sc, s, values) * sr)
        if progress and i not in spoken:
            progress(1)
        if t > score_module.MAX_DURATION_S * sr:
            raise score_error(file, "piece.text", f"the piece would last over {score_module.MAX_DURATION_S / 3600:g} h "
                              f"(reached at line {s.line}); the limit is {score_module.MAX_DURATION_S / 3600:g} h")
    return cues, t


def _word_start(cue: CuePlan, text: str, sr: int) -> int:
    """The sample where the first word of ``text`` (found as a cue's match finds it) starts in ``cue``."""
    at = max(0, cue.text.find(" ".join(text.split())))
    before = cue.text[:at]
    index = len(before.split()) - (1 if before and not before[-1].isspace() else 0)  # begun inside a word: it
    return round(cue.words[index][1] * sr) if cue.words else cue.start_sample


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


def _chapters(sc, sentences, cues, time_of, total: int, sr: int, warnings: list) -> list:
    """[[chapter]] tables, or one chapter per blank-line paragraph (past MAX_CHAPTERS paragraphs,
    one per so many paragraphs, with a warning)."""
    if sc.chapters:
        marks = sorted((max(0, time_of(c.at, f"{c.where}.at")), c.title) for c in sc.chapters)
    else:
        starts = [0] + [i + 1 for i, s in enumerate(sentences[:-1]) if s.brk in ("paragraph", "title")]
        every = -(-len(starts) // score_module.MAX_CHAPTERS)
        if every > 1:
            warnings.append(f"{sc.path}: chapter: the text has {len(starts)} paragraphs, more than the "
                            f"{score_module.MAX_CHAPTERS} chapters a file holds: a chapter begins every {every} "
                            "paragraphs ([[chapter]] tables choose where)")
            starts = starts[::every]
        marks = []
        for n, i in enumerate(starts):
            title = sentences[i].text
            title = title if len(title) <= 60 else title[:59].rsplit(" ", 1)[0] + "…"
            marks.append((0 if n == 0 else cues[i].start_sample, title))
    marks = [(min(a, total - 1), title) for a, title in marks]
    ends = [a for a, _ in marks[1:]] + [total]
    return [Chapter(title, a / sr, b / sr) for (a, title), b in zip(marks, ends) if b > a]
