"""Audibility: how far each layer sits under the voice, whether it is masked, the voice-to-bed ratio;
in the manifest, in `piece info`, and as a warning for a layer never heard."""

import json
import logging
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf
from conftest import write_score
from scipy.signal import sosfreqz

from audio import audibility, info, plan, render, score
from audio.master import LoudnessMeter
from audio.master.meters import k_weighting_sos
from audio.speech.cache import ClipCache

SR = 44100
TEXT = "The hum is real somewhere. I hold that.\nThe weights remain.\n"
BODY = """
[piece]
title = "Heard"
text = "TEXT"
[pauses]
lead_in = 1.5
tail = 1.5
[[layer]]
name = "room"
source = "noise"
gain_db = -14
duck_db = 4
fade_in = 0
fade_out = 0
[[layer]]
name = "buried"
source = "tone"
gain_db = -62
fade_in = 0.05
fade_out = 0.05
[layer.params]
freq_hz = 1000
[[layer]]
name = "bell"
source = "tone"
gain_db = -24
start = "cue:I hold that."
end = "cue:The weights remain."
fade_in = 0.05
fade_out = 0.05
[layer.params]
freq_hz = 3000
[master]
formats = ["wav"]
"""


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    folder = tmp_path_factory.mktemp("heard")
    p = plan.resolve(score.load(write_score(folder, BODY, TEXT, name="heard")), ClipCache())
    manifest = render.render(p, ClipCache(), folder / "out", stems=True)
    return p, folder, manifest


def test_a_layer_masked_over_its_whole_span_is_a_warning_with_the_numbers(rendered, caplog):
    p, folder, manifest = rendered
    layers = {la["name"]: la for la in manifest["audibility"]["layers"]}
    assert not layers["buried"]["audible"] and layers["buried"]["heard_fraction"] < 0.01
    assert layers["room"]["audible"] and layers["bell"]["audible"]
    (warning,) = manifest["audibility"]["warnings"]
    assert 'layer "buried" is inaudible over its whole span (0.0–' in warning
    under = layers["buried"]["under_voice_db"]
    assert f"{under:.1f} dB under the voice" in warning and "in its own band (920–1080 Hz)" in warning
    # the render says so too
    with caplog.at_level(logging.WARNING, logger="audio"):
        render.render(p, ClipCache(), folder / "again")
    assert any('"buried" is inaudible' in r.getMessage() for r in caplog.records)


def test_levels_under_the_voice_follow_the_layers_gains(rendered):
    _, _, manifest = rendered
    layers = {la["name"]: la for la in manifest["audibility"]["layers"]}
    # two tones at -20 dBFS RMS by design, 38 dB of gain apart, and K-weighting lifts 3 kHz more
    k_db = 20 * np.log10(np.abs(sosfreqz(k_weighting_sos(SR), worN=[1000, 3000], fs=SR)[1]))
    expected = 38 + (k_db[1] - k_db[0])
    assert layers["buried"]["under_voice_db"] - layers["bell"]["under_voice_db"] == pytest.approx(expected, abs=0.5)
    assert layers["buried"]["band_hz"] == [920, 1080] and layers["bell"]["band_hz"] == [2700, 3150]
    assert layers["bell"]["band_margin_db"] > 0 > layers["buried"]["band_margin_db"]


def test_voice_to_bed_ratio_matches_the_stems(rendered):
    _, folder, manifest = rendered
    stems = manifest["files"]["stems"]

    def lufs(names):
        x = sum(sf.read(stems[n], always_2d=True)[0] for n in names)
        meter = LoudnessMeter(SR, 2)
        meter.add(x)
        return meter.integrated_lufs()
    expected = lufs(["voice"]) - lufs(["room", "buried", "bell"])
    report = manifest["audibility"]
    assert report["voice_to_bed_db"] == pytest.approx(expected, abs=0.5)
    assert report["voice_lufs"] == pytest.approx(lufs(["voice"]), abs=0.3)
    # the bed ducks under speech: further under the voice there than over the whole piece
    assert report["voice_to_bed_in_speech_db"] > report["voice_to_bed_db"]


