"""Tags in finished files, read back with mutagen, with ffmpeg, and byte by byte with struct."""

from __future__ import annotations

import base64
import re
import struct
import subprocess
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from mutagen.flac import FLAC, Picture
from mutagen.id3 import ID3, CTOCFlags
from mutagen.mp4 import MP4
from mutagen.oggopus import OggOpus
from mutagen.oggvorbis import OggVorbis

from audio import export
from audio.files import ffmpeg as ffmpeg_module
from audio.files import tags
from audio.errors import RenderError

RATE_HZ = 44100


@dataclass
class Chapter:
    title: str
    start_s: float
    end_s: float


CHAPTERS = [Chapter("Opening", 0.0, 0.4), Chapter("Middle – ünïcødé ✓", 0.4, 0.75), Chapter("End", 0.75, 1.0)]
TAGS = {"title": "The Permanent Thing", "artist": "Piece", "album": "Pieces", "year": "2024",
        "comment": "Rendered offline.", "genre": "Spoken Word"}


def ffmpeg() -> str:
    import imageio_ffmpeg
    return imageio_ffmpeg.get_ffmpeg_exe()


def run_ffmpeg(*args):
    proc = subprocess.run([ffmpeg(), "-nostdin", "-hide_banner", "-v", "error", "-y", *map(str, args)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return proc


def encode_sine(path: Path, codec: str, *extra) -> Path:
    run_ffmpeg("-f", "lavfi", "-i", f"sine=frequency=440:duration=1:sample_rate={RATE_HZ}", "-c:a", codec,
               *extra, path)
    return path


def ffmetadata(path: Path) -> str:
    """ffmpeg's own reading of a file's tags and chapters, as an ffmetadata text."""
    return run_ffmpeg("-i", path, "-f", "ffmetadata", "-").stdout


def ffmpeg_chapters(path: Path) -> list[dict]:
    out = []
    for section in ffmetadata(path).split("[CHAPTER]")[1:]:
        fields = dict(re.findall(r"^(\w+)=(.*)$", section, re.M))
        num, den = map(int, fields["TIMEBASE"].split("/"))
        out.append({"start_s": int(fields["START"]) * num / den, "title": fields.get("title")})
    return out


def assert_decodes_cleanly(path: Path):
    proc = subprocess.run([ffmpeg(), "-nostdin", "-v", "error", "-i", str(path), "-f", "null", "-"],
                          capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr


def png_bytes(width: int, height: int) -> bytes:
    """A tiny RGB PNG written from the PNG spec (signature, IHDR, IDAT, IEND)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = b"".join(b"\x00" + bytes([200, 30, 30]) * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


@pytest.fixture
def png(tmp_path) -> Path:
    path = tmp_path / "cover.png"
    path.write_bytes(png_bytes(3, 2))
    return path


@pytest.fixture
def jpeg(tmp_path) -> Path:
    path = tmp_path / "cover.jpg"
    run_ffmpeg("-f", "lavfi", "-i", "color=c=red:s=16x8", "-frames:v", "1", path)
    return path


def sine(n_frames: int, channels: int) -> np.ndarray:
    t = np.arange(n_frames) / RATE_HZ
    x = 0.5 * np.sin(2 * np.pi * 440 * t)
    return np.stack([x * (1 - 0.3 * c) for c in range(channels)], axis=1)


# ---------------------------------------------------------------- MP3 / ID3v2.3

def test_mp3_id3v23_frames_chapters_and_cover(tmp_path, png):
    path = encode_sine(tmp_path / "a.mp3", "libmp3lame", "-id3v2_version", "3", "-metadata", "title=Old")
    tags.write_id3(path, TAGS, CHAPTERS, png)

    assert path.read_bytes()[:5] == b"ID3\x03\x00"
    id3 = ID3(path)
    assert id3.version == (2, 3, 0)
    raw = ID3(path, translate=False)
    assert raw.getall("TYER")[0].text == ["2024"] and not raw.getall("TDRC")
    assert id3["TIT2"].text == ["The Permanent Thing"] and len(id3.getall("TIT2")) == 1
    assert id3["TPE1"].text == ["Piece"] and id3["TALB"].text == ["Pieces"]
    assert id3["TCON"].text == ["Spoken Word"]
    comm = id3.getall("COMM")
    assert len(comm) == 1 and comm[0].text == ["Rendered offline."] and comm[0].lang == "eng"
    (apic,) = id3.getall("APIC")
    assert apic.data == png.read_bytes() and apic.mime == "image/png" and apic.type == 3

    chaps = {f.element_id: f for f in id3.getall("CHAP")}
    assert sorted(chaps) == ["chp0", "chp1", "chp2"]
    got = [(chaps[k].start_time, chaps[k].end_time, chaps[k].sub_frames["TIT2"].text[0]) for k in sorted(chaps)]
    assert got == [(0, 400, "Opening"), (400, 750, "Middle – ünïcødé ✓"), (750, 1000, "End")]
    (toc,) = id3.getall("CTOC")
    assert toc.element_id == "toc" and toc.child_element_ids == ["chp0", "chp1", "chp2"]
    assert toc.flags & CTOCFlags.TOP_LEVEL and toc.flags & CTOCFlags.ORDERED

    # ffmpeg, an independent ID3 reader, sees the same tags and chapters and still decodes the audio.
    meta = ffmetadata(path)
    assert "title=The Permanent Thing" in meta and "date=2024" in meta
    seen = sorted(ffmpeg_chapters(path), key=lambda c: c["start_s"])
    assert [c["title"] for c in seen] == ["Opening", "Middle – ünïcødé ✓", "End"]
    # ffmpeg moves chapters back by the stream's start time (the encoder delay), clamped at 0.
    shift_s = 0.4 - seen[1]["start_s"]
    assert 0 <= shift_s < 0.1
    assert [c["start_s"] for c in seen] == pytest.approx([0.0, 0.4 - shift_s, 0.75 - shift_s], abs=0.0011)
    assert_decodes_cleanly(path)


def test_mp3_chap_frames_are_stored_in_time_order(tmp_path):
    # mutagen stores frames by size: a long first title used to put the first chapter last
    chapters = [Chapter("A much longer opening chapter title", 0.0, 0.3), Chapter("B", 0.3, 0.6),
                Chapter("Mid", 0.6, 1.0)]
    path = encode_sine(tmp_path / "o.mp3", "libmp3lame")
    tags.write_id3(path, TAGS, chapters, None)
    raw = path.read_bytes()
    stored = [raw[m.start() + 10: raw.index(b"\0", m.start() + 10)] for m in re.finditer(b"CHAP", raw)]
    assert stored == [b"chp0", b"chp1", b"chp2"]
    assert [c["title"] for c in ffmpeg_chapters(path)] == [c.title for c in chapters]  # ffmpeg reads file order
    assert [c.element_id for c in ID3(path).getall("CHAP")] == ["chp0", "chp1", "chp2"]
    assert_decodes_cleanly(path)


def test_mp3_without_id3_tag_retagging_replaces_chapters_and_jpeg_cover(tmp_path, png, jpeg):
    path = encode_sine(tmp_path / "b.mp3", "libmp3lame", "-id3v2_version", "0", "-write_xing", "0")
    assert path.read_bytes()[:3] != b"ID3"
    tags.write_id3(path, TAGS, CHAPTERS, png)
    tags.write_id3(path, {"title": "Second", "year": "", "artist": None}, [Chapter("Only", 0, 1)], jpeg)

    id3 = ID3(path)
    assert id3.version == (2, 3, 0) and id3["TIT2"].text == ["Second"]
    assert id3["TPE1"].text == ["Piece"], "an empty value leaves the earlier frame alone"
    assert [(c.element_id, c.start_time, c.end_time) for c in id3.getall("CHAP")] == [("chp0", 0, 1000)]
    assert id3.getall("CTOC")[0].child_element_ids == ["chp0"]
    (apic,) = id3.getall("APIC")
    assert apic.mime == "image/jpeg" and apic.data == jpeg.read_bytes()
    assert_decodes_cleanly(path)


def test_mp3_no_chapters_means_no_toc(tmp_path):
    path = encode_sine(tmp_path / "c.mp3", "libmp3lame")
    tags.write_id3(path, {"title": "T"}, [], None)
    id3 = ID3(path)
    assert not id3.getall("CHAP") and not id3.getall("CTOC") and not id3.getall("APIC")


def test_mp3_bad_year_and_bad_cover_are_named(tmp_path):
    path = encode_sine(tmp_path / "d.mp3", "libmp3lame")
    with pytest.raises(ValueError, match="'last spring'"):
        tags.write_id3(path, {"year": "last spring"}, [], None)
    not_image = tmp_path / "cover.gif"
    not_image.write_bytes(b"GIF89a....")
    with pytest.raises(RenderError, match="cover.gif.*PNG or JPEG"):
        tags.write_id3(path, {}, [], not_image)
    with pytest.raises(RenderError, match="missing.png"):
        tags.write_id3(path, {}, [], tmp_path / "missing.png")


# ---------------------------------------------------------------- FLAC / Ogg Vorbis / Opus

def check_vorbis_comments(comments):
    assert comments["TITLE"] == ["The Permanent Thing"] and comments["ARTIST"] == ["Piece"]
    assert comments["ALBUM"] == ["Pieces"] and comments["DATE"] == ["2024"]
    assert comments["COMMENT"] == ["Rendered offline."] and comments["GENRE"] == ["Spoken Word"]
    assert comments["CHAPTER001"] == ["00:00:00.000"] and comments["CHAPTER001NAME"] == ["Opening"]
    assert comments["CHAPTER002"] == ["00:00:00.400"] and comments["CHAPTER002NAME"] == ["Middle – ünïcødé ✓"]
    assert comments["CHAPTER003"] == ["00:00:00.750"] and comments["CHAPTER003NAME"] == ["End"]
    assert "CHAPTER004" not in comments


def check_ffmpeg_sees_vorbis_chapters(path):
    assert [c["title"] for c in ffmpeg_chapters(path)] == ["Opening", "Middle – ünïcødé ✓", "End"]
    assert [round(c["start_s"], 3) for c in ffmpeg_chapters(path)] == [0.0, 0.4, 0.75]


def test_flac_vorbis_comments_chapters_and_picture(tmp_path, png):
    path = tmp_path / "a.flac"
    data = sine(RATE_HZ, 2)
    sf.write(path, data, RATE_HZ, subtype="PCM_16")
    before, _ = sf.read(path, dtype="int16")
    tags.write_vorbis(path, {**TAGS, "title": "Draft"}, CHAPTERS + [Chapter("Extra", 1, 1)], None)
    tags.write_vorbis(path, TAGS, CHAPTERS, png)

    flac = FLAC(path)
    check_vorbis_comments(flac.tags)
    (pic,) = flac.pictures
    assert pic.data == png.read_bytes() and pic.mime == "image/png" and pic.type == 3
    assert (pic.width, pic.height, pic.depth) == (3, 2, 24)
    after, _ = sf.read(path, dtype="int16")
    assert np.array_equal(before, after)
    check_ffmpeg_sees_vorbis_chapters(path)
    assert_decodes_cleanly(path)


def test_ogg_vorbis_from_soundfile_cover_as_metadata_block_picture(tmp_path, jpeg):
    path = tmp_path / "a.ogg"
    sf.write(path, sine(RATE_HZ, 2), RATE_HZ, format="OGG", subtype="VORBIS")
    tags.write_vorbis(path, TAGS, CHAPTERS, jpeg)

    ogg = OggVorbis(path)
    check_vorbis_comments(ogg.tags)
    block = base64.b64decode(ogg.tags["METADATA_BLOCK_PICTURE"][0])
    # FLAC picture block, read by hand: type, mime, description, width, height, depth, colours, data.
    kind, mime_len = struct.unpack(">II", block[:8])
    mime = block[8:8 + mime_len].decode()
    (desc_len,) = struct.unpack(">I", block[8 + mime_len:12 + mime_len])
    pos = 12 + mime_len + desc_len
    width, height, depth, colours, data_len = struct.unpack(">5I", block[pos:pos + 20])
    assert (kind, mime, width, height, depth, colours) == (3, "image/jpeg", 16, 8, 24, 0)
    assert block[pos + 20:pos + 20 + data_len] == jpeg.read_bytes()
    assert Picture(block).data == jpeg.read_bytes()
    assert sf.info(str(path)).frames == RATE_HZ
    check_ffmpeg_sees_vorbis_chapters(path)
    assert_decodes_cleanly(path)


def test_opus_from_ffmpeg(tmp_path, png):
    path = encode_sine(tmp_path / "a.opus", "libopus")
    tags.write_vorbis(path, TAGS, CHAPTERS, png)
    opus = OggOpus(path)
    check_vorbis_comments(opus.tags)
    assert Picture(base64.b64decode(opus.tags["METADATA_BLOCK_PICTURE"][0])).data == png.read_bytes()
    check_ffmpeg_sees_vorbis_chapters(path)
    assert_decodes_cleanly(path)


def test_vorbis_tags_refuse_other_files(tmp_path):
    path = encode_sine(tmp_path / "x.ogg.mp3", "libmp3lame")
    with pytest.raises(RenderError, match=r"x\.ogg\.mp3: not a FLAC, Ogg Vorbis or Ogg Opus"):
        tags.write_vorbis(path, TAGS, [], None)


# ---------------------------------------------------------------- M4A / M4B

@pytest.mark.parametrize("fmt", ["m4a", "m4b"])
def test_mp4_atoms_cover_and_chapters_are_read_back_by_mutagen_and_ffmpeg(tmp_path, png, fmt):
    src = tmp_path / "s.wav"
    sf.write(str(src), sine(RATE_HZ, 2), RATE_HZ)
    chapters = CHAPTERS[:2] + [Chapter("End = the; #last", 0.75, 1.0)]  # ffmetadata escapes = ; #
    metadata = tmp_path / "chapters.ffmetadata"
    metadata.write_text(tags.ffmetadata_chapters(chapters), encoding="utf-8")
    path = tmp_path / f"a.{fmt}"
    f = export.FORMATS[fmt]
    ffmpeg_module.encode(src, path, f.codec_args, f.muxer, fmt, chapters=metadata)
    tags.write_mp4(path, TAGS, png, audiobook=fmt == "m4b")

    assert path.read_bytes()[4:12] == b"ftyp" + (b"M4B " if fmt == "m4b" else b"M4A ")
    mp4 = MP4(path)
    assert mp4["\xa9nam"] == [TAGS["title"]] and mp4["\xa9ART"] == [TAGS["artist"]]
    assert mp4["\xa9day"] == ["2024"] and mp4["\xa9gen"] == ["Spoken Word"]
    assert bytes(mp4["covr"][0]) == png.read_bytes()
    assert mp4.get("stik") == ([2] if fmt == "m4b" else None)
    assert [(c.title, round(c.start, 3)) for c in mp4.chapters] == [(c.title, c.start_s) for c in chapters]
    seen = ffmpeg_chapters(path)  # ffmpeg reads the QuickTime chapter track Apple's players read
    assert [c["start_s"] for c in seen] == pytest.approx([c.start_s for c in chapters], abs=0.001)
    assert "title=The Permanent Thing" in ffmetadata(path)
    found = tags.read_mp4(mp4)
    assert found.tags == TAGS and found.cover.mime == "image/png"
    assert [(m.title, m.end_s) for m in found.chapters][-1] == ("End = the; #last", None)
    assert_decodes_cleanly(path)
