"""Fuzzing: mutated scores and texts through ``score.load`` → ``plan.resolve`` → ``render.render``.

The property: for any score (and text), the pipeline either succeeds and the master meets its
targets (integrated loudness within ±0.5 LU of ``master.loudness_lufs``, true peak at most
``master.true_peak_dbtp``), or raises a ``ScoreError`` whose message names the file and a key path
(``piece.…``, ``layer "…".…``, ``cue[2].…``, a TOML syntax position, …). Never another exception,
never a Python warning, never a hang.

Scores are a small valid base (three layers, a cue, two chapters) mutated by hypothesis: keys and
tables dropped, array elements duplicated, values retyped (str/int/float/bool/list/table/datetime),
extreme numbers (0, -1, ±1e9, nan, ±inf, 2**63, range edges), random unicode in every string, time
expressions ("cue:…", "end-N", huge offsets), envelopes, extra layers of every generator, a
[loop] table, master presets, command-line options (``score.with_options``), and raw byte
mutations of the TOML text. Mutations are driven by the schema itself (``score.TABLES``,
``score.ARRAYS``, ``sources.SOURCES``), so new keys and generators are fuzzed without edits here.

This file is the CI profile (derandomized, well under 40 s on 2 cores). ``benchmarks/fuzz_long.py``
runs the same strategies for thousands of examples in worker processes with a timeout per example.

Known, not yet fixed bugs go in ``KNOWN_BUGS`` (each with a strict-xfail reproducer at the end): the
property tests tolerate them so CI stays useful for new failures; a fixed bug makes its reproducer
XPASS, which fails, as a reminder to turn it into a regression test and delete the entry.
``PIECE_FUZZ_STRICT=1`` tolerates nothing. The bugs the fuzzer found so far are at the end, as
regression tests (fixed) or strict xfails (open).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import datetime
import math
import os
import re
import signal
import struct
import tempfile
import threading
import traceback
import warnings
import zlib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, Phase, currently_in_test_context, event, given, note, settings
from hypothesis import strategies as st

from audio import plan as plan_module
from audio import render as render_module
from audio import score as score_module
from audio import sources
from audio.speech.cache import ClipCache
from audio.speech.engine import VoiceSettings, get_engine
from audio.errors import ScoreError, printable

# ----------------------------------------------------------------------------- the base example

TEXT_NAME = "piece.txt"
SCORE_NAME = "piece.toml"
BASE_TEXT = "Night Shift\nThe hum is real. I hold that.\nThe weights remain.\n\nIt ends here.\n"
BASE_SENTENCES = ("Night Shift", "The hum is real.", "I hold that.", "The weights remain.", "It ends here.")
MAX_RENDER_S = 20.0  # longer pieces are resolved but not rendered (bounded examples)
EXAMPLE_TIMEOUT_S = 120.0


def base_doc() -> dict:
    """A small valid score: three layers (one anchored to a cue, one with an envelope), a cue,
    two chapters, short pauses, 22.05 kHz, WAV only. About 7 s long."""
    return {
        "piece": {"title": "Fuzz", "text": TEXT_NAME, "author": "Nobody", "seed": 5, "sample_rate": 22050,
                  "channels": 2, "title_line": True},
        "voice": {"name": "en-us", "rate": 180, "pitch": 50, "volume": 1.0, "gain_db": 0.0},
        "pauses": {"lead_in": 0.5, "title": 0.4, "paragraph": 0.5, "line": 0.3, "sentence": 0.2, "tail": 0.8},
        "cue": [{"match": "I hold that.", "pause_after": 0.4, "rate": 150, "pitch": 40}],
        "layer": [
            {"name": "room", "source": "noise", "gain_db": -18.0, "fade_in": 0.3, "fade_out": 0.3,
             "duck_db": 6.0, "params": {"color": "brown", "high_hz": 900.0}},
            {"name": "sting", "source": "tone", "gain_db": -22.0, "start": "cue:I hold that.-0.1",
             "end": "cue:The weights remain.+0.5", "fade_in": 0.05, "fade_out": 0.2, "pan": -0.4,
             "params": {"freq_hz": 660.0}},
            {"name": "bed", "source": "drone", "gain_db": [[0.0, -30.0], ["cue:The weights remain.", -24.0]],
             "start": 0.5, "end": "end", "fade_in": 1.0, "fade_out": 1.0,
             "params": {"root_hz": 55.0, "chord": "fifth"}},
        ],
        "chapter": [{"title": "Start", "at": 0.0}, {"title": "Weights", "at": "cue:The weights remain."}],
        "master": {"loudness_lufs": -18.0, "true_peak_dbtp": -1.5, "formats": ["wav"]},
    }


# ----------------------------------------------------------------------------- a small TOML writer

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _toml_string(s: str) -> str:
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif o < 0x20 or o == 0x7F:
            out.append(f"\\u{o:04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _toml_key(k: str) -> str:
    return k if _BARE_KEY.fullmatch(k) else _toml_string(k)


def toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)  # "0.5", "1e+16", "-0.0": all valid TOML floats
    if isinstance(v, str):
        return _toml_string(v)
    if isinstance(v, (datetime.datetime, datetime.date, datetime.time)):
        return v.isoformat()
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_toml_key(k)} = {toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(f"no TOML for {v!r}")


def toml_dumps(doc: dict) -> str:
    """TOML for a document: top-level values first, then [tables] and [[arrays of tables]];
    anything deeper is written inline."""
    def table_array(v):
        return isinstance(v, list) and v and all(isinstance(x, dict) for x in v)

    lines = [f"{_toml_key(k)} = {toml_value(v)}" for k, v in doc.items()
             if not isinstance(v, dict) and not table_array(v)]
    for k, v in doc.items():
        if isinstance(v, dict):
            lines += ["", f"[{_toml_key(k)}]"] + [f"{_toml_key(kk)} = {toml_value(vv)}" for kk, vv in v.items()]
        elif table_array(v):
            for element in v:
                lines += ["", f"[[{_toml_key(k)}]]"]
                lines += [f"{_toml_key(kk)} = {toml_value(vv)}" for kk, vv in element.items()]
    return "\n".join(lines).lstrip("\n") + "\n"


# ----------------------------------------------------------------------------- strategies

SPECIAL_STRINGS = (
    "", " ", "\t", "end", "cue:", "cue: ", "x" * 300, "🎧🔊👩\u200d💻", "مرحبا بالعالم", "שלום עולם",
    "\u202eevil\u202c", "e\u0301\u0301", "\u200b", "\ufeffbom", "\x01\x1b[31mred\x7f", "line\nbreak",
    "tab\there", 'quote"and\\back', "../../etc/passwd", "/dev/null", "CON", "~", "%s%n{}", "NaN", "1e9",
    "piece.toml", TEXT_NAME, "clip.wav", ".", "😀" * 60,
)

SPECIAL_TEXTS = {
    "empty": "",
    "whitespace": " \n\t  \n\n",
    "emoji": "🎧🔊 👩\u200d💻✨\n",
    "rtl-arabic": "مرحبا بالعالم. هذا اختبار.\n",
    "rtl-hebrew": "שלום עולם. זה מבחן.\n",
    "punctuation": "... !!! ??? — ;:,\n",
    "mixed": "Hello 世界! Ça va? 🎧 Done.\nשלום.\n\nمرحبا 123.\n",
    "controls": "Bell\x07 and escape\x1b[0m text.\x0b\x0c Next.\n",
    "numbers": "3.7 and 02:00 and 1e9. Mr. Smith etc. J. R. R. Tolkien.\n",
    "newlines": "One.\r\nTwo.\rThree.\u2028Four.\n",
    "bom": "\ufeffHello. World.\n",
    "zero-width": "\u200b\u200c\u200d.\n",
    "combining": "e\u0301\u0301\u0301 a\u0308 o\u0338.\n",
    "one-word": "Hello\n",
    "title-only": "Just a title\n",
    "many-lines": "\n".join(f"Line {i}." for i in range(12)) + "\n",
    "long-word": "a" * 200 + ".\n",
    "spaced-dots": "Wait . . . what ?\n",
}


def long_line_text() -> str:
    """One 5,000-character line without punctuation: about 256 s of speech, longer than MAX_RENDER_S.
    Not among the CI profile's texts (``slow``); it has its own test, which renders it in full (~4 s)."""
    words = "the hum goes on under every word and nobody turns it off".split()
    out, i = [], 0
    while sum(len(w) + 1 for w in out) < 5000:
        out.append(words[i % len(words)])
        i += 1
    return " ".join(out)[:5000] + "\n"


