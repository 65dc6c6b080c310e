"""describe / describe_score / table: checked against a real render, ffmpeg's ebur128, and files
tagged with mutagen and built byte by byte."""

from __future__ import annotations

import base64
import json
import math
import struct
import subprocess
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import ebur128, ffmpeg, write_score
from mutagen.flac import FLAC, Picture
from mutagen.id3 import APIC, CHAP, COMM, CTOC, ID3, TALB, TCON, TDRC, TIT2, TPE1, CTOCFlags
from mutagen.oggopus import OggOpus
from mutagen.oggvorbis import OggVorbis

from audio import info
from audio.errors import RenderError, ScoreError
from audio.files import ffmpeg as bundled_ffmpeg

TEXT = "First sentence here. Second sentence here.\nThird one.\n"
SCORE = """
[piece]
title = "Tiny"
text = "TEXT"

[pauses]
lead_in = 1.0
tail = 1.5

[[layer]]
name = "bed"
source = "server_hum"
gain_db = -18

[[layer]]
name = "blip"
source = "tone"
start = "cue:Second"
end = "cue:Second+1"
"""
LOSSY_TOLERANCE_S = 0.05
PNG_1PX = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIA"
                           "X8jx0gAAAABJRU5ErkJggg==")
TAGS = {"title": "Tiny – ünïcødé", "artist": "Piece", "album": "Pieces", "year": "2024",
        "comment": "Rendered offline.", "genre": "Spoken Word"}


def run_ffmpeg(*args):
    proc = subprocess.run([ffmpeg(), "-nostdin", "-hide_banner", "-v", "error", "-y", *map(str, args)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """The tiny piece rendered to WAV, FLAC, MP3 and OGG, plus an Opus made from its WAV."""
    from audio import plan, render, score
    from audio.speech.cache import ClipCache

    folder = tmp_path_factory.mktemp("tiny")
    p = plan.resolve(score.load(write_score(folder, SCORE, TEXT, name="tiny")), ClipCache())
    out = folder / "out"
    manifest = render.render(p, ClipCache(), out, formats=("wav", "flac", "mp3", "ogg"))
    run_ffmpeg("-i", out / "tiny.wav", "-c:a", "libopus", "-b:a", "96k", out / "tiny.opus")
    return out, manifest


def sine_wav(path: Path, seconds=1.0, rate_hz=44100, channels=2, amp=0.25, freq_hz=440.0, subtype="PCM_16"):
    t = np.arange(int(seconds * rate_hz)) / rate_hz
    x = amp * np.sin(2 * np.pi * freq_hz * t)
    sf.write(str(path), np.tile(x[:, None], (1, channels)), rate_hz, subtype=subtype)
    return path


# ---------------------------------------------------------------- a real render

@pytest.mark.parametrize("fmt", ["wav", "flac", "mp3", "ogg", "opus"])
def test_stream_facts_duration_and_loudness_of_every_format(rendered, fmt):
    out, manifest = rendered
    d = info.describe(out / f"tiny.{fmt}")
    assert d["format"] == fmt
    assert d["codec"] == {"wav": "pcm", "flac": "flac", "mp3": "mp3", "ogg": "vorbis", "opus": "opus"}[fmt]
    assert d["channels"] == 2
    assert d["sample_rate_hz"] == (48000 if fmt == "opus" else 44100)
    if fmt in ("wav", "flac"):
        assert abs(d["n_frames"] - manifest["total_samples"]) <= 1
        assert d["bit_depth"] == 16
    else:
        assert abs(d["duration_s"] - manifest["duration_s"]) <= LOSSY_TOLERANCE_S
        assert d["bit_depth"] is None
    if fmt == "mp3":
        assert (d["bitrate_kbps"], d["bitrate_mode"]) == (192.0, "CBR")
    assert d["file_bytes"] == (out / f"tiny.{fmt}").stat().st_size
    reference = ebur128(out / f"tiny.{fmt}")
    assert abs(d["loudness_lufs"] - reference["lufs"]) <= 0.2, (d["loudness_lufs"], reference)
    assert abs(d["true_peak_dbtp"] - reference["dbtp"]) <= 0.5, (d["true_peak_dbtp"], reference)


def test_title_and_chapters_the_render_wrote_are_read_back(rendered):
    out, manifest = rendered
    for fmt in ("flac", "mp3", "ogg"):
        d = info.describe(out / f"tiny.{fmt}", measure=False)
        assert d["tags"]["title"] == "Tiny", fmt
        want = [(c["title"], round(c["start_s"], 3)) for c in manifest.get("chapters", [])]
        assert [(c["title"], c["start_s"]) for c in d["chapters"]] == want, fmt


def test_describe_score_summarises_the_manifest(rendered):
    out, manifest = rendered
    s = info.describe_score(out / "tiny.json")
    assert s["title"] == "Tiny"
    assert s["duration_s"] == pytest.approx(manifest["duration_s"])
    assert s["cue_count"] == 3
    assert s["speech_s"] == pytest.approx(sum(c["end_s"] - c["start_s"] for c in manifest["cues"]))
    assert [(la["name"], la["source"]) for la in s["layers"]] == [("bed", "server_hum"), ("blip", "tone")]
    second = next(c for c in manifest["cues"] if c["text"].startswith("Second"))
    assert s["layers"][1]["start_s"] == pytest.approx(second["start_s"])
    assert s["layers"][1]["end_s"] == pytest.approx(second["start_s"] + 1)
    assert s["loudness_lufs"] == pytest.approx(manifest["measured"]["loudness_lufs"])
    assert s["files"]["wav"] == {"path": str(out / "tiny.wav"), "exists": True,
                                 "bytes": (out / "tiny.wav").stat().st_size}
    assert {"wav", "flac", "mp3", "ogg", "srt", "json"} <= set(s["files"])
    assert all(f["exists"] == Path(f["path"]).is_file() for f in s["files"].values())
    text = info.table(s)
    assert "  2. blip" in text and "cue_count" in text


def test_describe_score_errors_name_the_manifest(tmp_path):
    with pytest.raises(ScoreError, match=r"nope\.json: no such manifest"):
        info.describe_score(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{\n  'x': 1\n}\n")
    with pytest.raises(ScoreError, match=r"bad\.json: not a JSON manifest: .* line 2"):
        info.describe_score(bad)
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"duration_s": 1.0}))
    with pytest.raises(ScoreError, match=r"other\.json: not a render manifest, it has no 'sample_rate'"):
        info.describe_score(other)


