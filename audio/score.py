"""A score file (TOML) read into a frozen Score, and the loudness presets over it.

Each table's keys are ``schema.Param`` rows (name, default, doc, range, choices): validation, the
README's score reference and error messages all read these rows.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from audio import automation, effects, lexicon, markup, sources, tomlguard
from audio import outputs
from audio.errors import score_error
from audio.files import cover as cover_image
from audio.files import reading
from audio.files.staging import safe_name
from audio.speech.engine import ENGINE_NAMES
from audio.schema import REQUIRED, Param, check, kind_name, read_table, show_value, suggest
from audio.timeexpr import MAX_DURATION_S, check_time_expr

# Limits enforced before any work starts (see README, "Limits").
MAX_LAYERS = 64
MAX_CUES = 2000
MAX_CHAPTERS = 999  # Vorbis comments number chapters CHAPTER001 .. CHAPTER999
MAX_TEXT_BYTES = 1_000_000
MAX_SCORE_BYTES = 2_000_000  # every array at its cap is about 1 MB; parsing 2 MB takes under a second
MAX_WORD_CHARS = 1000  # a word cannot be split into utterances the engine survives (clip.MAX_UTTERANCE_CHARS)
MAX_SENTENCES = 10 * MAX_CUES  # 20,000 sentences in a text

PIECE_FIELDS = (
    Param("title", REQUIRED, "title of the piece, written into tags", kind=str),
    Param("text", REQUIRED, "path of the text, relative to the score file", kind=str),
    Param("author", "", "author, written into tags"),
    Param("seed", 0, "seed for every random choice", 0, 2**63 - 1),
    Param("sample_rate", 44100, "sample rate in Hz", 22050, 96000),
    Param("channels", 2, "1 (mono) or 2 (stereo)", 1, 2),
    Param("title_line", False, "the text's first line is its title: spoken, then pauses.title"),
    Param("album", "", "album, written into tags"),
    Param("year", None, "year, written into tags", 0, 9999, kind=int),
    Param("genre", "", "genre, written into tags"),
    Param("comment", "", "comment, written into tags"),
    Param("cover", "", "cover image (PNG or JPEG), relative to the score file, embedded in tags"),
)

VOICE_FIELDS = (
    Param("name", "en-us", 'espeak-ng voice id or language, variants ok ("en-us+whisper")'),
    Param("rate", 150, "speaking rate in words per minute", 80, 450),
    Param("pitch", 50, "base pitch, 0..100", 0, 100),
    Param("volume", 1.0, "synthesizer volume, 0..1", 0.0, 1.0),
    Param("gain_db", 0.0, "gain of the voice in the mix, dB", -40.0, 12.0),
    Param("effects", [], 'effect chain, e.g. [{effect = "reverb", size = 0.4, wet = 0.2}] (`piece effects`)'),
    Param("engine", "espeak", 'speech engine: "espeak" (espeak-ng) or "piper" (neural; pip install '
          "'piece[neural]')", choices=ENGINE_NAMES),
    Param("model", "", "piper only: a voice model file (.onnx, its .onnx.json beside it), relative to the score"),
)

PAUSE_FIELDS = (
    Param("lead_in", 3.0, "seconds of layers alone before the first word", 0.0, 3600.0),
    Param("title", 2.5, "seconds of silence after the title line", 0.0, 3600.0),
    Param("paragraph", 2.0, "seconds after a blank line", 0.0, 3600.0),
    Param("line", 1.0, "seconds after a single line break", 0.0, 3600.0),
    Param("sentence", 0.5, "seconds between sentences on one line", 0.0, 3600.0),
    Param("tail", 5.0, "seconds of layers alone after the last word", 0.0, 3600.0),
)

CUE_FIELDS = (
    Param("match", REQUIRED, "a sentence, or a substring unique in the text", kind=str),
    Param("pause_before", None, "extra seconds of silence before the sentence", 0.0, 3600.0, kind=float),
    Param("pause_after", None, "seconds of silence after the sentence (replaces the pause)", 0.0, 3600.0, kind=float),
    Param("rate", None, "words per minute for this sentence", 80, 450, kind=int),
    Param("pitch", None, "pitch for this sentence", 0, 100, kind=int),
    Param("volume", None, "synthesizer volume for this sentence", 0.0, 1.0, kind=float),
    Param("voice", None, "voice for this sentence", kind=str),
    Param("gain_db", None, "gain of this sentence in the mix, dB", -40.0, 12.0, kind=float),
    Param("effects", None, "effect chain for this sentence, replacing the voice's", kind=list),
    Param("engine", None, "speech engine for this sentence", choices=ENGINE_NAMES, kind=str),
    Param("model", None, "piper only: a voice model file for this sentence, relative to the score", kind=str),
)


def _optional(rows, skip=()) -> tuple:
    """``rows`` as overrides: each key optional, None meaning "as the table below says"."""
    return tuple(Param(r.name, None, r.doc, r.min, r.max, r.choices, r.auto, r.kind) for r in rows
                 if r.name not in skip)


SPEAKER_FIELDS = (
    Param("name", REQUIRED, "the label as the text writes it before the colon (KEEPER: ...)", kind=str),
    Param("voice", None, "voice for this speaker's lines", kind=str),
) + _optional(VOICE_FIELDS, skip=("name",))

SPAN_FIELDS = (
    Param("from", REQUIRED, "the first sentence of the run (found as a cue's match finds one)", kind=str),
    Param("to", REQUIRED, "the last sentence of the run, included", kind=str),
) + tuple(row for row in CUE_FIELDS if row.name not in ("match", "pause_before", "pause_after"))
DUCK_HOLD_S = 1.5  # ducking stays down across gaps between sentences shorter than this

LAYER_FIELDS = (
    Param("name", REQUIRED, "unique name of the layer", kind=str),
    Param("source", REQUIRED, "generator, see `piece sources`", kind=str),
    Param("gain_db", -20.0, "level in dB; 0 dB sits about as loud as the voice", -120.0, 12.0),
    Param("start", 0.0, 'seconds, "end", "end-N", "cue:<text>[+N|-N]" or "word:<text>[+N|-N]"', kind=(float, str)),
    Param("end", "end", 'seconds, "end", "end-N", "cue:<text>[+N|-N]" or "word:<text>[+N|-N]"', kind=(float, str)),
    Param("fade_in", 1.0, "fade-in length in seconds", 0.0, 3600.0),
    Param("fade_out", 1.0, "fade-out length in seconds", 0.0, 3600.0),
    Param("duck_db", 0.0, "lowered by this many dB while the voice speaks", 0.0, 60.0),
    Param("duck_hold", DUCK_HOLD_S, "seconds: stays ducked across gaps between sentences shorter than this",
          0.0, 30.0),
    Param("pan", 0.0, "-1 (left) .. 1 (right)", -1.0, 1.0),
    Param("params", None, "generator parameters, see `piece sources`", kind=dict),
    Param("effects", [], "effect chain on the generator's sound, before fades and gain (`piece effects`)"),
)

FORMATS = ("wav", "flac", "mp3", "ogg", "opus", "m4a", "m4b")
GAPPED_FORMATS = ("mp3", "m4a", "m4b")  # the encoder's delay and padding break a seamless loop


@dataclass(frozen=True)
class Preset:
    """A deliverable: the loudness a meter reads from the written files, the true-peak ceiling, the
    channels a mix may have (the first is the default; empty: any), and whether it goes to Apple
    Podcasts: then a mono mix is written as two identical channels (Apple takes no one-channel WAV
    or FLAC) and the cover must meet Apple's artwork rules."""

    loudness_lufs: float
    true_peak_dbtp: float
    channels: tuple = ()
    podcast: bool = False


