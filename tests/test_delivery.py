"""Delivery: presets per format after encoding, tags and chapters read back by mutagen, transcripts,
stems that sum to the mix and seamless loops."""

import json
import re
import subprocess
import textwrap

import numpy as np
import pytest
import soundfile as sf
from conftest import ebur128, ffmpeg, write_score
from mutagen.flac import FLAC
from mutagen.id3 import ID3
from mutagen.mp3 import MP3, BitrateMode
from mutagen.oggopus import OggOpus

from audio import info, plan, render, score
from audio.errors import ScoreError
from audio.speech.cache import ClipCache

TEXT = "Tiny Piece\nFirst sentence here. Second sentence here.\n\nA new paragraph starts.\nAnd it ends.\n"
BODY = """
[piece]
title = "Tiny Piece"
text = "TEXT"
author = "The Authors"
album = "Seeds"
year = 2026
genre = "Spoken"
comment = "made in a test"
title_line = true
seed = 5

[pauses]
lead_in = 1.0
tail = 1.0

[[layer]]
name = "room"
source = "server_hum"
gain_db = -18
duck_db = 4

[[layer]]
name = "air"
source = "noise"
gain_db = -26
[layer.params]
color = "pink"
high_hz = 2000
"""


def make(tmp_path, body=BODY, **options):
    sc = score.with_options(score.load(write_score(tmp_path, body, TEXT)), **options)
    return plan.resolve(sc, ClipCache())


@pytest.fixture(scope="module")
def episode(tmp_path_factory):
    folder = tmp_path_factory.mktemp("episode")
    p = make(folder, preset="podcast", formats=["wav", "flac", "mp3", "ogg", "opus"])
    render.render(p, ClipCache(), folder / "out")
    return p, folder / "out"


@pytest.mark.parametrize("name, tolerance", [("piece.wav", 0.5), ("piece.flac", 0.5), ("piece.mp3", 1.0),
                                             ("piece.ogg", 1.0), ("piece.opus", 1.0)])
def test_every_format_meets_the_podcast_preset_after_encoding(episode, name, tolerance):
    _, out = episode
    measured = ebur128(out / name)
    assert measured["lufs"] == pytest.approx(-16.0, abs=tolerance)
    assert measured["dbtp"] <= -1.0 + (0.0 if name.endswith(("wav", "flac")) else 0.5)


def test_the_same_score_gives_the_same_bytes_in_every_format(episode, tmp_path):
    p, out = episode
    render.render(p, ClipCache(), tmp_path)
    for fmt in ["wav", "flac", "mp3", "ogg", "opus", "srt", "vtt", "transcript.json", "chapters.json"]:
        assert (tmp_path / f"piece.{fmt}").read_bytes() == (out / f"piece.{fmt}").read_bytes(), fmt


def test_mp3_carries_id3v23_tags_and_chapters(episode):
    p, out = episode
    id3 = ID3(out / "piece.mp3", translate=False)  # as stored, not upgraded to v2.4 frames
    assert id3.version == (2, 3, 0)
    assert str(id3["TIT2"]) == "Tiny Piece" and str(id3["TPE1"]) == "The Authors"
    assert str(id3["TALB"]) == "Seeds" and str(id3["TYER"]) == "2026" and str(id3["TCON"]) == "Spoken"
    chaps = sorted(id3.getall("CHAP"), key=lambda c: c.start_time)
    assert [str(c.sub_frames["TIT2"]) for c in chaps] == ["Tiny Piece", "First sentence here.",
                                                           "A new paragraph starts."]
    starts_ms = [c.start_time for c in chaps]
    assert starts_ms[0] == 0
    assert starts_ms[2] == round(next(c for c in p.cues if c.text == "A new paragraph starts.").start_s * 1000)
    ctoc = id3.getall("CTOC")[0]
    assert list(ctoc.child_element_ids) == [c.element_id for c in chaps]


def test_flac_and_opus_carry_vorbis_comments_and_chapters(episode):
    _, out = episode
    for f in (FLAC(out / "piece.flac"), OggOpus(out / "piece.opus")):
        assert f["TITLE"] == ["Tiny Piece"] and f["ARTIST"] == ["The Authors"] and f["DATE"] == ["2026"]
        assert f["CHAPTER001"] == ["00:00:00.000"] and f["CHAPTER003NAME"] == ["A new paragraph starts."]


def test_mp3_vbr_and_24_bit_flac(tmp_path):
    p = make(tmp_path, BODY + '\n[master]\nformats = ["flac", "mp3"]\nmp3 = "vbr2"\nbit_depth = 24\n')
    render.render(p, ClipCache(), tmp_path / "out")
    assert sf.info(str(tmp_path / "out" / "piece.flac")).subtype == "PCM_24"
    assert MP3(tmp_path / "out" / "piece.mp3").info.bitrate_mode == BitrateMode.VBR
    assert ebur128(tmp_path / "out" / "piece.mp3")["lufs"] == pytest.approx(-16.0, abs=1.0)


