"""What a speech engine is (name, version, sample rate, voices, speak) and which engines there are."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from audio.errors import RenderError, score_error
from audio.speech.clip import Clip

DEFAULT_ENGINE = "espeak"
ENGINE_NAMES = ("espeak", "piper")  # what a score may name in voice.engine


@dataclass(frozen=True)
class VoiceSettings:
    """How a sentence is spoken: by which engine, in which voice, how fast, how high, how loud."""

    name: str
    rate: int  # words per minute
    pitch: int
    volume: float
    engine: str = DEFAULT_ENGINE
    model: str = ""  # a voice model file (absolute path), for an engine that reads one; else ""

    def describe(self):
        return f"voice {self.name!r} at {self.rate} wpm, pitch {self.pitch}, volume {self.volume:g}"


@dataclass(frozen=True)
class VoiceInfo:
    """One voice an engine offers, as `piece voices` lists it."""

    id: str
    name: str
    languages: tuple[str, ...]
    gender: str | None = None
    licence: str = ""  # the voice's licence line, where known
    rate_hz: int | None = None  # the rate its clips come at


class Engine(ABC):
    """A text-to-speech engine: speaks one sentence at a time into a clip at its own sample rate."""

    name: str  # what a score calls it ("espeak")
    default_voice = ""  # the voice a score that names none speaks in
    licence = ""  # the engine's own licence line (a voice may have its own besides)
    has_pitch = True  # whether ``pitch`` means anything to it
    out_of_process = False  # whether it speaks only in worker processes (audio.speech.helper)

    @property
    @abstractmethod
    def version(self) -> str:
        """The engine's and its libraries' versions: clips may differ when they do."""

    def voice_version(self, settings: VoiceSettings) -> str:
        """What goes into a clip's cache key beside its text and settings: the version, and whatever
        else of the voice changes its clips (a voice model file's hash)."""
        return self.version

    @abstractmethod
    def rate_hz(self, settings: VoiceSettings) -> int:
        """The sample rate of the clips this voice speaks."""

    @abstractmethod
    def voices(self) -> tuple[VoiceInfo, ...]:
        """Every voice the engine offers."""

    @abstractmethod
    def check_voice_name(self, name: str, file="", where="voice.name") -> str:
        """``name`` if it names one of the engine's voices, else a ScoreError at ``file``, ``where``."""

    def language(self, settings: VoiceSettings) -> str:
        """The language the voice reads ("en-us"), or "" when unknown: reading rules written for a
        language apply to its voices only."""
        return ""

    def phoneme_block(self, phonemes: str) -> str | None:
        """``phonemes`` (in the engine's own notation) written into its input text so they are
        spoken as they are, or None when the engine takes no phonemes."""
        return None

    def phonemes(self, text: str, settings: VoiceSettings) -> str:
        """The engine's phonemes for ``text`` in this voice, in the notation ``phoneme_block`` takes."""
        raise RenderError(f"the {self.name} engine cannot show its phonemes")
    def check_available(self, file="", where="voice.engine"):
        """A ScoreError at ``file``, ``where`` when the engine cannot run here (a missing package)."""

    def check_model(self, path, file="", where="voice.model") -> str:
        """``path`` (absolute) if it is a voice model file the engine can read, else a ScoreError."""
        raise score_error(file, where, f"the {self.name} engine reads no voice model file; voice.model is for "
                          'engine = "piper"')

    @abstractmethod
    def speak(self, text: str, settings: VoiceSettings) -> Clip:
        """One pass over ``text``: its clip at ``rate_hz(settings)`` with each word's start sample,
        untrimmed; empty when the engine gave no audio. TTSError when the engine fails."""


engines: dict[str, Engine] = {}  # name → engine; filled by the speech package as it loads


def get_engine(name: str) -> Engine:
    """The engine a score calls ``name``."""
    try:
        return engines[name]
    except KeyError:
        raise RenderError(f"unknown speech engine {name!r}; known: {', '.join(sorted(engines))}") from None