# Two identical channels read 3 LU above one on every meter, so a mono mix written twice is
# mastered to -19 LUFS per channel (Apple's and AES TD1004's figure for mono) and reads -16.
PRESETS = {
    "podcast": Preset(-16.0, -1.0, channels=(2, 1), podcast=True),
    "podcast-mono": Preset(-16.0, -1.0, channels=(1,), podcast=True),
    "broadcast": Preset(-23.0, -1.0),  # EBU R128
    "streaming": Preset(-14.0, -1.0),
}
MP3_CBR_KBPS = (32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)  # MPEG-1 Layer III rates
MP3_MODE_RE = re.compile(rf"^(cbr({'|'.join(map(str, MP3_CBR_KBPS))})|vbr[0-9])$")

MASTER_FIELDS = (
    Param("preset", "", "a deliverable: " + ", ".join(PRESETS) + "; the score's own keys must agree with it",
          choices=("",) + tuple(PRESETS)),
    Param("loudness_lufs", -16.0, "integrated loudness target, LUFS (ITU-R BS.1770), as read from the written files",
          -40.0, -5.0),
    Param("true_peak_dbtp", -1.0, "true-peak ceiling, dBTP (4x oversampled)", -12.0, 0.0),
    Param("formats", ["wav", "mp3"], "output formats: " + ", ".join(FORMATS), choices=FORMATS),
    Param("mp3", "cbr192", 'MP3 mode: "cbrKBPS" (constant bit rate, e.g. cbr192) or "vbrN" (LAME V0..V9)'),
    Param("bit_depth", 16, "WAV/FLAC sample format: 16 or 24 bit PCM (dithered), 32 = float (WAV only)",
          choices=(16, 24, 32)),
)