def parse_vtt(text):
    assert text.startswith("WEBVTT\n\n")
    cues = []
    for block in text.strip().split("\n\n")[1:]:
        lines = block.split("\n")
        m = re.fullmatch(r"(\d\d):(\d\d):(\d\d)\.(\d{3}) --> (\d\d):(\d\d):(\d\d)\.(\d{3})", lines[0])
        assert m, lines[0]
        h1, m1, s1, ms1, h2, m2, s2, ms2 = map(int, m.groups())
        cues.append((h1 * 3600 + m1 * 60 + s1 + ms1 / 1000, h2 * 3600 + m2 * 60 + s2 + ms2 / 1000, lines[1:]))
    return cues


def test_transcripts_are_timed_from_the_synthesizer_with_word_timestamps(episode):
    p, out = episode
    cues = parse_vtt((out / "piece.vtt").read_text())
    assert all(a < b for a, b, _ in cues)
    assert all(line.startswith("<v The Authors>") for _, _, lines in cues for line in lines[:1])
    visible = [re.sub(r"<[^>]+>", "", line) for _, _, lines in cues for line in lines]
    assert max(map(len, visible)) <= 65
    stamps = re.findall(r"<(\d\d):(\d\d):(\d\d)\.(\d{3})>", (out / "piece.vtt").read_text())
    assert len(stamps) >= 8  # inline word times, from espeak-ng's word events
    first = p.cues[1]
    assert cues[1][0] == pytest.approx(first.start_s, abs=0.001)
    transcript = json.loads((out / "piece.transcript.json").read_text())
    assert transcript["version"] == "1.0.0"
    bodies = [s["body"] for s in transcript["segments"]]
    assert bodies[:3] == ["Tiny", "Piece", "First"]  # word-level segments
    chapters = json.loads((out / "piece.chapters.json").read_text())
    assert chapters["version"] == "1.2.0" and len(chapters["chapters"]) == 3


def test_stems_sum_to_the_mix(tmp_path):
    # a quiet target keeps the limiter idle and a float WAV keeps dither out, so the sum is exact
    p = make(tmp_path, BODY + '\n[master]\nloudness_lufs = -30.0\nformats = ["wav"]\nbit_depth = 32\n')
    manifest = render.render(p, ClipCache(), tmp_path / "out", stems=True)
    mix, _ = sf.read(tmp_path / "out" / "piece.wav")
    stems = manifest["files"]["stems"]
    assert set(stems) == {"voice", "room", "air"}
    total = sum(sf.read(path)[0] for path in stems.values())
    assert total.shape == mix.shape
    assert np.abs(total - mix).max() < 1e-5
    voice, _ = sf.read(stems["voice"])
    assert np.abs(voice[: int(0.9 * p.sample_rate)]).max() == 0  # the voice stem is silent in the lead-in


def loop_body(extra=""):
    return BODY.replace("[pauses]", "[pauses]\nsentence = 0.3") + textwrap.dedent(f"""
        [loop]
        seamless = true
        crossfade = 1.5
        {extra}
        [master]
        formats = ["wav", "ogg"]
        """)


def test_a_seamless_loop_has_no_seam(tmp_path):
    p = make(tmp_path, loop_body())
    render.render(p, ClipCache(), tmp_path / "out")
    x, sr = sf.read(tmp_path / "out" / "piece.wav")
    assert x.shape[0] == p.total_samples - round(1.5 * sr)
    assert np.abs(x.mean(axis=0)).max() < 1e-4  # no DC
    tiled = np.concatenate([x, x])[:, 0]
    seam = x.shape[0]
    jumps = np.abs(np.diff(tiled))
    assert jumps[seam - 1] <= np.percentile(jumps, 99.9)  # the seam's step is an ordinary step

    def hf_energy(at):  # high-frequency burst around a point: a click would show here
        seg = np.diff(tiled[at - 256: at + 256])
        return np.mean(seg ** 2)
    elsewhere = [hf_energy(a) for a in range(sr, seam - sr, seam // 40)]
    assert hf_energy(seam) <= np.percentile(elsewhere, 95)
    loops = info.describe(tmp_path / "out" / "piece.wav", measure=False)["loops"]
    assert loops == [{"start_frame": 0, "end_frame": x.shape[0] - 1, "play_count": 0, "type": "forward"}]
    raw = (tmp_path / "out" / "piece.wav").read_bytes()
    at = raw.index(b"smpl")
    assert int.from_bytes(raw[at + 4 * 9: at + 4 * 10], "little") == 1  # one loop


def test_a_loop_refuses_mp3(tmp_path):
    with pytest.raises(ScoreError, match="MP3 cannot loop"):
        make(tmp_path, loop_body().replace('formats = ["wav", "ogg"]', 'formats = ["wav", "mp3"]'))


def test_long_form_repeats_the_text_and_keeps_the_ambience_going(tmp_path):
    p = make(tmp_path, loop_body("duration = 60.0\nrepeat_every = 20.0").replace("seamless = true", "seamless = false"))
    assert p.duration_s == 60.0
    sentences = 5
    assert len(p.cues) == 3 * sentences
    assert p.cues[sentences].start_s == pytest.approx(p.cues[0].start_s + 20.0, abs=1e-6)
