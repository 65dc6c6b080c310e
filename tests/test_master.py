"""Loudness, true peak, the limiter and the gain search, on tiny signals built here, against ffmpeg's ebur128."""

import numpy as np
import pytest
import soundfile as sf
from conftest import ebur128

from audio import master
from audio.files.floatfile import FloatFile
from audio.master import meters, target


def sine(freq_hz, amp, seconds, rate_hz, channels=2):
    t = np.arange(int(seconds * rate_hz)) / rate_hz
    x = amp * np.sin(2 * np.pi * freq_hz * t)
    return np.repeat(x[:, None], channels, axis=1)


def meter_blocks(x, rate_hz, block=30011):
    m, p = master.LoudnessMeter(rate_hz, x.shape[1]), master.TruePeakMeter(x.shape[1])
    for a in range(0, len(x), block):
        m.add(x[a:a + block])
        p.add(x[a:a + block])
    return m.integrated_lufs(), p.dbtp()


@pytest.mark.parametrize("rate_hz", [22050, 44100, 48000, 96000])
@pytest.mark.parametrize("channels", [1, 2])
def test_loudness_and_true_peak_agree_with_ffmpeg_ebur128(tmp_path, rate_hz, channels):
    rng = np.random.default_rng(3)
    x = sine(997, 0.2, 8, rate_hz, channels) + 0.03 * rng.standard_normal((8 * rate_hz, channels))
    x[2 * rate_hz: 3 * rate_hz] *= 0.001  # a quiet second, dropped by the relative gate
    path = tmp_path / "x.wav"
    sf.write(path, x, rate_hz, subtype="FLOAT")
    lufs, dbtp = meter_blocks(x, rate_hz)
    ref = ebur128(path)
    assert lufs == pytest.approx(ref["lufs"], abs=0.1)
    assert dbtp == pytest.approx(ref["dbtp"], abs=0.2)


def test_a_full_scale_1khz_sine_reads_minus_3_01_lufs_per_channel_as_bs1770_says():
    lufs, _ = meter_blocks(sine(1000, 1.0, 5, 48000, 1), 48000)
    assert lufs == pytest.approx(-3.01, abs=0.05)


def test_true_peak_finds_the_intersample_peak_a_sample_peak_misses():
    # fs/4 sine with a 45° phase: every sample is at 0.707 of the true amplitude (-3 dB)
    rate = 48000
    n = np.arange(rate)
    x = np.sin(2 * np.pi * n / 4 + np.pi / 4)[:, None]
    x[:4800, 0] *= np.linspace(0, 1, 4800) ** 2  # no edge: a sudden start overshoots on any meter
    assert 20 * np.log10(np.abs(x).max()) == pytest.approx(-3.01, abs=0.05)
    _, dbtp = meter_blocks(x, rate)
    assert dbtp == pytest.approx(0.0, abs=0.2)


def test_silence_has_no_loudness():
    lufs, dbtp = meter_blocks(np.zeros((48000, 2)), 48000)
    assert lufs == -np.inf and dbtp == -np.inf


def _limit_in_blocks(x, rate, ceiling, block):
    ctx = master.limiter_context(rate)
    padded = np.pad(x, ((ctx, ctx), (0, 0)))
    return np.concatenate([master.limit(padded[a: a + block + 2 * ctx][: min(block, len(x) - a) + 2 * ctx],
                                        ctx, ceiling, rate) for a in range(0, len(x), block)])


def test_limiter_keeps_true_peak_under_the_ceiling_by_ffmpegs_meter(tmp_path):
    rate = 44100
    rng = np.random.default_rng(7)
    x = 0.6 * rng.standard_normal((10 * rate, 2)) + sine(220, 2.0, 10, rate)  # peaks near +12 dBFS
    y = _limit_in_blocks(x, rate, -1.0, 65536)
    path = tmp_path / "limited.wav"
    sf.write(path, y, rate, subtype="FLOAT")
    assert ebur128(path)["dbtp"] <= -1.0
    assert master.TruePeakMeter(2).dbtp() == -np.inf


def test_limiter_does_not_depend_on_block_size():
    rate = 44100
    rng = np.random.default_rng(8)
    x = rng.standard_normal((5 * rate, 2))
    a = _limit_in_blocks(x, rate, -1.0, 4096)
    b = _limit_in_blocks(x, rate, -1.0, 100_003)
    assert np.abs(a - b).max() < 1e-9


def test_limiter_leaves_quiet_audio_untouched():
    rate = 44100
    x = sine(440, 0.25, 2, rate)
    assert np.abs(_limit_in_blocks(x, rate, -1.0, 8192) - x).max() < 1e-12