CHAPTER_FIELDS = (
    Param("title", REQUIRED, "chapter title", kind=str),
    Param("at", REQUIRED, 'start: seconds, "cue:<text>[+N|-N]" or "word:<text>[+N|-N]"', kind=(float, str)),
)

LOOP_FIELDS = (
    Param("duration", None, "total length in seconds; the ambience goes on, never repeating", 1.0, 12 * 3600.0,
          kind=float),
    Param("repeat_every", 0.0, "speak the text again every this many seconds (0 = once)", 0.0, 12 * 3600.0),
    Param("seamless", False, "make the file loop without a seam (WAV/FLAC/OGG/Opus; not MP3, M4A or M4B)"),
    Param("crossfade", 2.0, "seconds mixed past the end and crossfaded into the start of a seamless loop", 0.01,
          60.0),
)

TABLES = {"piece": PIECE_FIELDS, "voice": VOICE_FIELDS, "pauses": PAUSE_FIELDS, "master": MASTER_FIELDS,
          "loop": LOOP_FIELDS}
ARRAYS = {"cue": CUE_FIELDS, "layer": LAYER_FIELDS, "chapter": CHAPTER_FIELDS, "say": lexicon.SAY_FIELDS,
          "speaker": SPEAKER_FIELDS, "span": SPAN_FIELDS}


@dataclass(frozen=True)
class Piece:
    title: str
    text: str
    author: str
    seed: int
    sample_rate: int
    channels: int
    title_line: bool
    album: str = ""
    year: int | None = None
    genre: str = ""
    comment: str = ""
    cover: str = ""  # absolute path once loaded, "" for none


@dataclass(frozen=True)
class Voice:
    name: str
    rate: int
    pitch: int
    volume: float
    gain_db: float
    effects: tuple = ()
    engine: str = "espeak"
    model: str = ""  # absolute path once loaded, "" for none


@dataclass(frozen=True)
class Pauses:
    lead_in: float
    title: float
    paragraph: float
    line: float
    sentence: float
    tail: float


@dataclass(frozen=True)
class Cue:
    match: str
    pause_before: float | None
    pause_after: float | None
    rate: int | None
    pitch: int | None
    volume: float | None
    voice: str | None
    gain_db: float | None
    effects: tuple | None = None
    engine: str | None = None
    model: str | None = None  # absolute path once loaded
    where: str = ""  # key path for messages, e.g. "cue[2]"


@dataclass(frozen=True)
class Speaker:
    """A [[speaker]]: the lines its label begins are spoken with these overrides of [voice]."""

    name: str
    overrides: dict  # voice key ("name" for the voice, "rate", "effects", ...) → value; only those given
    where: str = ""


@dataclass(frozen=True)
class Span:
    """A [[span]]: a [[cue]]'s overrides over the sentences from ``first`` to ``last``, both included."""

    first: str
    last: str
    overrides: dict
    where: str = ""


@dataclass(frozen=True)
class Layer:
    name: str
    source: str
    gain_db: float
    start: float | str
    end: float | str
    fade_in: float
    fade_out: float
    duck_db: float
    pan: float
    params: dict
    effects: tuple = ()
    automation: dict = field(default_factory=dict)  # key ("gain_db", "pan", "params.NAME") → points
    where: str = ""
    duck_hold: float = DUCK_HOLD_S


@dataclass(frozen=True)
class Master:
    preset: str
    loudness_lufs: float
    true_peak_dbtp: float
    formats: tuple
    mp3: str
    bit_depth: int


@dataclass(frozen=True)
class Chapter:
    title: str
    at: float | str
    where: str = ""


@dataclass(frozen=True)
class Loop:
    duration: float | None
    repeat_every: float
    seamless: bool
    crossfade: float


