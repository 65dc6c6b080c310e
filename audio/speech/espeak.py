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
import sys
import tempfile
import wave
from functools import cache, cached_property, lru_cache
from pathlib import Path

import numpy as np

from audio.errors import RenderError, TTSError, score_error
from audio.speech.clip import Clip
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


def _languages(raw: bytes) -> list[str]:
    """espeak-ng's language list: a priority byte, then a NUL-terminated name, until an empty one."""
    langs = []
    i = 0
    while i < len(raw) and raw[i] != 0:
        end = raw.index(b"\0", i + 1) if b"\0" in raw[i + 1:] else len(raw)
        langs.append(raw[i + 1:end].decode("utf-8", "replace"))
        i = end + 1
    return langs


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
    def _voice_keys(self) -> frozenset[str]:
        """Every way a score may name a voice: id, its last part, name, language."""
        keys = set()
        for v in self.voices():
            keys.add(v.id)
            keys.add(v.id.split("/")[-1])
            keys.add(v.name.lower())
            keys.update(lang.lower() for lang in v.languages)
        return frozenset(keys)

    def check_voice_name(self, name: str, file="", where="voice.name") -> str:
        """``name`` is a voice id, its last part, a voice's name or a language ("en-us", "gmw/en-us"),
        with a variant or none ("en-us+whisper")."""
        base, _, variant = name.partition("+")
        keys = self._voice_keys()
        if base.lower() not in keys:
            close = difflib.get_close_matches(base.lower(), sorted(keys), n=3, cutoff=0.5)
            hint = f"; nearest: {', '.join(close)}" if close else ""
            raise score_error(file, where, f"unknown voice {name!r}{hint} (see `piece voices`)")
        if variant and variant not in self.variants():
            close = difflib.get_close_matches(variant, self.variants(), n=3, cutoff=0.5)
            hint = f"; nearest: {', '.join(close)}" if close else ""
            raise score_error(file, where, f"unknown voice variant {variant!r} in {name!r}{hint} "
                              "(see `piece voices --variants`)")
        return name

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
                    tts.setProperty("voice", settings.name)
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
            words = tuple((text[pos - 1: pos - 1 + length], sample) for pos, length, sample in _word_events)
            return Clip(_read_wav(Path(tmp)), RATE_HZ, words)
        except (ValueError, RuntimeError) as e:
            raise TTSError(f"espeak-ng failed on {text!r} with {settings.describe()}: {e}") from None
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