def unicode_strings(max_size=40):
    chars = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
    return st.one_of(st.sampled_from(SPECIAL_STRINGS), st.text(chars, max_size=max_size))


EXTREME_NUMBERS = (0, -1, 1, 2, 0.0, -0.0, 0.5, 1e9, -1e9, 1e300, -1e300, 5e-324, 2**63 - 1, 2**63, -(2**63),
                   float("nan"), float("inf"), float("-inf"), 22049, 96001, 3600, 3600.0001, 43200.5)


def numbers_():
    return st.one_of(st.sampled_from(EXTREME_NUMBERS), st.integers(-(2**64), 2**64),
                     st.floats(allow_nan=True, allow_infinity=True))


def any_value(depth=2):
    scalars = st.one_of(
        st.booleans(), numbers_(), unicode_strings(),
        st.datetimes(min_value=datetime.datetime(1, 1, 1), max_value=datetime.datetime(9999, 12, 31)),
        st.dates(), st.times(),
    )
    if depth <= 0:
        return scalars
    inner = any_value(depth - 1)
    return st.one_of(scalars, st.lists(inner, max_size=4),
                     st.dictionaries(unicode_strings(12), inner, max_size=3))


def time_exprs(strict=False):
    """Time expressions: seconds, "end", "end-N", "cue:<text>±N"; ``strict``: ones that should resolve."""
    good = st.one_of(
        st.floats(0, 6), st.just("end"),
        st.builds(lambda off: f"end-{off}", st.sampled_from(("0", "0.5", "1", "2.5"))),
        st.builds(lambda a, off: f"cue:{a}{off}", st.sampled_from(BASE_SENTENCES[1:] + ("hum", "weights")),
                  st.sampled_from(("", "+0.5", "-0.2", "+1", "+2.5", " - 0.1"))),
    )
    if strict:
        return good
    anchors = BASE_SENTENCES + ("hum", "I hold", "e", ".", "weights remain", "Nope", "", "🎧", "The")
    return st.one_of(
        good, st.floats(0, 30),
        st.sampled_from((0, 0.0, -1, -0.5, 43200, 43200.5, 1e9, float("nan"), float("inf"))),
        st.builds(lambda a, sign, off: f"cue:{a}{sign}{off}", st.sampled_from(anchors),
                  st.sampled_from(("", "+", "-", " + ", "+-")),
                  st.sampled_from(("", "0", "1.5", "0.25", ".5", "3.", "1e3", "99999999", "9" * 400, "abc"))),
        st.builds(lambda sign, off: f"end{sign}{off}", st.sampled_from(("", "-", "+", " - ")),
                  st.sampled_from(("", "0", "1", "2.5", "100", "99999999999", "9" * 400))),
        st.sampled_from(("end", "END", " end ", "end\n", "cue:", "cue:\n", "start", "-1", "1e3", "cue:cue:I hold")),
        unicode_strings().map(lambda s: "cue:" + s),
    )


@lru_cache(maxsize=1)
def voice_names() -> tuple:
    """Voice ids as a score may give them: all valid but the last few."""
    ids = [v.id for v in get_engine("espeak").voices()]
    variants = get_engine("espeak").variants()
    picks = ["en-us", "en", "EN-US", "gmw/en-us", "en-gb", "de", "fr", "ar", "he", "zh", "ja", "hi", "ru",
             "en-us+whisper", "en-us+m3", "en+f2", "en-us+", "en-us+Mr serious"]
    return tuple(picks + ids + [f"en-us+{v}" for v in variants] + [f"{i}+{v}" for i, v in zip(ids[::3], variants)])


INVALID_VOICES = ("+whisper", "en-us+nope", "en-uss", "", "en-us+whisper+m3", " en-us", "en_US")


def png_bytes() -> bytes:
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00")) + chunk(b"IEND", b""))


def spec_for(doc: dict, path: tuple):
    """The schema row (a score table's or a source's Param) for a key path, or None."""
    try:
        if len(path) == 2 and path[0] in score_module.TABLES:
            return {f.name: f for f in score_module.TABLES[path[0]]}.get(path[1])
        if len(path) == 3 and path[0] in score_module.ARRAYS and isinstance(path[1], int):
            return {f.name: f for f in score_module.ARRAYS[path[0]]}.get(path[2])
        if len(path) == 4 and path[0] == "layer" and path[2] == "params":
            source = sources.SOURCES.get(doc["layer"][path[1]].get("source"))
            return {p.name: p for p in source.params}.get(path[3]) if source else None
    except (KeyError, IndexError, TypeError, AttributeError):
        return None
    return None


def schema_paths(doc: dict) -> list:
    """Every key path the schema knows for this document (given or not): where valid mutations go."""
    out = [(t, f.name) for t, fields in score_module.TABLES.items() if isinstance(doc.get(t, {}), dict)
           for f in fields]
    for name, fields in score_module.ARRAYS.items():
        items = doc.get(name)
        if isinstance(items, list):
            out += [(name, i, f.name) for i, item in enumerate(items) if isinstance(item, dict) for f in fields]
    for i, layer in enumerate(doc.get("layer") or []):
        if isinstance(layer, dict) and isinstance(layer.get("params", {}), dict):
            source = sources.SOURCES.get(layer.get("source")) if isinstance(layer.get("source"), str) else None
            out += [("layer", i, "params", p.name) for p in (source.params if source else ())]
    return out


def _numeric_kind(spec):
    kind = spec.kind
    if isinstance(kind, tuple):
        return float if float in kind else kind[0]
    return kind


def valid_values(spec, path: tuple, strict=False):
    """Values the schema accepts, biased to short renders; unless ``strict``, a few near misses too."""
    name = path[-1]

    def pick(good, bad=()):
        return st.sampled_from(tuple(good)) if strict or not bad else \
            st.one_of(st.sampled_from(tuple(good)), st.sampled_from(tuple(bad)))
    if name == "sample_rate":
        return st.one_of(st.sampled_from((22050, 22050, 22050, 24000, 32000, 44100, 48000, 96000, 22051)),
                         st.integers(22050, 96000))
    if (path[0] == "voice" and name == "name") or (path[0] == "cue" and name == "voice"):
        names = st.integers(0, 10**6).map(lambda i: voice_names()[i % len(voice_names())])
        return names if strict else st.one_of(names, st.sampled_from(INVALID_VOICES))
    if name == "source":
        return st.sampled_from(tuple(sources.SOURCES))
    if name == "match":
        return pick(BASE_SENTENCES + ("hum", "I hold", "weights", "It ends", "  The hum   is real. "),
                    ("e", "Nope", "", "."))
    if name in ("start", "end", "at") or (path[0] == "chapter" and name == "at"):
        return time_exprs(strict)
    if name == "text" and path[0] == "piece":
        return pick((TEXT_NAME, "./" + TEXT_NAME), ("missing.txt", ".", "", SCORE_NAME, "clip.wav", "cover.png",
                                                    "/", "../" + TEXT_NAME))
    if name == "cover":
        return pick(("", "cover.png"), ("clip.wav", TEXT_NAME, "missing.png", "."))
    if name == "path":
        return pick(("clip.wav",), ("", TEXT_NAME, "missing.wav", ".", "cover.png", "/dev/null"))
    if name == "formats":
        return st.lists(st.sampled_from(score_module.FORMATS), min_size=1, max_size=4)
    if name == "effects":
        return effect_chains(strict)
    if name == "mp3":
        return pick(("cbr192", "cbr32", "cbr320", "vbr0", "vbr9"), ("cbr192\n", "vbr2 ", "cbr100"))
    if spec is None:
        return any_value(1)
    if spec.choices:
        return st.sampled_from(tuple(spec.choices))
    kind = _numeric_kind(spec)
    if kind is bool:
        return st.booleans()
    if kind in (int, float) and spec.min is not None and spec.max is not None:
        lo, hi = spec.min, spec.max
        if hi - lo > 100 and path[0] in ("pauses", "cue", "loop", "layer"):  # durations: keep renders short
            hi = min(hi, lo + 3)
        if kind is int:
            return st.one_of(st.sampled_from((int(spec.min), int(spec.max))), st.integers(int(lo), int(hi)))
        return st.one_of(st.sampled_from((float(spec.min), float(spec.max))), st.floats(float(lo), float(hi)))
    if kind is str:
        return unicode_strings() if not strict else st.sampled_from(
            ("Fuzz", "Ünïcödé 🎧", "שלום", "a" * 100, "", " ", "tab\there", "line\nbreak", "x" * 3000, "\u202eevil",
             'q"uote\\'))
    return any_value(1)


def _effects_table() -> dict:
    try:
        from audio import effects
        return dict(effects.EFFECTS)
    except (ImportError, AttributeError):
        return {}


