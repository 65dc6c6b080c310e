"""Tests for audio.sources: they assert on the rendered signal, not on the code's shape."""

import atexit
import functools
import math
import shutil
import tempfile
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from scipy import signal

from audio.errors import ScoreError
from audio.sources import SOURCES, automatable, check_params, check_value, make_generator

SR = 44100
TARGET_RMS = 0.1
CONTINUOUS = ("server_hum", "noise", "drone", "tone")      # sources set to RMS 0.1 at defaults

FILES = Path(tempfile.mkdtemp(prefix="piece-test-sources-"))
atexit.register(shutil.rmtree, FILES, ignore_errors=True)


def write_audio(name, frames, sr, **kw):
    """frames (n,) or (n, channels) written to FILES/name; returns the path as a string."""
    path = FILES / name
    sf.write(path, frames, sr, **kw)
    return str(path)


@functools.cache
def sample_file():
    """A short quiet stereo file at 48 kHz (peak 0.05), for sources that need one."""
    t = np.arange(int(0.3 * 48000)) / 48000
    x = 0.04 * np.sin(2 * np.pi * 330 * t)
    return write_audio("default.wav", np.stack([x, 0.8 * x + 0.005 * np.sin(2 * np.pi * 1234 * t)], axis=1), 48000)


def with_file(name, params):
    """params with a real file filled in for the sample source."""
    return {"path": sample_file(), **params} if name == "sample" else params


def render(name, params=None, seconds=1.0, sr=SR, seed=0, controls=None):
    gen = make_generator(name, with_file(name, params or {}), sr, np.random.default_rng(seed))
    n = int(round(seconds * sr))
    return gen.render(n, controls).astype(np.float64)


def onsets(x, sr, threshold, refractory_s):
    """First samples of runs where |x| > threshold; runs closer than refractory_s count as one."""
    above = np.flatnonzero(np.abs(x) > threshold)
    return above[np.r_[True, np.diff(above) > refractory_s * sr]] if len(above) else above


def welch_db(x, sr, nperseg):
    f, p = signal.welch(x, sr, nperseg=nperseg)
    return f, 10 * np.log10(p + 1e-30)


def peak_hz(x, sr, lo_hz, hi_hz, nperseg=8192):
    f, p = signal.welch(x, sr, nperseg=min(nperseg, len(x)))
    band = (f >= lo_hz) & (f <= hi_hz)
    return f[band][np.argmax(p[band])]


def peak_prominence_db(f, p_db, target_hz, search=0.03):
    """Highest PSD near target_hz minus the median PSD over target_hz +-20 %."""
    bin_hz = f[1] - f[0]
    near = np.abs(f - target_hz) <= target_hz * search + 2 * bin_hz
    hood = np.abs(f - target_hz) <= 0.2 * target_hz
    return p_db[near].max() - np.median(p_db[hood])


def octave_slope_db(x, sr, lo_hz=50.0, hi_hz=10000.0):
    """dB per octave of a straight-line fit to third-octave band powers from lo_hz to hi_hz."""
    f, p = signal.welch(x, sr, nperseg=8192)
    edges = lo_hz * 2 ** np.arange(0, math.log2(hi_hz / lo_hz) + 1e-9, 1 / 3)
    centres, levels = [], []
    for a, b in zip(edges[:-1], edges[1:]):
        band = (f >= a) & (f < b)
        centres.append(math.sqrt(a * b))
        levels.append(10 * np.log10(p[band].mean()))
    return np.polyfit(np.log2(centres), levels, 1)[0]


def band_db(x, sr, lo_hz, hi_hz):
    f, p = signal.welch(x, sr, nperseg=8192)
    return 10 * np.log10(p[(f >= lo_hz) & (f < hi_hz)].mean())


def rms(x):
    return float(np.sqrt(np.mean(np.square(x))))


def instantaneous_hz(x, sr):
    return np.diff(np.unwrap(np.angle(signal.hilbert(x)))) * sr / (2 * np.pi)


# Only the hum's mains fundamental, at a steady level (the other parts at -60 dB, no whine, no clicks).
ONLY_HUM = {"hum_db": -6, "fan_db": -60, "blade_db": -60, "rumble_db": -60, "harmonics": 1, "odd_even": 0.0,
            "psu_whine_hz": 0, "seeks_per_min": 0, "relay_ticks_per_min": 0}


# --- server_hum spectrum ---------------------------------------------------------------

@pytest.mark.parametrize("mains_hz", [50, 60])
def test_server_hum_hums_at_twice_the_mains_frequency_and_its_harmonics(mains_hz):
    # a transformer's magnetostriction: 2x, 4x, 6x, 8x mains; no line at the mains itself
    x = render("server_hum", {"mains_hz": mains_hz}, seconds=4)
    for channel in (0, 1):
        f, p = welch_db(x[:, channel], SR, 2**15)
        for k in (2, 4, 6, 8):
            prominence = peak_prominence_db(f, p, k * mains_hz)
            assert prominence >= 8, f"{k} x {mains_hz} Hz stands only {prominence:.1f} dB above its surroundings"
        for k in (1, 3):
            assert peak_prominence_db(f, p, k * mains_hz) < 6, f"{k} x {mains_hz} Hz: an electrical buzz"


@pytest.mark.parametrize("mains_hz", [50, 60])
def test_server_hum_with_odd_harmonics_has_the_whole_mains_series(mains_hz):
    x = render("server_hum", {"mains_hz": mains_hz, "odd_even": 1 / 3, "harmonics": 6}, seconds=4)
    f, p = welch_db(x[:, 0], SR, 2**15)
    for k in (1, 2, 3):
        assert peak_prominence_db(f, p, k * mains_hz) >= 10, f"{k} x {mains_hz} Hz"


def test_server_hum_odd_heavy_balance_makes_odd_harmonics_stronger_than_even():
    f, p = welch_db(render("server_hum", {"mains_hz": 50, "odd_even": 1 / 3}, seconds=4)[:, 0], SR, 2**15)
    level = {k: p[np.abs(f - 50 * k) < 2].max() for k in (2, 3)}
    assert level[3] > level[2] + 1


def test_server_hum_even_only_with_a_single_harmonic_is_refused():
    with pytest.raises(ScoreError, match=r"harmonics: must be at least 2 with odd_even = 1"):
        check_params("server_hum", {"harmonics": 1}, "x.toml", 'layer "room".params')


def test_server_hum_blade_pass_at_its_defaults_is_where_server_fans_put_it():
    defaults = {p.name: p.default for p in SOURCES["server_hum"].params}
    blade_hz = defaults["fan_rpm"] / 60 * defaults["fan_blades"]
    assert 500 <= blade_hz <= 1200 and 4000 <= defaults["fan_rpm"] <= 10000
    f, p = welch_db(render("server_hum", {}, seconds=4).mean(axis=1), SR, 2**15)
    assert peak_prominence_db(f, p, blade_hz) >= 10