def test_ffmpeg_pipe_yields_bounded_blocks_covering_the_whole_file(rendered):
    out, manifest = rendered
    sizes = [b.shape for b in bundled_ffmpeg.decode_blocks(out / "tiny.mp3", 44100, 2, block_frames=1000)]
    assert max(n for n, _ in sizes) <= 1000 and {c for _, c in sizes} == {2}
    assert sum(n for n, _ in sizes) == manifest["total_samples"]


# ---------------------------------------------------------------- tags, covers and chapters

def test_mp3_id3_tags_cover_and_chapters_are_read_back(tmp_path):
    wav = sine_wav(tmp_path / "s.wav", seconds=2.0)
    mp3 = tmp_path / "s.mp3"
    run_ffmpeg("-i", wav, "-c:a", "libmp3lame", "-b:a", "128k", mp3)
    id3 = ID3()
    id3.add(TIT2(encoding=3, text=[TAGS["title"]]))
    id3.add(TPE1(encoding=3, text=[TAGS["artist"]]))
    id3.add(TALB(encoding=3, text=[TAGS["album"]]))
    id3.add(TDRC(encoding=3, text=[TAGS["year"]]))
    id3.add(COMM(encoding=3, lang="eng", desc="", text=[TAGS["comment"]]))
    id3.add(TCON(encoding=3, text=[TAGS["genre"]]))
    id3.add(APIC(encoding=0, mime="image/png", type=3, desc="Cover", data=PNG_1PX))
    # stored out of order; the CTOC gives the order
    id3.add(CHAP(element_id="b", start_time=1200, end_time=2000, start_offset=0xFFFFFFFF,
                 end_offset=0xFFFFFFFF, sub_frames=[TIT2(encoding=3, text=["Second"])]))
    id3.add(CHAP(element_id="a", start_time=0, end_time=1200, start_offset=0xFFFFFFFF,
                 end_offset=0xFFFFFFFF, sub_frames=[TIT2(encoding=3, text=["First"])]))
    id3.add(CTOC(element_id="toc", flags=CTOCFlags.TOP_LEVEL | CTOCFlags.ORDERED,
                 child_element_ids=["a", "b"], sub_frames=[]))
    id3.save(mp3, v2_version=3)

    d = info.describe(mp3)
    assert d["tags"] == TAGS
    assert d["cover"] == {"present": True, "bytes": len(PNG_1PX), "mime": "image/png"}
    assert d["chapters"] == [{"title": "First", "start_s": 0.0, "end_s": 1.2},
                             {"title": "Second", "start_s": 1.2, "end_s": 2.0}]
    assert abs(d["duration_s"] - 2.0) <= LOSSY_TOLERANCE_S
    text = info.table(d)
    assert "  1. First" in text and "0:01.200 – 0:02.000" in text
    assert f"  title{' ' * 5}" in text and TAGS["title"] in text
    assert f"yes, {len(PNG_1PX)} bytes, image/png" in text


