"""word:<text> times start on the first word of <text> inside its sentence, wherever a time is taken."""

import numpy as np
import pytest
from conftest import write_score

from audio import mixer, plan, score
from audio.errors import ScoreError
from audio.speech import engine as speech_engine
from audio.speech.cache import ClipCache
from test_speech_engine import GAP_S, WORD_S, Tones

BODY = """
[piece]
title = "Anchors"
text = "TEXT"
sample_rate = 22050
channels = 1
[pauses]
lead_in = 0.5
tail = 1.0
[[layer]]
name = "bell"
source = "tone"
gain_db = 0.0
start = "word:three four"
end = "word:three four+0.3"
fade_in = 0.0
fade_out = 0.0
[layer.params]
freq_hz = 2000
[[chapter]]
title = "Four"
at = "word:ur five-0.1"
[master]
formats = ["wav"]
"""
TEXT = "One two three four five.\n"


@pytest.fixture
def tones(monkeypatch):
    """Words as tones: each word's time is known exactly."""
    monkeypatch.setitem(speech_engine.engines, "espeak", Tones())


def resolve(tmp_path, body=BODY):
    return plan.resolve(score.load(write_score(tmp_path, body, TEXT)), ClipCache(tmp_path / "cache"))


def test_a_layer_anchored_on_a_word_sounds_from_that_word(tmp_path, tones):
    p = resolve(tmp_path)
    cue = p.cues[0]
    three = cue.words[2][1]
    assert three - cue.start_s == pytest.approx(2 * (WORD_S + GAP_S) + 0.005, abs=0.001)
    bell = p.layers[0]
    assert bell.start_s == pytest.approx(three, abs=0.0001) and bell.end_s == pytest.approx(three + 0.3, abs=0.001)
    x = np.concatenate(list(mixer.render_blocks(p, ClipCache(tmp_path / "cache"), voice_on=False)))[:, 0]
    onset = np.flatnonzero(np.abs(x) > 0.01)[0] / p.sample_rate
    assert onset == pytest.approx(three, abs=0.002)


def test_a_word_anchor_begun_inside_a_word_takes_that_word(tmp_path, tones):
    p = resolve(tmp_path)
    four = p.cues[0].words[3][1]
    assert p.chapters[0].start_s == pytest.approx(four - 0.1, abs=0.001)


def test_a_word_anchor_that_finds_no_sentence_is_a_score_error(tmp_path, tones):
    with pytest.raises(ScoreError, match=r'layer "bell"\.start: anchor \'six\' matches no sentence'):
        resolve(tmp_path, BODY.replace('"word:three four"', '"word:six"'))
    with pytest.raises(ScoreError, match=r'must be seconds, "end", "end-N", "cue:<text>\[\+N\|-N\]" or '
                                         r'"word:<text>\[\+N\|-N\]"'):
        resolve(tmp_path, BODY.replace('"word:three four"', '"words:three"'))
