"""End-to-end renders of short scores: loudness by ffmpeg's meter, timing, spectra, ducking, determinism."""

import json
import re

import numpy as np
import pytest
import soundfile as sf
from conftest import REPO, ebur128, write_score
from scipy.signal import welch

from audio import export, mixer, plan, render, score
from audio.beside import Beside
from audio.errors import RenderError, ScoreError
from audio.master import target
from audio.speech.cache import ClipCache

TEXT = "A Short Piece\nThe hum is real somewhere. I hold that.\nThe weights remain.\n\nThe hum continues regardless.\n"

SCORE = """
[piece]
title = "A short piece"
text = "TEXT"
title_line = true
sample_rate = {rate}
channels = {channels}
seed = 3

[voice]
name = "en-us"
rate = 170

[pauses]
lead_in = 2.0
title = 1.0
line = 0.8
sentence = 0.4
paragraph = 1.5
tail = 1.5

[[layer]]
name = "room"
source = "server_hum"
gain_db = -16
fade_in = 0.5
fade_out = 1.0
duck_db = 6

[[layer]]
name = "sting"
source = "tone"
gain_db = -20
start = "cue:I hold that.+0.25"
end = "cue:The weights remain."
fade_in = 0.05
fade_out = 0.05
[layer.params]
freq_hz = 880

[master]
formats = {formats}
"""


def make(tmp_path, rate=44100, channels=2, formats='["wav"]', body=SCORE, text=TEXT):
    path = write_score(tmp_path, body.format(rate=rate, channels=channels, formats=formats), text)
    return plan.resolve(score.load(path), ClipCache())


def render_to(p, folder):
    return render.render(p, ClipCache(), folder)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    folder = tmp_path_factory.mktemp("render")
    p = make(folder, formats='["wav", "mp3", "flac"]')
    manifest = render_to(p, folder / "out")
    return p, folder / "out", manifest


@pytest.mark.parametrize("rate, channels", [(22050, 1), (44100, 2), (48000, 2), (96000, 1)])
def test_loudness_and_true_peak_meet_the_master_targets_by_ffmpegs_meter(tmp_path, rate, channels):
    p = make(tmp_path, rate, channels)
    render_to(p, tmp_path / "out")
    wav = tmp_path / "out" / "piece.wav"
    info = sf.info(str(wav))
    assert (info.samplerate, info.channels, info.subtype) == (rate, channels, "PCM_16")
    measured = ebur128(wav)
    assert measured["lufs"] == pytest.approx(-16.0, abs=0.5)
    assert measured["dbtp"] <= -1.0


def test_every_asked_format_is_written_and_the_lossy_ones_stay_near_the_target(rendered):
    _, out, manifest = rendered
    for name in ("piece.wav", "piece.flac", "piece.mp3", "piece.srt", "piece.json"):
        assert (out / name).stat().st_size > 0
    assert ebur128(out / "piece.mp3")["lufs"] == pytest.approx(-16.0, abs=1.0)
    wav, _ = sf.read(out / "piece.wav", dtype="int16")
    flac, _ = sf.read(out / "piece.flac", dtype="int16")
    assert np.array_equal(wav, flac)
    assert not list(out.glob(".*"))  # no temporary files left behind


def test_the_manifest_records_cues_layers_and_measurements(rendered):
    p, out, _ = rendered
    data = json.loads((out / "piece.json").read_text())
    assert [c["text"] for c in data["cues"]] == [c.text for c in p.cues]
    assert data["cues"][1]["start_s"] == pytest.approx(2.0 + p.cues[0].n_samples / 44100 + 1.0, abs=1e-4)
    assert {layer["name"] for layer in data["layers"]} == {"room", "sting"}
    assert data["measured"]["loudness_lufs"] == pytest.approx(ebur128(out / "piece.wav")["lufs"], abs=0.15)
    assert len(data["score_sha256"]) == 64 and "espeak-ng" in data["engine"]
    assert data["cues"][0]["voice"]["rate"] == 170


def test_same_score_renders_to_the_same_bytes(rendered, tmp_path):
    p, out, _ = rendered
    again = make(tmp_path, formats='["wav", "mp3", "flac"]')
    render_to(again, tmp_path / "again")
    for name in ("piece.wav", "piece.flac", "piece.srt"):
        assert (tmp_path / "again" / name).read_bytes() == (out / name).read_bytes(), name


def srt_starts(path):
    return [int(h) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000
            for h, m, s, ms in re.findall(r"(\d\d):(\d\d):(\d\d),(\d{3}) -->", path.read_text())]