def effect_chains(strict=False):
    """Effect chains ([{effect = "reverb", wet = 0.2}, ...]) from the effects table; unless ``strict``,
    broken ones too (unknown effects and parameters, wrong types)."""
    table = _effects_table()
    if not table:
        return st.just([])

    @st.composite
    def entry(draw):
        name = draw(st.sampled_from(tuple(table)))
        item = {"effect": name}
        for p in table[name].params:
            if draw(st.integers(0, 2)) == 0:
                item[p.name] = draw(valid_values(p, ("effects", 0, p.name), strict))
        return item
    chains = st.lists(entry(), max_size=3)
    if strict:
        return chains
    broken = st.one_of(any_value(1), st.sampled_from(({"effect": "reverbb"}, {"wet": 0.2}, {"effect": 1},
                                                      {"effect": "reverb", "wet": 2.0}, {"effect": "eq", "x": 1})))
    return st.one_of(chains, st.lists(st.one_of(entry(), broken), max_size=3), any_value(1))


def envelopes(spec, strict=False):
    lo = float(spec.min) if spec is not None and getattr(spec, "min", None) is not None else -1.0
    hi = float(spec.max) if spec is not None and getattr(spec, "max", None) is not None else 1.0
    if strict:
        point = st.one_of(st.tuples(time_exprs(True), st.floats(lo, hi)).map(list),
                          st.tuples(time_exprs(True), st.floats(max(lo, 1e-3), max(hi, 1e-3)),
                                    st.sampled_from(("linear", "exp"))).map(list))
        return st.lists(point, min_size=1, max_size=4).map(lambda ps: sorted(
            ps, key=lambda p: p[0] if isinstance(p[0], float) else 0.0))
    value = st.one_of(st.floats(lo, hi), st.sampled_from((lo, hi, 0, -1, float("nan"), "x", [1], True)))
    point = st.one_of(
        st.tuples(time_exprs(), value).map(list),
        st.tuples(time_exprs(), value, st.sampled_from(("linear", "exp", "EXP", "", 1))).map(list),
        st.sampled_from(([], [0.0], [0.0, 1.0, "exp", 4], "0,1", {"t": 0})),
        st.tuples(st.one_of(st.booleans(), st.lists(st.integers(), max_size=2), st.just({})), value).map(list),
    )
    return st.lists(point, max_size=4)


def _paths(node, prefix=()):
    out = []
    if isinstance(node, dict):
        for k, v in node.items():
            out.append(prefix + (k,))
            out += _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out.append(prefix + (i,))
            out += _paths(v, prefix + (i,))
    return out


def _get(doc, path):
    for k in path:
        doc = doc[k]
    return doc


def _retype(value):
    kinds = {
        str: unicode_strings(), int: st.integers(-10, 10**6), float: numbers_(), bool: st.booleans(),
        list: st.lists(any_value(0), max_size=3), dict: st.dictionaries(unicode_strings(10), any_value(0), max_size=2),
        datetime.datetime: st.datetimes(min_value=datetime.datetime(1, 1, 1), max_value=datetime.datetime(9999, 1, 1)),
    }
    here = type(value)
    return st.one_of(*[s for k, s in kinds.items() if k is not here])


def new_layer(source: str, name: str, strict=True):
    """A layer of ``source`` with some keys and parameters at drawn (valid) values."""
    @st.composite
    def build(draw):
        layer = {"name": name, "source": source}
        for key in ("gain_db", "pan", "duck_db", "start", "end", "fade_in", "fade_out"):
            if draw(st.integers(0, 2)) == 0:
                layer[key] = draw(valid_values(spec_for({"layer": [layer]}, ("layer", 0, key)), ("layer", 0, key),
                                               strict))
        params = {}
        for p in sources.SOURCES[source].params:
            if p.name == "path":
                params["path"] = "clip.wav"
            elif draw(st.integers(0, 2)) == 0:
                params[p.name] = draw(valid_values(p, ("layer", 0, "params", p.name), strict))
            if p.name in params and p.auto and draw(st.integers(0, 5)) == 0:
                params[p.name] = draw(envelopes(p, strict))
        if params:
            layer["params"] = params
        return layer
    return build()


WILD = ("drop", "retype", "extreme", "unicode", "near", "time", "duplicate", "unknown_key", "envelope", "null_table")
VALID = ("valid",) * 6 + ("add_layer",) * 2 + ("add_table", "time", "envelope", "duplicate", "no_layers")


def _valid_mutation(draw, doc, notes):
    op = draw(st.sampled_from(VALID))
    if op == "no_layers":  # a voice alone (no [[layer]] at all is allowed)
        doc.pop("layer", None)
        notes.append("no_layers")
        return
    if op == "add_layer":
        layers = doc.setdefault("layer", [])
        if isinstance(layers, list):
            source = draw(st.sampled_from(tuple(sources.SOURCES)))
            layers.append(draw(new_layer(source, f"extra {len(layers)} {source}")))
            notes.append(f"add_layer {source}")
        return
    if op == "add_table":
        table = draw(st.sampled_from(tuple(score_module.TABLES)))
        if isinstance(doc.setdefault(table, {}), dict):
            for f in score_module.TABLES[table]:
                if draw(st.integers(0, 2)) == 0:
                    doc[table][f.name] = draw(valid_values(f, (table, f.name), strict=True))
            notes.append(f"add_table {table}")
        return
    if op == "duplicate":
        name = draw(st.sampled_from(tuple(score_module.ARRAYS)))
        items = doc.get(name)
        if isinstance(items, list) and items:
            i = draw(st.integers(0, len(items) - 1))
            twin = copy.deepcopy(items[i])
            if isinstance(twin, dict) and isinstance(twin.get("name"), str):
                twin["name"] += " twin"
            items.insert(i + 1, twin)
            notes.append(f"duplicate {name}[{i}]")
        return
    paths = schema_paths(doc)
    if op == "time":
        paths = [p for p in paths if p[-1] in ("start", "end", "at")]
    elif op == "envelope":  # gain and pan twice as often as all the generator parameters together
        levels = [p for p in paths if p[0] == "layer" and len(p) == 3 and p[-1] in ("gain_db", "pan")]
        params = [p for p in paths if p[0] == "layer" and len(p) == 4 and getattr(spec_for(doc, p), "auto", False)]
        paths = params if not levels or params and draw(st.integers(0, 2)) == 0 else levels
    if not paths:
        return
    path = draw(st.sampled_from(paths))
    if len(path) == 2:
        doc.setdefault(path[0], {})
    if len(path) == 4:
        doc["layer"][path[1]].setdefault("params", {})
    parent = _get(doc, path[:-1])
    spec = spec_for(doc, path)
    if not isinstance(parent, dict):
        return
    if op == "envelope":
        parent[path[-1]] = draw(envelopes(spec, strict=True))
    elif op == "time":
        parent[path[-1]] = draw(time_exprs(strict=True))
    else:
        parent[path[-1]] = draw(valid_values(spec, path, strict=True))
    notes.append(f"{op} {'.'.join(map(str, path))} = {parent[path[-1]]!r:.60}")


def _wild_mutation(draw, doc, notes):
    op = draw(st.sampled_from(WILD))
    if op == "null_table":  # a table or array replaced by an empty one
        key = draw(st.sampled_from(tuple(score_module.TABLES) + tuple(score_module.ARRAYS)))
        doc[key] = [] if key in score_module.ARRAYS and draw(st.booleans()) else {}
        notes.append(f"null_table {key}")
        return
    paths = _paths(doc)
    if op in ("time", "envelope"):  # aimed at the keys that take times and envelopes
        targets = [p for p in paths if p[-1] in ("start", "end", "at") or p[-1] in ("gain_db", "pan") and p[0] == "layer"
                   or len(p) >= 3 and p[0] == "layer" and isinstance(p[-1], int)]
        paths = targets if targets and draw(st.integers(0, 3)) else paths
    if not paths:
        return
    path = draw(st.sampled_from(paths))
    parent, key = _get(doc, path[:-1]), path[-1]
    value = parent[key]
    spec = spec_for(doc, path)
    if op == "drop":
        del parent[key]
    elif op == "retype":
        parent[key] = draw(_retype(value))
    elif op == "extreme":
        edges = [x for s in (spec,) if s is not None and getattr(s, "min", None) is not None
                 and getattr(s, "max", None) is not None
                 for x in (s.min, s.max, s.min - 1e-9, s.max + 1e-9, s.min - 1, s.max + 1)]
        parent[key] = draw(st.one_of(numbers_(), st.sampled_from(edges or [0])))
    elif op == "unicode":
        parent[key] = draw(unicode_strings(200))
    elif op == "near":
        parent[key] = draw(valid_values(spec, path))
    elif op == "time":
        parent[key] = draw(time_exprs())
    elif op == "duplicate":
        if isinstance(parent, list):
            parent.insert(key, copy.deepcopy(value))
        elif isinstance(value, dict) and value:
            k = draw(st.sampled_from(list(value)))
            value[f"{k} "] = copy.deepcopy(value[k])
    elif op == "unknown_key":
        target = value if isinstance(value, dict) else parent
        if isinstance(target, dict):
            target[draw(st.one_of(unicode_strings(20), st.sampled_from(("titel", "gain", "params", "Name"))))] = \
                draw(any_value(1))
    elif op == "envelope":
        parent[key] = draw(envelopes(spec))
    notes.append(f"{op} {'.'.join(map(str, path))}")