def vorbis_fill(comments, chapters):
    for key, value in TAGS.items():
        comments["DATE" if key == "year" else key.upper()] = [value]
    for n, (start, name) in enumerate(chapters, start=1):
        comments[f"CHAPTER{n:03d}"] = [start]
        comments[f"CHAPTER{n:03d}NAME"] = [name]


def front_cover() -> Picture:
    pic = Picture()
    pic.type, pic.mime, pic.desc, pic.data = 3, "image/png", "Cover", PNG_1PX
    pic.width = pic.height = 1
    return pic


@pytest.mark.parametrize("fmt", ["flac", "ogg", "opus"])
def test_vorbis_comments_cover_and_chapters_are_read_back(tmp_path, fmt):
    wav = sine_wav(tmp_path / "s.wav", seconds=2.0, rate_hz=48000)
    path = tmp_path / f"s.{fmt}"
    if fmt == "flac":
        sf.write(str(path), sf.read(str(wav))[0], 48000, subtype="PCM_24")
        audio = FLAC(path)
        audio.add_picture(front_cover())
    else:
        run_ffmpeg("-i", wav, "-c:a", "libvorbis" if fmt == "ogg" else "libopus", path)
        audio = OggVorbis(path) if fmt == "ogg" else OggOpus(path)
        audio["METADATA_BLOCK_PICTURE"] = [base64.b64encode(front_cover().write()).decode("ascii")]
    vorbis_fill(audio, [("00:00:01.500", "Later"), ("00:00:00.000", "Start")])
    audio.save()

    d = info.describe(path)
    assert d["format"] == fmt
    assert d["tags"] == TAGS
    assert d["cover"] == {"present": True, "bytes": len(PNG_1PX), "mime": "image/png"}
    assert [c["title"] for c in d["chapters"]] == ["Start", "Later"]
    assert d["chapters"][0] == {"title": "Start", "start_s": 0.0, "end_s": 1.5}
    assert d["chapters"][1]["start_s"] == 1.5
    assert abs(d["chapters"][1]["end_s"] - 2.0) <= LOSSY_TOLERANCE_S  # runs to the end of the audio
    if fmt == "flac":
        assert (d["bit_depth"], d["n_frames"]) == (24, 96000)


def test_a_malformed_vorbis_chapter_is_a_warning_not_an_error(tmp_path):
    path = tmp_path / "s.flac"
    sf.write(str(path), np.zeros((4800, 1)), 48000)
    audio = FLAC(path)
    audio["CHAPTER001"] = ["soon"]
    audio["CHAPTER002"] = ["0:00.050"]
    audio.save()
    d = info.describe(path)
    assert d["chapters"] == [{"title": "", "start_s": 0.05, "end_s": 0.1}]
    assert any("CHAPTER001" in w for w in d["warnings"])
    assert d["loudness_lufs"] == -math.inf  # silence has no loudness