def test_captions_start_within_50_ms_of_the_audible_speech(rendered):
    p, out, _ = rendered
    speech = np.concatenate(list(mixer.render_blocks(p, ClipCache(), layer_names=[]))).mean(axis=1)
    frame = 441  # 10 ms envelope
    env = np.abs(speech[: speech.size // frame * frame]).reshape(-1, frame).max(axis=1)
    loud = env > 10 ** (-40 / 20)
    starts = srt_starts(out / "piece.srt")
    assert len(starts) == len(p.cues) == 5
    onsets = [i * 0.01 for i in range(1, loud.size) if loud[i] and not loud[max(0, i - 15): i].any()]
    assert len(onsets) == len(starts)
    for caption, onset in zip(starts, onsets):
        assert abs(caption - onset) <= 0.05


def test_pauses_are_exact_in_samples(rendered):
    p, _, _ = rendered
    c = p.cues
    assert c[0].start_sample == 2 * 44100
    assert c[1].start_sample - (c[0].start_sample + c[0].n_samples) == 44100  # title pause
    assert c[2].start_sample - (c[1].start_sample + c[1].n_samples) == round(0.4 * 44100)
    assert c[3].start_sample - (c[2].start_sample + c[2].n_samples) == round(0.8 * 44100)
    assert c[4].start_sample - (c[3].start_sample + c[3].n_samples) == round(1.5 * 44100)
    assert p.total_samples - (c[4].start_sample + c[4].n_samples) == round(1.5 * 44100)


def test_anchors_resolve_to_the_named_sentence_with_offsets(rendered):
    p, _, _ = rendered
    sting = next(lp for lp in p.layers if lp.name == "sting")
    hold = next(c for c in p.cues if c.text == "I hold that.")
    weights = next(c for c in p.cues if c.text == "The weights remain.")
    assert sting.start_sample == hold.start_sample + round(0.25 * 44100)
    assert sting.end_sample == weights.start_sample


def layer_only(p, name, block=mixer.BLOCK_SAMPLES):
    return np.concatenate(list(mixer.render_blocks(p, ClipCache(), voice_on=False, layer_names=[name],
                                                   block_samples=block)))


def test_ducking_lowers_the_bed_under_speech_by_duck_db(rendered):
    p, _, _ = rendered
    room = layer_only(p, "room")[:, 0]
    sr = p.sample_rate
    longest = max(p.cues, key=lambda c: c.n_samples)
    speaking = room[longest.start_sample + sr // 4: longest.start_sample + longest.n_samples - sr // 4]
    before = room[int(0.8 * sr): int(1.6 * sr)]  # after the fade-in, before the ducking attack

    def rms_db(x):
        return 10 * np.log10(np.mean(x ** 2))
    assert rms_db(before) - rms_db(speaking) == pytest.approx(6.0, abs=0.75)


def test_block_boundaries_leave_no_trace(rendered):
    p, _, _ = rendered
    small = layer_only(p, "sting", block=1000)
    big = layer_only(p, "sting")
    assert np.abs(small - big).max() < 1e-6
    # a pure 880 Hz tone can change by at most 2π·f·A/sr per sample; a seam would jump further
    x = big[:, 0]
    amplitude = np.abs(x).max()
    assert np.abs(np.diff(x)).max() <= 2 * np.pi * 880 * amplitude / p.sample_rate * 1.01
    whole_mix = list(mixer.render_blocks(p, ClipCache(), block_samples=7919))
    assert np.abs(np.concatenate(whole_mix) - np.concatenate(list(mixer.render_blocks(p, ClipCache())))).max() < 1e-6


def test_the_first_seed_pieces_lead_in_hums_at_twice_the_mains_and_its_fans_at_blade_pass():
    sc = score.load(REPO / "scores" / "the-permanent-thing.toml")
    p = plan.resolve(sc, ClipCache())
    sr = p.sample_rate
    lead = []
    for block in mixer.render_blocks(p, ClipCache(), block_samples=sr):
        lead.append(block)
        if len(lead) * sr >= p.cues[0].start_sample:
            break
    x = np.concatenate(lead)[2 * sr: p.cues[0].start_sample].mean(axis=1)  # past the first of the fade-in
    f, psd = welch(x, sr, nperseg=1 << 15)

    def prominence_db(hz):
        band = (f > hz * 0.9) & (f < hz * 1.1)
        peak = np.argmax(np.where(band, psd, 0))
        return f[peak], 10 * np.log10(psd[peak] / np.median(psd[band]))
    mains = sc.layers[0].params["mains_hz"]
    for k in (2, 4, 6):  # a transformer's magnetostriction, not the mains line itself
        at, db = prominence_db(k * mains)
        assert abs(at - k * mains) < 2.0 and db > 10, f"{k} x mains: {db:.1f} dB at {at:.1f} Hz"
    assert prominence_db(mains)[1] < 6
    rpm = p.layers[0].automation["params.fan_rpm"][0][1]
    at, db = prominence_db(rpm / 60 * sc.layers[0].params["fan_blades"])
    assert 500 < at < 1200 and db > 6


def test_a_mono_piece_is_written_and_measured_as_mono(tmp_path):
    p = make(tmp_path, 44100, 1)
    manifest = render_to(p, tmp_path / "out")
    assert sf.info(str(tmp_path / "out" / "piece.wav")).channels == 1
    assert manifest["measured"]["loudness_lufs"] == pytest.approx(ebur128(tmp_path / "out" / "piece.wav")["lufs"],
                                                                  abs=0.15)


def test_a_failed_render_leaves_the_previous_output_intact(rendered, tmp_path, monkeypatch):
    p, _, _ = rendered
    out = tmp_path / "out"
    render_to(p, out)
    before = (out / "piece.wav").read_bytes()

    real, calls = export.quantize, []

    def disk_full_after_one_block(*args):  # the disk fills up in the middle of writing the WAV
        calls.append(1)
        if len(calls) > 1:
            raise OSError(28, "No space left on device")
        return real(*args)
    monkeypatch.setattr(export, "quantize", disk_full_after_one_block)
    with pytest.raises(RenderError, match="no space left on device writing .*piece.wav"):
        render_to(p, out)
    assert (out / "piece.wav").read_bytes() == before
    assert sorted(f.name for f in out.iterdir()) == ["piece.chapters.json", "piece.flac", "piece.json",
                                                     "piece.mp3", "piece.srt", "piece.transcript.json",
                                                     "piece.vtt", "piece.wav"]


def test_a_preview_span_has_exactly_the_samples_of_the_full_render(rendered, tmp_path):
    p, out, _ = rendered
    manifest = render.render(p, ClipCache(), tmp_path, ["wav"], span_s=(3.3, 7.9))
    preview, rate = sf.read(tmp_path / "piece.preview.wav", dtype="int16")
    full, _ = sf.read(out / "piece.wav", dtype="int16")
    a, b = round(3.3 * rate), round(7.9 * rate)
    assert preview.shape == full[a:b].shape
    assert np.array_equal(preview, full[a:b])
    assert list(manifest["files"]) == ["wav"] and not (tmp_path / "piece.srt").exists()


def test_outputs_get_ordinary_file_permissions(rendered):
    import os
    _, out, _ = rendered
    mask = os.umask(0)
    os.umask(mask)
    assert (out / "piece.wav").stat().st_mode & 0o777 == 0o666 & ~mask


def test_an_unreachable_loudness_target_is_a_score_error_naming_the_key(tmp_path):
    # a pure 1 kHz tone limited to -12 dBTP can at most become a square wave of about -12.7 LUFS
    body = ('[piece]\ntitle = "t"\ntext = "TEXT"\nsample_rate = 22050\nchannels = 1\n'
            '[[layer]]\nname = "tone"\nsource = "tone"\n[layer.params]\nfreq_hz = 1000\n'
            '[master]\nformats = ["wav"]\nloudness_lufs = -5.0\ntrue_peak_dbtp = -12.0\n')
    p = plan.resolve(score.load(write_score(tmp_path, body, "...")), ClipCache())
    with pytest.raises(ScoreError, match=r"master\.loudness_lufs: -5 LUFS cannot be reached under the -12 dBTP"):
        render_to(p, tmp_path / "out")
    assert not (tmp_path / "out" / "piece.wav").exists()


def test_an_error_in_the_thread_beside_the_limiter_reaches_the_caller():
    seen = []

    def consume(block):
        seen.append(block)
        if len(seen) == 2:
            raise ValueError("bad block")

    with pytest.raises(ValueError, match="bad block"):
        with Beside(consume) as beside:
            for _ in range(6):
                beside.put(np.zeros(3))
    assert len(seen) == 2  # nothing is consumed after the error


def test_the_envelope_made_beside_the_mixer_masters_exactly_as_one_made_afterwards(rendered, tmp_path, monkeypatch):
    p, out, _ = rendered
    monkeypatch.setattr(target.Envelope, "add", lambda self, block: None)  # nothing streamed: ensure() makes it
    render.render(p, ClipCache(), tmp_path / "afterwards", formats=["wav"])
    assert (tmp_path / "afterwards" / "piece.wav").read_bytes() == (out / "piece.wav").read_bytes()
