"""Nothing the render did not write is changed or removed, and what it promises is true: the sweep
of a killed render's leftovers removes only what a marker proves ours; a render that cannot put
every output into place replaces none; no output replaces a file the score reads; stems never
change the mix and never share a file; two scores of one name in one command are refused."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner
from conftest import write_score
from test_delivery import png_bytes

from audio import outputs
from audio.cli import main
from audio.files import staging

BODY = """
[piece]
title = "Kept"
text = "TEXT"
sample_rate = 22050
[pauses]
lead_in = 0.2
tail = 0.2
[[layer]]
name = "room"
source = "server_hum"
[master]
formats = ["wav"]
"""
TEXT = "Hello there.\n"


def render(*args):
    return CliRunner().invoke(main, ["render", *map(str, args)])


def files(folder: Path) -> dict:
    """Every file under ``folder`` (hidden ones too) with its bytes; folders as None."""
    return {str(p.relative_to(folder)): None if p.is_dir() else p.read_bytes() for p in folder.rglob("*")}


def leftovers(folder: Path) -> list:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def a_finished_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# ---------------------------------------------------------------- the sweep

def users_files(out: Path, stem: str, pid: int) -> dict:
    """Hidden files and folders a user (or another piece) may keep beside the outputs, named as a
    killed render's were named before."""
    (out / f".{stem}.{pid}.d").mkdir(parents=True)
    (out / f".{stem}.{pid}.d" / "x").write_text("keep\n")
    (out / f".{stem}.{pid}.bak").write_text("keep\n")
    (out / f".{stem}-final.{pid}.mp3").write_text("another piece's\n")
    (out / f".{stem}.wav.{pid}.abcdefgh.part").write_text("keep\n")
    (out / f".{stem}.{pid}.0123456789abcdef").mkdir()  # our very pattern, but no marker in it: not ours
    (out / f".{stem}.{pid}.0123456789abcdef" / "mix.f32").write_text("keep\n")
    return files(out)


def test_the_sweep_keeps_every_file_and_folder_it_did_not_make(tmp_path):
    before = users_files(tmp_path, "piece", a_finished_pid())
    assert staging.clean_stale(tmp_path, "piece") == []
    assert files(tmp_path) == before


def test_the_sweep_keeps_a_marker_that_is_not_the_one_we_write(tmp_path):
    pid = a_finished_pid()
    forged = tmp_path / f".piece.{pid}.0123456789abcdef"
    forged.mkdir()
    (forged / staging.MARKER).write_text("my own notes\n")
    (tmp_path / f".piece.{pid}.other-piece").mkdir()
    before = files(tmp_path)
    assert staging.clean_stale(tmp_path, "piece") == []
    assert files(tmp_path) == before


def test_a_render_keeps_the_users_hidden_files_beside_its_outputs(tmp_path):
    score = write_score(tmp_path, BODY, TEXT)
    out = tmp_path / "out"
    before = users_files(out, "piece", a_finished_pid())
    result = render(score, "-o", out)
    assert result.exit_code == 0, result.output
    assert "removed" not in result.output
    after = files(out)
    assert {k: v for k, v in after.items() if k in before} == before
    assert leftovers(out) == sorted(k for k in before if "/" not in k)


def test_a_stale_name_with_a_huge_number_is_left_alone(tmp_path):
    score = write_score(tmp_path, BODY, TEXT)
    out = tmp_path / "out"
    out.mkdir()
    huge = out / ".piece.99999999999999999999.part"  # was an OverflowError, in every render into the folder
    huge.write_text("keep\n")
    for _ in range(2):
        result = render(score, "-o", out)
        assert result.exit_code == 0, result.output
        assert result.exception is None and huge.read_text() == "keep\n"


# ---------------------------------------------------------------- all outputs or none

