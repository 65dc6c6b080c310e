"""The golden render: tests/golden/golden.toml rendered afresh sounds as the golden.wav kept beside it.

The speech comes from tests/golden/speech.npz (the sentences as espeak-ng spoke them once), never
from the engine, which does not speak every sentence the same way in every process. So the test
does not fail on espeak-ng, and fails on any change in what is done to the speech and around it:
the voice's effects and resampling, the sources, ducking, fades, the mix, the loudness search, the
limiter, dither and the WAV writer.

Tolerance. The 16-bit samples are equal, except that at most 1 in 1,000 may differ, by 1 LSB. On
the machine that made the golden they are all equal; the allowance is for another CPU or numpy
build, whose rounding may differ in the last bits of a float and tip a sample that sat on a
rounding edge of the quantizer the other way. A change the project makes moves far more samples:
another dither changes most of them by 1-2 LSB, a gain 0.01 dB away every loud one by several.
The levels the render measured (the mix's loudness, the gain, the output's loudness and true
peak) agree to 1e-6 dB, so a change too small to show in 16 bits still fails.

Rebuild the golden with tests/golden/rebuild.py; its docstring says when (rarely) and how.
"""

import json

import numpy as np
import pytest
import soundfile as sf
from golden.rebuild import RECORD, WAV, render_golden

MAX_DIFFERING = 1e-3  # share of samples that may differ, each by at most 1 LSB
LEVELS_DB = 1e-6


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    out = tmp_path_factory.mktemp("golden")
    manifest = render_golden(out)
    return out / "golden.wav", manifest


def test_the_golden_render_has_the_kept_samples(fresh):
    path, _ = fresh
    kept, fresh_info = sf.info(str(WAV)), sf.info(str(path))
    assert (fresh_info.samplerate, fresh_info.channels, fresh_info.subtype) == \
        (kept.samplerate, kept.channels, kept.subtype) == (24000, 1, "PCM_16")
    want, _ = sf.read(WAV, dtype="int16")
    got, _ = sf.read(path, dtype="int16")
    assert got.shape == want.shape, f"{got.shape[0]} samples, the golden has {want.shape[0]}"
    diff = np.abs(got.astype(np.int32) - want)
    differing = np.count_nonzero(diff)
    assert diff.max() <= 1 and differing <= MAX_DIFFERING * want.size, (
        f"{differing} of {want.size} samples differ, by up to {diff.max()} LSB, first at sample "
        f"{np.flatnonzero(diff)[0]}; golden made with {json.loads(RECORD.read_text())['versions']}")


def test_the_golden_render_measures_the_kept_levels(fresh):
    _, manifest = fresh
    kept = json.loads(RECORD.read_text())["measured"]
    for key in ("mix_lufs", "gain_db", "loudness_lufs", "true_peak_dbtp", "duration_s"):
        assert manifest["measured"][key] == pytest.approx(kept[key], abs=LEVELS_DB), key


def test_the_golden_render_holds_its_speech_tone_and_bed(fresh):
    # what the golden is meant to hold, so that a rebuild cannot quietly keep a broken render
    path, manifest = fresh
    x, rate = sf.read(path)
    first, second = manifest["cues"]
    assert manifest["measured"]["loudness_lufs"] == pytest.approx(-16.0, abs=0.1)
    assert manifest["measured"]["true_peak_dbtp"] <= -1.0

    def span(start_s, end_s):
        return x[round(start_s * rate): round(end_s * rate)]

    def tone_to_spectrum(y):  # the 330 Hz bin over the mean bin
        spectrum = np.abs(np.fft.rfft(y * np.hanning(len(y))))
        return spectrum[round(330 * len(y) / rate)] / spectrum.mean()

    def rms(y):
        return np.sqrt(np.mean(y ** 2))
    bed = span(0.3, first["start_s"])  # faded in, the voice not yet in
    assert tone_to_spectrum(bed) < 5
    assert tone_to_spectrum(span(second["end_s"] + 0.05, second["end_s"] + 0.3)) > 20  # the tone stays on
    assert rms(span(first["start_s"], first["end_s"])) > 3 * rms(bed)
