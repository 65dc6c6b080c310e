"""espeak-ng through pyttsx3's espeak driver, the first speech engine.

espeak-ng comes from the ``espeakng-loader`` wheel: its library is preloaded globally and its data
path exported before pyttsx3 is imported, so the driver's ``LoadLibrary("libespeak-ng.so.1")``
finds it by soname and no system package is needed.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import difflib
import gc
import io
import os
import re
import sys
import tempfile
import wave
from functools import cache, cached_property, lru_cache
from pathlib import Path

import numpy as np

from audio.errors import RenderError, TTSError, score_error
from audio.speech import words
from audio.speech.clip import Clip, trim_bounds
from audio.speech.engine import Engine, VoiceInfo, VoiceSettings

RATE_HZ = 22050  # pyttsx3's espeak driver writes mono 16-bit at this rate, hard-coded


@lru_cache(maxsize=1)
def _espeak():
    """Load espeak-ng from espeakng-loader and return pyttsx3's engine and low-level binding, once per process."""
    if "piper" in sys.modules:  # Piper's static espeak-ng exports the same symbols: the two crash each other
        raise RenderError("the espeak engine cannot run in a process that has loaded Piper")
    try:
        import espeakng_loader
    except ImportError:
        raise RenderError("espeak-ng is missing: install the Python package espeakng-loader "
                          "(pip install espeakng-loader)") from None
    ctypes.CDLL(espeakng_loader.get_library_path(), mode=ctypes.RTLD_GLOBAL)
    data_path = espeakng_loader.get_data_path()
    if len(data_path.encode()) >= 160:
        raise RenderError(f"espeak-ng's data path is {len(data_path.encode())} bytes long; espeak-ng "
                          f"accepts at most 159: install into a shorter path ({data_path})")
    os.environ["ESPEAK_DATA_PATH"] = data_path
    with contextlib.redirect_stdout(io.StringIO()):
        import pyttsx3
        tts = pyttsx3.init("espeak")
    from pyttsx3.drivers import _espeak as binding
    driver = tts.proxy._driver

    def on_synth(wav, n_samples, events):
        """Note each word's sample position (espeak-ng reports it exactly), then let pyttsx3 work."""
        i = 0
        while events[i].type != binding.EVENT_LIST_TERMINATED:
            if events[i].type == binding.EVENT_WORD:
                _word_events.append((events[i].text_position, events[i].length, events[i].sample))
            i += 1
        return driver._onSynth(wav, n_samples, events)

    binding.SetSynthCallback(on_synth)
    synth = binding.Synth

    def synth_reading_phonemes(text, *args, flags=0, **kwargs):
        """The driver's call, with espeak-ng told to speak [[...]] in the text as phoneme codes."""
        return synth(text, *args, flags=flags | binding.PHONEMES, **kwargs)

    binding.Synth = synth_reading_phonemes  # the driver looks it up on each utterance
    atexit.register(_release_engine)
    return tts, binding, data_path


def loaded() -> bool:
    """Whether this process has loaded espeak-ng."""
    return _espeak.cache_info().currsize > 0


_word_events: list = []  # (1-based character position, length, sample) of the utterance being spoken


def _release_engine():
    """Let pyttsx3 tear its engine down while the interpreter is still whole (else its __del__ fails)."""
    _espeak.cache_clear()
    gc.collect()


def _read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as w:
        if w.getsampwidth() != 2 or w.getnchannels() != 1:
            raise RenderError(f"{path}: expected mono 16-bit speech, got {w.getnchannels()} channels, "
                              f"{8 * w.getsampwidth()}-bit")
        data = w.readframes(w.getnframes())
    return np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0


def _ranked_languages(raw: bytes) -> list[tuple[int, str]]:
    """espeak-ng's language list: a priority byte, then a NUL-terminated name, until an empty one."""
    langs = []
    i = 0
    while i < len(raw) and raw[i] != 0:
        end = raw.index(b"\0", i + 1) if b"\0" in raw[i + 1:] else len(raw)
        langs.append((raw[i], raw[i + 1:end].decode("utf-8", "replace")))
        i = end + 1
    return langs


def _languages(raw: bytes) -> list[str]:
    return [lang for _, lang in _ranked_languages(raw)]


