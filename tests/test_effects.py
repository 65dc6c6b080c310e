"""Tests for audio.effects: they assert on the processed signal (levels, spectra, decay times)."""

import math
import pathlib
import subprocess
import sys
import tracemalloc

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import signal

from audio.effects import EFFECTS, EQ_PRESETS, check_chain, make_chain, rt60_for_size
from audio.errors import ScoreError

SR = 44100


def sine(freq_hz, amp, seconds, sr=SR, channels=2):
    t = np.arange(int(round(seconds * sr))) / sr
    return np.repeat((amp * np.sin(2 * np.pi * freq_hz * t))[:, None], channels, axis=1)


def run(chain, x, sr=SR, blocks=None):
    c = make_chain(chain, sr, x.shape[1])
    if blocks is None:
        return c.process(x)
    out, i = [], 0
    for n in blocks:
        out.append(c.process(x[i:i + n]))
        i += n
    assert i == len(x)
    return np.concatenate(out)


def random_blocks(n, rng, largest=20000):
    sizes = []
    while sum(sizes) < n:
        sizes.append(int(rng.choice([rng.integers(0, 8), rng.integers(1, largest)])))
    sizes[-1] -= sum(sizes) - n
    return sizes


def rms_db(x):
    return 10 * np.log10(np.mean(np.square(x)) + 1e-300)


def gain_db(chain, freq_hz, sr=SR, seconds=1.0):
    """Steady-state gain of a chain for a sine (the first half is left for transients)."""
    x = sine(freq_hz, 0.1, seconds, sr)
    y = run(chain, x, sr)
    half = len(x) // 2
    return rms_db(y[half:]) - rms_db(x[half:])


def schroeder_rt60(h, sr, lo_db=-5.0, hi_db=-25.0):
    """RT60 from a line fit to the Schroeder backward integral between lo_db and hi_db (T20)."""
    e = np.cumsum(h[::-1] ** 2)[::-1]
    edc = 10 * np.log10(e / e[0] + 1e-300)
    a, b = np.argmax(edc <= lo_db), np.argmax(edc <= hi_db)
    slope = np.polyfit(np.arange(a, b) / sr, edc[a:b], 1)[0]
    return -60.0 / slope


def octave_band(h, sr, centre_hz):
    sos = signal.butter(4, [centre_hz / math.sqrt(2), centre_hz * math.sqrt(2)], "bandpass", fs=sr, output="sos")
    return signal.sosfilt(sos, h)


def impulse_response(chain, seconds, sr=SR, channels=2):
    x = np.zeros((int(seconds * sr), channels))
    x[0] = 1.0
    return run(chain, x, sr)


# --- eq ----------------------------------------------------------------------------

def test_telephone_preset_is_a_steep_300_to_3400_band():
    chain = [{"effect": "eq", "preset": "telephone"}]
    assert gain_db(chain, 100) < -20
    assert gain_db(chain, 8000) < -20
    assert abs(gain_db(chain, 1000)) < 1
    assert abs(gain_db(chain, 300) + 3) < 0.6 and abs(gain_db(chain, 3400) + 3) < 0.6


def test_radio_preset_is_a_gentler_band_with_presence():
    radio, tel = [{"effect": "eq", "preset": "radio"}], [{"effect": "eq", "preset": "telephone"}]
    assert gain_db(radio, 100) < -15 and gain_db(radio, 8000) < -12
    assert abs(gain_db(radio, 1000)) < 1.5
    flat = [{"effect": "eq", "preset": "radio", "presence_db": 0}]
    assert abs(gain_db(radio, 2500) - gain_db(flat, 2500) - 3) < 0.3    # the presence lift at 2.5 kHz
    assert abs(gain_db(radio, 500) - gain_db(flat, 500)) < 0.5
    # gentler skirts than the telephone: less attenuation at the same distance from the band
    assert gain_db(radio, 150) > gain_db(tel, 150) + 6
    assert gain_db(radio, 6000) > gain_db(tel, 6000) + 6


