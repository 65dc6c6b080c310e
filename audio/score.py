"""Load and validate a score file (TOML) into plain dataclasses.

The schema is data: each table is a tuple of ``Field`` rows (name, type, default, range, unit,
doc). Validation, the README's score reference and error messages all read these rows.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import math
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from audio import automation, effects, sources
from audio.errors import score_error
from audio.speech.engine import ENGINE_NAMES

REQUIRED = object()  # a Field default meaning "must be given"


@dataclass(frozen=True)
class Field:
    name: str
    kind: type | tuple  # float, int, str, bool, list, or a tuple of accepted kinds
    default: object
    doc: str
    min: float | None = None
    max: float | None = None
    choices: tuple | None = None


# Limits enforced before any work starts (see README, "Limits").
MAX_DURATION_S = 12 * 3600.0
MAX_LAYERS = 64
MAX_CUES = 2000
MAX_TEXT_BYTES = 1_000_000

PIECE_FIELDS = (
    Field("title", str, REQUIRED, "title of the piece, written into tags"),
    Field("text", str, REQUIRED, "path of the text, relative to the score file"),
    Field("author", str, "", "author, written into tags"),
    Field("seed", int, 0, "seed for every random choice", 0, 2**63 - 1),
    Field("sample_rate", int, 44100, "sample rate in Hz", 22050, 96000),
    Field("channels", int, 2, "1 (mono) or 2 (stereo)", 1, 2),
    Field("title_line", bool, False, "the text's first line is its title: spoken, then pauses.title"),
    Field("album", str, "", "album, written into tags"),
    Field("year", int, None, "year, written into tags", 0, 9999),
    Field("genre", str, "", "genre, written into tags"),
    Field("comment", str, "", "comment, written into tags"),
    Field("cover", str, "", "cover image (PNG or JPEG), relative to the score file, embedded in tags"),
)

VOICE_FIELDS = (
    Field("name", str, "en-us", 'espeak-ng voice id or language, variants ok ("en-us+whisper")'),
    Field("rate", int, 150, "speaking rate in words per minute", 80, 450),
    Field("pitch", int, 50, "base pitch, 0..100", 0, 100),
    Field("volume", float, 1.0, "synthesizer volume, 0..1", 0.0, 1.0),
    Field("gain_db", float, 0.0, "gain of the voice in the mix, dB", -40.0, 12.0),
    Field("effects", list, [], 'effect chain, e.g. [{effect = "reverb", size = 0.4, wet = 0.2}] (`piece effects`)'),
    Field("engine", str, "espeak", 'speech engine: "espeak" (espeak-ng) or "piper" (neural; pip install '
          "'piece[neural]')", choices=ENGINE_NAMES),
    Field("model", str, "", "piper only: a voice model file (.onnx, its .onnx.json beside it), relative to the score"),
)

PAUSE_FIELDS = (
    Field("lead_in", float, 3.0, "seconds of layers alone before the first word", 0.0, 3600.0),
    Field("title", float, 2.5, "seconds of silence after the title line", 0.0, 3600.0),
    Field("paragraph", float, 2.0, "seconds after a blank line", 0.0, 3600.0),
    Field("line", float, 1.0, "seconds after a single line break", 0.0, 3600.0),
    Field("sentence", float, 0.5, "seconds between sentences on one line", 0.0, 3600.0),
    Field("tail", float, 5.0, "seconds of layers alone after the last word", 0.0, 3600.0),
)

CUE_FIELDS = (
    Field("match", str, REQUIRED, "a sentence, or a substring unique in the text"),
    Field("pause_before", float, None, "extra seconds of silence before the sentence", 0.0, 3600.0),
    Field("pause_after", float, None, "seconds of silence after the sentence (replaces the pause)", 0.0, 3600.0),
    Field("rate", int, None, "words per minute for this sentence", 80, 450),
    Field("pitch", int, None, "pitch for this sentence", 0, 100),
    Field("volume", float, None, "synthesizer volume for this sentence", 0.0, 1.0),
    Field("voice", str, None, "voice for this sentence"),
    Field("gain_db", float, None, "gain of this sentence in the mix, dB", -40.0, 12.0),
    Field("effects", list, None, "effect chain for this sentence, replacing the voice's"),
    Field("engine", str, None, "speech engine for this sentence", choices=ENGINE_NAMES),
    Field("model", str, None, "piper only: a voice model file for this sentence, relative to the score"),
)

LAYER_FIELDS = (
    Field("name", str, REQUIRED, "unique name of the layer"),
    Field("source", str, REQUIRED, "generator, see `piece sources`"),
    Field("gain_db", float, -20.0, "level in dB; 0 dB sits about as loud as the voice", -120.0, 12.0),
    Field("start", (float, str), 0.0, 'seconds, "end", "end-N" or "cue:<text>[+N|-N]"'),
    Field("end", (float, str), "end", 'seconds, "end", "end-N" or "cue:<text>[+N|-N]"'),
    Field("fade_in", float, 1.0, "fade-in length in seconds", 0.0, 3600.0),
    Field("fade_out", float, 1.0, "fade-out length in seconds", 0.0, 3600.0),
    Field("duck_db", float, 0.0, "lowered by this many dB while the voice speaks", 0.0, 60.0),
    Field("pan", float, 0.0, "-1 (left) .. 1 (right)", -1.0, 1.0),
    Field("params", dict, None, "generator parameters, see `piece sources`"),
    Field("effects", list, [], "effect chain on the generator's sound, before fades and gain (`piece effects`)"),
)

FORMATS = ("wav", "flac", "mp3", "ogg", "opus")

# Loudness presets: a preset fills the master (and channel) keys the score does not give itself.
PRESETS = {
    "podcast": {"master.loudness_lufs": -16.0, "master.true_peak_dbtp": -1.0, "piece.channels": 2},
    "podcast-mono": {"master.loudness_lufs": -19.0, "master.true_peak_dbtp": -1.0, "piece.channels": 1},
    "broadcast": {"master.loudness_lufs": -23.0, "master.true_peak_dbtp": -1.0},  # EBU R128
    "streaming": {"master.loudness_lufs": -14.0, "master.true_peak_dbtp": -1.0},
}
MP3_MODE_RE = re.compile(r"^(cbr(32|40|48|56|64|80|96|112|128|160|192|224|256|320)|vbr[0-9])$")

MASTER_FIELDS = (
    Field("preset", str, "", "loudness preset: " + ", ".join(PRESETS) + "; explicit keys override it",
          choices=("",) + tuple(PRESETS)),
    Field("loudness_lufs", float, -16.0, "integrated loudness target, LUFS (ITU-R BS.1770)", -40.0, -5.0),
    Field("true_peak_dbtp", float, -1.0, "true-peak ceiling, dBTP (4x oversampled)", -12.0, 0.0),
    Field("formats", list, ["wav", "mp3"], "output formats: " + ", ".join(FORMATS), choices=FORMATS),
    Field("mp3", str, "cbr192", 'MP3 mode: "cbrKBPS" (constant bit rate, e.g. cbr192) or "vbrN" (LAME V0..V9)'),
    Field("bit_depth", int, 16, "WAV/FLAC sample format: 16 or 24 bit PCM (dithered), 32 = float (WAV only)",
          choices=(16, 24, 32)),
)

CHAPTER_FIELDS = (
    Field("title", str, REQUIRED, "chapter title"),
    Field("at", (float, str), REQUIRED, 'start: seconds or "cue:<text>[+N|-N]"'),
)

LOOP_FIELDS = (
    Field("duration", float, None, "total length in seconds; the ambience goes on, never repeating", 1.0, 12 * 3600.0),
    Field("repeat_every", float, 0.0, "speak the text again every this many seconds (0 = once)", 0.0, 12 * 3600.0),
    Field("seamless", bool, False, "make the file loop without a seam (WAV/FLAC/OGG/Opus; not MP3)"),
    Field("crossfade", float, 2.0, "seconds of the end crossfaded into the start of a seamless loop", 0.01, 60.0),
)

TABLES = {"piece": PIECE_FIELDS, "voice": VOICE_FIELDS, "pauses": PAUSE_FIELDS, "master": MASTER_FIELDS,
          "loop": LOOP_FIELDS}
ARRAYS = {"cue": CUE_FIELDS, "layer": LAYER_FIELDS, "chapter": CHAPTER_FIELDS}


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


def did_you_mean(word, known):
    close = difflib.get_close_matches(word, list(known), n=1, cutoff=0.6)
    return f'; did you mean "{close[0]}"?' if close else ""


def _type_name(kind):
    names = {float: "a number", int: "an integer", str: "a string", bool: "true or false",
             list: "a list", dict: "a table"}
    if isinstance(kind, tuple):
        return " or ".join(names[k] for k in kind)
    return names[kind]


def _accepts(kind, value):
    kinds = kind if isinstance(kind, tuple) else (kind,)
    for k in kinds:
        if k is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return True
        if k is int and isinstance(value, int) and not isinstance(value, bool):
            return True
        if k not in (float, int) and isinstance(value, k):
            return True
    return False


def _num(x) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _check_value(f: Field, value, file, where):
    if not _accepts(f.kind, value):
        raise score_error(file, where, f"must be {_type_name(f.kind)}, got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise score_error(file, where, f"must be a finite number, got {value!r}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if f.min is not None and value < f.min or f.max is not None and value > f.max:
            raise score_error(file, where, f"must be between {_num(f.min)} and {_num(f.max)}, got {value!r}")
        if f.kind is float:
            value = float(value)
    if f.choices and not isinstance(value, list) and value not in f.choices:
        shown = ", ".join(repr(c) if isinstance(c, str) else str(c) for c in f.choices if c != "")
        raise score_error(file, where, f"must be one of {shown}, got {value!r}{did_you_mean(str(value), map(str, f.choices))}")
    if isinstance(value, list) and f.choices:
        for i, item in enumerate(value):
            if item not in f.choices:
                hint = did_you_mean(str(item), f.choices)
                raise score_error(file, f"{where}[{i}]",
                                  f"must be one of {', '.join(f.choices)}, got {item!r}{hint}")
        if not value:
            raise score_error(file, where, "must name at least one format, got []")
    return value


def read_table(fields, table, file, where):
    """Validate one TOML table against its fields; return a dict with defaults filled in."""
    if not isinstance(table, dict):
        raise score_error(file, where, f"must be a table, got {table!r}")
    known = {f.name: f for f in fields}
    for key in table:
        if key not in known:
            raise score_error(file, f"{where}.{key or chr(34) * 2}",
                              f"unknown key{did_you_mean(key, known)} (known: {', '.join(known)})")
    out = {}
    for f in fields:
        if f.name in table:
            out[f.name] = _check_value(f, table[f.name], file, f"{where}.{f.name}")
        elif f.default is REQUIRED:
            raise score_error(file, f"{where}.{f.name}", "is required but missing")
        else:
            out[f.name] = f.default
    return out


def read_text(text_path: Path, file, where):
    """Read the piece's text as UTF-8, with clear errors for every way it can be unusable."""
    try:
        data = text_path.read_bytes()
    except FileNotFoundError:
        raise score_error(file, where, f"text file not found: {text_path}") from None
    except OSError as e:
        raise score_error(file, where, f"cannot read text file {text_path}: {e.strerror}") from None
    if len(data) > MAX_TEXT_BYTES:
        raise score_error(file, where, f"text is {len(data)} bytes; the limit is {MAX_TEXT_BYTES} bytes")
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


