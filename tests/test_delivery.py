"""Delivery: presets per format after encoding, tags and chapters read back by mutagen, transcripts,
stems that sum to the mix and seamless loops."""

import json
import re
import struct
import subprocess
import textwrap
import zlib

import numpy as np
import pytest
import soundfile as sf
from conftest import ebur128, ffmpeg, write_score
from mutagen.flac import FLAC
from mutagen.id3 import ID3
from mutagen.mp3 import MP3, BitrateMode
from mutagen.mp4 import MP4
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


def png_bytes(width: int, height: int, colour_type: int = 2) -> bytes:
    """A flat PNG (PNG spec: signature, IHDR, IDAT, IEND); colour type 2 is RGB, 0 grey."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    pixel = bytes([40, 90, 160]) if colour_type == 2 else b"\x80"
    rows = (b"\x00" + pixel * width) * height
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


ALL_FORMATS = ["wav", "flac", "mp3", "ogg", "opus", "m4a", "m4b"]


@pytest.fixture(scope="module")
def episode(tmp_path_factory):
    folder = tmp_path_factory.mktemp("episode")
    (folder / "cover.png").write_bytes(png_bytes(1400, 1400))
    p = make(folder, BODY.replace("seed = 5", 'seed = 5\ncover = "cover.png"'), preset="podcast",
             formats=ALL_FORMATS)
    render.render(p, ClipCache(), folder / "out")
    return p, folder / "out"


@pytest.mark.parametrize("name, tolerance", [("piece.wav", 0.5), ("piece.flac", 0.5), ("piece.mp3", 1.0),
                                             ("piece.ogg", 1.0), ("piece.opus", 1.0), ("piece.m4a", 1.0),
                                             ("piece.m4b", 1.0)])
def test_every_format_meets_the_podcast_preset_after_encoding(episode, name, tolerance):
    _, out = episode
    measured = ebur128(out / name)
    assert measured["lufs"] == pytest.approx(-16.0, abs=tolerance)
    assert measured["dbtp"] <= -1.0 + (0.0 if name.endswith(("wav", "flac")) else 0.5)


def test_the_same_score_gives_the_same_bytes_in_every_format(episode, tmp_path):
    p, out = episode
    render.render(p, ClipCache(), tmp_path)
    for fmt in ALL_FORMATS + ["srt", "vtt", "transcript.json", "chapters.json"]:
        assert (tmp_path / f"piece.{fmt}").read_bytes() == (out / f"piece.{fmt}").read_bytes(), fmt


def ffmpeg_reading(path) -> tuple[float, list]:
    """The duration and chapters (start_s, end_s, title) ffmpeg reads from a file."""
    probe = subprocess.run([ffmpeg(), "-hide_banner", "-i", str(path)], capture_output=True, text=True).stderr
    h, m, s = re.search(r"Duration: (\d+):(\d+):([\d.]+)", probe).groups()
    meta = subprocess.run([ffmpeg(), "-v", "error", "-i", str(path), "-f", "ffmetadata", "-"],
                          capture_output=True, text=True, check=True).stdout
    chapters = []
    for section in meta.split("[CHAPTER]")[1:]:
        fields = dict(re.findall(r"^(\w+)=(.*)$", section, re.M))
        num, den = map(int, fields["TIMEBASE"].split("/"))
        chapters.append((int(fields["START"]) * num / den, int(fields["END"]) * num / den, fields.get("title")))
    return int(h) * 3600 + int(m) * 60 + float(s), chapters


@pytest.mark.parametrize("fmt", ["m4a", "m4b"])
def test_m4a_and_m4b_carry_tags_cover_and_chapters_that_ffmpeg_and_mutagen_read(episode, fmt):
    p, out = episode
    path = out / f"piece.{fmt}"
    duration_s, chapters = ffmpeg_reading(path)
    assert duration_s == pytest.approx(p.duration_s, abs=0.02)
    assert [(round(a, 3), round(b, 3), t) for a, b, t in chapters] == \
        [(round(c.start_s, 3), round(c.end_s, 3), c.title) for c in p.chapters]
    mp4 = MP4(path)
    assert mp4["\xa9nam"] == ["Tiny Piece"] and mp4["\xa9ART"] == ["The Authors"] and mp4["\xa9alb"] == ["Seeds"]
    assert mp4["\xa9day"] == ["2026"] and mp4["\xa9gen"] == ["Spoken"] and mp4["\xa9cmt"] == ["made in a test"]
    assert bytes(mp4["covr"][0]) == (out.parent / "cover.png").read_bytes()
    assert [c.title for c in mp4.chapters] == [c.title for c in p.chapters]
    assert mp4.info.channels == 2 and mp4.info.sample_rate == p.sample_rate
    described = info.describe(path)
    assert described["format"] == fmt and described["cover"]["present"]
    assert [c["title"] for c in described["chapters"]] == [c.title for c in p.chapters]
    assert described["loudness_lufs"] == pytest.approx(ebur128(path)["lufs"], abs=0.2)


def test_a_cover_apple_would_refuse_is_a_warning_and_under_a_podcast_preset_an_error(tmp_path):
    (tmp_path / "wide.png").write_bytes(png_bytes(1600, 526))
    (tmp_path / "grey.png").write_bytes(png_bytes(1400, 1400, colour_type=0))
    wide = BODY.replace("seed = 5", 'seed = 5\ncover = "wide.png"')
    p = make(tmp_path, wide)
    warning = next(w for w in p.warnings if "piece.cover" in w)
    assert "1600×526 px is not square" in warning and "526 px is outside 1400–3000 px" in warning
    with pytest.raises(ScoreError, match="not square") as e:
        make(tmp_path, wide, preset="podcast")
    assert e.value.where == "piece.cover"
    with pytest.raises(ScoreError, match="grey, not RGB"):
        make(tmp_path, BODY.replace("seed = 5", 'seed = 5\ncover = "grey.png"'), preset="podcast-mono")


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


@pytest.mark.parametrize("fmt", ["mp3", "m4a", "m4b"])
def test_a_loop_refuses_the_formats_whose_encoder_pads_it(tmp_path, fmt):
    with pytest.raises(ScoreError, match=f"{fmt.upper()} cannot loop"):
        make(tmp_path, loop_body().replace('formats = ["wav", "ogg"]', f'formats = ["wav", "{fmt}"]'))


def test_long_form_repeats_the_text_and_keeps_the_ambience_going(tmp_path):
    p = make(tmp_path, loop_body("duration = 60.0\nrepeat_every = 20.0").replace("seamless = true", "seamless = false"))
    assert p.duration_s == 60.0
    sentences = 5
    assert len(p.cues) == 3 * sentences
    assert p.cues[sentences].start_s == pytest.approx(p.cues[0].start_s + 20.0, abs=1e-6)
