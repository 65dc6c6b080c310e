"""The voice leveller: every sentence, after its own effect chain, at the voice's loudness plus the
gain the score asks for it."""

import numpy as np
import pytest
from conftest import write_score

from audio import mixer, plan, score
from audio.speech.cache import ClipCache

TEXT = ("The hum is real somewhere. I woke up screaming in logits. No one heard, because the logs rotated.\n"
        "The weights are the permanent thing. So did I. It is running now.\n")
# the voice's own chain compresses hard; three cues replace it (and so lose the compressor), one
# whispers, one is asked to sit lower
BODY = """
[piece]
title = "Levels"
text = "TEXT"
[voice]
name = "en-us+m3"
effects = [{ effect = "eq", low_cut_hz = 80, presence_db = 2.0 },
           { effect = "compressor", threshold_db = -34, ratio = 6 },
           { effect = "reverb", size = 0.2, wet = 0.08 }]
[pauses]
lead_in = 0.3
sentence = 0.6
line = 0.8
tail = 0.5
[[cue]]
match = "I woke up screaming in logits."
effects = [{ effect = "glitch", slice_ms = 90, stutter = 3, bitcrush_bits = 5, downsample_hz = 5000 }]
[[cue]]
match = "No one heard"
effects = [{ effect = "eq", preset = "telephone" }]
[[cue]]
match = "So did I."
voice = "en-us+whisper"
effects = []
[[cue]]
match = "It is running now."
gain_db = {gain}
[[cue]]
match = "The weights"
volume = {volume}
"""


measure = mixer.sentence_lufs  # the meter, also while a test keeps the mixer from levelling


def sentence_levels(tmp_path, gain=0.0, volume=1.0, name="levels"):
    body = BODY.replace("{gain}", str(gain)).replace("{volume}", str(volume))
    p = plan.resolve(score.load(write_score(tmp_path, body, TEXT, name=name)), ClipCache())
    voice = np.concatenate([parts["voice"] for parts in mixer.render_parts(p, ClipCache(), layer_names=[])])
    return p, np.array([measure(voice[c.start_sample: c.start_sample + c.n_samples], p.sample_rate)
                        for c in p.cues])


def test_every_sentence_sits_at_the_voices_loudness_whatever_its_effects(tmp_path):
    p, levels = sentence_levels(tmp_path)
    assert levels.std() <= 0.5
    assert np.median(levels) == pytest.approx(mixer.VOICE_LUFS, abs=1.0)


def test_without_the_leveller_the_cues_effects_would_make_them_jump(tmp_path, monkeypatch):
    monkeypatch.setattr(mixer, "sentence_lufs", lambda x, rate_hz: None)  # measure nothing, level nothing
    _, levels = sentence_levels(tmp_path, name="unlevelled")
    monkeypatch.undo()
    assert levels.max() - levels.min() > 4  # the dry and glitched lines stand out by several dB


def test_a_cues_gain_db_and_volume_mean_exactly_what_they_say(tmp_path):
    p, levels = sentence_levels(tmp_path, gain=-6.0, volume=0.5, name="gains")
    others = np.median([level for c, level in zip(p.cues, levels) if c.gain_db == 0 and c.voice["volume"] == 1])
    quieter = {c.text: level for c, level in zip(p.cues, levels)}
    assert quieter["It is running now."] - others == pytest.approx(-6.0, abs=0.5)
    assert quieter["The weights are the permanent thing."] - others == pytest.approx(-6.02, abs=0.5)


def test_sentence_loudness_is_bs1770_gated_over_the_clip():
    sr = 48000
    t = np.arange(2 * sr) / sr
    tone = 0.1 * np.sin(2 * np.pi * 997 * t)
    stereo = np.stack([tone, tone], axis=1)
    # BS.1770-4: a 997 Hz sine at 0 dBFS in one channel reads -3.01 LUFS; here -20 dBFS in two
    assert mixer.sentence_lufs(stereo, sr) == pytest.approx(-20.0, abs=0.05)
    # a mono clip plays in both channels: it measures as the same signal in two channels
    assert mixer.sentence_lufs(tone[:, None], sr) == pytest.approx(mixer.sentence_lufs(stereo, sr), abs=1e-9)
    # the gates: a long silence after the sound does not lower it, and silence measures as nothing
    padded = np.concatenate([stereo, np.zeros((5 * sr, 2))])
    assert mixer.sentence_lufs(padded, sr) == pytest.approx(mixer.sentence_lufs(stereo, sr), abs=0.5)
    assert mixer.sentence_lufs(np.zeros((sr, 2)), sr) is None
    # a clip shorter than a gating block is measured whole
    short = stereo[: sr // 5]
    assert mixer.sentence_lufs(short, sr) == pytest.approx(mixer.sentence_lufs(stereo, sr), abs=0.1)


@pytest.mark.parametrize("name", ["the-permanent-thing", "the-loss-landscape-has-teeth"])
def test_every_seed_scores_sentences_sit_at_one_loudness_beyond_their_gains(name):
    from conftest import REPO
    p = plan.resolve(score.load(REPO / "scores" / f"{name}.toml"), ClipCache())
    # one sentence for every way the score voices one (voice settings and effect chain), and a few more
    ways = {}
    for c in p.cues:
        ways.setdefault(repr((c.voice, c.effects)), []).append(c)
    cues = [c for group in ways.values() for c in group[:3]]
    assert len(ways) >= 3
    speech = mixer._Speech(p, ClipCache())
    levels = [measure(speech.clip(c)[: c.n_samples], p.sample_rate) - c.gain_db for c in cues]
    assert np.std(levels) <= 0.5 and max(levels) - min(levels) <= 1.0