@dataclass(frozen=True)
class Score:
    path: Path
    name: str  # output file stem, from the score's file name
    text_path: Path
    text: str
    sha256: str  # hash of the score bytes and the text bytes
    piece: Piece
    voice: Voice
    pauses: Pauses
    cues: tuple = field(default_factory=tuple)
    layers: tuple = field(default_factory=tuple)
    master: Master | None = None
    chapters: tuple = field(default_factory=tuple)
    loop: Loop | None = None
    explicit: frozenset = frozenset()  # "table.key" for every key the score gives itself
    says: tuple = field(default_factory=tuple)  # lexicon.Say, in score order
    speakers: tuple = field(default_factory=tuple)  # Speaker
    spans: tuple = field(default_factory=tuple)  # Span
    warnings: tuple = ()  # what applying the command line's options changed, with the numbers


def load(path) -> Score:
    """Read, parse and validate a score file. Raises ScoreError naming file, key path, value, rule."""
    path = Path(path)
    file = str(path)
    raw = _read_bytes(path, file)
    doc = _parse(raw, file)
    piece = _read_piece(doc["piece"], file, path.parent)
    voice = _read_voice(doc.get("voice", {}), file)
    pauses = Pauses(**read_table(PAUSE_FIELDS, doc.get("pauses", {}), file, "pauses"))
    master, loop = _read_master(doc, file)
    chapters = _read_chapters(doc.get("chapter", []), file)
    cues = _read_cues(doc.get("cue", []), file)
    layers = _read_layers(doc.get("layer", []), file, path.parent)
    outputs.check_layer_names([(layer.where, layer.name) for layer in layers], file)
    says = _read_says(doc.get("say", []), file)
    speakers = _read_speakers(doc.get("speaker", []), file)
    spans = _read_spans(doc.get("span", []), file)

    explicit_voice = set(doc["voice"]) if isinstance(doc.get("voice"), dict) else set()
    voice, cues, speakers, spans = check_voices(voice, cues, speakers, spans, explicit_voice, file, path.parent)

    text_path = Path(os.path.realpath(path.parent / piece.text))  # Path.resolve raises RuntimeError on a link loop
    text, text_bytes = read_text(text_path, file, "piece.text")
    markup.check(text, file)
    check_words(text, file)
    sha = hashlib.sha256(raw + b"\0" + text_bytes).hexdigest()
    explicit = frozenset(f"{table}.{key}" for table in TABLES if isinstance(doc.get(table), dict)
                         for key in doc[table])
    sc = Score(path=path, name=safe_name(path.stem, "piece"), text_path=text_path, text=text, sha256=sha,
               piece=piece, voice=voice, pauses=pauses, cues=cues, layers=layers, master=master,
               chapters=chapters, loop=loop, explicit=explicit, says=says, speakers=speakers, spans=spans)
    return with_preset(sc, master.preset) if master.preset else sc


def _read_bytes(path: Path, file: str) -> bytes:
    try:
        return reading.read_bytes(path, MAX_SCORE_BYTES)
    except FileNotFoundError:
        raise score_error(file, "", "score file not found") from None
    except reading.TooLarge as e:
        raise score_error(file, "", f"the score file is {e.size_bytes} bytes; the limit is {MAX_SCORE_BYTES} bytes"
                          ) from None
    except OSError as e:
        raise score_error(file, "", f"cannot read score file: {e.strerror}") from None


def _parse(raw: bytes, file: str) -> dict:
    """The TOML document, its top level checked: known tables only, arrays written as arrays, a [piece]."""
    try:
        doc = tomllib.loads(raw.decode("utf-8").removeprefix("\ufeff"))  # a BOM, as some editors save one
    except UnicodeDecodeError as e:
        raise score_error(file, "", f"not UTF-8: byte 0x{raw[e.start]:02x} at offset {e.start}") from None
    except tomllib.TOMLDecodeError as e:
        raise score_error(file, "", f"invalid TOML: {e}") from None
    except (ValueError, RecursionError) as e:  # a number too long for Python, nesting too deep
        raise tomlguard.parse_error(e, raw.decode("utf-8"), file) from None
    tomlguard.check_document(doc, file)
    known = list(TABLES) + list(ARRAYS)
    for key, value in doc.items():
        if key not in known:
            raise score_error(file, key or '""', f"unknown table{suggest(key, known)} (known: {', '.join(known)})")
        if key in ARRAYS and not isinstance(value, list):
            raise score_error(file, key, f"must be written [[{key}]] (an array of tables), got {show_value(value)}")
    if "piece" not in doc:
        raise score_error(file, "piece", "the [piece] table is required (title and text)")
    return doc