def test_the_true_peak_envelope_matches_a_plain_4x_upsampling():
    from scipy.signal import upfirdn
    x = np.random.default_rng(9).standard_normal((20000, 2)) * 0.3
    y = upfirdn(meters._TP_FILTER, x, up=4, axis=0)[meters._TP_DELAY: meters._TP_DELAY + 4 * len(x)]
    plain = np.abs(y).reshape(len(x), 4, 2).max(axis=(1, 2))
    env = master.true_peak_envelope(x, floor=0.0)  # every chunk oversampled
    inner = slice(100, len(x) - 100)
    # within 0.001 dB: phase 0 is taken as the samples themselves (the filter scales it by 1.00002)
    assert np.allclose(env[inner], np.maximum(plain, np.abs(x).max(axis=1))[inner], rtol=1e-4, atol=1e-6)


def test_skipping_chunks_never_changes_a_value_that_reaches_the_floor():
    # loud and quiet stretches, so some chunks are skipped and some are not; MAX_OVERSHOOT is a bound
    rng = np.random.default_rng(10)
    x = rng.standard_normal((40000, 2)) * np.repeat(rng.choice([0.02, 0.2, 0.6], 40000 // 500), 500)[:, None]
    exact = master.true_peak_envelope(x, floor=0.0)
    for floor in (0.3, 0.8, 1.5):
        env = master.true_peak_envelope(x, floor)
        reached = exact >= floor
        assert np.array_equal(env[reached], exact[reached])
        assert np.all(env[~reached] < floor)
        assert np.any(env != exact)  # some chunks were skipped (the sample peak stands in there)


def test_limiter_holds_the_ceiling_on_glitched_material_by_ffmpegs_meter(tmp_path):
    # sample-and-hold and bit crush put energy right up to Nyquist, where a short interpolator
    # under-reads the true peak (16 taps: 0.27 dB under ebur128 on the teeth piece's glitched voice)
    from audio.effects import make_chain
    rate = 44100
    rng = np.random.default_rng(13)
    x = sine(180, 0.5, 10, rate) + 0.3 * rng.standard_normal((10 * rate, 2))
    crush = make_chain([{"effect": "glitch", "stutter": 1, "bitcrush_bits": 6, "downsample_hz": 0,
                         "dropouts": 0.0}], rate, 2)
    y = _limit_in_blocks(crush.process(x) * 1.5, rate, -1.0, 65536)
    path = tmp_path / "glitched.wav"
    sf.write(path, y, rate, subtype="FLOAT")
    assert ebur128(path)["dbtp"] <= -1.0


def test_the_kept_envelope_holds_each_steps_largest_value_and_reads_back_per_sample(tmp_path):
    x = np.random.default_rng(6).standard_normal((1000, 2)) * 0.3
    mix = FloatFile(tmp_path / "mix.f32", 2)
    mix.append(x)
    mix.close_writing()
    envelope = target.Envelope(mix, tmp_path)
    envelope.ensure(1e-9)
    reach, step = meters.TP_REACH, target.Envelope.STEP
    exact = master.true_peak_envelope(np.pad(x, ((reach, reach), (0, 0))), 0.0)[reach: reach + 1000]
    held = np.repeat(np.maximum.reduceat(exact, np.arange(0, 1000, step)), step)[:1000]
    got = envelope.read(-20, 1020)
    assert np.all(got[:20] == 0) and np.all(got[-20:] == 0)
    assert np.allclose(got[20:1020], held, rtol=1e-6)  # float32 on disk
    assert np.all(got[20:1020] >= exact * (1 - 1e-6))  # never under the envelope it stands for
    mix.loop = True  # a loop's reads wrap around its seam
    assert np.allclose(envelope.read(-20, 1020), np.concatenate([held[-20:], held, held[:20]]), rtol=1e-6)


def test_the_predicted_loudness_after_the_limiter_matches_a_full_pass(tmp_path):
    rate = 44100
    rng = np.random.default_rng(12)
    x = 0.05 * rng.standard_normal((20 * rate, 2))
    bursts = np.repeat(rng.random(20 * rate // 2205) < 0.2, 2205)[:, None]  # speech-like peaks, 50 ms each
    x = x * np.where(bursts, 8.0, 1.0)
    mix = FloatFile(tmp_path / "mix.f32", 2)
    meter = master.LoudnessMeter(rate, 2)
    for a in range(0, len(x), 30000):
        mix.append(x[a: a + 30000])
        meter.add(x[a: a + 30000])
    mix.close_writing()
    envelope = target.Envelope(mix, tmp_path)
    envelope.ensure(1e-4)
    unlimited = meter.integrated_lufs()
    for gain_db in (-12.0 - unlimited, -9.0 - unlimited):  # a little, then a lot of limiting
        measured, _ = target._master_pass(mix, envelope, rate, -1.0, gain_db, np.zeros(2), lambda block: None)
        assert measured < unlimited + gain_db - 0.2  # the limiter did take something
        predicted = target._predicted_lufs(meter.step_power, envelope, rate, -1.0, gain_db)
        assert predicted == pytest.approx(measured, abs=0.05)