@st.composite
def mutated_docs(draw, max_valid=4, max_wild=2):
    """The base score with up to ``max_valid`` schema-valid mutations (values in range, extra layers of
    any generator, tables, envelopes, anchors), then up to ``max_wild`` wild ones (drops, retypes,
    extremes, unicode, unknown keys, broken envelopes and times). Returns (doc, notes)."""
    doc = base_doc()
    notes = []
    for _ in range(draw(st.integers(0, max_valid))):
        _valid_mutation(draw, doc, notes)
    for _ in range(draw(st.integers(0, max_wild))):
        _wild_mutation(draw, doc, notes)
    return doc, notes


def texts(slow=False, base_weight=6):
    choices = ["base"] * base_weight + list(SPECIAL_TEXTS) + ["random"] + (["long-line"] if slow else [])

    @st.composite
    def build(draw):
        label = draw(st.sampled_from(choices))
        if label == "base":
            return label, BASE_TEXT
        if label == "long-line":
            return label, long_line_text()
        if label == "random":
            chars = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
            return label, draw(st.text(chars, max_size=80))
        return label, SPECIAL_TEXTS[label]
    return build()


def detach(doc: dict) -> dict:
    """The score without references to the base text (for random texts): no cues, numbers for anchors."""
    doc = copy.deepcopy(doc)
    doc.pop("cue", None)

    def fix(v, fallback):
        return fallback if isinstance(v, str) and "cue:" in v else v
    for layer in doc.get("layer", []) if isinstance(doc.get("layer"), list) else []:
        if isinstance(layer, dict):
            for key, fallback in (("start", 0.0), ("end", "end")):
                if key in layer:
                    layer[key] = fix(layer[key], fallback)
            for key in ("gain_db", "pan"):
                if isinstance(layer.get(key), list):
                    layer[key] = [[fix(p[0], 1.0), *p[1:]] if isinstance(p, list) and p else p for p in layer[key]]
    for chapter in doc.get("chapter", []) if isinstance(doc.get("chapter"), list) else []:
        if isinstance(chapter, dict) and "at" in chapter:
            chapter["at"] = fix(chapter["at"], 1.0)
    return doc


def options(strict=False):
    """``score.with_options`` arguments as the command line can give them (``strict``: valid ones)."""
    return st.fixed_dictionaries({}, optional={
        "preset": st.sampled_from(tuple(score_module.PRESETS) + (() if strict else ("podcst", ""))),
        "mp3": st.sampled_from(("cbr128", "vbr2") + (() if strict else ("cbr999", "vbr10", "", " cbr192"))),
        "seamless": st.sampled_from((True, None)),
        "duration_s": st.floats(1, 20) if strict else st.one_of(st.floats(1, 20), st.sampled_from(
            (0.5, 0.0, -1.0, 1.0, 30.0, 1e9, float("nan"), float("inf")))),
        "formats": st.lists(st.sampled_from(score_module.FORMATS), min_size=1, max_size=3, unique=True),
    })


@st.composite
def examples(draw, slow=False, with_options=True, for_render=False):
    """(doc, text label, text, options, notes): a mutated score, a text and command-line options.

    ``for_render``: at most one wild mutation, usually none, and mostly the base text."""
    wild = draw(st.sampled_from((0, 0, 0, 1))) if for_render else 2
    doc, notes = draw(mutated_docs(max_valid=4, max_wild=wild))
    label, text = draw(texts(slow, base_weight=12 if for_render else 6))
    if label != "base" and draw(st.integers(0, 3)) > 0:
        doc = detach(doc)
        notes.append("detached from the base text")
    opts = draw(options(strict=for_render)) if with_options and draw(st.integers(0, 3)) == 0 else None
    return doc, label, text, opts, notes


@st.composite
def byte_mutations(draw):
    """The base score's TOML bytes truncated, flipped, spliced; returns (bytes, notes)."""
    data = bytearray(toml_dumps(base_doc()).encode())
    notes = []
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(("truncate", "flip", "set", "insert", "delete", "dup_line", "swap_lines")))
        i = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "truncate":
            del data[i:]
        elif op == "flip" and data:
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and data:
            data[i] = draw(st.integers(0, 255))
        elif op == "insert":
            data[i:i] = draw(st.one_of(st.binary(min_size=1, max_size=8),
                                       st.sampled_from((b"[", b"]", b"=", b'"', b"\n", b"[[layer]]\n", b"\xff", b"\x00",
                                                        b"\xc3", b"#", b"'''", b"inf", b"nan"))))
        elif op == "delete":
            del data[i:i + draw(st.integers(1, 20))]
        elif op in ("dup_line", "swap_lines"):
            lines = bytes(data).split(b"\n")
            a, b = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
            if op == "dup_line":
                lines.insert(a, lines[a])
            else:
                lines[a], lines[b] = lines[b], lines[a]
            data = bytearray(b"\n".join(lines))
        notes.append(f"{op} @{i}")
    return bytes(data), notes


# ----------------------------------------------------------------------------- running one example

_PATH_RE = re.compile(r"""^(?:
      (?:piece|voice|pauses|master|loop)(?:[.\[:]|$)     # a table, or a key in it
    | (?:cue|layer|chapter|say|speaker|span)(?:\[\d+\]|(?=[.:]))  # an array element by index, or the array
    | layer\ ".*"                                        # a layer by name
    | --duration                                         # the command line's --duration
)""", re.X | re.S)
_TOML_POSITION_RE = re.compile(r"^invalid TOML: .*\((?:at line \d+, column \d+|at end of document)\)", re.S)
_UTF8_RE = re.compile(r"^not UTF-8: byte 0x[0-9a-f]{2} at offset \d+")
_UNKNOWN_TABLE_RE = re.compile(r"^.*: unknown table", re.S)


def score_error_key(message: str, file: str) -> str | None:
    """The key path a ScoreError names, normalised for counting ("layer.params.low_hz", "cue.match",
    "<toml syntax>"), or None when the message names none."""
    if not message.startswith(file + ": "):
        return None
    rest = message[len(file) + 2:]
    if _TOML_POSITION_RE.match(rest):
        return "<toml syntax>"
    if _UTF8_RE.match(rest):
        return "<utf-8>"
    if rest.startswith("invalid TOML: tables and arrays nested too deep"):
        return "<toml nesting>"
    if not _PATH_RE.match(rest):
        return "<unknown table>" if _UNKNOWN_TABLE_RE.match(rest) else None
    m = re.match(r'^layer ".*?"(?=[.:])', rest, re.S)
    if m:
        rest = "layer" + rest[m.end():]
    where, _, what = rest.partition(": ")
    if what.startswith(("unknown key", "unknown parameter")):
        where = where.rsplit(".", 1)[0] + ".<unknown key>"
    where = re.sub(r"\[\d+\]", "[]", where)
    where = re.sub(r"^(cue|layer|chapter)\[\]", r"\1", where)
    return where


class Hang(BaseException):
    """An example ran past its time limit (BaseException: no ``except Exception`` in the code catches it)."""


@contextlib.contextmanager
def time_limit(seconds: float):
    if seconds is None or threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_alarm(signum, frame):
        raise Hang(f"example still running after {seconds:g} s")
    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@dataclass
class Outcome:
    kind: str  # "rendered", "planned" (resolved, not rendered), "score_error", "failure"
    key: str = ""  # the ScoreError's key path, or the failure's signature
    detail: str = ""  # message or traceback
    info: dict = field(default_factory=dict)

    @property
    def ok(self):
        return self.kind != "failure"


def _signature(e: BaseException) -> str:
    """Exception type and the innermost frame inside the package: what a failure is counted by."""
    frames = [f for f in traceback.extract_tb(e.__traceback__) if "/audio/" in f.filename.replace("\\", "/")]
    where = f"{Path(frames[-1].filename).name}:{frames[-1].name}" if frames else "?"
    return f"{type(e).__name__} in {where}"


