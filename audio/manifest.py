"""The manifest ``NAME.json``: its one schema, built for a render and read back by info, picture and replay.

A manifest is the plan (``Plan.to_dict``, which ``Plan.from_dict`` reads back) and what the render
added to it:

- the plan: ``name``, ``title``, ``author``, ``sample_rate``, ``channels`` (of the mix), ``seed``,
  ``total_samples`` (mixed: a seamless loop mixes its crossfade more, folded into its start),
  ``duration_s`` (of the files as written); ``cues[]`` (``index``, ``text``, ``line``, ``start_sample``,
  ``n_samples``, ``voice`` {``name``, ``rate``, ``pitch``, ``volume``}, ``gain_db``, ``start_s``,
  ``end_s``, ``words`` [[word, start_s, end_s]], ``effects``); ``layers[]`` (``name``, ``source``,
  ``params``, ``gain_db``, ``start_sample``, ``end_sample``, ``fade_in_s``, ``fade_out_s``,
  ``duck_db``, ``pan``, ``seed``, ``start_s``, ``end_s``, ``automation``, ``effects``); ``master``
  (``preset``, ``loudness_lufs`` — the target —, ``true_peak_dbtp``, ``formats``, ``mp3``,
  ``bit_depth``); ``score_sha256``, ``engine``, ``warnings``, ``chapters[]`` (``title``,
  ``start_s``, ``end_s``), ``loop`` (``seamless``, ``crossfade_s``), ``tags``, ``score``;
- ``files``: kind (a format, ``srt``, ``vtt``, ``transcript``, ``chapters``, ``stems`` {layer:
  path}, ``json``, ``png``) → path;
- ``versions``: package → version;
- ``measured``: ``mix_lufs``, ``gain_db``, ``loudness_lufs`` and ``true_peak_dbtp`` (of the
  written master, as a meter reads the files), ``duration_s``, ``channels`` (of the files: a podcast
  preset writes a mono mix as two identical channels);
- ``audibility``: how the voice and each layer sit in the mix (``audio.audibility``), with its
  ``warnings`` for a layer heard in almost none of its span;
- ``timings``: seconds per pass (``mix_s``, ``master_s``, ``export_s``).

Checks outside the project read ``duration_s``, ``sample_rate``, ``channels``; ``cues[]`` with
``text``, ``start_s``, ``end_s``, ``n_samples``, ``gain_db``, ``voice.name``, ``words``;
``layers[]`` with ``name``, ``start_s``, ``end_s``; ``measured.loudness_lufs`` and
``measured.true_peak_dbtp``. JSON has no infinity: an unmeasurable level is written as null.
"""

from __future__ import annotations

import contextlib
import json
import math
import platform
from dataclasses import asdict, dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING

from audio import __version__
from audio.errors import score_error
from audio.files import reading, staging

if TYPE_CHECKING:
    from audio.plan import Plan

REQUIRED = ("duration_s", "sample_rate", "channels", "cues", "layers")  # every manifest has these
MAX_MANIFEST_BYTES = 64 * 1024 * 1024  # 12 h of words at 450 wpm make about 15 MB
RECORDED_PACKAGES = ("numpy", "scipy", "pyttsx3", "soundfile", "espeakng-loader", "imageio-ffmpeg", "mutagen")


@dataclass(frozen=True)
class Measured:
    """What a render measured: the mix, the gain it took, and the written master."""

    mix_lufs: float
    gain_db: float
    loudness_lufs: float
    true_peak_dbtp: float
    duration_s: float
    channels: int


@dataclass(frozen=True)
class Span:
    """A sentence (its text) or a chapter (its title) on the piece's timeline."""

    text: str
    start_s: float
    end_s: float


@dataclass(frozen=True)
class Layer:
    name: str
    source: str | None
    start_s: float
    end_s: float
    gain_db: float | None
    under_voice_db: float | None = None  # from the audibility report, where the manifest has one
    heard_pct: float | None = None  # of its span


@dataclass(frozen=True)
class Overview:
    """What info and the picture read from a manifest; None where a manifest does not say."""

    name: str | None
    title: str | None
    author: str | None
    duration_s: float
    sample_rate_hz: int
    channels: int
    cues: tuple  # Span
    layers: tuple  # Layer
    chapters: tuple  # Span
    loudness_lufs: float | None  # measured
    true_peak_dbtp: float | None
    target_lufs: float | None
    files: dict  # kind → path
    warnings: tuple  # the plan's and the audibility report's
    voice_to_bed_db: float | None = None
    voice_to_bed_in_speech_db: float | None = None


