"""A spoken clip and what every engine's clips go through: trimming, the length check, clause
splitting for a sentence that fails it, resampling to the piece's rate."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from math import gcd
from typing import TYPE_CHECKING

import numpy as np

from audio.errors import TTSError

if TYPE_CHECKING:
    from audio.speech.engine import Engine, VoiceSettings

log = logging.getLogger(__name__)

CHUNK_CHARS = 120  # a sentence that fails whole is spoken in clause chunks of at most this length
CHUNK_GAP_S = 0.12  # silence between the chunks of a split sentence, about a comma's pause
SILENCE_THRESHOLD = 10 ** (-50 / 20)  # a clip's leading and trailing samples below −50 dBFS are trimmed
ONSET_MARGIN_S = 0.005
CONJUNCTIONS = frozenset("and or but nor so yet because which that when where while who whom whose if than".split())


@dataclass(frozen=True)
class Clip:
    """A spoken sentence: mono float samples at the engine's rate and where each word starts in them."""

    samples: np.ndarray
    rate_hz: int
    words: tuple = ()  # ((word, start_sample), ...) in order

    def trimmed(self) -> Clip:
        """The clip without leading and trailing silence, word positions moved along."""
        start, end = trim_bounds(self.samples, self.rate_hz)
        words = tuple((w, min(max(0, pos - start), max(0, end - start - 1))) for w, pos in self.words)
        return Clip(self.samples[start:end], self.rate_hz, words)

    def word_times(self) -> list[tuple[str, float, float]]:
        """(word, start_s, end_s) relative to the clip's start; a word ends where the next begins."""
        ends = [pos for _, pos in self.words[1:]] + [self.samples.size]
        return [(w, pos / self.rate_hz, end / self.rate_hz) for (w, pos), end in zip(self.words, ends)]


def trim_bounds(samples: np.ndarray, rate_hz: int) -> tuple[int, int]:
    """First and one-past-last sample above the silence threshold, with a few ms of margin."""
    loud = np.flatnonzero(np.abs(samples) > SILENCE_THRESHOLD)
    if loud.size == 0:
        return 0, 0
    margin = int(ONSET_MARGIN_S * rate_hz)
    return max(0, int(loud[0]) - margin), min(samples.size, int(loud[-1]) + 1 + 4 * margin)


def speakable(text: str) -> bool:
    """Whether a text has anything to say (letters or digits)."""
    return any(ch.isalnum() for ch in text)


def plausible(clip: Clip, text: str, rate_wpm: int) -> bool:
    """A clip is plausible when its voiced length fits its word count at the asked rate."""
    if clip.samples.size == 0:
        return False
    voiced = trim_bounds(clip.samples, clip.rate_hz)
    duration_s = (voiced[1] - voiced[0]) / clip.rate_hz
    words = max(1, len(text.split()))
    expected_s = words * 60.0 / rate_wpm
    # too short means words were lost; far too long means the engine ran away. Spelling out letters
    # of a script the voice does not read (Arabic with an English voice) is slow but not lost.
    return 0.3 * expected_s - 0.3 <= duration_s <= 10.0 * expected_s + 5.0


def split_clauses(text: str, limit=CHUNK_CHARS) -> list[str]:
    """Split a long sentence into chunks of at most ``limit`` characters where a speaker would breathe.

    First at clause marks (, ; : — –); a clause still too long is halved before the conjunction
    nearest its middle ("… emoji sequence | or someone asks …"), else at the space nearest it.
    """
    clauses = [p.strip() for p in re.split(r"(?<=[,;:—–])\s*", text) if p.strip()]
    chunks, current = [], ""
    for clause in clauses:
        for part in _halve(clause, limit):
            joined = f"{current} {part}".strip()
            if current and len(joined) > limit:
                chunks.append(current)
                current = part
            else:
                current = joined
    if current:
        chunks.append(current)
    return chunks


def _halve(clause: str, limit: int) -> list[str]:
    words = clause.split()
    if len(clause) <= limit or len(words) < 2:
        return [clause]
    middle = len(clause) / 2
    starts = [len(" ".join(words[:i])) for i in range(1, len(words))]  # char offset of each split
    candidates = [i for i in range(1, len(words)) if words[i].lower() in CONJUNCTIONS] or list(range(1, len(words)))
    cut = min(candidates, key=lambda i: abs(starts[i - 1] - middle))
    return _halve(" ".join(words[:cut]), limit) + _halve(" ".join(words[cut:]), limit)


def synthesize(engine: Engine, text: str, settings: VoiceSettings) -> Clip:
    """Speak a sentence in full; if the whole fails the check, speak it in clause chunks and join."""
    clip = engine.speak(text, settings)
    if plausible(clip, text, settings.rate):
        return clip
    chunks = split_clauses(text)
    if len(chunks) <= 1 and len(text.split()) <= 1:
        got = "no audio" if clip.samples.size == 0 else f"{clip.samples.size / clip.rate_hz:.2f} s of audio"
        raise TTSError(f"the {engine.name} engine could not speak {text!r} with {settings.describe()}: got {got}")
    if len(chunks) <= 1:
        chunks = split_clauses(text, limit=max(1, len(text) // 2))
    gap = np.zeros(int(CHUNK_GAP_S * clip.rate_hz), np.float32)
    parts, words, offset = [], [], 0
    for chunk in chunks:
        part = synthesize(engine, chunk, settings).trimmed()
        words += [(w, offset + pos) for w, pos in part.words]
        parts.extend([part.samples, gap])
        offset += part.samples.size + gap.size
    log.info("spoke %r in %d chunks after the whole sentence failed the length check", text[:60], len(chunks))
    return Clip(np.concatenate(parts[:-1]), clip.rate_hz, tuple(words))


def resample(samples: np.ndarray, from_hz: int, to_hz: int) -> np.ndarray:
    """Resample a clip from its engine's rate to the piece's rate (polyphase, exact ratio)."""
    if to_hz == from_hz or samples.size == 0:
        return samples.astype(np.float32)
    from scipy.signal import resample_poly  # here, not above: a speaking worker never needs scipy's 80 MB
    g = gcd(to_hz, from_hz)
    return resample_poly(samples, to_hz // g, from_hz // g).astype(np.float32)