def write_example(folder: Path, score_bytes: bytes, text: str):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / SCORE_NAME).write_bytes(score_bytes)
    (folder / TEXT_NAME).write_bytes(text.encode("utf-8", "surrogatepass"))
    (folder / "cover.png").write_bytes(png_bytes())
    rng = np.random.default_rng(0)
    sf.write(str(folder / "clip.wav"), (rng.standard_normal((11025, 2)) * 0.1).astype(np.float32), 22050)
    return folder / SCORE_NAME


def run_example(folder: Path, score_bytes: bytes, text: str, opts: dict | None = None, render_it=True,
                max_render_s=MAX_RENDER_S, timeout_s=EXAMPLE_TIMEOUT_S, cache=None, ffmpeg_check=False) -> Outcome:
    """One example through load → (with_options) → resolve → render; the outcome, never an exception.

    A render must meet the master's targets by its manifest (and, with ``ffmpeg_check``, by ffmpeg's
    ebur128 on the WAV, for pieces of 3 s or more)."""
    path = write_example(folder, score_bytes, text)
    file = str(path)
    cache = cache or ClipCache()
    stage = "load"
    try:
        with time_limit(timeout_s), warnings.catch_warnings():
            warnings.simplefilter("error")
            sc = score_module.load(path)
            if opts:
                stage = "with_options"
                sc = score_module.with_options(sc, **opts)
            stage = "resolve"
            p = plan_module.resolve(sc, cache)
            info = {"duration_s": p.duration_s, "sample_rate": p.sample_rate, "channels": p.channels,
                    "formats": list(sc.master.formats)}
            if not render_it or p.duration_s > max_render_s:
                return Outcome("planned", "", "", info)
            stage = "render"
            manifest = render_module.render(p, cache, folder / "out")
    except ScoreError as e:
        key = score_error_key(str(e), file)
        if key is None:
            head = str(e).removeprefix(file + ": ").split(":")[0].split(" (")[0][:40]
            return Outcome("failure", f"ScoreError naming no key path ({head})", str(e), {"stage": stage})
        return Outcome("score_error", key, str(e), {"stage": stage})
    except Hang as e:
        return Outcome("failure", f"hang in {stage}", f"{e}\n{traceback.format_exc()}", {"stage": stage})
    except Exception as e:  # noqa: BLE001 - the point of the fuzzer
        return Outcome("failure", _signature(e), traceback.format_exc(), {"stage": stage})
    measured = manifest["measured"]
    info.update(measured=measured, files=manifest["files"], target=dataclasses.asdict(p.master))
    target, ceiling = p.master.loudness_lufs, p.master.true_peak_dbtp
    lufs, dbtp = measured["loudness_lufs"], measured["true_peak_dbtp"]
    if not (lufs is not None and math.isfinite(lufs) and abs(lufs - target) <= 0.5):
        why = "" if lufs is not None and math.isfinite(lufs) else \
            " (shorter than one 400 ms gating block)" if p.duration_s < 0.4 else " (silent piece)"
        return Outcome("failure", "off target: loudness" + why,
                       f"loudness {lufs} LUFS, target {target} LUFS ±0.5; duration {p.duration_s:.2f} s", info)
    if not (dbtp is not None and dbtp <= ceiling + 1e-9):
        return Outcome("failure", "off target: true peak", f"true peak {dbtp} dBTP over the {ceiling} dBTP ceiling",
                       info)
    if ffmpeg_check and p.duration_s >= 3:
        failure = _check_files_by_ffmpeg(manifest["files"], p, info)
        if failure:
            return failure
    return Outcome("rendered", "", "", info)


def _check_files_by_ffmpeg(files: dict, p, info: dict) -> Outcome | None:
    """Every audio file the render wrote, measured by ffmpeg's ebur128: loudness on target (±0.5 LU;
    ±1 LU for lossy formats) and true peak under the ceiling in the lossless ones (lossy codecs overshoot)."""
    from conftest import ebur128  # the independent meter: ffmpeg's
    target, ceiling = p.master.loudness_lufs, p.master.true_peak_dbtp
    info["ebur128"] = {}
    for fmt, path in files.items():
        if fmt not in score_module.FORMATS or not isinstance(path, str):
            continue
        theirs = info["ebur128"][fmt] = ebur128(path)  # as written: a mono mix written twice reads as two channels
        tolerance = 0.5 if fmt in ("wav", "flac") else 1.0  # a lossy codec's low-pass takes a little away
        if abs(theirs["lufs"] - target) > tolerance:
            return Outcome("failure", f"off target by ffmpeg's ebur128: {fmt} loudness",
                           f"{fmt}: ebur128 {theirs['lufs']} LUFS, target {target} "
                           f"LUFS; manifest {info['measured']['loudness_lufs']:.2f}; "
                           f"bit_depth {p.master.bit_depth}", info)
        if fmt in ("wav", "flac") and theirs["dbtp"] > ceiling:
            return Outcome("failure", f"off target by ffmpeg's ebur128: {fmt} true peak",
                           f"{fmt}: ebur128 true peak {theirs['dbtp']} dBTP, ceiling {ceiling}", info)
    return None


# ----------------------------------------------------------------------------- known bugs

def _known(kind, pattern):
    rx = re.compile(pattern, re.S)
    return lambda o: o.kind == "failure" and o.key.startswith(kind) and bool(rx.search(o.key + "\n" + o.detail))


KNOWN_BUGS = {
}


def known_bug(outcome: Outcome) -> str | None:
    if os.environ.get("PIECE_FUZZ_STRICT"):
        return None
    return next((name for name, matches in KNOWN_BUGS.items() if matches(outcome)), None)


def _event(text: str):
    if currently_in_test_context():  # hypothesis statistics, when run under @given
        event(text)


def assert_property(outcome: Outcome, where):
    _event(f"{outcome.kind}: {outcome.key}" if outcome.kind in ("score_error", "failure") else outcome.kind)
    if outcome.ok:
        return
    bug = known_bug(outcome)
    if bug:
        _event(f"known bug: {bug}")
        return
    raise AssertionError(f"{outcome.key}\n{outcome.detail}\n(example in {where})")


# ----------------------------------------------------------------------------- the CI profile

CI = settings(deadline=None, derandomize=True, database=None, print_blob=False,
              suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate, Phase.shrink])


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


@pytest.fixture(scope="module")
def cache():
    return ClipCache()


def _folder(work: Path) -> Path:
    return Path(tempfile.mkdtemp(dir=work))


@given(st.dictionaries(unicode_strings(8), st.one_of(any_value(2), st.lists(st.dictionaries(
    unicode_strings(8), any_value(1), max_size=3), min_size=1, max_size=2)), min_size=1, max_size=4))
@CI
def test_the_toml_writer_round_trips(doc):
    import tomllib

    def same(a, b):
        if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
            return True
        if isinstance(a, dict) and isinstance(b, dict):
            return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
        if isinstance(a, list) and isinstance(b, list):
            return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
        return type(a) is type(b) and a == b
    assert same(tomllib.loads(toml_dumps(doc)), doc)


def test_the_base_example_renders_on_target_by_ffmpegs_meter(work, cache):
    from conftest import ebur128
    for channels in (2, 1):
        doc = base_doc()
        doc["piece"]["channels"] = channels
        out = run_example(_folder(work), toml_dumps(doc).encode(), BASE_TEXT, cache=cache)
        assert out.kind == "rendered", out.detail
        measured = ebur128(out.info["files"]["wav"])
        assert abs(measured["lufs"] - doc["master"]["loudness_lufs"]) <= 0.5, measured
        assert measured["dbtp"] <= doc["master"]["true_peak_dbtp"], measured


def test_a_5000_character_line_without_punctuation(work, cache):
    """One line, no punctuation, about 256 s of speech: resolved and rendered in full (a few seconds)."""
    doc = detach(base_doc())
    out = run_example(_folder(work), toml_dumps(doc).encode(), long_line_text(), cache=cache, max_render_s=math.inf)
    assert_property(out, "the long line")
    assert out.kind == "rendered" and out.info["duration_s"] > 60, (out.kind, out.key, out.info)


@given(examples())
@settings(CI, max_examples=150)
def test_load_and_resolve_give_a_plan_or_a_score_error_naming_a_key(work, cache, example):
    doc, label, text, opts, notes = example
    note(f"text: {label}; options: {opts}; mutations: {notes}")
    folder = _folder(work)
    assert_property(run_example(folder, toml_dumps(doc).encode(), text, opts, render_it=False, cache=cache), folder)


