"""Tests for audio.sources: they assert on the rendered signal, not on the code's shape."""

import math
import tracemalloc

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from scipy import signal

from audio.errors import ScoreError
from audio.sources import SOURCES, check_params, make_generator

SR = 44100
TARGET_RMS = 0.1


def render(name, params=None, seconds=1.0, sr=SR, seed=0):
    gen = make_generator(name, params or {}, sr, np.random.default_rng(seed))
    return gen.render(int(round(seconds * sr))).astype(np.float64)


def welch_db(x, sr, nperseg):
    f, p = signal.welch(x, sr, nperseg=nperseg)
    return f, 10 * np.log10(p + 1e-30)


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


# --- server_hum spectrum ---------------------------------------------------------------

@pytest.mark.parametrize("mains_hz", [50, 60])
def test_server_hum_has_mains_harmonic_peaks(mains_hz):
    x = render("server_hum", {"mains_hz": mains_hz}, seconds=4)
    for channel in (0, 1):
        f, p = welch_db(x[:, channel], SR, 2**15)
        for k in (1, 2, 3):
            prominence = peak_prominence_db(f, p, k * mains_hz)
            assert prominence >= 10, f"{k} x {mains_hz} Hz stands only {prominence:.1f} dB above its surroundings"


def test_server_hum_odd_harmonics_are_stronger_than_even():
    f, p = welch_db(render("server_hum", {"mains_hz": 50}, seconds=4)[:, 0], SR, 2**15)
    level = {k: p[np.abs(f - 50 * k) < 2].max() for k in (2, 3)}
    assert level[3] > level[2] + 1


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
    only_hum = {"fan_db": -60, "blade_db": -60, "rumble_db": -60, "harmonics": 1, "mains_hz": 60}
    x = render("server_hum", only_hum, seconds=20)[:, 0]
    y = signal.sosfiltfilt(signal.butter(2, [50, 70], "bandpass", fs=SR, output="sos"), x)
    turns = np.unwrap(np.angle(signal.hilbert(y)))[SR:-SR:SR // 4] / (2 * np.pi)
    deviation = np.abs(np.diff(turns) * 4 - 60) / 60
    assert deviation.max() < 0.0005
    assert deviation.max() > 0.00002


def test_server_hum_fans_are_detuned_so_they_beat():
    only_blades = {"hum_db": -60, "fan_db": -60, "rumble_db": -60, "fans": 2, "drift": 0}
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


# --- properties every source keeps ---------------------------------------------------------

VARIANTS = [(name, {}) for name in SOURCES] + [
    ("server_hum", {"drift": 1, "fans": 8, "mains_hz": 50}),
    ("noise", {"color": "brown", "low_hz": 100, "high_hz": 5000, "stereo_width": 0.3}),
    ("drone", {"chord": "cluster", "waveform": "soft_square", "lfo_hz": 3, "brightness_lfo_hz": 1.5}),
    ("tone", {"freq_hz": 300, "to_hz": 3000, "sweep_s": 0.5, "sweep_curve": "linear"}),
]


@pytest.mark.parametrize("name, params", VARIANTS)
@pytest.mark.parametrize("sr", [22050, 44100, 96000])
def test_block_invariance(name, params, sr):
    total = 51037
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
    whole = make_generator(name, {}, SR, np.random.default_rng(1)).render(int(sizes.sum()))
    gen = make_generator(name, {}, SR, np.random.default_rng(1))
    pieces = np.concatenate([gen.render(int(n)) for n in sizes])
    assert np.abs(pieces - whole).max() <= 1e-5


@pytest.mark.parametrize("name", list(SOURCES))
def test_deterministic_given_rng_and_seed_matters(name):
    a = render(name, seconds=0.3, seed=11)
    b = render(name, seconds=0.3, seed=11)
    np.testing.assert_array_equal(a, b)
    if name in ("server_hum", "noise"):
        assert not np.array_equal(a, render(name, seconds=0.3, seed=12))


@pytest.mark.parametrize("name", list(SOURCES))
def test_default_level_is_minus_20_dbfs(name):
    x = render(name, seconds=8)
    rms = np.sqrt(np.mean(x**2, axis=0))
    assert np.all(np.abs(20 * np.log10(rms / TARGET_RMS)) <= 3), rms
    assert np.abs(x).max() < 1.0
    assert np.all(np.abs(x.mean(axis=0)) < 1e-3)


@pytest.mark.parametrize("name", list(SOURCES))
def test_memory_does_not_grow_with_duration(name):
    gen = make_generator(name, {}, SR, np.random.default_rng(0))
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
    assert grown < 200_000


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
        else:
            fields[p.name] = st.floats(p.min, p.max, allow_nan=False)
    return st.fixed_dictionaries(fields)


@st.composite
def any_layer(draw):
    name = draw(st.sampled_from(sorted(SOURCES)))
    params = draw(_params_strategy(SOURCES[name]))
    sr = draw(st.sampled_from([22050, 44100, 48000, 96000]))
    return name, params, sr


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(any_layer(), st.integers(0, 2**32 - 1))
def test_any_valid_params_give_a_sane_signal(layer, seed):
    name, params, sr = layer
    try:
        full = check_params(name, params, "score.toml", "layer.params")
    except ScoreError:
        assume(False)            # a cross-parameter rule (e.g. high_hz <= low_hz) rejected it
    assert set(full) == {p.name for p in SOURCES[name].params}
    x = make_generator(name, params, sr, np.random.default_rng(seed)).render(sr // 2).astype(np.float64)
    assert x.shape == (sr // 2, 2)
    assert np.isfinite(x).all()
    assert np.abs(x).max() < 1.0
    assert np.sqrt(np.mean(x**2)) < 2 * TARGET_RMS
    assert np.all(np.abs(x.mean(axis=0)) < 0.02)


# --- the table and check_params ---------------------------------------------------------

def test_table_is_documented():
    assert set(SOURCES) >= {"server_hum", "noise", "drone", "tone"}
    for name, source in SOURCES.items():
        assert source.name == name and source.doc and "\n" not in source.doc
        for p in source.params:
            assert p.doc and "\n" not in p.doc
            if p.choices:
                assert p.default in p.choices
            elif not isinstance(p.default, str):
                assert p.min <= p.default <= p.max


def test_check_params_fills_defaults_and_returns_a_new_dict():
    given_params = {"mains_hz": 50}
    full = check_params("server_hum", given_params, "s.toml", "layer[0].params")
    assert given_params == {"mains_hz": 50}
    assert full["mains_hz"] == 50.0 and isinstance(full["mains_hz"], float)
    assert full["fans"] == 3 and full["fan_blades"] == 7


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


def test_out_of_range_names_the_limits():
    msg = _message("server_hum", {"mains_hz": 90})
    assert msg == "score.toml: layer.hum.params.mains_hz: must be between 40 and 70, got 90"
    assert "must be between 0 and 1, got -0.5" in _message("server_hum", {"drift": -0.5})
    assert "must be a finite number, got nan" in _message("server_hum", {"drift": float("nan")})


def test_bad_choice_lists_the_choices():
    msg = _message("noise", {"color": "purple"})
    assert msg.startswith('score.toml: layer.hum.params.color: must be one of white, pink, brown')
    assert 'got "purple"' in msg


def test_cross_parameter_rule():
    msg = _message("noise", {"low_hz": 2000, "high_hz": 500})
    assert "layer.hum.params.high_hz" in msg and "500" in msg and "2000" in msg


def test_tone_sweep_end_must_be_audible():
    assert "layer.hum.params.to_hz: must be 0 (no sweep) or at least 10, got 1" in _message("tone", {"to_hz": 1})


def test_unknown_source():
    msg = _message("server_hun", {})
    assert 'unknown source "server_hun"' in msg and 'did you mean "server_hum"?' in msg


def test_make_generator_validates():
    with pytest.raises(ScoreError, match="fan_rpm"):
        make_generator("server_hum", {"fan_rpm": -5}, SR, np.random.default_rng(0))
