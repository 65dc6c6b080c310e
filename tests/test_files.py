"""Files: the atomic write and the staged commit, the sweep of what a killed render left, file names."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from audio.files import staging


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


def a_finished_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_the_sweep_removes_what_a_killed_render_left_and_keeps_a_running_ones(tmp_path):
    dead = a_finished_pid()
    (tmp_path / f".piece.wav.{dead}.x1y2.part").write_bytes(b"partial")
    (tmp_path / f".piece.{dead}.abc123").mkdir()
    (tmp_path / f".piece.{dead}.abc123" / "mix.f32").write_bytes(b"\0" * 8)
    mine = staging.work_dir(tmp_path, "piece")
    (tmp_path / f".other.wav.{dead}.x1y2.part").write_bytes(b"another piece's")
    (tmp_path / "piece.wav").write_bytes(b"the finished file")

    removed = staging.clean_stale(tmp_path, "piece")

    assert sorted(removed) == [f".piece.{dead}.abc123", f".piece.wav.{dead}.x1y2.part"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [mine.name, f".other.wav.{dead}.x1y2.part", "piece.wav"])


@pytest.mark.parametrize("name, fallback, cleaned", [
    ("the pass", "layer", "the-pass"),
    ("../../etc/passwd", "layer", "etc-passwd"),
    ("ünïcødé hum", "layer", "n-c-d-hum"),
    ("...", "piece", "piece"),
    ("keep_this-1.2", "layer", "keep_this-1.2"),
])
def test_one_cleaner_makes_names_that_stay_in_their_folder(name, fallback, cleaned):
    assert staging.safe_name(name, fallback) == cleaned