def test_a_folder_in_the_way_of_one_output_leaves_every_earlier_output(tmp_path):
    score = write_score(tmp_path, BODY.replace('["wav"]', '["wav", "flac", "mp3"]'), TEXT)
    out = tmp_path / "out"
    assert render(score, "-o", out).exit_code == 0
    (out / "piece.chapters.json").unlink()
    (out / "piece.chapters.json").mkdir()
    before = files(out)
    score.write_text(score.read_text().replace('title = "Kept"', 'title = "Changed"\nseed = 9'))
    result = render(score, "-o", out)
    assert result.exit_code == 1
    assert "piece.chapters.json: cannot write: a folder is in the way" in result.output
    assert "earlier outputs are left as they were" in result.output
    assert files(out) == before


def test_the_commit_renames_nothing_when_one_target_cannot_be_replaced(tmp_path):
    (tmp_path / "a.txt").write_text("old a")
    (tmp_path / "b.txt").mkdir()
    staged = staging.Staged(staging.work_dir(tmp_path, "x"))
    staging.write_text(tmp_path / "a.txt", "new a", staged)
    staging.write_text(tmp_path / "b.txt", "new b", staged)
    with pytest.raises(IsADirectoryError):
        staged.commit()
    assert (tmp_path / "a.txt").read_text() == "old a" and staged.committed == 0
    staged.discard()


def test_a_rename_failing_after_others_is_counted_for_the_message(tmp_path, monkeypatch):
    from audio import render as render_module
    staged = staging.Staged(staging.work_dir(tmp_path, "x"))
    for name in ("a.txt", "b.txt", "c.txt"):
        staging.write_text(tmp_path / name, "new", staged)
    rename, calls = os.replace, []

    def failing_second(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            raise OSError(5, "Input/output error", str(dst))
        rename(src, dst)
    monkeypatch.setattr(os, "replace", failing_second)
    with pytest.raises(OSError):
        staged.commit()
    assert render_module._left_as_they_were(staged) == "1 of 3 outputs were already replaced, the others are " \
        "left as they were"
    staged.discard()


# ---------------------------------------------------------------- the score's own files

def sample_wav(path: Path):
    sf.write(path, 0.1 * np.sin(np.arange(22050) / 10), 22050)


INPUTS = {
    "text": ('text = "TEXT"', 'text = "piece.srt"', "piece.srt", lambda p: p.write_text("A text.\n"), "piece.text"),
    "cover": ('title = "Kept"', 'title = "Kept"\ncover = "piece.png"', "piece.png",
              lambda p: p.write_bytes(png_bytes(8, 8)), "piece.cover"),
    "sample": ('source = "server_hum"', 'source = "sample"\n[layer.params]\npath = "piece.wav"', "piece.wav",
               sample_wav, 'layer "room".params.path'),
}


@pytest.mark.parametrize("kind", INPUTS)
def test_no_output_replaces_a_file_the_score_reads(tmp_path, monkeypatch, kind):
    old, new, name, make, where = INPUTS[kind]
    make(tmp_path / name)
    score = write_score(tmp_path, BODY.replace(old, new), TEXT)
    before = files(tmp_path)
    monkeypatch.chdir(tmp_path)
    result = render(score.name, "-o", ".", "--picture")
    assert result.exit_code == 2, result.output
    assert result.output == (f"Error: piece.toml: {where}: the output {name} would replace {tmp_path / name}, "
                             "which the piece reads; render into another folder (-o) or rename the file\n")
    assert files(tmp_path) == before


def test_a_replayed_manifest_does_not_replace_its_sample(tmp_path):
    sample_wav(tmp_path / "piece.wav")
    score = write_score(tmp_path, BODY.replace(*INPUTS["sample"][:2]), TEXT)
    assert render(score, "-o", tmp_path / "out").exit_code == 0
    before = files(tmp_path)
    result = render(tmp_path / "out" / "piece.json", "-o", tmp_path)
    assert result.exit_code == 2 and "layers[0].params.path: the output" in result.output, result.output
    assert files(tmp_path) == before


# ---------------------------------------------------------------- stems

def test_a_layer_may_not_take_the_voices_name(tmp_path):
    score = write_score(tmp_path, BODY.replace('name = "room"', 'name = "Voice"'), TEXT)  # its part replaced the voice
    result = render(score, "-o", tmp_path / "out")
    assert result.exit_code == 2 and not (tmp_path / "out").exists()
    assert result.output.startswith(f"Error: {score}: layer \"Voice\".name: 'Voice' is the voice's own name")


def test_layers_whose_stems_would_share_a_file_are_refused_with_stems(tmp_path):
    body = BODY + '[[layer]]\nname = "a b"\nsource = "noise"\n[[layer]]\nname = "a/b"\nsource = "noise"\n'
    score = write_score(tmp_path, body, TEXT)
    result = render(score, "-o", tmp_path / "out", "--stems")
    assert result.exit_code == 2 and not (tmp_path / "out").exists()
    assert f"Error: {score}: layer \"a/b\".name: 'a/b' and 'a b' (layer \"a b\") would both be written as the " \
           "stem NAME.stem-a-b.wav" in result.output
    assert render(score, "-o", tmp_path / "out").exit_code == 0  # without stems the names do not meet


def test_stems_never_change_the_mix_and_leave_nothing_behind(tmp_path):
    body = BODY + '[[layer]]\nname = "the hiss"\nsource = "noise"\ngain_db = -30\n'
    score = write_score(tmp_path, body, TEXT)
    assert render(score, "-o", tmp_path / "plain").exit_code == 0
    result = render(score, "-o", tmp_path / "stems", "--stems")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "plain" / "piece.wav").read_bytes() == (tmp_path / "stems" / "piece.wav").read_bytes()
    assert sorted(p.name for p in (tmp_path / "stems").glob("*.stem-*")) == [
        "piece.stem-room.wav", "piece.stem-the-hiss.wav", "piece.stem-voice.wav"]
    assert leftovers(tmp_path / "stems") == []