def _read_piece(table, file: str, score_dir: Path) -> Piece:
    values = read_table(PIECE_FIELDS, table, file, "piece")
    if values["cover"]:
        values["cover"] = check_cover(score_dir / values["cover"], file, "piece.cover")
    return Piece(**values)


def _read_voice(table, file: str) -> Voice:
    values = read_table(VOICE_FIELDS, table, file, "voice")
    values["effects"] = tuple(effects.check_chain(values["effects"], file, "voice.effects"))
    return Voice(**values)


def _read_master(doc: dict, file: str) -> tuple[Master, Loop | None]:
    """[master] and [loop], checked together (a seamless loop cannot be an MP3)."""
    values = read_table(MASTER_FIELDS, doc.get("master", {}), file, "master")
    values["formats"] = tuple(dict.fromkeys(values["formats"]))
    master = Master(**values)
    loop = Loop(**read_table(LOOP_FIELDS, doc["loop"], file, "loop")) if "loop" in doc else None
    check_master(master, loop, file)
    return master, loop


def _read_chapters(items: list, file: str) -> tuple:
    if len(items) > MAX_CHAPTERS:
        raise score_error(file, "chapter", f"{len(items)} chapters; the limit is {MAX_CHAPTERS}")
    chapters = tuple(Chapter(**read_table(CHAPTER_FIELDS, c, file, f"chapter[{i}]"), where=f"chapter[{i}]")
                     for i, c in enumerate(items))
    for c in chapters:
        check_time_expr(c.at, file, f"{c.where}.at")
    return chapters


def _read_cues(items: list, file: str) -> tuple:
    if len(items) > MAX_CUES:
        raise score_error(file, "cue", f"{len(items)} cues; the limit is {MAX_CUES}")
    cues = []
    for i, item in enumerate(items):
        values = read_table(CUE_FIELDS, item, file, f"cue[{i}]")
        if values["effects"] is not None:
            values["effects"] = tuple(effects.check_chain(values["effects"], file, f"cue[{i}].effects"))
        cues.append(Cue(**values, where=f"cue[{i}]"))
    return tuple(cues)


def _read_says(items: list, file: str) -> tuple:
    if len(items) > MAX_CUES:
        raise score_error(file, "say", f"{len(items)} [[say]] entries; the limit is {MAX_CUES}")
    return tuple(lexicon.check(read_table(lexicon.SAY_FIELDS, item, file, f"say[{i}]"), file, f"say[{i}]")
                 for i, item in enumerate(items))


def _overrides(values: dict, skip=()) -> dict:
    """The keys a [[speaker]] or [[span]] gives, as voice keys (its "voice" is the voice's name)."""
    out = {("name" if k == "voice" else k): v for k, v in values.items() if v is not None and k not in skip}
    if "effects" in out:
        out["effects"] = tuple(out["effects"])
    return out


def _read_speakers(items: list, file: str) -> tuple:
    if len(items) > MAX_CUES:
        raise score_error(file, "speaker", f"{len(items)} speakers; the limit is {MAX_CUES}")
    speakers, seen = [], {}
    for i, item in enumerate(items):
        where = f"speaker[{i}]"
        values = read_table(SPEAKER_FIELDS, item, file, where)
        name = values["name"]
        if not name.strip() or name != name.strip() or ":" in name or "\n" in name:
            raise score_error(file, f"{where}.name", f"must be a label as the text writes it before its colon "
                              f"(no colon, line break or surrounding spaces), got {show_value(name)}")
        if name in seen:
            raise score_error(file, f"{where}.name", f'duplicate speaker "{name}" (first given by {seen[name]})')
        seen[name] = where
        if values["effects"] is not None:
            values["effects"] = effects.check_chain(values["effects"], file, f"{where}.effects")
        speakers.append(Speaker(name, _overrides(values, skip=("name",)), where))
    return tuple(speakers)


def _read_spans(items: list, file: str) -> tuple:
    if len(items) > MAX_CUES:
        raise score_error(file, "span", f"{len(items)} spans; the limit is {MAX_CUES}")
    spans = []
    for i, item in enumerate(items):
        where = f"span[{i}]"
        values = read_table(SPAN_FIELDS, item, file, where)
        if values["effects"] is not None:
            values["effects"] = effects.check_chain(values["effects"], file, f"{where}.effects")
        spans.append(Span(values["from"], values["to"], _overrides(values, skip=("from", "to")), where))
    return tuple(spans)


