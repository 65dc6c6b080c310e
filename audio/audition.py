"""`piece say`: a line spoken as a score would speak it, to hear a fix in a second.

The line goes through the score's [[say]] entries (those whose ``in`` it matches), the reading
rules and its [[speaker]] labels, in the score's voice or the one asked for; each sentence comes
back with what the engine was handed, the engine's phonemes for it and its clip.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import soundfile as sf

from audio import lexicon, markup, script
from audio.cast import Direction
from audio.errors import score_error
from audio.files import staging
from audio.files.fsname import sndfile_name
from audio.schema import read_table
from audio.speech.cache import ClipCache
from audio.speech.clip import Clip
from audio.speech.engine import Engine, get_engine

DEFAULT_PAUSE_S = 0.5  # between sentences without a score


@dataclass(frozen=True)
class Said:
    text: str  # the sentence as written
    spoken: str  # as handed to the engine
    phonemes: str  # the engine's phonemes for it ("" when the engine cannot say)
    speaker: str
    clip: Clip


def audition(text: str, cache: ClipCache, sc=None, voice_name: str | None = None) -> list[Said]:
    """Each sentence of ``text`` spoken through ``sc`` (a Score, or None for the defaults)."""
    from audio.score import VOICE_FIELDS, Voice, check_words
    markup.check(text, "", "TEXT")
    check_words(text, "", "TEXT")
    voice = sc.voice if sc else Voice(**{**read_table(VOICE_FIELDS, {}, "", "voice"), "effects": ()})
    speakers = {sp.name: sp for sp in sc.speakers} if sc else {}
    sentences = script.parse(text, title_line=False, speakers=tuple(speakers))
    if not sentences:
        raise score_error("", "TEXT", f"{text!r} has nothing to say")
    directions = []
    for s in sentences:
        values = {**asdict(voice), **(speakers[s.speaker].overrides if s.speaker else {})}
        if voice_name:
            values["name"] = voice_name
        directions.append(Direction(s.speaker, values))
    voices = [d.settings() for d in directions]
    for settings in dict.fromkeys(voices):
        get_engine(settings.engine).check_voice_name(settings.name, "", "--voice" if voice_name else "voice.name")
    readings = lexicon.readings(sc.says if sc else (), sentences, voices, str(sc.path) if sc else "")
    out = []
    for s, d, settings, reading in zip(sentences, directions, voices, readings):
        engine = get_engine(settings.engine)
        shows = type(engine).phonemes is not Engine.phonemes
        phonemes = engine.phonemes(reading.spoken, settings) if shows else ""
        out.append(Said(s.text, reading.spoken, phonemes, d.speaker, cache.get(reading.spoken, settings)))
    return out


def write_wav(path, said: list[Said], pause_s: float = DEFAULT_PAUSE_S) -> float:
    """The clips one after another, ``pause_s`` apart, as a 16-bit WAV at the engine's rate;
    returns its length in seconds."""
    rate = said[0].clip.rate_hz
    gap = np.zeros(round(pause_s * rate), np.float32)
    parts = []
    for s in said:
        if s.clip.rate_hz != rate:
            from audio.speech.clip import resample
            parts.append(resample(s.clip.samples, s.clip.rate_hz, rate))
        else:
            parts.append(s.clip.samples)
        parts.append(gap)
    x = np.concatenate(parts[:-1]) if parts else np.zeros(0, np.float32)
    with staging.atomic_path(path) as tmp:
        sf.write(sndfile_name(tmp), x, rate, subtype="PCM_16", format="WAV")
    return x.size / rate