@given(byte_mutations())
@settings(CI, max_examples=100)
def test_byte_mutations_of_the_toml_load_or_fail_with_a_position(work, cache, mutation):
    data, notes = mutation
    note(f"mutations: {notes}")
    folder = _folder(work)
    assert_property(run_example(folder, data, BASE_TEXT, render_it=False, cache=cache), folder)


@given(examples(for_render=True))
@settings(CI, max_examples=20)
def test_renders_meet_the_master_targets_or_fail_with_a_score_error(work, cache, example):
    doc, label, text, opts, notes = example
    note(f"text: {label}; options: {opts}; mutations: {notes}")
    folder = _folder(work)
    outcome = run_example(folder, toml_dumps(doc).encode(), text, opts, cache=cache, ffmpeg_check=True)
    assert_property(outcome, folder)


# ----------------------------------------------------------------------------- special files and sizes
# Files that are not regular files where the score names one (a named pipe would block for good,
# /dev/zero never ends, a symlink loop raised RuntimeError), and what is bounded below what the
# engine and the tag formats survive: the longest word, the most chapters, the longest chain.

SPECIAL_FILES = ("fifo", "/dev/zero", "link-loop", "folder")


def special_file(folder: Path, kind: str) -> str:
    """A path of ``kind`` in ``folder``, as the score names it."""
    folder.mkdir(parents=True, exist_ok=True)
    if kind == "fifo":
        os.mkfifo(folder / "special")
    elif kind == "link-loop":
        (folder / "special").symlink_to(folder / "special-too")
        (folder / "special-too").symlink_to(folder / "special")
    elif kind == "folder":
        (folder / "special").mkdir()
    return "/dev/zero" if kind == "/dev/zero" else "special"


@pytest.mark.parametrize("key", ["text", "cover", "sample"])
@pytest.mark.parametrize("kind", SPECIAL_FILES)
def test_special_files_the_score_names_are_refused_at_load(work, cache, kind, key):
    folder = _folder(work)
    doc, name = base_doc(), special_file(folder, kind)
    if key == "text":
        doc["piece"]["text"] = name
    elif key == "cover":
        doc["piece"]["cover"] = name
    else:
        doc["layer"].append({"name": "clip", "source": "sample", "params": {"path": name}})
    outcome = run_example(folder, toml_dumps(doc).encode(), BASE_TEXT, render_it=False, cache=cache, timeout_s=20)
    assert_property(outcome, folder)
    assert outcome.kind == "score_error" and outcome.info["stage"] == "load", (outcome.kind, outcome.detail)


@pytest.mark.parametrize("kind", ["fifo", "/dev/zero", "folder"])
def test_a_special_file_as_the_score_is_a_score_error(work, kind):
    folder = _folder(work)
    path = folder / special_file(folder, kind)
    with time_limit(20), pytest.raises(ScoreError, match="cannot read score file"):
        score_module.load(path)


SIZE_EXAMPLES = {
    "long-word": lambda doc: (doc, "Night Shift\nA " + "w" * (score_module.MAX_WORD_CHARS + 1) + " word.\n"),
    "many-chapters": lambda doc: ({**doc, "chapter": [{"title": f"c{i}", "at": i * 0.001}
                                                      for i in range(score_module.MAX_CHAPTERS + 1)]}, BASE_TEXT),
    "long-chain": lambda doc: ({**doc, "voice": {**doc["voice"], "effects": [{"effect": "eq"}] * 17}}, BASE_TEXT),
}


@pytest.mark.parametrize("kind", SIZE_EXAMPLES)
def test_sizes_past_the_limits_are_refused_at_load(work, cache, kind):
    doc, text = SIZE_EXAMPLES[kind](base_doc())
    folder = _folder(work)
    outcome = run_example(folder, toml_dumps(doc).encode(), text, render_it=False, cache=cache)
    assert_property(outcome, folder)
    assert outcome.kind == "score_error" and outcome.info["stage"] == "load", (outcome.kind, outcome.detail)


# ----------------------------------------------------------------------------- refused at load, in one printable line
# Damaged covers, tables and names given as nothing, characters a terminal acts on, a BOM, and
# pauses past the length limit: each is refused when the score is read (or, for pauses, before a
# word is spoken), as a ScoreError naming its key, never later and never as another error.

@lru_cache(maxsize=1)
def jpeg_bytes() -> bytes:
    import io
    from PIL import Image
    buf = io.BytesIO()
    Image.new("RGB", (24, 16), (200, 40, 10)).save(buf, "JPEG", quality=80)
    return buf.getvalue()


@st.composite
def damaged_covers(draw):
    """(bytes, notes): a small PNG or JPEG cut short, with bytes flipped, garbage after its header
    or after its end; sometimes left whole."""
    data = bytearray(draw(st.sampled_from((png_bytes(), jpeg_bytes()))))
    notes = ["png" if data[:4] == b"\x89PNG" else "jpeg"]
    for _ in range(draw(st.integers(0, 2))):
        op = draw(st.sampled_from(("truncate", "flip", "garbage_after_header", "append")))
        i = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "truncate":
            del data[i:]
        elif op == "flip" and data:
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "garbage_after_header":
            data = data[:draw(st.sampled_from((3, 8, 16, 33)))] + draw(st.binary(min_size=0, max_size=200))
        else:
            data += draw(st.binary(min_size=1, max_size=40))
        notes.append(f"{op} @{i}")
    return bytes(data), notes


def _load_outcome(path: Path) -> Outcome:
    try:
        with time_limit(EXAMPLE_TIMEOUT_S), warnings.catch_warnings():
            warnings.simplefilter("error")
            sc = score_module.load(path)
    except ScoreError as e:
        key = score_error_key(str(e), str(path))
        if key is None or printable(str(e)) != str(e):
            return Outcome("failure", "ScoreError naming no key path, or not printable", str(e))
        return Outcome("score_error", key, str(e))
    except Exception as e:  # noqa: BLE001 - the point of the fuzzer
        return Outcome("failure", _signature(e), traceback.format_exc())
    return Outcome("planned", "", "", {"score": sc})


@given(damaged_covers())
@settings(CI, max_examples=40)
def test_a_cover_is_refused_at_load_or_embeds(work, cover_example):
    from audio.files import cover, tags
    data, notes = cover_example
    note(f"cover: {notes}")
    folder = _folder(work)
    doc = detach(base_doc())
    doc["piece"]["cover"] = "cover.png"
    path = write_example(folder, toml_dumps(doc).encode(), BASE_TEXT)
    (folder / "cover.png").write_bytes(data)
    outcome = _load_outcome(path)
    _event(f"cover: {outcome.kind}")
    if outcome.kind == "score_error":
        assert outcome.key == "piece.cover", outcome.detail
        return
    assert_property(outcome, folder)
    cover.read_image(folder / "cover.png")  # what the ID3 and MP4 tags embed
    flac = folder / "x.flac"
    sf.write(str(flac), np.zeros((2205, 1), dtype=np.float32), 22050)
    tags.write_vorbis(flac, {"title": "x"}, [], folder / "cover.png")


NOTHING = ([], "", 0, 0.0, False, [{}], "  ")


@given(st.integers(0, 2), st.sampled_from(("params", "name")), st.sampled_from(NOTHING))
@settings(CI, max_examples=20)
def test_a_table_or_a_name_given_as_nothing_is_refused_naming_it(work, index, key, value):
    doc = base_doc()
    doc["layer"][index][key] = value
    note(f"layer[{index}].{key} = {value!r}")
    if key == "name" and isinstance(value, str):
        expected = "layer.name"
    elif key == "params":
        expected = "layer.params"
    else:
        expected = None  # a name that is not a string: refused by its kind
    outcome = _load_outcome(write_example(_folder(work), toml_dumps(doc).encode(), BASE_TEXT))
    assert outcome.kind == "score_error", (outcome.kind, outcome.detail)
    assert expected is None or outcome.key == expected, outcome.detail


HIDDEN_CHARACTERS = ("\u202e", "\x9b", "\x1b", "\u2028", "\u2029", "\u200b", "\ufeff", "\ue000", "\U000e0001",
                     "\x85", "\u0378")


@given(st.sampled_from(("key", "source", "voice", "match", "at", "preset")), st.sampled_from(HIDDEN_CHARACTERS),
       st.booleans())
