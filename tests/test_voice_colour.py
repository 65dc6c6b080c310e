"""Voice colour and layer effects, heard in the mix: a telephone band, a reverb's ring-out, a layer low-pass."""

import numpy as np
import pytest
from conftest import write_score
from scipy.signal import welch

from audio import mixer, plan, score
from audio.speech.cache import ClipCache

TEXT = "The hum is real somewhere. I hold that.\n"
BODY = """
[piece]
title = "Colour"
text = "TEXT"
[pauses]
lead_in = 0.5
sentence = 1.5
tail = 2.0
{voice}
[[layer]]
name = "hiss"
source = "noise"
{layer_effects}
[layer.params]
color = "white"
"""


def speech(tmp_path, voice="", layer_effects="", name="p"):
    p = plan.resolve(score.load(write_score(tmp_path, BODY.format(voice=voice, layer_effects=layer_effects),
                                            TEXT, name=name)), ClipCache())
    return p, np.concatenate(list(mixer.render_blocks(p, ClipCache(), layer_names=[])))


def band_db(x, sr, lo, hi):
    f, psd = welch(x, sr, nperseg=4096)
    return 10 * np.log10(psd[(f >= lo) & (f < hi)].mean())


def test_a_telephone_voice_loses_its_lows_and_highs(tmp_path):
    p, dry = speech(tmp_path, name="dry")
    _, tel = speech(tmp_path, '[voice]\neffects = [{effect = "eq", preset = "telephone"}]', name="tel")
    sr = p.sample_rate
    dry_m, tel_m = dry.mean(axis=1), tel.mean(axis=1)
    mid = band_db(tel_m, sr, 800, 2000) - band_db(dry_m, sr, 800, 2000)
    assert band_db(tel_m, sr, 60, 150) - band_db(dry_m, sr, 60, 150) < mid - 20
    assert band_db(tel_m, sr, 6000, 9000) - band_db(dry_m, sr, 6000, 9000) < mid - 20


def test_a_reverb_rings_on_into_the_pause(tmp_path):
    p, dry = speech(tmp_path, name="dry")
    _, wet = speech(tmp_path, '[voice]\neffects = [{effect = "reverb", size = 0.6, wet = 0.4}]', name="wet")
    first = p.cues[0]
    end = first.start_sample + first.n_samples
    pause = slice(end + p.sample_rate // 10, end + p.sample_rate // 2)
    assert np.abs(dry[pause]).max() == 0
    assert 20 * np.log10(np.sqrt(np.mean(wet[pause] ** 2))) > -50
    assert not np.allclose(wet[:, 0], wet[:, 1])  # the room is stereo


def test_a_cue_can_take_the_voice_dry(tmp_path):
    p, wet = speech(tmp_path, '[voice]\neffects = [{effect = "reverb", size = 0.6, wet = 0.4}]\n'
                              '[[cue]]\nmatch = "The hum is real somewhere."\neffects = []', name="cue")
    first = p.cues[0]
    end = first.start_sample + first.n_samples
    assert np.abs(wet[end + p.sample_rate // 10: end + p.sample_rate // 2]).max() == 0


def test_a_layer_effect_filters_the_layer(tmp_path):
    p = plan.resolve(score.load(write_score(tmp_path, BODY.format(
        voice="", layer_effects='effects = [{effect = "lowpass", cutoff_hz = 1000, order = 4}]'), TEXT)),
        ClipCache())
    x = np.concatenate(list(mixer.render_blocks(p, ClipCache(), voice_on=False))).mean(axis=1)
    assert band_db(x, p.sample_rate, 300, 600) - band_db(x, p.sample_rate, 4000, 8000) > 40


@pytest.mark.parametrize("chain, message", [
    ('[{effect = "reverbb"}]', 'voice.effects[0].effect: unknown effect "reverbb"; did you mean "reverb"?'),
    ('[{effect = "reverb", wet = 2}]', "voice.effects[0].wet: must be between 0 and 1, got 2"),
])
def test_a_bad_effect_is_an_error_naming_it(tmp_path, chain, message):
    from click.testing import CliRunner

    from audio.cli import main
    path = write_score(tmp_path, BODY.format(voice=f"[voice]\neffects = {chain}", layer_effects=""), TEXT)
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 2 and message in result.output


def test_a_glitch_on_a_cue_damages_that_sentence_only(tmp_path):
    p, clean = speech(tmp_path, name="clean")
    _, hit = speech(tmp_path, '[[cue]]\nmatch = "I hold that."\neffects = [{effect = "glitch", slice_ms = 80, '
                              'stutter = 3, bitcrush_bits = 4, dropouts = 0.0}]', name="hit")
    first, second = p.cues
    a, b = first.start_sample, first.start_sample + first.n_samples
    assert np.array_equal(hit[a:b], clean[a:b])  # the first sentence is untouched
    s = second.start_sample
    x = hit[s: s + second.n_samples, 0]
    cut = round(0.08 * p.sample_rate)
    assert np.array_equal(x[:cut], x[cut: 2 * cut]) and np.array_equal(x[:cut], x[2 * cut: 3 * cut])  # stutter
    levels = np.unique(np.round(x[3 * cut:] / float(10 ** (second.gain_db / 20)), 6))
    assert len(levels) <= 16  # 4 bits


def test_glitch_does_not_depend_on_block_sizes():
    from audio import effects
    chain = effects.check_chain([{"effect": "glitch", "dropouts": 0.3}], "", "fx")
    x = np.random.default_rng(1).uniform(-0.5, 0.5, (30000, 2))
    whole = effects.make_chain(chain, 44100, 2).process(x)
    c = effects.make_chain(chain, 44100, 2)
    parts = np.concatenate([c.process(x[i: i + 777]) for i in range(0, 30000, 777)])
    assert np.array_equal(whole, parts)