def test_the_planned_outputs_are_the_files_a_render_writes(tmp_path):
    score = write_score(tmp_path, BODY.replace('["wav"]', '["wav", "flac"]'), TEXT)
    out = tmp_path / "out"
    assert render(score, "-o", out, "--stems", "--picture").exit_code == 0
    assert sorted(out.iterdir()) == sorted(outputs.planned(out, "piece", ("wav", "flac"), ["room"], stems=True,
                                                           picture=True))
    assert render(score, "-o", tmp_path / "span", "--from", "0.1", "--to", "0.5").exit_code == 0
    assert sorted((tmp_path / "span").iterdir()) == sorted(outputs.planned(tmp_path / "span", "piece", ("wav", "flac"),
                                                                           ["room"], preview=True, stems=True))


# ---------------------------------------------------------------- one name, one command

def test_two_scores_of_one_name_in_one_command_are_refused_before_either_renders(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    first, second = write_score(a, BODY, TEXT, name="x"), write_score(b, BODY, "Other words.\n", name="x")
    result = render(first, second, "-o", tmp_path / "out")
    assert result.exit_code == 2 and not (tmp_path / "out").exists()
    assert result.output == (f'Error: {second}: writes the same files as {first}, given before it (both are named '
                             '"x"); render scores of one name into different folders (-o), one command each\n')
    result = render(first, first, "-o", tmp_path / "out")
    assert result.exit_code == 2 and f"Error: {first}: is given twice" in result.output
    assert not (tmp_path / "out").exists()


def test_a_missing_second_score_still_lets_the_first_render(tmp_path):
    first = write_score(tmp_path, BODY, TEXT, name="x")
    result = render(first, tmp_path / "gone.json", "-o", tmp_path / "out")
    assert result.exit_code == 2 and (tmp_path / "out" / "x.wav").exists()
    assert os.path.basename(str(tmp_path / "gone.json")) in result.output


def test_a_file_staged_after_the_set_is_discarded_is_removed_not_left_behind(tmp_path):
    # a stop can leave a writer thread running while the render cleans up: what it finishes late
    # must not stay in the output folder as a .part no later render may sweep
    staged = staging.Staged()
    with staging.atomic_path(tmp_path / "early.wav", staged) as tmp:
        tmp.write_bytes(b"early")
    staged.discard()
    with staging.atomic_path(tmp_path / "late.flac", staged) as tmp:
        tmp.write_bytes(b"late")
    assert sorted(p.name for p in tmp_path.iterdir()) == []