def test_radio_drive_adds_odd_harmonics_and_none_without_drive():
    def third_harmonic_db(chain):
        y = run(chain, sine(500, 0.5, 1.0))[SR // 2:, 0]
        f, p = signal.welch(y, SR, nperseg=8192)
        return 10 * np.log10(p[np.argmin(abs(f - 1500))] / p[np.argmin(abs(f - 500))])
    assert third_harmonic_db([{"effect": "eq", "preset": "radio"}]) > -50
    assert third_harmonic_db([{"effect": "eq", "preset": "radio", "drive": 0}]) < -100


def test_explicit_cuts_override_the_preset():
    chain = [{"effect": "eq", "preset": "telephone", "low_cut_hz": 0, "high_cut_hz": 1000}]
    assert abs(gain_db(chain, 100)) < 0.5                 # high-pass switched off
    assert abs(gain_db(chain, 1000) + 3) < 0.5            # low-pass moved, telephone's order 4 kept
    assert gain_db(chain, 2000) < -22


def test_eq_none_with_no_cuts_is_transparent():
    x = np.random.default_rng(0).standard_normal((SR // 4, 2))
    assert np.array_equal(run([{"effect": "eq"}], x), x)


@pytest.mark.parametrize("sr", [22050, 44100, 48000, 96000])
@pytest.mark.parametrize("kind", ["lowpass", "highpass"])
@pytest.mark.parametrize("cutoff_hz, order", [(80, 2), (1000, 1), (3000, 4), (15000, 8)])
def test_pass_filters_are_3_db_down_at_the_corner(sr, kind, cutoff_hz, order):
    chain = [{"effect": kind, "cutoff_hz": cutoff_hz, "order": order}]
    corner = min(cutoff_hz, 0.45 * sr)                     # clamped below Nyquist
    assert abs(gain_db(chain, corner, sr) + 3.01) < 0.5
    # an octave into the stop band it is down by about 6 dB per order
    stop = corner / 2 if kind == "highpass" else min(corner * 2, 0.49 * sr)
    if stop != corner * 2 or kind == "highpass":
        assert gain_db(chain, stop, sr) < -6 * order + 2


@pytest.mark.parametrize("sr", [22050, 96000])
def test_eq_cuts_above_nyquist_are_clamped_not_broken(sr):
    y = run([{"effect": "eq", "low_cut_hz": 19000, "high_cut_hz": 20000}], sine(1000, 0.1, 0.5, sr), sr)
    assert np.all(np.isfinite(y)) and np.abs(y).max() < 0.2


# --- compressor ------------------------------------------------------------------------

def tone_at_rms(level_db, seconds=1.0, freq_hz=1000):
    return sine(freq_hz, math.sqrt(2) * 10 ** (level_db / 20), seconds)


@pytest.mark.parametrize("ratio", [2, 3, 4, 8])
def test_compressor_reduces_a_tone_over_threshold_by_the_ratio(ratio):
    chain = [{"effect": "compressor", "threshold_db": -24, "ratio": ratio}]
    x = tone_at_rms(-24 + 12)
    y = run(chain, x)
    reduction = rms_db(x[SR // 2:]) - rms_db(y[SR // 2:])
    assert abs(reduction - 12 * (1 - 1 / ratio)) < 1, reduction


def test_compressor_peak_detector_reads_the_sample_peak():
    chain = [{"effect": "compressor", "threshold_db": -20, "ratio": 4, "detector": "peak"}]
    x = sine(1000, 10 ** ((-20 + 12) / 20), 1.0)          # peak 12 dB over threshold
    y = run(chain, x)
    reduction = rms_db(x[SR // 2:]) - rms_db(y[SR // 2:])
    assert abs(reduction - 9) < 1, reduction


def test_compressor_leaves_a_tone_under_threshold_untouched_and_adds_makeup():
    x = tone_at_rms(-24 - 10)
    y = run([{"effect": "compressor", "threshold_db": -24}], x)
    assert np.abs(y - x).max() < 1e-9
    y = run([{"effect": "compressor", "threshold_db": -24, "makeup_db": 6}], x)
    assert abs(rms_db(y) - rms_db(x) - 6) < 0.01


def test_compressor_soft_knee_is_between_none_and_full_reduction_at_threshold():
    x = tone_at_rms(-24)
    soft = rms_db(x[SR // 2:]) - rms_db(run([{"effect": "compressor", "knee_db": 12}], x)[SR // 2:])
    hard = rms_db(x[SR // 2:]) - rms_db(run([{"effect": "compressor", "knee_db": 0}], x)[SR // 2:])
    # knee W centred on the threshold: reduction (1 - 1/R) W / 8 = 1 dB at the threshold itself
    assert abs(soft - 1.0) < 0.3 and hard < 0.1


def reduction_curve(chain, x):
    """Per-sample gain reduction in dB of a processed tone, from the ratio of envelopes."""
    y = run(chain, x)
    env = lambda s: np.abs(signal.hilbert(s[:, 0]))
    return 20 * np.log10(env(x) / np.maximum(env(y), 1e-12))


def test_compressor_attack_and_release_times():
    attack_ms, release_ms = 5.0, 80.0
    chain = [{"effect": "compressor", "threshold_db": -30, "ratio": 4, "knee_db": 0, "detector": "peak",
              "attack_ms": attack_ms, "release_ms": release_ms}]
    loud, quiet = 10 ** (-6 / 20), 10 ** (-40 / 20)
    t = np.arange(SR) / SR
    amp = np.where((t >= 0.2) & (t < 0.5), loud, quiet)
    x = np.repeat((amp * np.sin(2 * np.pi * 1000 * t))[:, None], 2, axis=1)
    gr = reduction_curve(chain, x)
    final = gr[int(0.45 * SR)]
    assert abs(final - 24 * 0.75) < 0.5
    rise_ms = (np.argmax(gr[int(0.2 * SR):] >= final * (1 - 1 / math.e))) / SR * 1000
    assert 0.5 * attack_ms < rise_ms < 2 * attack_ms, rise_ms
    fall_ms = (np.argmax(gr[int(0.5 * SR):] <= final / math.e)) / SR * 1000
    assert 0.8 * release_ms < fall_ms < 1.3 * release_ms, fall_ms


def test_compressor_without_makeup_never_amplifies():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((SR, 2)) * np.repeat(rng.uniform(0, 1, SR // 441), 441)[:, None]
    y = run([{"effect": "compressor", "threshold_db": -40, "ratio": 20, "attack_ms": 0.1}], x)
    assert np.all(np.abs(y) <= np.abs(x) + 1e-12)
    assert rms_db(y) < rms_db(x) - 10


# --- reverb -------------------------------------------------------------------------

@pytest.mark.parametrize("size", [0.0, 0.3, 0.6, 1.0])
def test_reverb_impulse_decays_at_the_asked_rt60(size):
    rt60 = rt60_for_size(size)
    chain = [{"effect": "reverb", "size": size, "wet": 1, "damping": 0, "predelay_ms": 0}]
    h = impulse_response(chain, rt60 * 1.3)
    for ch in (0, 1):
        measured = schroeder_rt60(h[:, ch], SR)
        assert abs(measured / rt60 - 1) < 0.3, (size, measured, rt60)


def test_reverb_size_maps_to_0_3_to_4_seconds():
    assert rt60_for_size(0) == pytest.approx(0.3) and rt60_for_size(1) == pytest.approx(4.0)
    assert rt60_for_size(0.3) < rt60_for_size(0.6) < rt60_for_size(0.9)


def test_reverb_damping_shortens_the_high_frequencies_only():
    rt60 = rt60_for_size(0.6)
    h = impulse_response([{"effect": "reverb", "size": 0.6, "wet": 1, "damping": 0.8, "predelay_ms": 0}], rt60 * 1.3)
    low = schroeder_rt60(octave_band(h[:, 0], SR, 500), SR)
    high = schroeder_rt60(octave_band(h[:, 0], SR, 8000), SR)
    assert abs(low / rt60 - 1) < 0.3, low
    assert high < 0.6 * low, (high, low)


def test_reverb_tail_samples_cover_the_decay_to_minus_60_db():
    # the slowest decay sets the tail: broadband without damping, the low band with it
    for size, predelay_ms, damping in [(0.2, 0, 0.0), (0.7, 50, 0.0), (0.7, 10, 0.6)]:
        chain = [{"effect": "reverb", "size": size, "wet": 1, "damping": damping, "predelay_ms": predelay_ms}]
        tail = make_chain(chain, SR, 2).tail_samples()
        h = impulse_response(chain, tail / SR + 0.5)
        slowest = octave_band(h[:, 0], SR, 250) if damping else h[:, 0]
        e = np.cumsum((slowest ** 2)[::-1])[::-1]
        edc = 10 * np.log10(e / e[0] + 1e-300)
        reaches_60 = np.argmax(edc <= -60)
        assert 0 < reaches_60 <= tail <= 1.25 * reaches_60, (reaches_60, tail)
        assert np.abs(h[tail:]).max() < 1e-6 * np.abs(h).max()


def test_reverb_predelay_level_and_stereo_decorrelation():
    chain = [{"effect": "reverb", "size": 0.5, "wet": 1, "predelay_ms": 30}]
    h = impulse_response(chain, 2.0)
    first = np.argmax(np.abs(h).max(axis=1) > 1e-9)
    assert abs(first - 0.030 * SR) <= 1
    assert abs(np.corrcoef(h[:, 0], h[:, 1])[0, 1]) < 0.1
    x = np.random.default_rng(1).standard_normal((3 * SR, 2)) * 0.1
    y = run(chain, x)
    assert abs(rms_db(y[SR:]) - rms_db(x[SR:])) < 1.5          # unit-energy response: level kept


def test_reverb_wet_zero_passes_the_input_unchanged():
    x = np.random.default_rng(2).standard_normal((SR // 2, 2))
    c = make_chain([{"effect": "reverb", "size": 0.8, "wet": 0}], SR, 2)
    assert np.array_equal(c.process(x), x) and c.tail_samples() == 0


def test_reverb_mixes_dry_and_wet_linearly():
    x = np.random.default_rng(3).standard_normal((SR // 2, 2))
    full = run([{"effect": "reverb", "wet": 1}], x)
    half = run([{"effect": "reverb", "wet": 0.3}], x)
    assert np.allclose(half, 0.7 * x + 0.3 * full, atol=1e-6)


def test_reverb_is_the_same_in_another_process_and_differs_with_its_parameters():
    code = ("import numpy as np; from audio.effects import make_chain\n"
            "x = np.zeros((22050, 2)); x[0] = 1\n"
            "y = make_chain([{'effect': 'reverb', 'size': 0.4}], 44100, 2).process(x)\n"
            "print(repr(float(np.sum(y[:, 0] * np.arange(len(y)) % 7919))), repr(float(y[5000, 1])))")
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           cwd=str(pathlib.Path(__file__).resolve().parents[1])).stdout.split()
    x = np.zeros((22050, 2))
    x[0] = 1
    y = make_chain([{"effect": "reverb", "size": 0.4}], SR, 2).process(x)
    assert other == [repr(float(np.sum(y[:, 0] * np.arange(len(y)) % 7919))), repr(float(y[5000, 1]))]
    y2 = make_chain([{"effect": "reverb", "size": 0.41}], SR, 2).process(x)
    assert np.abs(y - y2).max() > 1e-3


def test_reverb_memory_does_not_grow_with_the_signal():
    c = make_chain([{"effect": "reverb", "size": 0.6}], SR, 2)
    block = np.random.default_rng(4).standard_normal((4096, 2))
    tracemalloc.start()
    try:
        for _ in range(100):                   # ~9 s warm-up, then measure the next ~19 s
            c.process(block)
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        for _ in range(200):
            c.process(block)
        now, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert now - base < 1_000_000 and peak - base < 20_000_000


# --- every effect ---------------------------------------------------------------------

BLOCK_CHAINS = [
    [{"effect": "eq", "preset": "radio"}],
    [{"effect": "eq", "preset": "telephone"}],
    [{"effect": "compressor", "attack_ms": 1, "release_ms": 30}],
    [{"effect": "compressor", "detector": "peak", "threshold_db": -30}],
    [{"effect": "reverb", "size": 0.5, "predelay_ms": 0}],
    [{"effect": "reverb", "size": 0.95, "damping": 0.9, "predelay_ms": 13}],
    [{"effect": "lowpass", "cutoff_hz": 500, "order": 5}],
    [{"effect": "highpass", "cutoff_hz": 2000}],
    [{"effect": "glitch", "slice_ms": 30, "stutter": 5, "downsample_hz": 3000, "dropouts": 0.4}],
    [{"effect": "eq", "preset": "radio"}, {"effect": "compressor"}, {"effect": "reverb"}],
]


@pytest.mark.parametrize("chain", BLOCK_CHAINS, ids=lambda c: "+".join(e["effect"] for e in c))
def test_block_invariance_with_random_block_sizes(chain):
    rng = np.random.default_rng(len(str(chain)))
    n = 5 * SR
    env = np.repeat(rng.uniform(0, 1, n // 2205 + 1) ** 3, 2205)[:n, None]   # speech-like level jumps
    x = rng.standard_normal((n, 2)) * env * np.array([0.3, 0.1])
    one = run(chain, x)
    for trial in range(2):
        split = run(chain, x, blocks=random_blocks(n, rng))
        assert np.abs(split - one).max() < 1e-6
    assert np.abs(one).max() > 0.01


def test_every_effect_is_covered_by_the_block_invariance_test():
    assert {e["effect"] for c in BLOCK_CHAINS for e in c} == set(EFFECTS)


@pytest.mark.parametrize("channels", [1, 2, 3])
def test_filters_and_reverb_keep_channels_apart(channels):
    x = np.zeros((SR // 2, channels))
    x[:, 0] = sine(1000, 0.5, 0.5, channels=1)[:, 0]
    y = run([{"effect": "eq", "preset": "telephone"}, {"effect": "reverb"}], x)
    assert y.shape == x.shape
    assert np.abs(y[:, 0]).max() > 0.1
    if channels > 1:
        assert np.abs(y[:, 1:]).max() == 0.0


def test_compressor_is_stereo_linked():
    x = np.concatenate([tone_at_rms(-12)[:, :1], tone_at_rms(-40)[:, :1]], axis=1)   # loud left, quiet right
    y = run([{"effect": "compressor", "threshold_db": -24, "ratio": 3}], x)
    left = rms_db(x[SR // 2:, 0]) - rms_db(y[SR // 2:, 0])
    right = rms_db(x[SR // 2:, 1]) - rms_db(y[SR // 2:, 1])
    assert abs(left - 8) < 1 and abs(right - left) < 0.01


def param_values(p):
    if p.choices:
        return st.sampled_from(p.choices)
    if isinstance(p.default, int) and not isinstance(p.default, bool):
        return st.integers(int(p.min), int(p.max))
    return st.floats(p.min, p.max, allow_nan=False)


@st.composite
def any_effect(draw):
    name = draw(st.sampled_from(sorted(EFFECTS)))
    params = {p.name: draw(param_values(p)) for p in EFFECTS[name].params if draw(st.booleans())}
    if name == "eq":                                       # keep the cuts valid (0 or >= 10, ordered)
        for key in ("low_cut_hz", "high_cut_hz"):
            if key in params and params[key] < 10:
                params[key] = 0.0
        full = {**EQ_PRESETS[params.get("preset", "none")], **params}
        if full.get("low_cut_hz", 0) and full.get("high_cut_hz", 0) and full["low_cut_hz"] >= full["high_cut_hz"]:
            params["high_cut_hz"] = 0.0
    return {"effect": name, **params}


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(any_effect(), st.sampled_from([22050, 44100, 96000]), st.integers(0, 2**32 - 1))
def test_random_valid_params_give_finite_bounded_output(effect, sr, seed):
    rng = np.random.default_rng(seed)
    n = sr // 2
    x = rng.standard_normal((n, 2)) * 0.25
    x[rng.integers(0, n, 5)] = 1.0                         # a few full-scale clicks
    c = make_chain([effect], sr, 2)
    y = np.concatenate([c.process(x[i:i + 3001]) for i in range(0, n, 3001)]
                       + [c.process(np.zeros((min(c.tail_samples(), sr), 2)))])
    assert np.all(np.isfinite(y))
    full = check_chain([effect], "", "e")[0]
    bound = 10 ** (max(full.get("makeup_db", 0), 0) / 20) if effect["effect"] == "compressor" else 1.0
    assert np.abs(y).max() < 30 * bound
    if effect["effect"] == "compressor":
        assert np.all(np.abs(y[:n]) <= bound * np.abs(x) + 1e-9)


def test_a_steep_low_corner_builds_without_a_warning():  # sos2zpk warned on the tiny numerator
    chain = make_chain([{"effect": "lowpass", "cutoff_hz": 10.0, "order": 5}], 22050, 2)
    assert chain.tail_samples() > 22050 // 10  # a 10 Hz low-pass rings for more than a tenth of a second


def test_a_sample_and_hold_below_1_hz_holds_each_value_for_a_second():  # a subnormal rate gave NaN
    x = np.random.default_rng(2).standard_normal((3 * 22050, 2)) * 0.25
    chain = make_chain([{"effect": "glitch", "downsample_hz": 5e-324, "stutter": 1, "bitcrush_bits": 0,
                         "dropouts": 0.0}], 22050, 2)
    y = chain.process(x)
    assert np.all(np.isfinite(y))
    assert len(np.unique(y[:, 0])) == 3  # one value per second of the three


# --- validation -------------------------------------------------------------------

def chain_error(chain):
    with pytest.raises(ScoreError) as err:
        check_chain(chain, "piece.toml", "voice.effects")
    return str(err.value)


def test_check_chain_fills_defaults_resolves_presets_and_is_idempotent():
    chain = [{"effect": "eq", "preset": "telephone", "high_cut_hz": 3000}, {"effect": "reverb", "size": 0.6},
             {"effect": "compressor"}]
    full = check_chain(chain, "piece.toml", "voice.effects")
    assert full[0] == {"effect": "eq", "preset": "telephone", "low_cut_hz": 300.0, "high_cut_hz": 3000.0,
                       "order": 4, "presence_db": 0.0, "drive": 0.0}
    assert full[1] == {"effect": "reverb", "size": 0.6, "wet": 0.25, "damping": 0.5, "predelay_ms": 20.0}
    assert full[2]["threshold_db"] == -24 and full[2]["ratio"] == 3 and full[2]["attack_ms"] == 5 \
        and full[2]["release_ms"] == 80 and full[2]["makeup_db"] == 0
    assert check_chain(full, "piece.toml", "voice.effects") == full
    assert check_chain([], "piece.toml", "voice.effects") == []


def test_unknown_effect_names_the_key_path_the_value_and_a_suggestion():
    msg = chain_error([{"effect": "eq"}, {"effect": "reverbb", "size": 0.5}])
    assert msg.startswith("piece.toml: voice.effects[1].effect: ")
    assert '"reverbb"' in msg and 'did you mean "reverb"' in msg
    assert "known: eq, compressor, reverb, glitch, lowpass, highpass" in msg


def test_unknown_param_names_the_key_path_and_a_suggestion():
    msg = chain_error([{"effect": "reverb", "szie": 0.5}])
    assert "voice.effects[0].szie" in msg and 'did you mean "size"' in msg and "predelay_ms" in msg


@pytest.mark.parametrize("item, where, shown", [
    ({"effect": "reverb", "wet": 1.5}, "voice.effects[0].wet", "between 0 and 1, got 1.5"),
    ({"effect": "compressor", "ratio": "high"}, "voice.effects[0].ratio", 'must be a number, got "high"'),
    ({"effect": "compressor", "ratio": True}, "voice.effects[0].ratio", "must be a number, got true"),
    ({"effect": "lowpass", "order": 2.5}, "voice.effects[0].order", "whole number, got 2.5"),
    ({"effect": "lowpass", "cutoff_hz": 5}, "voice.effects[0].cutoff_hz", "between 10 and 20000, got 5"),
    ({"effect": "eq", "preset": "telefone"}, "voice.effects[0].preset", 'got "telefone"; did you mean "telephone"'),
    ({"effect": "eq", "preset": 3}, "voice.effects[0].preset", "must be one of none, radio, telephone, got 3"),
    ({"effect": "eq", "low_cut_hz": 4}, "voice.effects[0].low_cut_hz", "0 (off) or at least 10, got 4"),
    ({"effect": "eq", "low_cut_hz": 2000, "high_cut_hz": 1000}, "voice.effects[0].high_cut_hz",
     "above low_cut_hz (2000), got 1000"),
    ({"effect": "eq", "preset": "radio", "low_cut_hz": 3400}, "voice.effects[0].high_cut_hz",
     'above low_cut_hz (3400), got 3400; preset "radio" sets the cuts not given'),
    ({"effect": "reverb", "size": float("nan")}, "voice.effects[0].size", "finite number, got nan"),
])
def test_bad_values_name_the_key_path_and_the_value(item, where, shown):
    msg = chain_error([item])
    assert msg.startswith(f"piece.toml: {where}: ") and shown in msg, msg


@pytest.mark.parametrize("chain, where, shown", [
    ({"effect": "eq"}, "voice.effects", "must be a list"),
    (["eq"], "voice.effects[0]", 'got "eq"'),
    ([{"size": 0.5}], "voice.effects[0]", "needs an effect key"),
])
def test_malformed_chains_are_score_errors(chain, where, shown):
    msg = chain_error(chain)
    assert msg.startswith(f"piece.toml: {where}: ") and shown in msg, msg


def test_make_chain_checks_its_arguments():
    with pytest.raises(ScoreError):
        make_chain([{"effect": "reverb", "wet": 2}], SR, 2)
    with pytest.raises(ValueError):
        make_chain([], 1000, 2)
    with pytest.raises(ValueError):
        make_chain([], SR, 0)
    with pytest.raises(ValueError):
        make_chain([{"effect": "lowpass"}], SR, 2).process(np.zeros((10, 1)))


def test_every_param_has_a_doc_a_default_in_range_and_effects_have_docs():
    for effect in EFFECTS.values():
        assert effect.doc and effect.name
        full = check_chain([{"effect": effect.name}], "", "e")[0]
        for p in effect.params:
            assert p.doc
            assert p.choices is None or p.default in p.choices
            assert p.name in full


def test_effects_marked_alike_treat_a_mono_signal_as_two_equal_channels():
    from audio.effects import alike_prefix
    x = np.random.default_rng(5).standard_normal((30000, 1)) * 0.3
    for name in sorted(EFFECTS):
        chain = [{"effect": name}]
        mono = make_chain(chain, 44100, 1).process(x)
        stereo = make_chain(chain, 44100, 2).process(np.repeat(x, 2, axis=1))
        same = np.array_equal(stereo[:, 0], mono[:, 0]) and np.array_equal(stereo[:, 1], mono[:, 0])
        assert same == (alike_prefix(chain) == 1), name