# ---------------------------------------------------------------- WAV chunks

def append_chunks(path: Path, *chunks: bytes):
    """Append raw chunks to a WAV file and fix the RIFF size (an RF64 file keeps 0xFFFFFFFF there)."""
    with open(path, "r+b") as f:
        f.seek(0, 2)
        for chunk in chunks:
            f.write(chunk)
        size = f.tell()
        f.seek(0)
        if f.read(4) == b"RIFF":
            f.write(struct.pack("<I", size - 8))


def test_smpl_loops_and_riff_info_tags_are_parsed(tmp_path):
    path = sine_wav(tmp_path / "loop.wav", seconds=0.5, rate_hz=48000, channels=1)
    odd = struct.pack("<4sI", b"junk", 5) + b"abcde" + b"\x00"  # odd size: a pad byte follows
    info_data = b"INFO" + struct.pack("<4sI", b"INAM", 6) + b"Loopy\x00" \
        + struct.pack("<4sI", b"IART", 3) + b"Me\x00" + b"\x00"
    listing = struct.pack("<4sI", b"LIST", len(info_data) - 1) + info_data
    header = struct.pack("<9I", 0, 0, 20833, 60, 0, 0, 0, 2, 0)
    loops = struct.pack("<6I", 0, 0, 1000, 23999, 0, 0) + struct.pack("<6I", 1, 1, 50, 99, 0, 3)
    smpl = struct.pack("<4sI", b"smpl", len(header + loops)) + header + loops
    append_chunks(path, odd, listing, smpl)

    d = info.describe(path)
    assert d["loops"] == [
        {"start_frame": 1000, "end_frame": 23999, "play_count": 0, "type": "forward"},
        {"start_frame": 50, "end_frame": 99, "play_count": 3, "type": "alternating"},
    ]
    assert (d["tags"]["title"], d["tags"]["artist"]) == ("Loopy", "Me")
    assert d["n_frames"] == 24000 and d["warnings"] == []
    assert "frames 1,000 – 23,999, play_count 0, type forward" in info.table(d)


def test_a_smpl_chunk_claiming_more_loops_than_it_holds_is_a_warning(tmp_path):
    path = sine_wav(tmp_path / "loop.wav", seconds=0.2, channels=1)
    data = struct.pack("<9I", 0, 0, 0, 60, 0, 0, 0, 3, 0) + struct.pack("<6I", 0, 2, 5, 10, 0, 1)
    append_chunks(path, struct.pack("<4sI", b"smpl", len(data)) + data)
    d = info.describe(path, measure=False)
    assert d["loops"] == [{"start_frame": 5, "end_frame": 10, "play_count": 1, "type": "backward"}]
    assert d["warnings"] == ["'smpl' chunk claims 3 loops but holds 1"]


def test_an_rf64_wav_with_a_loop_is_read(tmp_path):
    path = tmp_path / "big.wav"
    t = np.arange(4800) / 48000
    sf.write(str(path), 0.5 * np.sin(2 * np.pi * 1000 * t), 48000, format="RF64", subtype="PCM_24")
    raw = path.read_bytes()
    data_at = raw.index(b"data")
    assert raw[:4] == b"RF64" and raw[data_at + 4: data_at + 8] == b"\xff\xff\xff\xff"  # size in ds64
    data = struct.pack("<9I", 0, 0, 0, 60, 0, 0, 0, 1, 0) + struct.pack("<6I", 0, 0, 10, 4799, 0, 0)
    append_chunks(path, struct.pack("<4sI", b"smpl", len(data)) + data)
    d = info.describe(path)
    assert (d["format"], d["n_frames"], d["bit_depth"], d["warnings"]) == ("wav", 4800, 24, [])
    assert d["loops"] == [{"start_frame": 10, "end_frame": 4799, "play_count": 0, "type": "forward"}]


