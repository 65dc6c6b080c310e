"""The plan, the caches and the mixer speak through the Engine interface: an engine names its own
sample rate, and a piece comes out the right length with its captions on the words."""

import json

import numpy as np
import pytest
import soundfile as sf
from conftest import write_score

from audio import plan, render, score
from audio.speech import engine as speech_engine
from audio.speech.cache import ClipCache
from audio.speech.clip import ONSET_MARGIN_S, Clip
from audio.speech.engine import Engine, VoiceInfo, VoiceSettings

RATE_HZ = 16000
WORD_S, GAP_S, LEAD_S = 0.25, 0.15, 0.1  # each word a tone this long, this far apart, after this much silence


class Tones(Engine):
    """Speaks each word as a tone, a little higher word by word, at 16 kHz."""

    name = "tones"
    version = "tones 1"

    def rate_hz(self, settings):
        return RATE_HZ

    def voices(self):
        return (VoiceInfo("en-us", "tones", ("en-us",), rate_hz=RATE_HZ),)

    def check_voice_name(self, name, file="", where="voice.name"):
        return name

    def speak(self, text, settings):
        step, lead, n = round((WORD_S + GAP_S) * RATE_HZ), round(LEAD_S * RATE_HZ), round(WORD_S * RATE_HZ)
        words = text.split()
        x = np.zeros(2 * lead + len(words) * step, np.float32)
        t = np.arange(n) / RATE_HZ
        marks = []
        for i, word in enumerate(words):
            start = lead + i * step
            x[start: start + n] = 0.5 * np.sin(2 * np.pi * (300 + 100 * i) * t)
            marks.append((word, start))
        return Clip(x, RATE_HZ, tuple(marks))


@pytest.fixture
def tones(monkeypatch):
    """The tone engine in the default engine's place (a score cannot name another engine yet)."""
    monkeypatch.setitem(speech_engine.engines, "espeak", Tones())


TEXT = "One two three.\nFour five.\n"
BODY = """
[piece]
title = "Tones"
text = "TEXT"
sample_rate = 44100
[pauses]
lead_in = 0.5
tail = 0.5
[[cue]]
match = "Four five."
effects = [{ effect = "eq", low_cut_hz = 90 }]
[master]
formats = ["wav"]
"""


def onsets_s(x: np.ndarray, rate_hz: int, near_s: list[float]) -> list[float]:
    """Where the sound first rises above a tenth of its peak within 0.1 s of each time in ``near_s``."""
    loud = np.abs(x) > 0.1 * np.abs(x).max()
    out = []
    for t in near_s:
        a = round((t - 0.1) * rate_hz)
        out.append((a + int(np.argmax(loud[a: a + round(0.2 * rate_hz)]))) / rate_hz)
    return out


def test_a_piece_spoken_by_a_16_khz_engine_has_the_right_length_and_caption_times(tmp_path, tones):
    cache = ClipCache(tmp_path / "cache")
    p = plan.resolve(score.load(write_score(tmp_path, BODY, TEXT)), cache)
    manifest = render.render(p, cache, tmp_path / "out")
    for cue, n_words in zip(p.cues, (3, 2)):
        # trimmed to its tones with the shared margins: 5 ms before, 20 ms after
        expected_s = (n_words - 1) * (WORD_S + GAP_S) + WORD_S + 5 * ONSET_MARGIN_S
        assert cue.end_s - cue.start_s == pytest.approx(expected_s, abs=0.001)
        starts = [a for _, a, _ in cue.words]
        assert starts == pytest.approx([cue.start_s + ONSET_MARGIN_S + i * (WORD_S + GAP_S)
                                        for i in range(n_words)], abs=0.001)
        assert cue.voice["engine"] == "espeak"
    x, rate = sf.read(tmp_path / "out" / "piece.wav")
    assert x.shape[0] == p.total_samples and rate == 44100
    words = [a for cue in manifest["cues"] for _, a, _ in cue["words"]]
    assert onsets_s(x.mean(axis=1), rate, words) == pytest.approx(words, abs=0.003)
    assert json.loads((tmp_path / "out" / "piece.json").read_text())["engine"] == "tones 1"
    assert (cache.synthesized, cache.voiced_made) == (2, 1)


def test_a_cached_clip_comes_back_at_its_engine_rate(tmp_path, tones):
    settings = VoiceSettings("en-us", 150, 50, 1.0)
    first = ClipCache(tmp_path).get("One two three.", settings)
    again = ClipCache(tmp_path)
    second = again.get("One two three.", settings)
    assert (again.synthesized, again.hits) == (0, 1)
    assert second.rate_hz == RATE_HZ and np.array_equal(second.samples, first.samples)
    assert second.words == first.words and second.words[1][1] == round((WORD_S + GAP_S) * RATE_HZ) + 79
