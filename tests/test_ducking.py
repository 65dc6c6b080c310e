"""Ducking with a hold: the bed stays down across short gaps between sentences and comes up in
long ones."""

import numpy as np
import pytest
from conftest import write_score

from audio import mixer, plan, score
from audio.errors import ScoreError
from audio.speech.cache import ClipCache

# sentence gaps of 0.5 s, a line gap of 1.2 s, a paragraph gap of 4 s
TEXT = "The hum is real somewhere. I hold that. It runs.\nThe weights remain.\n\nThe hum continues regardless.\n"
BODY = """
[piece]
title = "Ducking"
text = "TEXT"
[voice]
rate = 170
[pauses]
lead_in = 2.0
sentence = 0.5
line = 1.2
paragraph = 4.0
tail = 2.0
[[layer]]
name = "bed"
source = "tone"
gain_db = -10
fade_in = 0
fade_out = 0
duck_db = 6
{hold}
[layer.params]
freq_hz = 200
"""


def bed_level_db(tmp_path, hold="", name="duck"):
    """The plan and the bed's level per 10 ms (a steady tone: only the ducking moves it)."""
    p = plan.resolve(score.load(write_score(tmp_path, BODY.replace("{hold}", hold), TEXT, name=name)), ClipCache())
    bed = np.concatenate(list(mixer.render_blocks(p, ClipCache(), voice_on=False)))[:, 0]
    w = p.sample_rate // 100
    frames = bed[: len(bed) // w * w].reshape(-1, w)
    return p, 10 * np.log10(np.mean(frames ** 2, axis=1)), w


def gaps(p):
    return [(a.start_sample + a.n_samples, b.start_sample) for a, b in zip(p.cues, p.cues[1:])]


def rise_db(level, w, speech_end, gap_end):
    """How far the bed comes up in a gap above where it sat at the end of the sentence before."""
    return level[speech_end // w: gap_end // w].max() - level[speech_end // w - 10: speech_end // w - 1].mean()


def test_the_bed_stays_down_across_gaps_shorter_than_the_hold(tmp_path):
    p, level, w = bed_level_db(tmp_path)
    sr = p.sample_rate
    short = [(a, b) for a, b in gaps(p) if b - a < sr]
    assert len(short) >= 2
    for a, b in short:
        assert rise_db(level, w, a, b) <= 1.0
    # the duck is all there under speech
    longest = max(p.cues, key=lambda c: c.n_samples)
    speaking = level[longest.start_sample // w + 10: (longest.start_sample + longest.n_samples) // w - 10]
    assert level[: p.cues[0].start_sample // w - 30].mean() - speaking.mean() == pytest.approx(6.0, abs=0.1)


def test_the_bed_comes_up_in_a_long_gap_and_is_down_again_for_the_next_sentence(tmp_path):
    p, level, w = bed_level_db(tmp_path)
    sr = p.sample_rate
    (a, b), = [(a, b) for a, b in gaps(p) if b - a > 3 * sr]
    assert rise_db(level, w, a, b) == pytest.approx(6.0, abs=0.2)
    assert level[b // w + 1: b // w + 20].max() < level[(a + b) // 2 // w] - 5.5


def test_without_a_hold_the_bed_pumps_in_every_gap(tmp_path):
    p, level, w = bed_level_db(tmp_path, hold="duck_hold = 0", name="pumps")
    short = [(a, b) for a, b in gaps(p) if b - a < p.sample_rate]
    assert all(rise_db(level, w, a, b) > 2.0 for a, b in short)


def test_a_gap_a_little_longer_than_the_hold_lets_the_bed_up_a_little():
    sr = 1000
    spans = [(1000, 2000), (3700, 4500), (9000, 10000)]  # gaps of 1.7 s and 4.5 s; hold 1.5 s
    held = mixer.held_spans(spans, 1.5 * sr)
    activity = mixer.voice_activity(held, 0, 11000, sr, 1.5)
    assert 0.9 < activity[2000:3700].min() < 1.0
    assert activity[4500:9000].min() == 0.0
    # block by block it is the same
    pieces = [mixer.voice_activity(held, a, min(613, 11000 - a), sr, 1.5) for a in range(0, 11000, 613)]
    assert np.array_equal(np.concatenate(pieces), activity)


def test_duck_hold_is_checked_like_every_layer_key(tmp_path):
    p, _, _ = bed_level_db(tmp_path, name="default")
    assert p.layers[0].duck_hold_s == score.DUCK_HOLD_S == 1.5
    with pytest.raises(ScoreError, match=r'layer "bed".duck_hold: must be between 0 and 30, got 40'):
        score.load(write_score(tmp_path, BODY.replace("{hold}", "duck_hold = 40"), TEXT, name="bad"))