def test_mono_float_wav_loudness_matches_ffmpeg(tmp_path):
    path = sine_wav(tmp_path / "m.wav", seconds=3.0, rate_hz=48000, channels=1, amp=0.3, freq_hz=997,
                    subtype="FLOAT")
    d = info.describe(path)
    assert (d["codec"], d["bit_depth"], d["channels"]) == ("float", 32, 1)
    assert abs(d["loudness_lufs"] - ebur128(path)["lufs"]) <= 0.2
    # a 997 Hz sine of peak 0.3 reads 20·log10(0.3) − 3.01 dB as mono (BS.1770)
    assert d["loudness_lufs"] == pytest.approx(20 * math.log10(0.3) - 3.01, abs=0.1)


def traced_peak_bytes(fn, *args):
    """The largest traced allocation total while ``fn(*args)`` runs, and its result."""
    tracemalloc.start()
    try:
        result = fn(*args)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak, result


def noise_wav(path: Path, seconds: int, rate_hz=22050) -> Path:
    with sf.SoundFile(str(path), "w", samplerate=rate_hz, channels=1, subtype="PCM_16") as f:
        for _ in range(seconds // 10):
            f.write(0.1 * np.random.default_rng(0).standard_normal(rate_hz * 10))
    return path


def test_memory_stays_flat_while_measuring_a_long_wav(tmp_path):
    short = noise_wav(tmp_path / "short.wav", 20)
    long = noise_wav(tmp_path / "long.wav", 80)
    peak_short, _ = traced_peak_bytes(info.describe, short)
    peak_long, d = traced_peak_bytes(info.describe, long)
    assert d["n_frames"] == 22050 * 80
    assert peak_long < 1.3 * peak_short, f"4x the audio: peak {peak_short / 1e6:.1f} → {peak_long / 1e6:.1f} MB"


# ---------------------------------------------------------------- errors and the table

def test_a_missing_file_is_an_error_naming_it(tmp_path):
    with pytest.raises(RenderError, match=r"gone\.wav: no such file"):
        info.describe(tmp_path / "gone.wav")


def test_a_text_file_named_wav_is_an_error_naming_it(tmp_path):
    path = tmp_path / "notes.wav"
    path.write_text("these are not samples\n")
    with pytest.raises(RenderError, match=r"notes\.wav: not a WAV, FLAC, MP3, Ogg Vorbis, Ogg Opus, M4A or M4B file"):
        info.describe(path)


def test_a_broken_wav_and_a_folder_are_errors_naming_them(tmp_path):
    path = tmp_path / "broken.wav"
    path.write_bytes(b"RIFF\x04\x00\x00\x00WAVEjunk" + b"\x00" * 40)
    with pytest.raises(RenderError, match=r"broken\.wav: not a readable WAV file"):
        info.describe(path)
    with pytest.raises(RenderError, match=r": is a folder, not an audio file"):
        info.describe(tmp_path)
    ogg = tmp_path / "cut.ogg"
    ogg.write_bytes(b"OggS" + b"\x00" * 60)
    with pytest.raises(RenderError, match=r"cut\.ogg: not an Ogg Vorbis or Ogg Opus file"):
        info.describe(ogg)


def test_table_has_two_aligned_columns_with_nested_rows_indented():
    d = {"path": "x.wav", "duration_s": 3725.5, "loudness_lufs": -16.04, "true_peak_dbtp": -math.inf,
         "tags": {"title": "A\nB", "artist": None}, "cover": {"present": False, "bytes": None, "mime": None},
         "chapters": [{"title": "One", "start_s": 0.0, "end_s": 61.25}], "loops": []}
    lines = info.table(d).splitlines()
    assert lines == [
        "path            x.wav",
        "duration_s      3725.500 (1:02:05.500)",
        "loudness_lufs   -16.0",
        "true_peak_dbtp  -inf",
        "tags",
        "  title         A / B",
        "  artist        —",
        "cover           no",
        "chapters        1",
        "  1. One        0:00.000 – 1:01.250",
        "loops           none",
    ]