def _read_layers(items: list, file: str, score_dir: Path) -> tuple:
    if len(items) > MAX_LAYERS:
        raise score_error(file, "layer", f"{len(items)} layers; the limit is {MAX_LAYERS}")
    layers = []
    seen = {}
    for i, item in enumerate(items):
        layer = _read_layer(item, i, file, score_dir)
        if layer.name in seen:
            raise score_error(file, f"layer[{i}].name", f'duplicate layer name "{layer.name}" (first used by '
                              f"layer[{seen[layer.name]}]); names must be unique")
        seen[layer.name] = i
        layers.append(layer)
    return tuple(layers)


def _read_layer(item, i, file, score_dir: Path) -> Layer:
    """One [[layer]]: its keys, its generator's parameters, and any envelopes among them."""
    named = isinstance(item, dict) and isinstance(item.get("name"), str) and item["name"].strip()
    where = f'layer "{item["name"]}"' if named else f"layer[{i}]"
    if not isinstance(item, dict):
        raise score_error(file, where, f"must be a table, got {show_value(item)}")
    if isinstance(item.get("name"), str) and not named:
        raise score_error(file, f"{where}.name", f"must name the layer (stems, messages and anchors use it), "
                          f"got {show_value(item['name'])}")
    item = dict(item)
    params = item.get("params", {})
    if not isinstance(params, dict):
        raise score_error(file, f"{where}.params", f"must be a table of the generator's parameters "
                          f"(`piece sources` lists them), got {show_value(params)} ({kind_name(params)})")
    params = dict(params)
    envelopes = {key: item.pop(key) for key in ("gain_db", "pan") if automation.is_envelope(item.get(key))}
    envelopes.update({f"params.{k}": params.pop(k) for k in list(params) if automation.is_envelope(params[k])})
    item["params"] = params
    values = read_table(LAYER_FIELDS, item, file, where)
    sources.lookup(values["source"], file, f"{where}.source")
    for key in ("start", "end"):
        check_time_expr(values[key], file, f"{where}.{key}")
    if isinstance(params.get("path"), str):  # files a generator reads are relative to the score
        params["path"] = os.path.realpath(score_dir / params["path"])
    values["params"] = sources.check_params(values["source"], params, file, f"{where}.params")
    values["effects"] = tuple(effects.check_chain(values["effects"], file, f"{where}.effects"))
    automated = _read_envelopes(envelopes, values, file, where)
    return Layer(**values, automation=automated, where=where)


def _read_envelopes(envelopes: dict, values: dict, file, where) -> dict:
    """A layer's envelopes, point by point; each automated key takes its first point's value in ``values``."""
    source = values["source"]
    rows = {row.name: row for row in LAYER_FIELDS}
    automated = {}
    for key, points in envelopes.items():
        name = key.removeprefix("params.")
        if name == key:
            def check_value(v, w, row=rows[key]):
                return check(row, v, file, w)
        elif name in sources.automatable(source):
            def check_value(v, w, name=name):
                return sources.check_value(source, name, v, file, w)
        else:
            raise score_error(file, f"{where}.{key}", f"cannot be an envelope; the parameters of {source} that can: "
                              f"{', '.join(sources.automatable(source)) or 'none'}")
        automated[key] = automation.check(points, check_value, file, f"{where}.{key}")
        first_value = automated[key][0][1]
        if name == key:
            values[key] = first_value
        else:
            for _, v, _ in automated[key]:  # each point must also pass the rules across parameters
                sources.check_params(source, {**values["params"], name: v}, file, f"{where}.params")
            values["params"][name] = first_value
    return automated


def read_text(text_path: Path, file, where):
    """Read the piece's text as UTF-8, with clear errors for every way it can be unusable."""
    try:
        data = reading.read_bytes(text_path, MAX_TEXT_BYTES)
    except FileNotFoundError:
        raise score_error(file, where, f"text file not found: {text_path}") from None
    except reading.TooLarge as e:
        raise score_error(file, where, f"text is {e.size_bytes} bytes; the limit is {MAX_TEXT_BYTES} bytes") from None
    except OSError as e:
        raise score_error(file, where, f"cannot read text file {text_path}: {e.strerror}") from None
    if b"\x00" in data:
        raise score_error(file, where, f"{text_path} looks binary (NUL byte at offset {data.index(0)}); "
                          "a text must be UTF-8 plain text")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        hint = "; it may be Latin-1 or Windows-1252: re-save it as UTF-8"
        raise score_error(file, where, f"{text_path} is not UTF-8: byte 0x{data[e.start]:02x} "
                          f"at offset {e.start}{hint}") from None
    if not text.strip():
        raise score_error(file, where, f"{text_path} is empty; a piece needs at least one word")
    return text, data