def versions() -> dict:
    """The versions of Python, this package and the packages that shape the sound and the files."""
    out = {"piece": __version__, "python": platform.python_version()}
    for pkg in RECORDED_PACKAGES:
        with contextlib.suppress(PackageNotFoundError):
            out[pkg] = version(pkg)
    return out


def build(plan: Plan, files: dict, measured: Measured, timings: dict, audibility: dict) -> dict:
    """The manifest of a finished render, as JSON-ready data."""
    doc = plan.to_dict()
    doc.update({"files": files, "versions": versions(), "measured": asdict(measured), "audibility": audibility,
                "timings": timings})
    return doc


def write(path: Path, doc: dict, staged: staging.Staged | None = None):
    """Write a manifest atomically (or stage it). A path that is not UTF-8 (a file name's undecodable
    bytes, which Python keeps as lone surrogates) is written as JSON's \\udcXX escapes: it reads back
    as the same path."""
    text = json.dumps(_finite(doc), indent=2, ensure_ascii=False) + "\n"
    staging.write_with(path, lambda f: f.write(text.encode("utf-8", "backslashreplace")), staged)


def _finite(v):
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: _finite(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_finite(x) for x in v]
    return v


def read(path: Path) -> dict:
    """A manifest file's data; a ScoreError names the file when it is missing, unreadable or not
    a JSON object."""
    file = str(path)
    try:
        doc = json.loads(reading.read_bytes(path, MAX_MANIFEST_BYTES).decode("utf-8"))
    except FileNotFoundError:
        raise score_error(file, "", "no such manifest") from None
    except reading.TooLarge as e:
        raise score_error(file, "", f"the manifest is {e.size_bytes} bytes; the limit is {MAX_MANIFEST_BYTES} bytes"
                          ) from None
    except OSError as e:
        raise score_error(file, "", f"cannot read the manifest: {e.strerror or e}") from None
    except UnicodeDecodeError as e:
        raise score_error(file, "", f"cannot read the manifest: {e}") from None
    except json.JSONDecodeError as e:
        raise score_error(file, "", f"not a JSON manifest: {e.msg} at line {e.lineno}") from None
    if not isinstance(doc, dict):
        raise score_error(file, "", "not a render manifest (the JSON is not an object)")
    return doc


def read_plan(path: Path) -> Plan:
    """The plan recorded in a render's manifest, to render it again."""
    from audio.plan import Plan

    try:
        return Plan.from_dict(read(path))
    except (KeyError, TypeError, AttributeError) as e:
        raise score_error(str(path), "", f"not a render manifest: it does not hold a whole plan "
                          f"({type(e).__name__}: {e})") from None


def overview(doc: dict, where: str = "manifest") -> Overview:
    """The parts of a manifest info and the picture show; ``where`` names it in a ScoreError for a
    key every manifest has."""
    missing = [k for k in REQUIRED if k not in doc]
    if missing:
        raise score_error(where, "", f"not a render manifest, it has no {', '.join(map(repr, missing))}")
    measured = doc.get("measured") or {}
    heard = doc.get("audibility") or {}
    heard_layers = {la.get("name"): la for la in heard.get("layers") or []}

    def layer(la: dict) -> Layer:
        report = heard_layers.get(la.get("name")) or {}
        fraction = report.get("heard_fraction")
        return Layer(la.get("name"), la.get("source"), la.get("start_s"), la.get("end_s"), la.get("gain_db"),
                     report.get("under_voice_db"), None if fraction is None else round(100.0 * fraction, 1))
    return Overview(
        name=doc.get("name"),
        title=doc.get("title"),
        author=doc.get("author") or None,
        duration_s=doc["duration_s"],
        sample_rate_hz=doc["sample_rate"],
        channels=doc["channels"],
        cues=tuple(Span(c.get("text", ""), c.get("start_s", 0), c.get("end_s", 0)) for c in doc["cues"]),
        layers=tuple(layer(la) for la in doc["layers"]),
        chapters=tuple(Span(c.get("title"), c.get("start_s"), c.get("end_s")) for c in doc.get("chapters") or []),
        loudness_lufs=measured.get("loudness_lufs"),
        true_peak_dbtp=measured.get("true_peak_dbtp"),
        target_lufs=(doc.get("master") or {}).get("loudness_lufs"),
        files=dict(doc.get("files") or {}),
        warnings=tuple(doc.get("warnings") or ()) + tuple(heard.get("warnings") or ()),
        voice_to_bed_db=heard.get("voice_to_bed_db"),
        voice_to_bed_in_speech_db=heard.get("voice_to_bed_in_speech_db"),
    )