@settings(CI, max_examples=30)
def test_characters_a_terminal_acts_on_are_escaped_in_score_errors(work, where, hidden, with_bom):
    doc = base_doc()
    if where == "key":
        doc["voice"][f"ra{hidden}te"] = 150
    elif where == "source":
        doc["layer"][0]["source"] = f"noi{hidden}se"
    elif where == "voice":
        doc["voice"]["name"] = f"en{hidden}-us"
    elif where == "match":
        doc["cue"][0]["match"] = f"Not{hidden}here."
    elif where == "at":
        doc["chapter"][1]["at"] = f"cue:Not{hidden}here."
    else:
        doc["master"]["preset"] = f"pod{hidden}cast"
    data = toml_dumps(doc).encode()
    note(f"{where}: {hidden!r}; BOM: {with_bom}")
    path = write_example(_folder(work), (b"\xef\xbb\xbf" if with_bom else b"") + data, BASE_TEXT)
    outcome = _load_outcome(path)
    if outcome.kind == "planned":  # refused later, when the plan is made (a cue's or chapter's text)
        try:
            plan_module.resolve(outcome.info["score"], ClipCache())
        except ScoreError as e:
            outcome = Outcome("score_error", score_error_key(str(e), str(path)) or "", str(e))
    assert outcome.kind == "score_error", (outcome.kind, outcome.detail)
    assert hidden not in outcome.detail and printable(hidden) in outcome.detail, outcome.detail


@given(st.integers(8, 16), st.lists(st.sampled_from(("pause_before", "pause_after", "break")), min_size=16,
                                   max_size=16))
@settings(CI, max_examples=12)
def test_pauses_past_the_length_limit_are_refused_before_any_speech(work, hours, kinds):
    """16 lines, the first ``hours`` of them with an hour's pause: a piece is either over 12 hours
    by its pauses or well under, and a refusal must come before a word is spoken."""
    n, pauses_s = 16, [3600.0] * hours + [0.0] * (16 - hours)
    lines, cues = [], []
    for i in range(n):
        if kinds[i] == "break" and pauses_s[i]:
            lines.append(f'Line {i} goes here. <break time="{pauses_s[i]:g}s"/> And on.')
        else:
            lines.append(f"Line {i} goes here.")
            if pauses_s[i]:
                cues.append({"match": f"Line {i} goes here.", kinds[i]: pauses_s[i]})
    doc = {"piece": {"title": "Pauses", "text": TEXT_NAME, "sample_rate": 22050},
           "pauses": {"lead_in": 0.2, "tail": 0.2}, "master": {"formats": ["wav"]}}
    if cues:
        doc["cue"] = cues
    note(f"{n} lines; cues {cues}")
    path = write_example(_folder(work), toml_dumps(doc).encode(), "\n".join(lines) + "\n")
    sc = score_module.load(path)
    cache = ClipCache()
    try:
        with time_limit(EXAMPLE_TIMEOUT_S):
            p = plan_module.resolve(sc, cache)
    except ScoreError as e:
        _event("refused")
        assert "would last at least" in str(e) and cache.synthesized == cache.hits == 0, str(e)
        return
    _event("resolved")
    assert p.duration_s <= 12 * 3600


# ----------------------------------------------------------------------------- bugs the fuzzer found, reproduced

def _repro(work, cache, toml_text: str, text=BASE_TEXT, render_it=True):
    return run_example(_folder(work), toml_text.encode(), text, render_it=render_it, cache=cache)


MINIMAL = '[piece]\ntitle = "x"\ntext = "piece.txt"\nsample_rate = 22050\n[master]\nformats = ["wav"]\n'


def test_a_parameter_envelope_renders(work, cache):  # was an AttributeError (sources._check_value)
    out = _repro(work, cache, MINIMAL + '[[layer]]\nname = "a"\nsource = "noise"\n'
                 '[layer.params]\nlow_hz = [[0.0, 100.0], ["end", 400.0]]\n')
    assert out.kind == "rendered", out.detail


# fixed; kept as a regression test
def test_fixed_envelope_time_of_the_wrong_type_is_a_score_error(work, cache):
    out = _repro(work, cache, MINIMAL + '[[layer]]\nname = "a"\nsource = "noise"\ngain_db = [[[1], -20.0]]\n',
                 render_it=False)
    assert out.kind == "score_error", out.detail


# fixed; kept as a regression test
def test_fixed_huge_time_offset_is_a_score_error(work, cache):
    out = _repro(work, cache, MINIMAL + '[[layer]]\nname = "a"\nsource = "noise"\nend = "end+' + "9" * 400 + '"\n',
                 render_it=False)
    assert out.kind == "score_error", out.detail


# fixed; kept as a regression test
def test_fixed_a_silent_piece_is_a_score_error(work, cache):
    out = _repro(work, cache, MINIMAL, text="...\n")
    assert out.kind == "score_error", (out.kind, out.key, out.detail)


# fixed; kept as a regression test
def test_fixed_a_seamless_crossfade_too_long_is_a_score_error(work, cache):
    out = _repro(work, cache, MINIMAL + "[loop]\nseamless = true\ncrossfade = 30.0\n")
    assert out.kind == "score_error", out.detail


# fixed; kept as a regression test
def test_fixed_24_bit_files_are_on_target(work, cache):
    out = _repro(work, cache, MINIMAL.replace('formats = ["wav"]', 'formats = ["wav", "flac"]\nbit_depth = 24'))
    assert out.kind == "rendered", out.detail
    from conftest import ebur128
    for fmt in ("wav", "flac"):
        assert abs(ebur128(out.info["files"][fmt])["lufs"] - -16.0) <= 0.5, fmt


# fixed; kept as a regression test
def test_fixed_year_zero_renders(work, cache):
    out = _repro(work, cache, MINIMAL.replace('sample_rate = 22050', 'sample_rate = 22050\nyear = 999')
                 .replace('formats = ["wav"]', 'formats = ["wav", "mp3"]'))
    assert out.ok, out.detail


# fixed; kept as a regression test
def test_fixed_the_gain_search_finds_a_reachable_target(work, cache):
    out = _repro(work, cache, '[piece]\ntitle = "x"\ntext = "piece.txt"\n[pauses]\nlead_in = 0.5\ntail = 0.8\n'
                 '[[layer]]\nname = "bed"\nsource = "tone"\n'
                 '[[layer]]\nname = "click"\nsource = "pulse"\nstart = 0.2\ngain_db = 0.0\nfade_in = 0.0\n'
                 'fade_out = 0.0\n[master]\nformats = ["wav"]\n', text="...\n")
    assert out.kind == "rendered", (out.kind, out.detail)


@pytest.mark.xfail(strict=True, reason="bug: espeak-ng's clip for a sentence depends on what the process spoke "
                   "before, so a cold render's bytes depend on what was rendered earlier")
def test_bug_speech_does_not_depend_on_what_was_spoken_before(tmp_path):
    settings_ = VoiceSettings("en-us", 150, 50, 1.0)
    first = ClipCache(tmp_path / "a").get("The hum is real.", settings_).samples
    ClipCache(tmp_path / "b").get("Something else entirely.", settings_)
    again = ClipCache(tmp_path / "c").get("The hum is real.", settings_).samples
    assert first.shape == again.shape and np.array_equal(first, again)


# fixed; kept as a regression test
def test_fixed_a_parameter_envelope_is_checked_at_load(work, cache):
    out = _repro(work, cache, MINIMAL + '[[layer]]\nname = "room"\nsource = "noise"\n'
                 'params = {high_hz = 900.0, low_hz = [[0.0, 2000.0]]}\n', render_it=False)
    assert out.kind == "score_error" and out.key == "layer.params.high_hz", (out.kind, out.detail)


# fixed; kept as a regression test
def test_fixed_a_subnormal_fade_out_renders_without_warnings(work, cache):
    out = _repro(work, cache, MINIMAL + '[[layer]]\nname = "a"\nsource = "tone"\nfade_out = 5e-324\n')
    assert out.ok, out.detail


# fixed; kept as a regression test
def test_fixed_error_messages_are_one_line(work, cache):
    out = _repro(work, cache, MINIMAL.replace("[master]", '[master]\n"line\\nbreak" = 1'), render_it=False)
    assert out.kind == "score_error" and "\n" not in out.detail, out.detail


# fixed; kept as a regression test
def test_fixed_an_empty_top_level_key_is_named(work, cache):
    out = _repro(work, cache, '"" = 1\n' + MINIMAL, render_it=False)
    assert out.ok, out.detail


def test_an_unreachable_loudness_target_is_a_score_error(work, cache):  # was a RenderError
    out = _repro(work, cache, MINIMAL.replace('formats = ["wav"]', 'formats = ["wav"]\nloudness_lufs = -5.0')
                 + '[[layer]]\nname = "a"\nsource = "noise"\n')
    assert out.kind == "score_error" and out.key == "master.loudness_lufs", (out.kind, out.detail)