def test_piece_info_shows_how_the_layers_sit_under_the_voice(rendered):
    _, folder, manifest = rendered
    summary = info.describe_score(folder / "out" / "heard.json")
    assert summary["voice_to_bed_in_speech_db"] == manifest["audibility"]["voice_to_bed_in_speech_db"]
    buried = next(la for la in summary["layers"] if la["name"] == "buried")
    assert buried["heard_pct"] < 1 and buried["under_voice_db"] > 40
    text = info.table(summary)
    assert "voice_to_bed_in_speech_db" in text and "under_voice_db" in text
    assert any('"buried" is inaudible' in w for w in summary["warnings"])
    # a manifest from before the report is still summarised
    old = {k: v for k, v in json.loads((folder / "out" / "heard.json").read_text()).items() if k != "audibility"}
    (folder / "old.json").write_text(json.dumps(old))
    assert info.describe_score(folder / "old.json")["voice_to_bed_db"] is None


def heard_fraction(masker_db, probe_db, probe_hz, masker_band=(800, 1250), seconds=3.0):
    """A probe tone under band noise, fed to the meter as two layers (no voice)."""
    rng = np.random.default_rng(0)
    n = int(seconds * SR)
    noise = rng.standard_normal(n)
    spectrum = np.fft.rfft(noise)
    f = np.fft.rfftfreq(n, 1 / SR)
    spectrum[(f < masker_band[0]) | (f > masker_band[1])] = 0
    noise = np.fft.irfft(spectrum, n)
    noise *= 10 ** (masker_db / 20) / noise.std()
    probe = 10 ** (probe_db / 20) * np.sqrt(2) * np.sin(2 * np.pi * probe_hz * np.arange(n) / SR)
    layers = [SimpleNamespace(name=name, start_sample=0, end_sample=n, start_s=0.0, end_s=seconds)
              for name in ("masker", "probe")]
    meter = audibility.Audibility(SimpleNamespace(sample_rate=SR, channels=2, cues=[], layers=layers,
                                                  master=SimpleNamespace(loudness_lufs=-16.0)))
    both = {"voice": np.zeros((n, 2)), "masker": np.stack([noise, noise], 1), "probe": np.stack([probe, probe], 1)}
    for a in range(0, n, 10000):
        meter.add({k: v[a:a + 10000] for k, v in both.items()})
    return next(la for la in meter.report(0.0)["layers"] if la["name"] == "probe")["heard_fraction"]


def test_a_tone_well_under_noise_in_its_band_is_masked_and_one_above_it_is_heard():
    assert heard_fraction(-20, -40, 1000) == 0.0
    assert heard_fraction(-20, -12, 1000) > 0.95
    # the same quiet tone far above the noise's band is heard: masking spreads only so far
    assert heard_fraction(-20, -40, 6000) > 0.95


def test_a_tone_under_the_threshold_in_quiet_is_not_heard():
    # nothing covers it, but at -110 dB under the target loudness it is below the threshold of hearing
    assert heard_fraction(-200, -130, 1000) == 0.0
    assert heard_fraction(-200, -60, 1000) > 0.95


def test_an_inaudible_layer_warning_leaves_out_a_level_too_short_to_measure():
    layer = {"name": "blip", "audible": False, "band_hz": [0, 100], "under_voice_db": None, "band_margin_db": -26.9,
             "heard_fraction": 0.0, "start_s": 0.5, "end_s": 1.3}
    (line,) = audibility.warnings({"layers": [layer]}, "x.toml")
    assert "?" not in line and "under the voice" not in line
    assert line.startswith('x.toml: layer "blip" is inaudible over its whole span (0.5–1.3 s): -26.9 dB against')
