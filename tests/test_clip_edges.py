"""Clean clip edges: a fade where each clip's sound begins and ends, and a resampler whose images
sit far down."""

from math import gcd

import numpy as np
import pytest

from audio.speech import clip as speech_clip
from audio.speech.cache import ClipCache
from audio.speech.engine import VoiceSettings

RATE = 22050


def onset_click_ratio(x: np.ndarray) -> float:
    """The largest second difference in the first 2 ms of the sound over the median of the next
    50 ms: a hard edge (a click) is many times what the sound itself does."""
    first = int(np.flatnonzero(np.abs(x) > 1e-3)[0])
    d2 = np.abs(np.diff(np.concatenate([np.zeros(4), x]), 2))[first:]
    edge = round(0.002 * RATE)
    return float(d2[:edge].max() / np.median(d2[edge: edge + round(0.05 * RATE)]))


def hard_edged(n_before=200, seconds=0.3, n_after=300):
    """Digital silence, a 150 Hz tone starting at its peak (a step), silence: as espeak-ng gates."""
    t = np.arange(round(seconds * RATE)) / RATE
    tone = 0.5 * np.cos(2 * np.pi * 150 * t)
    return np.concatenate([np.zeros(n_before), tone, np.zeros(n_after)]).astype(np.float32)


def test_a_trimmed_clip_fades_in_where_its_sound_begins():
    x = hard_edged()
    assert onset_click_ratio(x) > 20  # the step is a click
    y = speech_clip.Clip(x, RATE).trimmed().samples
    first = int(np.flatnonzero(np.abs(y) > 0)[0])
    n = round(speech_clip.EDGE_FADE_IN_S * RATE)
    assert abs(y[first]) < 0.01 * 0.5  # starts from almost nothing
    assert np.all(np.abs(y[first + n:first + n + 100]) > 0) and abs(y[first + n]) == pytest.approx(
        abs(0.5 * np.cos(2 * np.pi * 150 * n / RATE)), rel=1e-3)  # full level once the fade is over
    assert onset_click_ratio(y) < 3


def test_a_trimmed_clip_fades_out_to_where_its_sound_ends():
    x = hard_edged()[::-1].copy()  # a tone that stops on a step
    y = speech_clip.Clip(x, RATE).trimmed().samples
    last = int(np.flatnonzero(np.abs(y) > 0)[-1])
    n = round(speech_clip.EDGE_FADE_OUT_S * RATE)
    assert abs(y[last]) < 0.01 * 0.5
    env = np.abs(y[last - n:last + 1])
    assert env.max() <= 0.5 and np.abs(y[last - n - 50:last - n]).max() > 0.45
    assert onset_click_ratio(y[::-1].copy()) < 3


def test_a_fade_never_reaches_past_a_short_sound():
    x = np.zeros(400, np.float32)
    x[200:230] = 0.3  # 1.4 ms: shorter than either fade
    y = speech_clip.fade_edges(x, RATE)
    assert np.all(y[:200] == 0) and np.all(y[230:] == 0) and 0 < y[200:230].max() <= 0.3


def test_espeak_ng_clips_start_without_a_click(tmp_path):
    # this voice starts these on a hard edge (a ratio of 15-17 unfaded)
    for text in ("But I read them.", "But they are not faces."):
        clip = ClipCache(tmp_path).get(text, VoiceSettings("en-us+m3", 158, 38, 1.0))
        assert onset_click_ratio(clip.samples) < 4, text


@pytest.mark.parametrize("from_hz, to_hz", [(22050, 44100), (22050, 48000), (16000, 44100), (22050, 96000)])
def test_the_resamplers_images_sit_at_least_60_db_down(from_hz, to_hz):
    nyquist = from_hz / 2
    t = np.arange(from_hz) / from_hz
    window = None
    for f in (1000.0, 0.6 * nyquist, 0.9 * nyquist):
        y = speech_clip.resample(np.sin(2 * np.pi * f * t).astype(np.float32), from_hz, to_hz).astype(np.float64)
        window = np.hanning(len(y)) if window is None or len(window) != len(y) else window
        power = np.abs(np.fft.rfft(y * window)) ** 2
        freqs = np.fft.rfftfreq(len(y), 1 / to_hz)
        tone = power[np.abs(freqs - f) < 30].sum()
        images = power[freqs > nyquist]  # the first image of f is at from_hz - f
        assert 10 * np.log10(images.max() / tone) < -60, f"{f:.0f} Hz"
        # the passband is flat
        reference = np.abs(np.fft.rfft(np.sin(2 * np.pi * f * np.arange(len(y)) / to_hz) * window)) ** 2
        assert 10 * np.log10(tone / reference[np.abs(freqs - f) < 30].sum()) == pytest.approx(0.0, abs=0.1)


def test_the_resamplers_images_of_noise_sit_60_db_under_the_top_of_its_band():
    noise = np.random.default_rng(1).standard_normal(4 * RATE).astype(np.float32)
    y = speech_clip.resample(noise, RATE, 44100).astype(np.float64)
    frames = y[: len(y) // 4096 * 4096].reshape(-1, 4096) * np.hanning(4096)
    power = (np.abs(np.fft.rfft(frames, axis=1)) ** 2).mean(axis=0)
    freqs = np.fft.rfftfreq(4096, 1 / 44100)

    def band(lo, hi):
        return power[(freqs >= lo) & (freqs < hi)].mean()
    assert 10 * np.log10(band(11025, 12500) / band(9000, 10000)) < -60


def test_resampling_keeps_the_length_a_plan_expects():
    for from_hz, to_hz in ((22050, 44100), (22050, 48000), (16000, 22050)):
        up, down = to_hz // gcd(from_hz, to_hz), from_hz // gcd(from_hz, to_hz)
        for n in (1, 100, 12345):
            assert speech_clip.resample(np.ones(n, np.float32), from_hz, to_hz).size == -(-n * up // down)