def check_words(text: str, file, where="piece.text"):
    """No word (a run without white space) is longer than MAX_WORD_CHARS."""
    m = re.search(rf"\S{{{MAX_WORD_CHARS + 1},}}", text)
    if m:
        line = text.count("\n", 0, m.start()) + 1
        word = m.group()
        raise score_error(file, f"{where}: line {line}", f"a word of {len(word)} characters (at character "
                          f"{m.start()}: {word[:20]!r}…); a word is at most {MAX_WORD_CHARS} characters")


def check_cover(cover: Path, file: str, where: str) -> str:
    """A cover image must exist and be a whole PNG or JPEG within the limits; returns its absolute path."""
    try:
        data = reading.read_bytes(cover, cover_image.MAX_COVER_BYTES)
    except reading.TooLarge as e:
        raise score_error(file, where, f"the cover image {cover} is {e.size_bytes:,} bytes; the limit is "
                          f"{e.limit_bytes:,} bytes (FLAC holds a picture of under 16 MiB)") from None
    except OSError as e:
        raise score_error(file, where, f"cannot read the cover image {cover}: {e.strerror}") from None
    cover_image.check_cover(data, file, where, cover)
    return os.path.realpath(cover)


def check_master(master: Master, loop: Loop | None, file: str):
    """The rules across [master] and [loop]: an MP3 mode that exists, FLAC depth, no seamless MP3 or AAC."""
    if not MP3_MODE_RE.match(master.mp3):
        raise score_error(file, "master.mp3", f'must be "cbrKBPS" (cbr32 .. cbr320) or "vbrN" (vbr0 .. vbr9), '
                          f"got {show_value(master.mp3)}")
    if master.bit_depth == 32 and "flac" in master.formats:
        raise score_error(file, "master.bit_depth", "FLAC holds at most 24-bit samples, got 32; use 16 or 24, "
                          'or drop "flac" from master.formats')
    gapped = [f for f in master.formats if f in GAPPED_FORMATS]
    if loop and loop.seamless and gapped:
        raise score_error(file, "loop.seamless", f"{gapped[0].upper()} cannot loop without a gap (the encoder pads "
                          f'the start and end); drop "{gapped[0]}" from master.formats for a loop, or use ogg/opus')


def check_voices(voice: Voice, cues: tuple, speakers: tuple, spans: tuple, given: set, file: str,
                 score_dir: Path) -> tuple:
    """Each engine a table asks for must be installed, each voice name and model file its own, and
    a pitch given only to an engine that has one; a table that names no engine is checked against
    the [voice]'s (cast.direct checks again where [[speaker]], [[span]] and [[cue]] tables layer).
    A [voice] that names no voice speaks in its engine's default; model paths become absolute.
    ``given``: the keys [voice] gives itself. Returns (voice, cues, speakers, spans) so completed."""
    from audio.speech.engine import get_engine  # loads espeak-ng only when a score is checked

    def check(values: dict, where: str, own_engine: bool) -> dict:
        engine = get_engine(values.get("engine") or voice.engine)
        if own_engine:
            engine.check_available(file, f"{where}.engine")
        if values.get("pitch") is not None and not engine.has_pitch:
            raise score_error(file, f"{where}.pitch", f'the {engine.name} engine has no pitch control; remove '
                              f'pitch (or give this voice engine = "espeak")')
        if values.get("model"):
            # absolute, not resolved: a linked model keeps its own name and finds the config beside the link
            model = Path(os.path.abspath(score_dir / values["model"]))
            values = {**values, "model": engine.check_model(model, file, f"{where}.model")}
        elif values.get("name"):
            engine.check_voice_name(values["name"], file, f"{where}.{'name' if where == 'voice' else 'voice'}")
        return values

    default = get_engine(voice.engine).default_voice or voice.name
    voice = dataclasses.replace(voice, name=voice.name if "name" in given else default)
    voice = dataclasses.replace(voice, model=check({"engine": voice.engine, "name": voice.name, "model": voice.model,
                                                    "pitch": voice.pitch if "pitch" in given else None},
                                                   "voice", True)["model"])
    cues = tuple(dataclasses.replace(c, model=check({"engine": c.engine, "name": c.voice, "model": c.model,
                                                      "pitch": c.pitch}, c.where, c.engine is not None)["model"])
                 for c in cues)
    speakers = tuple(dataclasses.replace(t, overrides=check(t.overrides, t.where, "engine" in t.overrides))
                     for t in speakers)
    spans = tuple(dataclasses.replace(t, overrides=check(t.overrides, t.where, "engine" in t.overrides))
                  for t in spans)
    return voice, cues, speakers, spans