def load(path) -> Score:
    """Read, parse and validate a score file. Raises ScoreError naming file, key path, value, rule."""
    path = Path(path)
    file = str(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise score_error(file, "", "score file not found") from None
    except OSError as e:
        raise score_error(file, "", f"cannot read score file: {e.strerror}") from None
    try:
        doc = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise score_error(file, "", f"not UTF-8: byte 0x{raw[e.start]:02x} at offset {e.start}") from None
    except tomllib.TOMLDecodeError as e:
        raise score_error(file, "", f"invalid TOML: {e}") from None

    known = list(TABLES) + list(ARRAYS)
    for key, value in doc.items():
        if key not in known:
            raise score_error(file, key or '""', f"unknown table{did_you_mean(key, known)} (known: {', '.join(known)})")
        if key in ARRAYS and not isinstance(value, list):
            raise score_error(file, key, f"must be written [[{key}]] (an array of tables), got {value!r}")
    if "piece" not in doc:
        raise score_error(file, "piece", "the [piece] table is required (title and text)")

    piece_raw = read_table(PIECE_FIELDS, doc["piece"], file, "piece")
    if piece_raw["cover"]:
        piece_raw["cover"] = check_cover(path.parent / piece_raw["cover"], file, "piece.cover")
    piece = Piece(**piece_raw)
    voice_raw = read_table(VOICE_FIELDS, doc.get("voice", {}), file, "voice")
    voice_raw["effects"] = tuple(effects.check_chain(voice_raw["effects"], file, "voice.effects"))
    voice = Voice(**voice_raw)
    pauses = Pauses(**read_table(PAUSE_FIELDS, doc.get("pauses", {}), file, "pauses"))
    master_raw = read_table(MASTER_FIELDS, doc.get("master", {}), file, "master")
    master_raw["formats"] = tuple(dict.fromkeys(master_raw["formats"]))
    master = Master(**master_raw)
    loop = Loop(**read_table(LOOP_FIELDS, doc["loop"], file, "loop")) if "loop" in doc else None
    check_master(master, loop, file)
    chapters = tuple(Chapter(**read_table(CHAPTER_FIELDS, c, file, f"chapter[{i}]"), where=f"chapter[{i}]")
                     for i, c in enumerate(doc.get("chapter", [])))
    for c in chapters:
        check_time_expr(c.at, file, f"{c.where}.at")
    explicit = frozenset(f"{table}.{key}" for table in TABLES if isinstance(doc.get(table), dict)
                         for key in doc[table])

    cues_raw = doc.get("cue", [])
    if len(cues_raw) > MAX_CUES:
        raise score_error(file, "cue", f"{len(cues_raw)} cues; the limit is {MAX_CUES}")
    cues = []
    for i, raw_cue in enumerate(cues_raw):
        values = read_table(CUE_FIELDS, raw_cue, file, f"cue[{i}]")
        if values["effects"] is not None:
            values["effects"] = tuple(effects.check_chain(values["effects"], file, f"cue[{i}].effects"))
        cues.append(Cue(**values, where=f"cue[{i}]"))
    cues = tuple(cues)

    layers_raw = doc.get("layer", [])
    if len(layers_raw) > MAX_LAYERS:
        raise score_error(file, "layer", f"{len(layers_raw)} layers; the limit is {MAX_LAYERS}")
    layers = []
    seen = {}
    for i, raw_layer in enumerate(layers_raw):
        layer = _read_layer(raw_layer, i, file, path.parent)
        if layer.name in seen:
            raise score_error(file, f"layer[{i}].name", f'duplicate layer name "{layer.name}" (first used by '
                              f"layer[{seen[layer.name]}]); names must be unique")
        seen[layer.name] = i
        layers.append(layer)

    voice, cues = check_voices(voice, cues, "voice.name" in explicit, "voice.pitch" in explicit, file, path.parent)

    text_path = (path.parent / piece.text).resolve()
    text, text_bytes = read_text(text_path, file, "piece.text")
    sha = hashlib.sha256(raw + b"\0" + text_bytes).hexdigest()
    sc = Score(path=path, name=output_stem(path), text_path=text_path, text=text, sha256=sha,
               piece=piece, voice=voice, pauses=pauses, cues=cues, layers=tuple(layers), master=master,
               chapters=chapters, loop=loop, explicit=explicit)
    return with_preset(sc, master.preset) if master.preset else sc


def check_voices(voice: Voice, cues: tuple, named: bool, pitched: bool, file: str, score_dir: Path):
    """Each engine asked for must be installed, each voice name and model file its own, and a
    pitch given only to an engine that has one. A voice that names no voice speaks in its engine's
    default; model paths become absolute. Returns (voice, cues) so completed."""
    from audio.speech.engine import get_engine  # loads espeak-ng only when a score is checked

    def check(engine, where, name, model, pitch, inherited=False):
        engine = get_engine(engine)
        if not inherited:
            engine.check_available(file, f"{where}.engine")
        if pitch and not engine.has_pitch:
            raise score_error(file, f"{where}.pitch", f'the {engine.name} engine has no pitch control; remove '
                              f'pitch (or give this voice engine = "espeak")')
        if model:
            # absolute, not resolved: a linked model keeps its own name and finds the config beside the link
            model = engine.check_model(Path(os.path.abspath(score_dir / model)), file, f"{where}.model")
        elif name:
            engine.check_voice_name(name, file, f"{where}.{'name' if where == 'voice' else 'voice'}")
        return model

    default = get_engine(voice.engine).default_voice or voice.name
    voice = dataclasses.replace(voice, name=voice.name if named else default)
    voice = dataclasses.replace(voice, model=check(voice.engine, "voice", voice.name, voice.model, pitched))
    checked = []
    for c in cues:
        engine = c.engine or voice.engine
        name = c.voice or ("" if engine == voice.engine else get_engine(engine).default_voice)  # a new engine's default
        model = check(engine, c.where, name, c.model, c.pitch is not None, inherited=c.engine is None)
        checked.append(dataclasses.replace(c, model=model or None))
    return voice, tuple(checked)


def voice_of(sc: Score, cue: Cue | None) -> tuple[str, str, str]:
    """(engine, voice name, model file) that speak a sentence with ``cue`` (or none): the cue's
    own, else the [voice]'s when the engine is the same, else the engine's default voice."""
    from audio.speech.engine import get_engine
    engine = (cue and cue.engine) or sc.voice.engine
    same = engine == sc.voice.engine
    model = (cue and cue.model) or (sc.voice.model if same and not (cue and cue.voice) else "")
    name = (cue and cue.voice) or (sc.voice.name if same else get_engine(engine).default_voice)
    return engine, Path(model).stem if model else name, model


def with_options(sc: Score, preset=None, mp3=None, seamless=None, duration_s=None, formats=None) -> Score:
    """The score with command-line options applied over it, checked like the score's own keys."""
    if preset:
        sc = with_preset(sc, preset)
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


def with_preset(sc: Score, preset: str) -> Score:
    """The score with a loudness preset filling every key the score does not give itself."""
    if preset not in PRESETS:
        raise score_error(str(sc.path), "master.preset", f"unknown preset {preset!r}{did_you_mean(preset, PRESETS)} "
                          f"(known: {', '.join(PRESETS)})")
    tables = {"piece": sc.piece, "master": dataclasses.replace(sc.master, preset=preset)}
    for key, value in PRESETS[preset].items():
        if key not in sc.explicit:
            table, name = key.split(".")
            tables[table] = dataclasses.replace(tables[table], **{name: value})
    return dataclasses.replace(sc, **tables)


def check_master(master: Master, loop: Loop | None, file: str):
    if not MP3_MODE_RE.match(master.mp3):
        raise score_error(file, "master.mp3", f'must be "cbrKBPS" (cbr32 .. cbr320) or "vbrN" (vbr0 .. vbr9), '
                          f"got {master.mp3!r}")
    if master.bit_depth == 32 and "flac" in master.formats:
        raise score_error(file, "master.bit_depth", "FLAC holds at most 24-bit samples, got 32; use 16 or 24, "
                          'or drop "flac" from master.formats')
    if loop and loop.seamless and "mp3" in master.formats:
        raise score_error(file, "loop.seamless", 'MP3 cannot loop without a gap (the encoder pads the start and '
                          'end); drop "mp3" from master.formats for a loop, or use ogg/opus')


def check_cover(cover: Path, file: str, where: str) -> str:
    """A cover image must exist and be PNG or JPEG; returns its absolute path."""
    try:
        head = cover.read_bytes()[:8]
    except OSError as e:
        raise score_error(file, where, f"cannot read the cover image {cover}: {e.strerror}") from None
    if not (head.startswith(b"\x89PNG\r\n\x1a\n") or head.startswith(b"\xff\xd8\xff")):
        raise score_error(file, where, f"{cover} is not a PNG or JPEG image")
    return str(cover.resolve())


def _read_layer(raw_layer, i, file, score_dir: Path) -> Layer:
    """One [[layer]]: its keys, its generator's parameters, and any envelopes among them."""
    named = isinstance(raw_layer, dict) and isinstance(raw_layer.get("name"), str)
    where = f'layer "{raw_layer["name"]}"' if named else f"layer[{i}]"
    if not isinstance(raw_layer, dict):
        raise score_error(file, where, f"must be a table, got {raw_layer!r}")
    raw_layer = dict(raw_layer)
    params = raw_layer.get("params") or {}
    if not isinstance(params, dict):
        raise score_error(file, f"{where}.params", f"must be a table, got {params!r}")
    params = dict(params)
    envelopes = {key: raw_layer.pop(key) for key in ("gain_db", "pan") if automation.is_envelope(raw_layer.get(key))}
    envelopes.update({f"params.{k}": params.pop(k) for k in list(params) if automation.is_envelope(params[k])})
    raw_layer["params"] = params
    values = read_table(LAYER_FIELDS, raw_layer, file, where)
    source = values["source"]
    if source not in sources.SOURCES:
        raise score_error(file, f"{where}.source", f'unknown source "{source}"{did_you_mean(source, sources.SOURCES)} '
                          f'(known: {", ".join(sources.SOURCES)})')
    for key in ("start", "end"):
        check_time_expr(values[key], file, f"{where}.{key}")
    if isinstance(params.get("path"), str):  # files a generator reads are relative to the score
        params["path"] = str((score_dir / params["path"]).resolve())
    values["params"] = sources.check_params(source, params, file, f"{where}.params")
    values["effects"] = tuple(effects.check_chain(values["effects"], file, f"{where}.effects"))

    fields = {f.name: f for f in LAYER_FIELDS}
    automated = {}
    for key, points in envelopes.items():
        key_where = f"{where}.{key}"
        if key.startswith("params."):
            name = key.removeprefix("params.")
            if name not in sources.automatable(source):
                raise score_error(file, key_where, f"cannot be an envelope; the parameters of {source} that can: "
                                  f"{', '.join(sources.automatable(source)) or 'none'}")

            def check_value(v, w, name=name):
                return sources.check_value(source, name, v, file, w)
        else:
            def check_value(v, w, f=fields[key]):
                return _check_value(f, v, file, w)
        automated[key] = automation.check(points, check_value, lambda t, w: check_time_expr(t, file, w),
                                          file, key_where)
        if key.startswith("params."):
            name = key.removeprefix("params.")
            for _, v, _ in automated[key]:  # each point must also pass the rules across parameters
                sources.check_params(source, {**values["params"], name: v}, file, f"{where}.params")
        first_value = automated[key][0][1]
        if key.startswith("params."):
            values["params"][key.removeprefix("params.")] = first_value
        else:
            values[key] = first_value
    return Layer(**values, automation=automated, where=where)


TIME_RE = re.compile(r"^\s*(?:(?P<end>end)|cue:(?P<cue>.+?))\s*(?:(?P<sign>[+-])\s*(?P<offset>\d+(?:\.\d*)?|\.\d+))?\s*$")


def parse_time_expr(value):
    """Split a time expression into (kind, cue_text, offset_s); kind is "abs", "end" or "cue"."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    if isinstance(value, (int, float)):
        return "abs", None, float(value)
    m = TIME_RE.match(value)
    if not m:
        return None
    offset = float(m["offset"]) * (-1 if m["sign"] == "-" else 1) if m["offset"] else 0.0
    if m["end"]:
        return "end", None, offset
    return "cue", m["cue"].strip(), offset


def check_time_expr(value, file, where):
    parsed = parse_time_expr(value)
    if parsed is None:
        raise score_error(file, where, f'must be seconds, "end", "end-N" or "cue:<text>[+N|-N]", got {value!r}')
    kind, _, offset = parsed
    if kind == "abs" and not (0 <= offset <= MAX_DURATION_S and math.isfinite(offset)):
        raise score_error(file, where, f"must be between 0 and {MAX_DURATION_S:g} seconds, got {value!r}")
    if not abs(offset) <= MAX_DURATION_S:  # also catches an offset too long to be a number
        raise score_error(file, where, f"the offset must be at most {MAX_DURATION_S:g} seconds, got {value!r}")


def output_stem(path: Path) -> str:
    """The output file stem: the score's file name, cleaned so it cannot leave the output folder."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", path.stem).strip(".-") or "piece"
    return stem

