"""Files: the atomic write and the staged commit, the sweep of what a killed render left, file
names, the RIFF walker and its smpl chunk, and tags written and read back by the same room."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import ffmpeg
from mutagen.flac import FLAC
from mutagen.id3 import ID3

from audio.errors import RenderError
from audio.files import riff, staging, tags

RATE_HZ = 44100


def sine(n_frames: int, channels: int) -> np.ndarray:
    t = np.arange(n_frames) / RATE_HZ
    x = 0.5 * np.sin(2 * np.pi * 440 * t)
    return np.stack([x * (1 - 0.3 * c) for c in range(channels)], axis=1)


def assert_decodes_cleanly(path: Path):
    proc = subprocess.run([ffmpeg(), "-nostdin", "-v", "error", "-i", str(path), "-f", "null", "-"],
                          capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


# ---------------------------------------------------------------- staging

def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    final = tmp_path / "piece.txt"
    final.write_text("old")
    with pytest.raises(ZeroDivisionError):
        with staging.atomic_path(final) as tmp:
            tmp.write_text("half of the new")
            1 / 0
    assert final.read_text() == "old"
    assert leftovers(tmp_path) == []


def test_a_write_replaces_the_file_whole_with_ordinary_permissions(tmp_path):
    final = tmp_path / "piece.txt"
    final.write_text("old")
    staging.write_text(final, "new ✓")
    assert final.read_text(encoding="utf-8") == "new ✓"
    assert final.stat().st_mode & 0o777 == 0o666 & ~_umask()
    staging.write_with(final, lambda f: f.write(b"bytes"), fsync=False)
    assert final.read_bytes() == b"bytes" and leftovers(tmp_path) == []


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_staged_files_appear_only_at_the_commit_and_all_together(tmp_path):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("old a")
    staged = staging.Staged()
    staging.write_text(a, "new a", staged)
    staging.write_text(b, "new b", staged)
    assert a.read_text() == "old a" and not b.exists()
    assert staged.temporary(b).read_text() == "new b"  # readable before the commit
    staged.commit()
    assert (a.read_text(), b.read_text()) == ("new a", "new b")
    assert staged.pending == {} and leftovers(tmp_path) == []


def test_a_discarded_set_leaves_the_earlier_files(tmp_path):
    a = tmp_path / "a.txt"
    a.write_text("old a")
    staged = staging.Staged()
    staging.write_text(a, "new a", staged)
    staging.write_text(tmp_path / "b.txt", "new b", staged)
    staged.discard()
    assert a.read_text() == "old a" and not (tmp_path / "b.txt").exists()
    assert leftovers(tmp_path) == []


KILLED_RENDER = """
import os, sys
from pathlib import Path
from audio.files import staging
out, stem = Path(sys.argv[1]), sys.argv[2]
work = staging.work_dir(out, stem)
(work / "mix.f32").write_bytes(bytes(8))
staged = staging.Staged(work)
staging.write_text(out / f"{stem}.wav", "partial", staged)
os._exit(0)  # as if killed: nothing cleaned up
"""


def a_killed_render(folder: Path, stem: str = "piece") -> set:
    """What a render of ``stem`` killed after staging a file leaves in ``folder``: its names."""
    before = set(os.listdir(folder))
    subprocess.run([sys.executable, "-c", KILLED_RENDER, str(folder), stem], check=True)
    return set(os.listdir(folder)) - before


def test_the_sweep_removes_what_a_killed_render_left_and_keeps_a_running_ones(tmp_path):
    left = a_killed_render(tmp_path)
    others = a_killed_render(tmp_path, "piece-final")  # another piece's, its name starting alike
    mine = staging.work_dir(tmp_path, "piece")
    mine_staged = staging.Staged(mine)
    staging.write_text(tmp_path / "piece.flac", "still being made", mine_staged)
    (tmp_path / "piece.wav").write_bytes(b"the finished file")

    removed = staging.clean_stale(tmp_path, "piece")

    assert len(left) == 2 and sorted(removed) == sorted(left)
    assert set(os.listdir(tmp_path)) == {mine.name, mine_staged.temporary(tmp_path / "piece.flac").name,
                                         *others, "piece.wav"}
    assert (mine / staging.MARKER).exists()


@pytest.mark.parametrize("name, fallback, cleaned", [
    ("the pass", "layer", "the-pass"),
    ("../../etc/passwd", "layer", "etc-passwd"),
    ("ünïcødé hum", "layer", "n-c-d-hum"),
    ("...", "piece", "piece"),
    ("keep_this-1.2", "layer", "keep_this-1.2"),
])
def test_one_cleaner_makes_names_that_stay_in_their_folder(name, fallback, cleaned):
    assert staging.safe_name(name, fallback) == cleaned


# ---------------------------------------------------------------- riff: the walker

def test_the_walker_reads_an_odd_chunk_and_warns_of_one_cut_short(tmp_path):
    path = tmp_path / "x.wav"
    sf.write(path, sine(100, 1), RATE_HZ, subtype="PCM_16")
    with open(path, "ab") as f:
        f.write(struct.pack("<4sI", b"junk", 3) + b"abc" + b"\0")
        f.write(struct.pack("<4sI", b"cut ", 100) + b"short")
    chunks, warnings = riff.read_chunks(path)
    assert [c.id for c in chunks][-2:] == [b"junk", b"cut "]
    assert riff.read_data(path, chunks[-2]) == b"abc"
    assert chunks[-1].size == 5 and warnings == [
        f"chunk 'cut ' at byte {chunks[-1].start} claims 100 bytes, past the end of the {path.stat().st_size}-byte file"]
    with pytest.raises(RenderError, match="claims 100 bytes"):  # a writer refuses it
        riff.add_smpl_chunk(path, 0, 10, RATE_HZ)


# ---------------------------------------------------------------- riff: the smpl chunk

def raw_chunks(blob: bytes) -> list[tuple[bytes, int, int]]:
    """(id, offset, size) of each RIFF chunk, walked by hand."""
    assert blob[:4] == b"RIFF" and blob[8:12] == b"WAVE"
    out, pos = [], 12
    while pos + 8 <= len(blob):
        cid, size = struct.unpack("<4sI", blob[pos:pos + 8])
        out.append((cid, pos, size))
        pos += 8 + size + (size & 1)
    assert pos == len(blob), "chunks must exactly fill the file"
    return out


def smpl_loops(path: Path) -> list:
    """The loops of every ``smpl`` chunk, read back through the RIFF walker."""
    chunks, warnings = riff.read_chunks(path)
    assert warnings == []
    return [loop for c in chunks if c.id == b"smpl" for loop in riff.parse_smpl(riff.read_data(path, c))[0]]


@pytest.mark.parametrize("subtype, channels, n_frames", [("PCM_16", 2, 1000), ("FLOAT", 1, 777), ("PCM_24", 1, 1001)])
def test_smpl_chunk_bytes_and_audio_unchanged(tmp_path, subtype, channels, n_frames):
    path = tmp_path / "loop.wav"
    sf.write(path, sine(n_frames, channels), RATE_HZ, subtype=subtype)
    before, _ = sf.read(path, dtype="float64", always_2d=True)
    old_chunks = raw_chunks(path.read_bytes())

    riff.add_smpl_chunk(path, 0, n_frames - 1, RATE_HZ)

    blob = path.read_bytes()
    assert struct.unpack("<I", blob[4:8])[0] == len(blob) - 8
    chunks = raw_chunks(blob)
    assert [c[0] for c in chunks] == [c[0] for c in old_chunks] + [b"smpl"]
    cid, pos, size = chunks[-1]
    assert pos % 2 == 0 and size == 60
    fields = struct.unpack("<15I", blob[pos + 8:pos + 68])
    assert fields == (0, 0, round(1e9 / RATE_HZ), 60, 0, 0, 0, 1, 0,  # header
                      0, 0, 0, n_frames - 1, 0, 0)  # loop: id, forward, start, end, fraction, infinite
    after, rate_hz = sf.read(path, dtype="float64", always_2d=True)
    assert rate_hz == RATE_HZ and after.shape == (n_frames, channels) and np.array_equal(before, after)
    assert sf.info(str(path)).frames == n_frames
    assert smpl_loops(path) == [riff.Loop(0, n_frames - 1, play_count=0, type="forward")]
    assert_decodes_cleanly(path)


def test_smpl_chunk_is_replaced_not_repeated(tmp_path):
    path = tmp_path / "loop.wav"
    sf.write(path, sine(500, 2), RATE_HZ, subtype="PCM_16")
    size_before = path.stat().st_size
    riff.add_smpl_chunk(path, 0, 499, RATE_HZ)
    riff.add_smpl_chunk(path, 100, 200, RATE_HZ)
    assert path.stat().st_size == size_before + 68
    assert [c[0] for c in raw_chunks(path.read_bytes())].count(b"smpl") == 1
    assert smpl_loops(path) == [riff.Loop(100, 200)]


def test_smpl_read_without_chunk_and_argument_errors(tmp_path):
    path = tmp_path / "plain.wav"
    sf.write(path, sine(100, 1), RATE_HZ, subtype="PCM_16")
    original = path.read_bytes()
    assert smpl_loops(path) == []
    with pytest.raises(ValueError, match="end=100"):
        riff.add_smpl_chunk(path, 0, 100, RATE_HZ)
    with pytest.raises(ValueError, match="sample_rate_hz=48000"):
        riff.add_smpl_chunk(path, 0, 99, 48000)
    with pytest.raises(ValueError, match="start=50, end=10"):
        riff.add_smpl_chunk(path, 50, 10, RATE_HZ)
    assert path.read_bytes() == original, "a refused call leaves the file untouched"
    not_wav = tmp_path / "x.flac"
    sf.write(not_wav, sine(100, 1), RATE_HZ)
    with pytest.raises(RenderError, match="x.flac.*RIFF WAVE"):
        riff.add_smpl_chunk(not_wav, 0, 10, RATE_HZ)
    with pytest.raises(RenderError, match="x.flac.*RIFF WAVE"):
        riff.read_chunks(not_wav)


# ---------------------------------------------------------------- tags: written, then read back

@dataclass(frozen=True)
class Chapter:
    title: str
    start_s: float
    end_s: float


TAGS = {"title": "Ünïcødé title", "artist": "Piece", "album": "Pieces", "year": "2024",
        "comment": "Rendered offline.", "genre": "Spoken Word"}
CHAPTERS = [Chapter("Opening", 0.0, 0.4), Chapter("Middle", 0.4, 0.75), Chapter("End", 0.75, 1.0)]


def encoded_sine(path: Path, codec: str) -> Path:
    subprocess.run([ffmpeg(), "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i",
                    f"sine=frequency=440:duration=1:sample_rate={RATE_HZ}", "-c:a", codec, str(path)], check=True)
    return path


def test_id3_tags_and_chapters_read_back_as_written(tmp_path):
    path = encoded_sine(tmp_path / "x.mp3", "libmp3lame")
    tags.write_id3(path, TAGS, CHAPTERS)
    found = tags.read_id3(ID3(path))
    assert found.tags == TAGS and found.cover is None
    assert found.chapters == tuple(tags.Mark(c.title, c.start_s, c.end_s) for c in CHAPTERS)


def test_vorbis_tags_and_chapters_read_back_as_written(tmp_path):
    path = tmp_path / "x.flac"
    sf.write(path, sine(RATE_HZ, 1), RATE_HZ)
    tags.write_vorbis(path, TAGS, CHAPTERS)
    found = tags.read_vorbis(FLAC(path).tags)
    assert found.tags == TAGS and found.warnings == ()
    # Vorbis chapters hold only their starts: each ends where the next begins, the last at the end
    assert found.chapters == (tags.Mark("Opening", 0.0, 0.4), tags.Mark("Middle", 0.4, 0.75),
                              tags.Mark("End", 0.75, None))


def test_wav_info_tags_read_back_as_written(tmp_path):
    path = tmp_path / "x.wav"
    with sf.SoundFile(str(path), "w", samplerate=RATE_HZ, channels=1, subtype="PCM_16") as f:
        tags.write_wav_info(f, {**TAGS, "title": "Plain title"})
        f.write(sine(100, 1))
    chunks, _ = riff.read_chunks(path)
    listing = next(c for c in chunks if c.id == b"LIST")
    assert tags.read_wav_info(riff.read_data(path, listing)) == {**TAGS, "title": "Plain title"}