def with_options(sc: Score, preset=None, mp3=None, seamless=None, duration_s=None, formats=None) -> Score:
    """The score with command-line options applied over it, checked like the score's own keys."""
    if preset:
        sc = with_preset(sc, preset, command_line=True)
    master = sc.master
    if mp3:
        master = dataclasses.replace(master, mp3=mp3)
    if formats:
        master = dataclasses.replace(master, formats=tuple(formats))
    loop = sc.loop or Loop(duration=None, repeat_every=0.0, seamless=False, crossfade=2.0)
    if seamless is not None:
        loop = dataclasses.replace(loop, seamless=seamless)
    if duration_s is not None:
        if not 1.0 <= duration_s <= MAX_DURATION_S:
            raise score_error(str(sc.path), "--duration", f"must be between 1 s and {MAX_DURATION_S:g} s, "
                              f"got {duration_s:g} s")
        loop = dataclasses.replace(loop, duration=duration_s)
    check_master(master, loop, str(sc.path))
    return dataclasses.replace(sc, master=master, loop=loop)


def with_preset(sc: Score, name: str, command_line: bool = False) -> Score:
    """The score made the deliverable a preset names, so what is written is always one.

    A key the preset sets that the score leaves out takes the preset's value. In the score, a key it
    gives itself must agree with its own preset (a lower true-peak ceiling, or a channel count the
    preset allows, agrees); a contradiction is a ScoreError naming both. ``--preset`` on the command
    line asks for that deliverable: it replaces the score's values, with a warning for each.
    """
    file = str(sc.path)
    if name not in PRESETS:
        raise score_error(file, "master.preset", f"unknown preset {show_value(name)}"
                          f"{suggest(name, PRESETS)} (known: {', '.join(PRESETS)})")
    preset = PRESETS[name]
    piece, master, warnings = sc.piece, sc.master, list(sc.warnings)
    wanted = [("master.loudness_lufs", master.loudness_lufs, preset.loudness_lufs,
               lambda v: v == preset.loudness_lufs, f"{preset.loudness_lufs:g} LUFS as read from the files"),
              ("master.true_peak_dbtp", master.true_peak_dbtp, preset.true_peak_dbtp,
               lambda v: v <= preset.true_peak_dbtp, f"a ceiling of {preset.true_peak_dbtp:g} dBTP at most")]
    if preset.channels:
        what = "a mono mix" if preset.channels == (1,) else f"{' or '.join(map(str, preset.channels))} channels"
        wanted.append(("piece.channels", piece.channels, preset.channels[0], lambda v: v in preset.channels, what))
    values = {}
    for key, given, value, agrees, what in wanted:
        if key not in sc.explicit:
            values[key] = value
        elif not agrees(given):
            if not command_line:
                raise score_error(file, key, f"{given:g} contradicts preset {show_value(name)} ({what}); "
                                  "drop the key, or the preset")
            warnings.append(f"{file}: --preset {name} replaces {key} = {given:g} with {value:g} ({what})")
            values[key] = value
    piece = dataclasses.replace(piece, **{k.split(".")[1]: v for k, v in values.items() if k.startswith("piece.")})
    master = dataclasses.replace(master, preset=name,
                                 **{k.split(".")[1]: v for k, v in values.items() if k.startswith("master.")})
    return dataclasses.replace(sc, piece=piece, master=master, warnings=tuple(warnings))


def written_channels(preset: str, channels: int) -> int:
    """The channels of the files a render writes: a podcast preset writes a mono mix twice."""
    return 2 if is_podcast(preset) else channels


def is_podcast(preset: str) -> bool:
    """Whether a preset (or "" for none) delivers to Apple Podcasts."""
    return bool(preset) and PRESETS[preset].podcast