def test_server_hum_fans_rush_with_energy_to_8_khz_and_above():
    # measured data halls: broadband, dominant 500 Hz - 4 kHz; the old fans fell 12 dB/oct from 2.5 kHz
    fans = {"hum_db": -60, "blade_db": -60, "rumble_db": -60, "seeks_per_min": 0, "relay_ticks_per_min": 0}
    x = render("server_hum", fans, seconds=8).mean(axis=1)
    f, p = signal.welch(x, SR, nperseg=2**14)
    octave = {c: 10 * np.log10(p[(f >= c / 2**0.5) & (f < c * 2**0.5)].sum()) for c in (125, 500, 1000, 2000, 8000)}
    top = max(octave.values())
    assert top - min(octave[500], octave[1000], octave[2000]) < 3
    assert -14 < octave[8000] - top < -6 and octave[125] - top < -8
    assert p[f >= 8000].sum() / p.sum() > 0.008


def test_server_hum_psu_whine_comes_and_goes():
    whine = {"psu_whine_hz": 9000, "psu_db": 0, "psu_duty": 0.35, "hum_db": -60, "fan_db": -60, "blade_db": -60,
             "rumble_db": -60, "seeks_per_min": 0, "relay_ticks_per_min": 0}
    x = render("server_hum", whine, seconds=60)[:, 0]
    y = signal.sosfilt(signal.butter(4, [8800, 9200], "bandpass", fs=SR, output="sos"), x)
    level = np.sqrt(np.mean(y[: len(y) // 4410 * 4410].reshape(-1, 4410) ** 2, axis=1))
    on = level > 0.5 * level.max()
    assert 0.2 < on.mean() < 0.5  # about psu_duty of the time
    assert level.min() < 0.01 * level.max()  # and really off between its spells
    always = render("server_hum", {**whine, "psu_duty": 1.0}, seconds=4)[:, 0]
    z = signal.sosfilt(signal.butter(4, [8800, 9200], "bandpass", fs=SR, output="sos"), always)[SR // 10:]
    env = np.sqrt(np.mean(z[: len(z) // 4410 * 4410].reshape(-1, 4410) ** 2, axis=1))
    assert env.min() > 0.9 * env.max()


@pytest.mark.parametrize("rpm, blades", [(2400, 7), (3600, 9), (1500, 11)])
def test_server_hum_has_blade_pass_peak(rpm, blades):
    blade_hz = rpm / 60 * blades
    x = render("server_hum", {"fan_rpm": rpm, "fan_blades": blades}, seconds=4)
    f, p = welch_db(x.mean(axis=1), SR, 2**15)
    prominence = peak_prominence_db(f, p, blade_hz)
    assert prominence >= 10, f"blade-pass {blade_hz:.0f} Hz stands only {prominence:.1f} dB above its surroundings"


def test_server_hum_noise_is_partly_decorrelated_and_hum_nearly_mono():
    noisy = render("server_hum", {"hum_db": -60, "blade_db": -60, "rumble_db": -60}, seconds=2)
    hum = render("server_hum", {"fan_db": -60, "blade_db": -60, "rumble_db": -60}, seconds=2)
    assert np.corrcoef(noisy.T)[0, 1] < 0.6
    assert np.corrcoef(hum.T)[0, 1] > 0.99


def test_server_hum_mains_wobble_is_slight_but_present():
    only_hum = {"fan_db": -60, "blade_db": -60, "rumble_db": -60, "harmonics": 1, "odd_even": 0.0, "mains_hz": 60}
    x = render("server_hum", only_hum, seconds=20)[:, 0]
    y = signal.sosfiltfilt(signal.butter(2, [50, 70], "bandpass", fs=SR, output="sos"), x)
    turns = np.unwrap(np.angle(signal.hilbert(y)))[SR:-SR:SR // 4] / (2 * np.pi)
    deviation = np.abs(np.diff(turns) * 4 - 60) / 60
    assert deviation.max() < 0.0005
    assert deviation.max() > 0.00002


def test_server_hum_fans_are_detuned_so_they_beat():
    only_blades = {"hum_db": -60, "fan_db": -60, "rumble_db": -60, "fans": 2, "drift": 0, "fan_rpm": 2400}
    f, p = welch_db(render("server_hum", only_blades, seconds=8)[:, 0], SR, 2**17)
    near = (f > 270) & (f < 290)
    peaks, _ = signal.find_peaks(p[near], prominence=20)
    assert len(peaks) == 2
    low, high = sorted(f[near][peaks])
    assert abs(low - 280) < 0.5 and 0.01 <= high / low - 1 <= 0.02


def test_server_hum_without_hum_has_no_mains_peak():
    x = render("server_hum", {"hum_db": -60, "mains_hz": 60}, seconds=4)
    f, p = welch_db(x[:, 0], SR, 2**15)
    assert peak_prominence_db(f, p, 180) < 6


# --- noise colours and band limits -----------------------------------------------------

@pytest.mark.parametrize("color, slope", [("white", 0), ("pink", -3), ("brown", -6), ("blue", 3), ("violet", 6)])
def test_noise_colour_slope(color, slope):
    x = render("noise", {"color": color}, seconds=20)
    for channel in (0, 1):
        measured = octave_slope_db(x[:, channel], SR)
        assert abs(measured - slope) <= 1, f"{color}: {measured:.2f} dB/oct, want {slope}"


def test_noise_low_hz_attenuates_below_the_corner():
    x = render("noise", {"color": "white", "low_hz": 1000}, seconds=5)[:, 0]
    assert band_db(x, SR, 4000, 8000) - band_db(x, SR, 200, 300) >= 20
    assert abs(band_db(x, SR, 4000, 8000) - band_db(x, SR, 10000, 15000)) < 1.5


def test_noise_high_hz_attenuates_above_the_corner():
    x = render("noise", {"color": "white", "high_hz": 2000}, seconds=5)[:, 0]
    assert band_db(x, SR, 200, 500) - band_db(x, SR, 8000, 10000) >= 20
    assert abs(band_db(x, SR, 200, 500) - band_db(x, SR, 600, 900)) < 1.5


@pytest.mark.parametrize("width, low, high", [(0, 0.99, 1.01), (1, -0.1, 0.1), (0.5, 0.2, 0.8)])
def test_noise_stereo_width(width, low, high):
    x = render("noise", {"stereo_width": width}, seconds=2)
    assert low <= np.corrcoef(x.T)[0, 1] <= high


# --- drone and tone ----------------------------------------------------------------------

def test_drone_has_its_chord():
    x = render("drone", {"root_hz": 110, "chord": "fifth", "waveform": "sine", "detune_cents": 0}, seconds=4)
    f, p = welch_db(x[:, 0], SR, 2**15)
    for hz in (110, 165, 220):
        assert peak_prominence_db(f, p, hz, search=0.01) >= 20
    assert peak_prominence_db(f, p, 137.5, search=0.01) < 6


def test_drone_pair_beats():
    # two partials 20 cents apart at 440 Hz beat at about 5 Hz: the envelope varies
    x = render("drone", {"root_hz": 440, "chord": "octave", "waveform": "sine", "detune_cents": 20,
                         "lfo_depth": 0}, seconds=2).sum(axis=1)
    envelope = np.abs(signal.hilbert(x))[4410:-4410]
    assert envelope.max() > 1.5 * envelope.min()


def _window_levels(x, seconds=0.25):
    n = int(SR * seconds)
    return np.array([np.sqrt(np.mean(x[i:i + n] ** 2)) for i in range(0, len(x) - n + 1, n)])


def test_drone_amplitude_lfo_moves_the_level():
    steady = {"root_hz": 110, "detune_cents": 0, "waveform": "sine", "chord": "octave", "brightness_lfo_hz": 0}
    levels = _window_levels(render("drone", {**steady, "lfo_hz": 0.5, "lfo_depth": 1}, seconds=4)[:, 0])
    assert levels.max() > 5 * levels.min()
    levels = _window_levels(render("drone", {**steady, "lfo_depth": 0}, seconds=4)[:, 0])
    assert levels.max() < 1.05 * levels.min()


def test_drone_brightness_lfo_moves_the_upper_harmonics():
    def upper_to_fundamental_db(params):
        x = render("drone", {"root_hz": 110, "chord": "octave", "detune_cents": 0, "lfo_depth": 0,
                             "brightness": 1, **params}, seconds=4)[:, 0]
        low = signal.sosfilt(signal.butter(4, 150, fs=SR, output="sos"), x)
        high = signal.sosfilt(signal.butter(4, 500, "highpass", fs=SR, output="sos"), x)
        return 20 * np.log10(_window_levels(high) / _window_levels(low))[1:]

    moving = upper_to_fundamental_db({"brightness_lfo_hz": 0.5})
    assert moving.max() - moving.min() > 3
    still = upper_to_fundamental_db({"brightness_lfo_hz": 0})
    assert still.max() - still.min() < 0.5


def test_tone_is_an_exact_sine():
    x = render("tone", {"freq_hz": 1000}, seconds=1)
    t = np.arange(len(x)) / SR
    np.testing.assert_allclose(x[:, 0], 0.1 * math.sqrt(2) * np.sin(2 * np.pi * 1000 * t), atol=1e-6)
    np.testing.assert_array_equal(x[:, 0], x[:, 1])


@pytest.mark.parametrize("curve", ["linear", "exponential"])
def test_tone_sweep_reaches_to_hz_and_holds(curve):
    x = render("tone", {"freq_hz": 200, "to_hz": 2000, "sweep_s": 1, "sweep_curve": curve}, seconds=2)[:, 0]
    f, p = welch_db(x[SR + 100:], SR, 8192)
    assert abs(f[np.argmax(p)] - 2000) < 10
    f, p = welch_db(x[:2048], SR, 2048)
    assert f[np.argmax(p)] < 400
    assert np.abs(np.diff(x)).max() < 0.1 * math.sqrt(2) * 2 * np.pi * 2000 / SR * 1.01   # no phase jumps


# --- server_hum: PSU whine, harmonic balance, jitter, width, seeks and relay ticks -----------

@pytest.mark.parametrize("sr, whine_hz, expect_hz", [(44100, 15000, 15000), (44100, 11000, 11000),
                                                      (22050, 15000, 0.45 * 22050)])
def test_server_hum_psu_whine_peak_where_asked_and_below_nyquist(sr, whine_hz, expect_hz):
    x = render("server_hum", {"psu_whine_hz": whine_hz, "psu_duty": 1.0}, seconds=2, sr=sr)
    f, p = welch_db(x.mean(axis=1), sr, 2**14)
    assert abs(f[np.argmax(np.where(f > 5000, p, -np.inf))] - expect_hz) < 4
    assert peak_prominence_db(f, p, expect_hz, search=0.002) > 20


def test_server_hum_psu_whine_off():
    f, p = welch_db(render("server_hum", {"psu_whine_hz": 0}, seconds=2).mean(axis=1), SR, 2**14)
    assert peak_prominence_db(f, p, 15000, search=0.002) < 6


@pytest.mark.parametrize("balance, stronger, weaker", [(0.0, 3, 2), (1.0, 2, 3), (1 / 3, 3, 2)])
def test_server_hum_odd_even_balance(balance, stronger, weaker):
    x = render("server_hum", {**ONLY_HUM, "harmonics": 6, "odd_even": balance, "mains_hz": 50}, seconds=4)
    f, p = welch_db(x[:, 0], SR, 2**15)
    level = {k: p[np.abs(f - 50 * k) < 2].max() for k in (1, 2, 3)}
    margin = 30 if balance in (0.0, 1.0) else 1              # the absent series is really absent
    assert level[stronger] > level[weaker] + margin
    if balance == 1.0:
        assert level[2] > level[1] + 30                      # even only: the fundamental goes too


def test_server_hum_jitter_zero_is_steady_and_one_wanders_more():
    def deviation(jitter):
        x = render("server_hum", {**ONLY_HUM, "hum_jitter": jitter}, seconds=12)[:, 0]
        hz = instantaneous_hz(signal.sosfiltfilt(signal.butter(2, [50, 70], "bandpass", fs=SR, output="sos"), x), SR)
        return np.abs(hz[SR:11 * SR].reshape(-1, SR // 4).mean(axis=1) / 60 - 1).max()
    assert deviation(0.0) < 2e-5
    assert deviation(1.0) > 3 * deviation(0.1)
    assert deviation(1.0) < 0.004


@pytest.mark.parametrize("width, low, high", [(0.0, 0.999, 1.0), (1.0, -0.2, 0.6)])
def test_server_hum_width(width, low, high):
    x = render("server_hum", {"width": width, "hum_db": -30}, seconds=2)
    assert low <= np.corrcoef(x.T)[0, 1] <= high


def _count_clicks(params, minutes, seed=5, sr=8000):
    """server_hum with only the hum bed (removed by a high-pass) plus the asked clicks: onsets counted."""
    quiet = {"hum_db": 0, "fan_db": -60, "blade_db": -60, "rumble_db": -60, "harmonics": 1, "odd_even": 0.0,
             "psu_whine_hz": 0,
             "seeks_per_min": 0, "relay_ticks_per_min": 0}
    x = render("server_hum", {**quiet, **params}, seconds=60 * minutes, sr=sr, seed=seed)[:, 0]
    y = signal.sosfiltfilt(signal.butter(4, 1500, "highpass", fs=sr, output="sos"), x)
    return len(onsets(y, sr, 0.03, 0.5))


@pytest.mark.parametrize("rate", ["seeks_per_min", "relay_ticks_per_min"])
def test_server_hum_clicks_come_at_their_rate(rate):
    # Poisson: 120 expected, sd 11; clicks closer than ~0.7 s merge in the count (~12 % at this rate)
    count = _count_clicks({rate: 12}, minutes=10)
    assert 90 <= count <= 138, count
    assert _count_clicks({rate: 0}, minutes=1) == 0


def test_server_hum_click_level_follows_its_db():
    def peak(db):
        x = render("server_hum", {"seeks_per_min": 120, "seek_db": db, "relay_ticks_per_min": 0, "fan_db": -60,
                                  "blade_db": -60, "rumble_db": -60, "psu_whine_hz": 0}, seconds=10, sr=8000)
        return np.abs(signal.sosfiltfilt(signal.butter(4, 1500, "highpass", fs=8000, output="sos"), x[:, 0])).max()
    assert 0.7 < peak(6) / peak(0) / 10 ** (6 / 20) < 1.4


# --- pulse / ticks ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["pulse", "ticks"])
def test_pulse_count_matches_rate_and_first_is_at_time_zero(name):
    x = render(name, {"kind": "click", "rate_per_min": 90, "jitter": 0.3}, seconds=120, sr=8000)[:, 0]
    found = onsets(x, 8000, 0.05, 0.3)
    assert 180 <= len(found) <= 181                 # events 0..179 are due; 180 if its jitter is early
    assert found[0] <= 2                            # the first transient starts on the layer's first sample
    gaps = np.diff(found) / 8000
    assert gaps.min() > 0.667 * 0.65 and gaps.max() < 0.667 * 1.35 and gaps.std() > 0.03   # jittered


def test_pulse_without_jitter_is_regular_and_rate_zero_gives_one():
    found = onsets(render("pulse", {"rate_per_min": 120}, seconds=10)[:, 0], SR, 0.05, 0.2)
    assert len(found) == 20 and found[0] <= 2
    assert np.abs(np.diff(found) - SR / 2).max() <= 2
    assert len(onsets(render("pulse", {"rate_per_min": 0}, seconds=5)[:, 0], SR, 0.01, 0.2)) == 1


@pytest.mark.parametrize("kind, tone_hz, lo, hi", [("tick", 2500, 500, 15000), ("tick", 4000, 500, 15000),
                                                    ("thump", 65, 20, 500), ("click", 0, 0, 0)])
def test_pulse_spectrum_centres_on_tone_hz(kind, tone_hz, lo, hi):
    x = render("pulse", {"kind": kind, "tone_hz": tone_hz, "rate_per_min": 120}, seconds=4).mean(axis=1)
    if kind == "click":             # broadband: no octave between 1 and 12 kHz is far below another
        levels = [band_db(x, SR, f, 2 * f) for f in (1000, 2000, 4000, 8000)]
        assert max(levels) - min(levels) < 12
    else:
        assert abs(peak_hz(x, SR, lo, hi, 4096) / tone_hz - 1) < 0.1


def test_pulse_thump_double_gives_lub_dub():
    single = onsets(render("pulse", {"kind": "thump", "rate_per_min": 30}, seconds=10)[:, 0], SR, 0.1, 0.1)
    double = onsets(render("pulse", {"kind": "thump", "rate_per_min": 30, "double": True}, seconds=10)[:, 0],
                    SR, 0.1, 0.1)
    assert len(single) == 5 and len(double) == 10
    assert np.allclose(np.diff(double)[::2] / SR, 0.28, atol=0.03)


def test_pulse_peak_is_level_db_and_pan_spread_pans():
    x = render("pulse", {"level_db": -12, "pan_spread": 0}, seconds=3)
    assert abs(20 * np.log10(np.abs(x).max()) + 12) < 0.1
    np.testing.assert_array_equal(x[:, 0], x[:, 1])
    x = render("pulse", {"pan_spread": 1, "rate_per_min": 300}, seconds=3)
    assert np.abs(x[:, 0] - x[:, 1]).max() > 0.1


def test_pulse_never_clips_when_transients_pile_up():
    x = render("pulse", {"kind": "thump", "rate_per_min": 1200, "decay_ms": 500, "level_db": -1}, seconds=3)
    assert np.abs(x).max() < 1.0


# --- glitch -----------------------------------------------------------------------------------

CLEAN = {"dropouts": 0, "downsample_hz": 0, "bitcrush_bits": 0, "stutter": 1}


@pytest.mark.parametrize("material", ["noise", "tone", "hum"])
def test_glitch_is_a_burst_then_silence(material):
    x = render("glitch", {"material": material, "length_ms": 300}, seconds=1)
    n = int(0.3 * SR)
    assert 0.05 < rms(x[:n]) < 0.2 and np.abs(x[:n]).max() <= 0.9
    assert np.all(x[n:] == 0)


@pytest.mark.parametrize("bits", [1, 3, 5])
def test_glitch_bitcrush_leaves_two_to_the_bits_levels(bits):
    x = render("glitch", {**CLEAN, "bitcrush_bits": bits, "length_ms": 500}, seconds=0.5)
    for channel in (0, 1):
        levels = np.unique(x[:, channel])
        assert 2 ** bits // 2 < len(levels) <= 2 ** bits
        steps = np.diff(levels)
        assert np.allclose(steps / steps.min(), np.round(steps / steps.min()), atol=1e-3)   # one grid
    assert len(np.unique(render("glitch", CLEAN, seconds=0.2)[:, 0])) > 1000


def test_glitch_stutter_repeats_exact_copies():
    x = render("glitch", {**CLEAN, "bitcrush_bits": 6, "stutter": 5, "slice_ms": 20}, seconds=0.4)
    s = int(0.02 * SR)
    for k in range(1, 5):
        np.testing.assert_array_equal(x[k * s:(k + 1) * s], x[:s])
    assert not np.array_equal(x[5 * s:6 * s], x[:s])          # then the material goes on


def test_glitch_downsample_holds_and_dropouts_leave_gaps():
    held = render("glitch", {**CLEAN, "downsample_hz": 4410}, seconds=0.4)[:, 0]
    assert 0.85 < np.mean(np.diff(held) == 0) < 0.95               # each value held for 10 samples
    gappy = render("glitch", {**CLEAN, "dropouts": 0.5, "length_ms": 2000}, seconds=2)[:, 0]
    assert 0.25 < np.mean(gappy == 0) < 0.75


def test_tiny_positive_values_do_not_overflow():
    """Denormal-small rates and times (valid params) must not overflow (warnings are errors here)."""
    tiny = 2.2e-311
    for name, params in [("glitch", {"downsample_hz": tiny}), ("pulse", {"decay_ms": tiny}),
                         ("server_hum", {"seeks_per_min": tiny, "drift": tiny}), ("noise", {"low_hz": tiny})]:
        x = render(name, params, seconds=0.5)
        assert np.isfinite(x).all() and np.abs(x).max() < 1.0


# --- sample -------------------------------------------------------------------------------------

def _sine_file(name, hz, seconds, sr, amplitude=0.5, channels=1):
    t = np.arange(int(seconds * sr)) / sr
    x = amplitude * np.sin(2 * np.pi * hz * t)
    return write_audio(name, np.repeat(x[:, None], channels, axis=1) if channels > 1 else x, sr, subtype="FLOAT")


@pytest.mark.parametrize("crossfade_ms, seamless", [(50, True), (0, False)])
def test_sample_loop_seam(crossfade_ms, seamless):
    path = _sine_file("loop440.wav", 440, 0.5113, SR)          # 224.97 periods: a bare loop jumps
    x = render("sample", {"path": path, "crossfade_ms": crossfade_ms}, seconds=2.5)[:, 0]
    own = np.abs(np.diff(sf.read(path)[0])).max()            # the file's steepest step: "elsewhere"
    assert (np.abs(np.diff(x)).max() <= 1.5 * own) == seamless
    assert rms(x) > 0.3


def test_sample_loop_starts_with_the_files_own_start():
    path = _sine_file("start.wav", 440, 0.5, SR)
    x = render("sample", {"path": path}, seconds=0.1)[:, 0]
    np.testing.assert_allclose(x[:100], sf.read(path)[0][:100], atol=1e-6)


def test_sample_resampled_from_48k_keeps_its_pitch_and_length():
    path = _sine_file("tone48k.wav", 1000, 1.0, 48000)
    x = render("sample", {"path": path, "loop": False}, seconds=1.3)[:, 0]
    assert abs(peak_hz(x[:SR], SR, 100, 5000, 2**15) - 1000) < 2
    last = np.flatnonzero(np.abs(x) > 1e-3)[-1]
    assert abs(last - SR) < 50 and np.all(x[SR + 50:] == 0)


def test_sample_channels_trim_and_gain():
    mono = render("sample", {"path": _sine_file("mono.wav", 300, 0.2, SR)}, seconds=0.2)
    np.testing.assert_array_equal(mono[:, 0], mono[:, 1])
    t = np.arange(SR // 5) / SR
    quad = np.stack([np.sin(2 * np.pi * 300 * t), np.zeros_like(t), 0.2 * np.ones_like(t), -0.2 * np.ones_like(t)], 1)
    x = render("sample", {"path": write_audio("quad.wav", 0.5 * quad, SR, subtype="FLOAT"), "loop": False},
               seconds=0.2)
    np.testing.assert_allclose(x[:, 0], 0.5 * quad[:, 0] / (1 + 2 * math.sqrt(0.5)), atol=1e-6)
    np.testing.assert_allclose(x[:, 1], 0, atol=1e-6)          # channels 3 and 4 cancel, shared equally
    ramp = np.arange(SR) / SR * 0.5
    path = write_audio("ramp.wav", ramp, SR, subtype="FLOAT")
    x = render("sample", {"path": path, "start_s": 0.1, "end_s": 0.2, "loop": False, "gain_db": 6}, seconds=0.3)
    np.testing.assert_allclose(x[:4410, 0], ramp[4410:8820] * 10 ** (6 / 20), rtol=1e-5)
    assert np.all(x[4410:] == 0)


def _sample_message(params):
    with pytest.raises(ScoreError) as err:
        check_params("sample", params, "score.toml", "layer.bed.params")
    return str(err.value)


def test_sample_errors_name_the_path_and_the_reason():
    missing = str(FILES / "nope.wav")
    assert _sample_message({"path": missing}) == f'score.toml: layer.bed.params.path: file not found: "{missing}"'
    text = FILES / "notes.wav"
    text.write_text("not audio at all")
    msg = _sample_message({"path": str(text)})
    assert msg.startswith(f'score.toml: layer.bed.params.path: "{text}" is not a readable audio file (')
    assert "directory" in _sample_message({"path": str(FILES)})
    assert "layer.bed.params.path: is required" in _sample_message({})
    with pytest.raises(ScoreError, match="file not found"):
        make_generator("sample", {"path": missing}, SR, np.random.default_rng(0))


def test_sample_trim_and_length_errors():
    path = _sine_file("short.wav", 440, 1.0, 8000)
    assert "layer.bed.params.start_s: must be before the end of the file (1 s), got 2" in \
        _sample_message({"path": path, "start_s": 2})
    assert "layer.bed.params.end_s: must be 0" in _sample_message({"path": path, "start_s": 0.5, "end_s": 0.4})
    assert "layer.bed.params.end_s" in _sample_message({"path": path, "end_s": 1.5})
    long = write_audio("long.wav", np.zeros(601 * 1000, np.int16), 1000)      # 601 s at 1 kHz: small
    msg = _sample_message({"path": long})
    assert "layer.bed.params.path" in msg and long in msg and "at most 600 s" in msg
    check_params("sample", {"path": long, "end_s": 600}, "score.toml", "layer.bed.params")    # trimmed: fine


# --- automation ------------------------------------------------------------------------------

def test_automatable_lists_float_params_only():
    for name, source in SOURCES.items():
        auto = automatable(name)
        assert set(auto) <= {p.name for p in source.params if isinstance(p.default, float)}
    assert {"mains_hz", "fan_rpm", "hum_db", "psu_whine_hz", "seeks_per_min", "width"} <= set(automatable("server_hum"))
    assert "fans" not in automatable("server_hum") and "chord" not in automatable("drone")
    assert automatable("tone") == ("freq_hz",) and automatable("sample") == ("gain_db",)
    assert automatable("ticks") == automatable("pulse") and automatable("glitch") == ()
    with pytest.raises(ScoreError):
        automatable("nope")


def test_check_value_validates_one_envelope_point():
    assert check_value("noise", "high_hz", 500, "s.toml", "layer.params.high_hz[0][1]") == 500.0
    with pytest.raises(ScoreError, match=r"^s.toml: layer.params.high_hz\[1\]\[1\]: must be between 0 and 20000"):
        check_value("noise", "high_hz", 30000, "s.toml", "layer.params.high_hz[1][1]")
    with pytest.raises(ScoreError, match='unknown parameter "hihg_hz" for source noise; did you mean "high_hz"'):
        check_value("noise", "hihg_hz", 1, "s.toml", "w")
    with pytest.raises(ScoreError, match="must be a number"):
        check_value("server_hum", "fan_rpm", "fast", "s.toml", "w")


def test_render_rejects_bad_controls():
    gen = make_generator("tone", {}, SR, np.random.default_rng(0))
    with pytest.raises(ValueError, match="cannot be automated"):
        gen.render(10, {"to_hz": np.ones(10)})
    with pytest.raises(ValueError, match="shape"):
        gen.render(10, {"freq_hz": np.ones(9)})
    with pytest.raises(ValueError, match="finite"):
        gen.render(300, {"freq_hz": np.full(300, np.nan)})
    assert gen.render(0, {"freq_hz": np.ones(0)}).shape == (0, 2)


def _steps(n, first, second, at):
    return np.where(np.arange(n) < at, float(first), float(second))


def test_tone_frequency_envelope_moves_pitch_without_phase_jumps():
    n = 2 * SR
    x = render("tone", {}, seconds=2, controls={"freq_hz": _steps(n, 440, 880, SR)})[:, 0]
    assert abs(peak_hz(x[SR // 10:SR], SR, 100, 2000, 2**14) - 440) < 3
    assert abs(peak_hz(x[SR + SR // 10:], SR, 100, 2000, 2**14) - 880) < 3
    assert np.abs(np.diff(x)).max() <= 0.1 * math.sqrt(2) * 2 * np.pi * 880 / SR * 1.001
    gen = make_generator("tone", {"freq_hz": 440}, SR, np.random.default_rng(0))    # static, then automated
    y = np.concatenate([gen.render(SR // 2 + 5), gen.render(SR // 2, {"freq_hz": np.linspace(440, 660, SR // 2)})])
    assert np.abs(np.diff(y[:, 0])).max() <= 0.1 * math.sqrt(2) * 2 * np.pi * 660 / SR * 1.001
    ramp = np.linspace(200, 2000, n)                           # a glide: pitch follows the envelope
    hz = instantaneous_hz(render("tone", {}, seconds=2, controls={"freq_hz": ramp})[:, 0], SR)
    for t in (0.5, 1.0, 1.5):
        i = int(t * SR)
        assert abs(np.median(hz[i - 200:i + 200]) / ramp[i - 128] - 1) < 0.01


def test_drone_root_envelope_moves_the_chord():
    n = 4 * SR
    x = render("drone", {"root_hz": 110, "chord": "octave", "waveform": "sine", "detune_cents": 0},
               seconds=4, controls={"root_hz": _steps(n, 110, 165, 2 * SR)})[:, 0]
    assert abs(peak_hz(x[SR // 2:2 * SR], SR, 50, 150, 2**15) - 110) < 2
    assert abs(peak_hz(x[2 * SR + SR // 2:], SR, 50, 200, 2**15) - 165) < 2


def _corner_hz(x):
    """-3 dB corner of low-passed white noise: where the PSD falls 3 dB below its 100-300 Hz mean."""
    f, p = signal.welch(x, SR, nperseg=4096)
    p = 10 * np.log10(np.convolve(p, np.ones(5) / 5, "same"))
    ref = p[(f > 100) & (f < 300)].mean()
    return f[np.flatnonzero((f > 300) & (p < ref - 3))[0]]


def test_noise_high_hz_envelope_moves_the_cutoff():
    n = 6 * SR
    env = _steps(n, 1000, 4000, 3 * SR)
    x = render("noise", {"color": "white", "high_hz": 1000}, seconds=6, controls={"high_hz": env})[:, 0]
    assert abs(_corner_hz(x[SR // 10:3 * SR]) / 1000 - 1) < 0.1
    assert abs(_corner_hz(x[3 * SR + SR // 10:]) / 4000 - 1) < 0.1
    assert abs(20 * np.log10(rms(x[SR // 10:3 * SR]) / rms(x[3 * SR + SR // 10:]))) < 1   # RMS kept


@pytest.mark.parametrize("static_hz", [0, 40, 20000])
def test_noise_moving_corner_keeps_the_level(static_hz):
    """From off (or from a 40 Hz corner, whose static level must not carry over) into the band."""
    sweep = np.r_[np.zeros(SR), np.full(SR, 500.0), np.geomspace(500, 15000, SR)]
    y = render("noise", {"color": "pink", "high_hz": static_hz}, seconds=3, controls={"high_hz": sweep})
    assert np.isfinite(y).all() and np.abs(y).max() < 1.0
    for a in (SR // 10, SR + SR // 10):
        assert abs(20 * np.log10(rms(y[a:a + SR * 8 // 10]) / TARGET_RMS)) < 1.5
    assert band_db(y[SR + SR // 10:2 * SR, 0], SR, 2000, 4000) < band_db(y[:SR, 0], SR, 2000, 4000) - 15


def test_server_hum_fan_rpm_envelope_moves_the_blade_pass():
    only_blades = {"hum_db": -60, "fan_db": -60, "rumble_db": -60, "fans": 1, "drift": 0, "psu_whine_hz": 0,
                   "seeks_per_min": 0, "relay_ticks_per_min": 0, "fan_rpm": 2400}
    n = 4 * SR
    x = render("server_hum", only_blades, seconds=4, controls={"fan_rpm": _steps(n, 2400, 3600, 2 * SR)})[:, 0]
    assert abs(peak_hz(x[SR // 2:2 * SR], SR, 100, 1000, 2**15) - 280) < 2
    assert abs(peak_hz(x[2 * SR + SR // 2:], SR, 100, 1000, 2**15) - 420) < 2
    amplitude = np.abs(x[SR // 2:2 * SR]).max()
    assert np.abs(np.diff(x)).max() <= amplitude * 2 * np.pi * 420 / SR * 1.05      # phase continuous
    gen = make_generator("server_hum", only_blades, SR, np.random.default_rng(0))   # static, then automated
    y = np.concatenate([gen.render(SR + 33), gen.render(SR, {"fan_rpm": np.full(SR, 3600.0)})])[:, 0]
    assert np.abs(np.diff(y)).max() <= amplitude * 2 * np.pi * 420 / SR * 1.05


@pytest.mark.parametrize("name, params, db, filter_band", [
    ("server_hum", ONLY_HUM, "hum_db", (50, 70)),
    ("server_hum", {"hum_db": -60, "blade_db": -60, "rumble_db": -60, "psu_whine_hz": 0, "seeks_per_min": 0,
                    "relay_ticks_per_min": 0}, "fan_db", (200, 2000)),
    ("pulse", {"kind": "tick", "rate_per_min": 600}, "level_db", None),
    ("sample", {}, "gain_db", None)])
def test_level_envelope_moves_the_level_by_its_db(name, params, db, filter_band):
    n = 4 * SR
    static = {p.name: p.default for p in SOURCES[name].params}[db]
    params = {**params, db: static}
    x = render(name, params, seconds=4, controls={db: _steps(n, static - 20, static, 2 * SR)}).mean(axis=1)
    if filter_band:
        x = signal.sosfiltfilt(signal.butter(2, filter_band, "bandpass", fs=SR, output="sos"), x)
    quiet, loud = rms(x[SR // 2:2 * SR]), rms(x[2 * SR + SR // 2:])
    assert abs(20 * np.log10(loud / quiet) - 20) < 1


@pytest.mark.parametrize("name, params, db, hz", [
    ("server_hum", {**ONLY_HUM, "mains_hz": 40}, "hum_db", 40), ("sample", {"crossfade_ms": 0}, "gain_db", 30)])
@pytest.mark.parametrize("at", [SR + 77, SR + 700])
def test_level_step_does_not_click(name, params, db, hz, at):
    """A 40 dB step in a level: no sample-to-sample jump beyond the tone's own steepest slope.

    At these low frequencies a plain 128-sample gain ramp would already be steeper than the tone.
    """
    if name == "sample":
        params = {**params, "path": _sine_file("low.wav", hz, 1.0, SR, amplitude=0.05)}
    static = {p.name: p.default for p in SOURCES[name].params}[db]
    n = 2 * SR
    x = render(name, params, seconds=2, controls={db: _steps(n, static - 40, static, at)})[:, 0]
    loud = np.abs(np.diff(x[SR + SR // 2:])).max()        # the tone's normal range, at the loud level
    assert np.abs(np.diff(x[SR - 1000:SR + 3000])).max() <= loud * 1.02
    assert rms(x[SR + SR // 2:]) > 50 * rms(x[SR // 2:SR - 1000])


def _sweeps(name, n, seed=0):
    """An envelope for every automatable param: slow random-ish curves across most of its range."""
    rng = np.random.default_rng(seed)
    out, i = {}, np.arange(n)
    for p in SOURCES[name].params:
        if p.auto:
            lo, hi = p.min + 0.2 * (p.max - p.min), p.min + 0.6 * (p.max - p.min)
            out[p.name] = lo + (hi - lo) * (0.5 + 0.5 * np.sin(2 * np.pi * i / rng.uniform(5000, 20000)))
    return out


@pytest.mark.parametrize("name, params", [("tone", {}), ("noise", {"low_hz": 100, "high_hz": 6000}), ("drone", {}),
                                          ("server_hum", {"seeks_per_min": 60}), ("pulse", {}), ("sample", {})])
def test_block_invariance_with_automation(name, params):
    total = 51037
    controls = _sweeps(name, total)
    whole = make_generator(name, with_file(name, params), SR, np.random.default_rng(7)).render(total, controls)
    gen = make_generator(name, with_file(name, params), SR, np.random.default_rng(7))
    sizes = [1000, 37, 0, 16383, 1, 16385, 1, 129, 127]
    sizes.append(total - sum(sizes))
    cuts = np.r_[0, np.cumsum(sizes)]
    pieces = np.concatenate([gen.render(b - a, {k: v[a:b] for k, v in controls.items()})
                             for a, b in zip(cuts[:-1], cuts[1:])])
    assert np.abs(pieces - whole).max() <= 1e-5
    assert np.isfinite(whole).all() and np.abs(whole).max() < 1.0


@pytest.mark.parametrize("name", [n for n in SOURCES if automatable(n) and n != "ticks"])
def test_envelopes_holding_the_static_values_change_nothing(name):
    params = with_file(name, {"low_hz": 200, "high_hz": 5000} if name == "noise" else {})
    full = check_params(name, params, "", "")
    n = SR
    still = make_generator(name, params, SR, np.random.default_rng(4)).render(n)
    held = make_generator(name, params, SR, np.random.default_rng(4)).render(
        n, {k: np.full(n, float(full[k])) for k in automatable(name)})
    assert np.abs(held - still).max() < 2e-3 * max(np.abs(still).max(), 0.1)


# --- properties every source keeps ---------------------------------------------------------

VARIANTS = [(name, {}) for name in SOURCES] + [
    ("server_hum", {"drift": 1, "fans": 8, "mains_hz": 50, "width": 0.3, "odd_even": 0.8}),
    ("server_hum", {"seeks_per_min": 120, "relay_ticks_per_min": 60}),
    ("noise", {"color": "brown", "low_hz": 100, "high_hz": 5000, "stereo_width": 0.3}),
    ("drone", {"chord": "cluster", "waveform": "soft_square", "lfo_hz": 3, "brightness_lfo_hz": 1.5}),
    ("tone", {"freq_hz": 300, "to_hz": 3000, "sweep_s": 0.5, "sweep_curve": "linear"}),
    ("pulse", {"kind": "thump", "rate_per_min": 400, "jitter": 1, "double": True, "pan_spread": 1}),
    ("glitch", {"material": "hum", "length_ms": 1100, "stutter": 7, "dropouts": 0.4, "downsample_hz": 3000}),
    ("sample", {"loop": False, "start_s": 0.05}),
]


@pytest.mark.parametrize("name, params", VARIANTS)
@pytest.mark.parametrize("sr", [22050, 44100, 96000])
def test_block_invariance(name, params, sr):
    total = 51037
    params = with_file(name, params)
    whole = make_generator(name, params, sr, np.random.default_rng(7)).render(total)
    gen = make_generator(name, params, sr, np.random.default_rng(7))
    sizes = [1000, 37, 0, 16383, 1, 16385, 1]
    sizes.append(total - sum(sizes))
    pieces = np.concatenate([gen.render(n) for n in sizes])
    assert pieces.shape == whole.shape == (total, 2)
    assert np.abs(pieces - whole).max() <= 1e-5


@pytest.mark.parametrize("name", list(SOURCES))
def test_random_block_sizes_match_one_render(name):
    rng = np.random.default_rng(3)
    sizes = rng.integers(1, 9000, size=12)
    whole = make_generator(name, with_file(name, {}), SR, np.random.default_rng(1)).render(int(sizes.sum()))
    gen = make_generator(name, with_file(name, {}), SR, np.random.default_rng(1))
    pieces = np.concatenate([gen.render(int(n)) for n in sizes])
    assert np.abs(pieces - whole).max() <= 1e-5


@pytest.mark.parametrize("name", list(SOURCES))
def test_deterministic_given_rng_and_seed_matters(name):
    a = render(name, seconds=0.3, seed=11)
    b = render(name, seconds=0.3, seed=11)
    np.testing.assert_array_equal(a, b)
    if name in ("server_hum", "noise", "glitch"):
        assert not np.array_equal(a, render(name, seconds=0.3, seed=12))


@pytest.mark.parametrize("name", CONTINUOUS)
def test_default_level_is_minus_20_dbfs(name):
    x = render(name, seconds=8)
    level = np.sqrt(np.mean(x**2, axis=0))
    assert np.all(np.abs(20 * np.log10(level / TARGET_RMS)) <= 3), level
    assert np.abs(x).max() < 1.0
    assert np.all(np.abs(x.mean(axis=0)) < 1e-3)


def test_transient_sources_levels_at_defaults():
    pulse = render("pulse", seconds=8)                       # each transient peaks at -6 dBFS
    assert abs(20 * np.log10(np.abs(pulse).max()) + 6) < 0.1 and np.abs(pulse.mean()) < 1e-4
    glitch = render("glitch", seconds=1)[:int(0.4 * SR)]     # RMS 0.1 over the burst
    assert abs(20 * np.log10(rms(glitch) / TARGET_RMS)) <= 1 and np.abs(glitch.mean()) < 2e-3
    t = np.arange(SR) / SR
    path = write_audio("level.wav", 0.3 * np.sin(2 * np.pi * 200 * t), SR, subtype="FLOAT")
    assert abs(np.abs(render("sample", {"path": path}, seconds=1)).max() - 0.3) < 1e-3   # its own level


@pytest.mark.parametrize("name", list(SOURCES))
def test_memory_does_not_grow_with_duration(name):
    gen = make_generator(name, with_file(name, {}), SR, np.random.default_rng(0))
    for _ in range(3):
        gen.render(SR)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(30):
            gen.render(SR)
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 1_000_000  # keeping each 1 s block (353 kB) would pass this within three blocks


def test_render_output_contract():
    gen = make_generator("noise", {}, SR, np.random.default_rng(0))
    for n in (0, 1, 5):
        out = gen.render(n)
        assert out.dtype == np.float32 and out.shape == (n, 2)
    with pytest.raises(ValueError):
        gen.render(-1)


def _params_strategy(source):
    fields = {}
    for p in source.params:
        if p.choices:
            fields[p.name] = st.sampled_from(p.choices)
        elif isinstance(p.default, bool):
            fields[p.name] = st.booleans()
        elif isinstance(p.default, int):
            fields[p.name] = st.integers(int(p.min), int(p.max))
        elif isinstance(p.default, float):
            fields[p.name] = st.floats(p.min, p.max, allow_nan=False)
    if source.name == "sample":      # a real (quiet, 0.3 s) file, trimmed inside it
        fields.update(path=st.just(sample_file()), start_s=st.floats(0, 0.2), end_s=st.sampled_from([0.0, 0.25, 0.3]))
    return st.fixed_dictionaries(fields)


@st.composite
def any_layer(draw):
    name = draw(st.sampled_from(sorted(SOURCES)))
    params = draw(_params_strategy(SOURCES[name]))
    sr = draw(st.sampled_from([22050, 44100, 48000, 96000]))
    return name, params, sr


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(any_layer(), st.integers(0, 2**32 - 1), st.booleans())
def test_any_valid_params_give_a_sane_signal(layer, seed, automate):
    name, params, sr = layer
    try:
        full = check_params(name, params, "score.toml", "layer.params")
    except ScoreError:
        assume(False)            # a cross-parameter rule (e.g. high_hz <= low_hz) rejected it
    assert set(full) == {p.name for p in SOURCES[name].params}
    n = sr // 2 if name != "glitch" else int(full["length_ms"] * sr / 1000) + 1    # a one-shot: all of it
    controls = _sweeps(name, n, seed) if automate else None
    x = make_generator(name, params, sr, np.random.default_rng(seed)).render(n, controls).astype(np.float64)
    assert x.shape == (n, 2)
    assert np.isfinite(x).all()
    assert np.abs(x).max() < 1.0
    if name in CONTINUOUS or name == "glitch":
        assert np.sqrt(np.mean(x**2)) < 2 * TARGET_RMS
    assert np.all(np.abs(x.mean(axis=0)) < 0.02)


# --- the table and check_params ---------------------------------------------------------

def test_table_is_documented():
    assert set(SOURCES) >= {"server_hum", "noise", "drone", "tone", "pulse", "ticks", "glitch", "sample"}
    assert SOURCES["ticks"].factory is SOURCES["pulse"].factory
    assert SOURCES["ticks"].params == SOURCES["pulse"].params
    for name, source in SOURCES.items():
        assert source.name == name and source.doc and "\n" not in source.doc
        for p in source.params:
            assert p.doc and "\n" not in p.doc
            if p.choices:
                assert p.default in p.choices
            elif isinstance(p.default, (int, float)) and not isinstance(p.default, bool):
                assert p.min <= p.default <= p.max
            assert not p.auto or isinstance(p.default, float)


def test_check_params_fills_defaults_and_returns_a_new_dict():
    given_params = {"mains_hz": 50}
    full = check_params("server_hum", given_params, "s.toml", "layer[0].params")
    assert given_params == {"mains_hz": 50}
    assert full["mains_hz"] == 50.0 and isinstance(full["mains_hz"], float)
    assert full["fans"] == 3 and full["fan_blades"] == 7
    assert full["psu_whine_hz"] == 0 and full["seeks_per_min"] == 2 and full["width"] == 1


def test_check_params_accepts_int_for_float_and_integral_float_for_int():
    full = check_params("server_hum", {"hum_db": -10, "fans": 4.0}, "s.toml", "l")
    assert full["hum_db"] == -10.0 and isinstance(full["hum_db"], float)
    assert full["fans"] == 4 and isinstance(full["fans"], int)


def _message(source, params):
    with pytest.raises(ScoreError) as err:
        check_params(source, params, "score.toml", "layer.hum.params")
    return str(err.value)


def test_unknown_parameter_suggests_the_close_name():
    msg = _message("server_hum", {"mains_hz2": 50})
    assert msg.startswith("score.toml: layer.hum.params.mains_hz2: ")
    assert 'unknown parameter "mains_hz2" for source server_hum' in msg
    assert 'did you mean "mains_hz"?' in msg and "known: " in msg and "fan_rpm" in msg


def test_wrong_type_names_key_and_value():
    msg = _message("server_hum", {"mains_hz": "abc"})
    assert msg == 'score.toml: layer.hum.params.mains_hz: must be a number, got "abc"'
    assert "must be a number, got true" in _message("server_hum", {"mains_hz": True})
    assert "must be a whole number, got 2.5" in _message("server_hum", {"fans": 2.5})
    assert 'got "3"' in _message("server_hum", {"fans": "3"})
    assert "layer.hum.params.color: must be one of" in _message("noise", {"color": 3})
    assert "layer.hum.params.double: must be true or false, got 1" in _message("pulse", {"double": 1})


def test_out_of_range_names_the_limits():
    msg = _message("server_hum", {"mains_hz": 90})
    assert msg == "score.toml: layer.hum.params.mains_hz: must be between 40 and 70, got 90"
    assert "must be between 0 and 1, got -0.5" in _message("server_hum", {"drift": -0.5})
    assert "must be a finite number, got nan" in _message("server_hum", {"drift": float("nan")})


def test_bad_choice_lists_the_choices():
    msg = _message("noise", {"color": "purple"})
    assert msg.startswith('score.toml: layer.hum.params.color: must be one of white, pink, brown')
    assert 'got "purple"' in msg
    assert 'did you mean "thump"?' in _message("pulse", {"kind": "thumb"})


def test_cross_parameter_rules():
    msg = _message("noise", {"low_hz": 2000, "high_hz": 500})
    assert "layer.hum.params.high_hz" in msg and "500" in msg and "2000" in msg
    assert "layer.hum.params.tone_hz: must be 0 (the kind's default) or at least 20, got 5" in \
        _message("pulse", {"tone_hz": 5})
    assert "layer.hum.params.high_hz: must be 0 (off) or at least 40, got 5" in _message("noise", {"high_hz": 5})
    assert "layer.hum.params.psu_whine_hz: must be 0 (off) or at least 1000, got 1" in \
        _message("server_hum", {"psu_whine_hz": 1})


def test_tone_sweep_end_must_be_audible():
    assert "layer.hum.params.to_hz: must be 0 (no sweep) or at least 10, got 1" in _message("tone", {"to_hz": 1})


def test_unknown_source():
    msg = _message("server_hun", {})
    assert 'unknown source "server_hun"' in msg and 'did you mean "server_hum"?' in msg


def test_make_generator_validates():
    with pytest.raises(ScoreError, match="fan_rpm"):
        make_generator("server_hum", {"fan_rpm": -5}, SR, np.random.default_rng(0))