def _text_to_phonemes(text: str) -> str:
    """espeak-ng's phonemes for ``text`` in the voice in use, in its ASCII phoneme codes (those it
    reads between [[ and ]]), one clause after another."""
    _, binding, _ = _espeak()
    fn = binding.dll.espeak_TextToPhonemes
    fn.restype = ctypes.c_char_p
    fn.argtypes = [ctypes.POINTER(ctypes.c_char_p), ctypes.c_int, ctypes.c_int]
    buffer = ctypes.c_char_p(text.encode("utf-8"))
    pointer = ctypes.pointer(buffer)
    clauses = []
    while pointer.contents.value:  # espeak-ng moves the pointer on past each clause it reads
        out = fn(pointer, 1, 0)  # espeakCHARS_UTF8; phoneme mode 0: ASCII codes
        clauses.append(out.decode("utf-8", "replace").strip() if out else "")
    return " ".join(c for c in clauses if c)


class Espeak(Engine):
    """espeak-ng: every voice at 22,050 Hz, one utterance at a time per process."""

    name = "espeak"
    default_voice = "en-us"
    licence = "GPL-3.0-or-later (espeak-ng and its voices), MPL-2.0 (pyttsx3)"

    @cached_property
    def version(self) -> str:
        from importlib.metadata import version
        _, binding, _ = _espeak()
        info = binding.Info(None)
        info = info.decode() if isinstance(info, bytes) else str(info)
        return f"espeak-ng {info}, pyttsx3 {version('pyttsx3')}"

    def rate_hz(self, settings: VoiceSettings) -> int:
        return RATE_HZ

    @cache
    def voices(self) -> tuple[VoiceInfo, ...]:
        _, binding, _ = _espeak()
        return tuple(VoiceInfo(id=v.identifier.decode().lower(), name=v.name.decode(),
                               languages=tuple(_languages(v.languages or b"")),
                               gender=[None, "male", "female"][v.gender] if v.gender < 3 else None,
                               rate_hz=RATE_HZ)
                     for v in binding.ListVoices(None))

    @cache
    def variants(self) -> tuple[str, ...]:
        """The voice variants, appended to a voice as ``+NAME`` ("en-us+whisper")."""
        _, _, data_path = _espeak()
        folder = Path(data_path) / "voices" / "!v"
        return tuple(sorted(p.name for p in folder.iterdir() if p.is_file()))

    @cache
    def voice_ids(self) -> dict[str, str]:
        """Every way a score may name a voice (lower case: id, its last part, name, language) → the
        identifier espeak-ng loads it by. A language several voices speak goes to the voice that
        lists it first (espeak-ng's priority)."""
        _, binding, _ = _espeak()
        ranked = {}
        for order, v in enumerate(binding.ListVoices(None)):
            identifier = v.identifier.decode()
            raw = v.languages or b""
            names = [(0, identifier.lower()), (0, identifier.lower().split("/")[-1]), (0, v.name.decode().lower())]
            names += [(priority, lang.lower()) for priority, lang in _ranked_languages(raw)]
            for priority, key in names:
                ranked.setdefault(key, []).append((priority, order, identifier))
        return {key: min(found)[2] for key, found in ranked.items()}

    def voice_id(self, name: str) -> str:
        """The identifier (and variant) espeak-ng selects for a score's voice name: "en-gb" → "gmw/en"."""
        base, _, variant = name.partition("+")
        identifier = self.voice_ids().get(base.lower())
        if identifier is None:
            raise RenderError(f"espeak-ng has no voice {name!r} (see `piece voices`)")
        return f"{identifier}+{variant}" if variant else identifier

    def voice_version(self, settings: VoiceSettings) -> str:
        """The version and the voice espeak-ng loads for the name: a clip is kept under the voice that spoke it."""
        return f"{self.version}, voice {self.voice_id(settings.name)}"

    def language(self, settings: VoiceSettings) -> str:
        identifier = self.voice_id(settings.name).partition("+")[0]
        return next((v.languages[0] for v in self.voices() if v.id == identifier.lower() and v.languages), "")

    def phoneme_block(self, phonemes: str) -> str:
        return f"[[{phonemes}]]"

    def phonemes(self, text: str, settings: VoiceSettings) -> str:
        """espeak-ng's ASCII phoneme codes for ``text``; [[...]] blocks in it are its phonemes already."""
        self.select(settings.name)
        parts = re.split(r"\[\[(.*?)\]\]", text)  # text, block, text, block, ..., text
        out = [part.strip() if i % 2 else _text_to_phonemes(part) for i, part in enumerate(parts)]
        return " ".join(p for p in out if p)

    def select(self, name: str):
        """Make ``name`` espeak-ng's voice, by its identifier, and check it is the voice in use:
        espeak-ng refuses some names a score may give (languages such as "en-gb" have no voice file
        of that name) and pyttsx3 would swallow the refusal, leaving the previous voice speaking."""
        _, binding, _ = _espeak()
        identifier = self.voice_id(name)
        binding.SetVoiceByName(identifier.encode())
        current = binding.GetCurrentVoice()
        in_use = current.contents.identifier.decode() if current and current.contents.identifier else ""
        if in_use.lower() != identifier.lower():
            raise TTSError(f"espeak-ng did not select voice {name!r} ({identifier}): "
                           f"{in_use or 'no voice'} is in use")

    def check_voice_name(self, name: str, file="", where="voice.name") -> str:
        """``name`` is a voice id, its last part, a voice's name or a language ("en-us", "gmw/en-us"),
        with a variant or none ("en-us+whisper"), and espeak-ng can select it and read with it."""
        base, _, variant = name.partition("+")
        keys = self.voice_ids()
        if base.lower() not in keys:
            close = difflib.get_close_matches(base.lower(), sorted(keys), n=3, cutoff=0.5)
            hint = f"; nearest: {', '.join(close)}" if close else ""
            raise score_error(file, where, f"unknown voice {name!r}{hint} (see `piece voices`)")
        if variant and variant not in self.variants():
            close = difflib.get_close_matches(variant, self.variants(), n=3, cutoff=0.5)
            hint = f"; nearest: {', '.join(close)}" if close else ""
            raise score_error(file, where, f"unknown voice variant {variant!r} in {name!r}{hint} "
                              "(see `piece voices --variants`)")
        try:
            self.select(name)
        except TTSError as e:
            raise score_error(file, where, str(e)) from None
        if not self._reads():
            raise score_error(file, where, f"espeak-ng cannot read with voice {name!r} ({self.voice_id(name)}): "
                              "its dictionary is missing from espeak-ng's data")
        return name

    @staticmethod
    def _reads() -> bool:
        """Whether the voice in use turns text into phonemes (a voice whose dictionary is missing gives none)."""
        return bool(_text_to_phonemes("a 1").strip())

    def speak(self, text: str, settings: VoiceSettings) -> Clip:
        """One pass through pyttsx3; an empty clip when the driver wrote no file (a known pyttsx3
        2.99 failure)."""
        tts, binding, _ = _espeak()
        fd, tmp = tempfile.mkstemp(suffix=".wav", prefix="piece-tts-")
        os.close(fd)
        os.unlink(tmp)
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # the driver prints "Audio saved to …"
                try:
                    self.select(settings.name)
                    tts.setProperty("rate", settings.rate)
                    tts.setProperty("pitch", settings.pitch)
                    tts.setProperty("volume", settings.volume)
                    binding.Synchronize()  # espeak-ng applies settings on its own thread: let it finish
                    _word_events.clear()
                    tts.save_to_file(text, tmp)
                    tts.runAndWait()
                finally:
                    binding.Synchronize()  # its file is complete (or, interrupted, done with) before it goes
            if not os.path.exists(tmp) or os.path.getsize(tmp) <= 44:
                return Clip(np.zeros(0, np.float32), RATE_HZ)
            samples = _read_wav(Path(tmp))
            events = [(pos - 1, sample) for pos, _, sample in _word_events]  # espeak-ng counts from 1
            return Clip(samples, RATE_HZ, words.align(text, events, trim_bounds(samples, RATE_HZ)[1]))
        except (ValueError, RuntimeError) as e:
            raise TTSError(f"espeak-ng failed on {text!r} with {settings.describe()}: {e}") from None
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
