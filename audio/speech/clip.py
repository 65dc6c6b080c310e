"""A spoken clip and what every engine's clips go through: trimming (with a fade at each edge), the
length check, clause splitting for a sentence that fails it, resampling to the piece's rate."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from functools import lru_cache
from math import gcd, pi
from typing import TYPE_CHECKING

import numpy as np

from audio.errors import TTSError

if TYPE_CHECKING:
    from audio.speech.engine import Engine, VoiceSettings

log = logging.getLogger(__name__)

CHUNK_CHARS = 120  # a sentence that fails whole is spoken in clause chunks of at most this length
CHUNK_GAP_S = 0.12  # silence between the chunks of a split sentence, about a comma's pause
# espeak-ng segfaults on one utterance from about 21,700 characters (measured alike for a sentence
# of words and a single word: 21,640 characters start, 21,757 crash at once) and its time grows with
# the square of the length (a sentence of 20,000 characters: 48 s). A longer sentence is handed to
# an engine in clause chunks of at most this many characters, a tenth of that; a word cannot be cut
# (score.MAX_WORD_CHARS bounds it).
MAX_UTTERANCE_CHARS = 2000
SILENCE_THRESHOLD = 10 ** (-50 / 20)  # a clip's leading and trailing samples below −50 dBFS are trimmed
ONSET_MARGIN_S = 0.005
PHONEME_BLOCK_RE = re.compile(r"\[\[.*?\]\]")
# Engines start and stop on a hard edge (espeak-ng gates its output: exact zeros, then a plosive
# burst or a glottal pulse at full level), which clicks. A trimmed clip fades in over EDGE_FADE_IN_S
# from where its sound begins (the first sample above EDGE_FLOOR) and out over EDGE_FADE_OUT_S
# to where it ends: the first milliseconds of a plosive's release are softened (at 5 ms, sentences
# starting on "P" still read 6-10x on the click measure; at 8 ms under 5x), the rest of it stays.
EDGE_FLOOR = 10 ** (-80 / 20)
EDGE_FADE_IN_S = 0.008
EDGE_FADE_OUT_S = 0.010
# Resampling: a Kaiser-windowed low-pass flat to RESAMPLE_PASS of the lower Nyquist and RESAMPLE_STOP_DB
# down from that Nyquist on, so every image of the engine's band lands in the stopband (scipy's default
# filter cuts at the Nyquist itself and left the images of 9-11 kHz speech 17 dB down).
RESAMPLE_PASS = 0.9
RESAMPLE_STOP_DB = 80.0
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
        return Clip(fade_edges(self.samples[start:end], self.rate_hz), self.rate_hz, words)

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


def fade_edges(samples: np.ndarray, rate_hz: int) -> np.ndarray:
    """``samples`` silent up to where the sound begins, then faded in (raised cosine) over
    EDGE_FADE_IN_S; faded out over EDGE_FADE_OUT_S to where it ends, silent after."""
    loud = np.flatnonzero(np.abs(samples) > EDGE_FLOOR)
    if loud.size == 0:
        return np.zeros_like(samples)
    first, last = int(loud[0]), int(loud[-1]) + 1
    gain = np.zeros(samples.size, np.float32)
    gain[first:last] = 1.0
    n_in = min(round(EDGE_FADE_IN_S * rate_hz), last - first)
    gain[first:first + n_in] = 0.5 - 0.5 * np.cos(pi * (np.arange(n_in) + 0.5) / n_in)
    n_out = min(round(EDGE_FADE_OUT_S * rate_hz), last - first)
    gain[last - n_out:last] = np.minimum(gain[last - n_out:last],
                                         0.5 - 0.5 * np.cos(pi * (np.arange(n_out, 0, -1) - 0.5) / n_out))
    return (samples * gain).astype(samples.dtype, copy=False)


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
    blocks = PHONEME_BLOCK_RE.findall(text)  # inline phonemes are never cut (their codes hold : and ;)
    if blocks:
        text = PHONEME_BLOCK_RE.sub(lambda m: f"\0{blocks.index(m.group())}\0", text)
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
    if blocks:
        chunks = [re.sub(r"\0(\d+)\0", lambda m: blocks[int(m[1])], c) for c in chunks]
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
    """Speak a sentence in full; if the whole fails the check, speak it in clause chunks and join.
    A sentence over MAX_UTTERANCE_CHARS is spoken in clause chunks from the start."""
    if len(text) > MAX_UTTERANCE_CHARS:
        chunks = split_clauses(text, MAX_UTTERANCE_CHARS)
        longest = max(chunks, key=len)
        if len(longest) > MAX_UTTERANCE_CHARS:
            raise TTSError(f"the {engine.name} engine cannot speak a word of {len(longest)} characters "
                           f"({longest[:40]!r}…); an utterance is at most {MAX_UTTERANCE_CHARS} characters")
        return _joined(engine, chunks, settings, engine.rate_hz(settings))
    clip = engine.speak(text, settings)
    if plausible(clip, text, settings.rate):
        return clip
    chunks = split_clauses(text)
    if len(chunks) <= 1 and len(text.split()) <= 1:
        got = "no audio" if clip.samples.size == 0 else f"{clip.samples.size / clip.rate_hz:.2f} s of audio"
        raise TTSError(f"the {engine.name} engine could not speak {text!r} with {settings.describe()}: got {got}")
    if len(chunks) <= 1:
        chunks = split_clauses(text, limit=max(1, len(text) // 2))
    log.info("spoke %r in %d chunks after the whole sentence failed the length check", text[:60], len(chunks))
    return _joined(engine, chunks, settings, clip.rate_hz)


def _joined(engine: Engine, chunks: list[str], settings: VoiceSettings, rate_hz: int) -> Clip:
    """The chunks of a sentence spoken one by one, trimmed, and joined with CHUNK_GAP_S between."""
    gap = np.zeros(int(CHUNK_GAP_S * rate_hz), np.float32)
    parts, words, offset = [], [], 0
    for chunk in chunks:
        part = synthesize(engine, chunk, settings).trimmed()
        words += [(w, offset + pos) for w, pos in part.words]
        parts.extend([part.samples, gap])
        offset += part.samples.size + gap.size
    return Clip(np.concatenate(parts[:-1]), rate_hz, tuple(words))


def resample(samples: np.ndarray, from_hz: int, to_hz: int) -> np.ndarray:
    """Resample a clip from its engine's rate to the piece's rate (polyphase, exact ratio), with
    images and aliases RESAMPLE_STOP_DB down."""
    if to_hz == from_hz or samples.size == 0:
        return samples.astype(np.float32)
    from scipy.signal import resample_poly  # here and below, not above: a speaking worker never needs scipy's 80 MB
    g = gcd(to_hz, from_hz)
    up, down = to_hz // g, from_hz // g
    return resample_poly(samples, up, down, window=resampling_filter(up, down)).astype(np.float32)


@lru_cache(maxsize=16)
def resampling_filter(up: int, down: int) -> np.ndarray:
    """The low-pass FIR (odd length, unit gain at DC) that ``resample`` runs at ``up`` times the
    input rate: flat to RESAMPLE_PASS of the lower of the two Nyquists, stopband from that Nyquist."""
    from scipy.signal import firwin, kaiser_beta, kaiserord
    nyquist = 1.0 / max(up, down)  # the lower Nyquist, as a fraction of the filter rate's
    width = (1.0 - RESAMPLE_PASS) * nyquist
    numtaps, _ = kaiserord(RESAMPLE_STOP_DB, width)
    numtaps |= 1  # odd: a whole number of samples of delay, which resample_poly takes out
    return firwin(numtaps, nyquist - width / 2, window=("kaiser", kaiser_beta(RESAMPLE_STOP_DB)))