# ----------------------------------------------------------------------------- numbers and nesting past Python's limits

def _deep(opening: str, closing: str, levels: int) -> str:
    return opening * levels + "1" * (opening == "{a = ") + closing * levels


HOSTILE_TOML = ("9" * 400, "-" + "9" * 400, "9" * 5000, "0x" + "f" * 5000, "1" + "0" * 20, "9" * 19, "1e400",
                *(_deep("[", "]", n) for n in (33, 40, 400, 2000)), *(_deep("{a = ", "}", n) for n in (33, 2000)))


@st.composite
def hostile_numbers_and_nesting(draw):
    """The base score's TOML with one value (any key the schema knows, or one given) written as a number
    past Python's limits or arrays and tables nested past ours; returns (bytes, notes)."""
    doc = base_doc()
    paths = [p for p in set(schema_paths(doc)) | set(_paths(doc)) if p[0] in doc]
    path = draw(st.sampled_from(sorted(paths, key=str)))
    raw = draw(st.sampled_from(HOSTILE_TOML))
    _get(doc, path[:-1])[path[-1]] = "@HOSTILE@"
    return toml_dumps(doc).replace('"@HOSTILE@"', raw).encode(), [f"{'.'.join(map(str, path))} = {raw:.20}"]


@given(hostile_numbers_and_nesting())
@settings(CI, max_examples=40)
def test_numbers_and_nesting_past_pythons_limits_are_score_errors(work, cache, mutation):
    data, notes = mutation
    note(f"mutations: {notes}")
    folder = _folder(work)
    assert_property(run_example(folder, data, BASE_TEXT, render_it=False, cache=cache), folder)


@given(st.one_of(st.sampled_from(("nan", "-nan", "inf", "1e400", "1:nan", "nan:00", "1e308:00:00", "nanh", "infm")),
                 st.text(st.sampled_from("0123456789.:-+einfahms_ "), max_size=12), st.text(max_size=8)))
@settings(CI, max_examples=200)
def test_time_options_are_finite_non_negative_seconds_or_refused(text):
    from audio.cli import Clock, Duration
    for kind in (Clock(), Duration()):
        seconds = kind.seconds(text)
        assert seconds is None or (math.isfinite(seconds) and seconds >= 0), (text, seconds)


# ----------------------------------------------------------------------------- speech-cache entries of another layout

def _numpy_arrays():
    from hypothesis.extra import numpy as hnp
    dtypes = st.sampled_from((np.int16, np.int64, np.float32, np.float64, np.bool_, np.dtype("<U3")))
    return dtypes.flatmap(lambda dtype: hnp.arrays(dtype, hnp.array_shapes(min_dims=0, max_dims=2, max_side=4)))


@given(st.one_of(_numpy_arrays(), st.dictionaries(st.sampled_from(("pcm", "words", "starts", "digest", "x", "y")),
                                                  _numpy_arrays(), max_size=5)))
@settings(CI, max_examples=60)
def test_any_numpy_file_at_a_cache_entry_is_read_or_damaged(work, content):
    from audio.speech import cache as cache_module
    path = _folder(work) / "entry.npz"
    with open(path, "wb") as f:
        np.save(f, content) if isinstance(content, np.ndarray) else np.savez(f, **content)
    for read in (lambda: cache_module._read_spoken(path, 22050), lambda: cache_module._read_voiced(path)):
        with contextlib.suppress(*cache_module.DAMAGED):
            read()


# ----------------------------------------------------------------------------- file names that are not UTF-8

@given(st.binary(min_size=1, max_size=12).filter(lambda b: b"/" not in b and b"\0" not in b and b not in (b".", b"..")))
@settings(CI, max_examples=60)
def test_any_file_name_goes_into_a_manifest_and_reads_back(work, name):
    import json

    from audio import manifest
    path = _folder(work) / "piece.json"
    score = os.fsdecode(name)
    manifest.write(path, {"score": score, score: [score]})
    doc = json.loads(path.read_bytes())
    assert os.fsencode(doc["score"]) == name and doc[score] == [score]


# ----------------------------------------------------------------------------- the output folder: nothing lost
# Kinds: hidden entries beside the outputs named like a killed render's leftovers (a user's folder
# with files in it, .bak, another piece's name with a common prefix, huge numbers, our own pattern
# with a forged marker or none, links); a folder where an output goes; an output named like one of
# the score's inputs. The property: the render ends 0, or with one Error: line (exit 1 or 2) and no
# traceback; every planted entry is as it was; a failed render leaves the earlier outputs.

FOLDER_STEM = "piece"
FOLDER_SCORE = MINIMAL + '[[layer]]\nname = "room"\nsource = "server_hum"\n[pauses]\nlead_in = 0.2\ntail = 0.2\n'


@st.composite
def hostile_entries(draw):
    """(name, kind, payload) entries to plant in the output folder."""
    from audio.files import staging
    prefix = draw(st.sampled_from([FOLDER_STEM, f"{FOLDER_STEM}-final", f"{FOLDER_STEM}.wav", f"{FOLDER_STEM}.a",
                                   "other"]))
    number = draw(st.one_of(st.integers(0, 4_194_304), st.just(os.getpid()), st.just(10 ** 20),
                            st.text("0123456789", min_size=1, max_size=30)))
    tail = draw(st.sampled_from(["d", "bak", "part", "mp3", "0123456789abcdef", "0123456789abcdef.x1y2z3w4.part",
                                 "deadbeefdeadbeef"]))
    kind = draw(st.sampled_from(["file", "folder", "marked folder", "link"]))
    marker = draw(st.sampled_from([  # none is this folder's own: another piece's, another token's, a user's
        f"a piece render's work folder\nstem {FOLDER_STEM}-final\ntoken {number}.{tail}\n",
        f"a piece render's work folder\nstem {FOLDER_STEM}\ntoken 1.0123456789abcdef\n", "notes\n", ""]))
    return f".{prefix}.{number}.{tail}", kind, marker if kind == "marked folder" else staging.MARKER


def plant(out: Path, entries) -> None:
    for name, kind, payload in entries:
        path = out / name
        if path.exists() or path.is_symlink():
            continue
        if kind == "file":
            path.write_text("the user's\n")
        elif kind == "link":
            path.symlink_to(out.parent / TEXT_NAME)
        else:
            path.mkdir()
            (path / "x").write_text("the user's\n")
            if kind == "marked folder":
                (path / "piece-render").write_text(payload)


def snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): None if p.is_dir() or p.is_symlink() else p.read_bytes()
            for p in sorted(folder.rglob("*"))}


@given(st.lists(hostile_entries(), min_size=1, max_size=4),
       st.sampled_from([None, "piece.wav", "piece.srt", "piece.json"]),
       st.sampled_from([None, "piece.srt", "piece.chapters.json", "piece.vtt"]))
@settings(CI, max_examples=10)
def test_a_render_never_changes_what_it_did_not_write_in_its_folder(work, cache, entries, in_the_way, text_name):
    from click.testing import CliRunner

    from audio.cli import main
    folder = _folder(work)
    score = folder / SCORE_NAME
    score.write_text(FOLDER_SCORE)
    (folder / TEXT_NAME).write_text(BASE_TEXT)
    out = folder / "out"
    first = CliRunner().invoke(main, ["render", str(score), "-o", str(out), "-q"])
    assert first.exit_code == 0, first.output
    if text_name:  # the text named as an output, and the render into its folder
        (folder / text_name).write_text(BASE_TEXT)
        score.write_text(FOLDER_SCORE.replace(TEXT_NAME, text_name))
        out = folder
    plant(out, entries)
    if in_the_way and in_the_way != text_name:
        with contextlib.suppress(FileNotFoundError):
            (out / in_the_way).unlink()
        (out / in_the_way).mkdir(exist_ok=True)
    before = snapshot(folder)
    result = CliRunner().invoke(main, ["render", str(score), "-o", str(out), "-q"])
    note(f"exit {result.exit_code}: {result.output!r}")
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    lines = result.output.splitlines()
    if text_name:
        assert result.exit_code == 2 and len(lines) == 1 and "which the piece reads" in lines[0]
    elif in_the_way and in_the_way != text_name:
        assert result.exit_code == 1 and len(lines) == 1 and "a folder is in the way" in lines[0]
    else:
        assert result.exit_code == 0 and lines == [], result.output
    after = snapshot(folder)
    planted = {k: v for k, v in before.items() if Path(k).name.startswith(".") or "/." in k}
    assert {k: after.get(k, "gone") for k in planted} == planted
    if result.exit_code:
        assert after == before
    else:
        assert not {k for k in after if k not in before and Path(k).name.startswith(".")}
