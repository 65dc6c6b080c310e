"""A full disk: refused before any work when the render cannot fit, and met while writing (the work
files, the master, a WAV, FLAC or MP3) said in one line; earlier outputs intact, nothing left behind.
Faults are injected in the process (no disk is filled)."""

import errno
import shutil
import subprocess
from collections import namedtuple

import pytest
import soundfile as sf
from click.testing import CliRunner
from conftest import write_score

from audio.cli import main
from audio.files import diskspace, ffmpeg, floatfile
from test_reliability import leftovers, outputs

BODY = """
[piece]
title = "Full"
text = "TEXT"
sample_rate = 22050
seed = {seed}

[loop]
duration = 6.0

[[layer]]
name = "room"
source = "noise"

[master]
formats = ["wav", "flac", "mp3"]
"""
TEXT = "Something to say.\n"
Usage = namedtuple("Usage", "total used free")


@pytest.fixture
def earlier(tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["render", str(write_score(tmp_path, BODY.format(seed=1), TEXT)), "-o", str(out)])
    assert result.exit_code == 0, result.output
    return tmp_path, out, outputs(out)


def _full_file(real_open, name):
    class Full:
        def __init__(self, *args, **kwargs):
            self.f = real_open(*args, **kwargs)

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

        def __getattr__(self, attr):
            return getattr(self.f, attr)
    return lambda path, *args, **kwargs: Full(path, *args, **kwargs) if str(path).endswith(name) else \
        real_open(path, *args, **kwargs)


def inject(monkeypatch, where):
    """A full disk at one writer: raw float work files, libsndfile (the master or an output), ffmpeg."""
    if where == "mix.f32":
        monkeypatch.setattr(floatfile, "open", _full_file(open, "mix.f32"), raising=False)
        return
    if where == "mp3":
        run = subprocess.run

        def encode(cmd, *args, **kwargs):
            if cmd[-1].endswith(".part") and ".mp3." in cmd[-1]:
                return subprocess.CompletedProcess(cmd, 228, "", "[aost#0:0/libmp3lame @ 0x5] Error submitting a "
                                                   "packet to the muxer: No space left on device\n[out#0/mp3 @ 0x5] "
                                                   "Error writing trailer: No space left on device\n")
            return run(cmd, *args, **kwargs)
        monkeypatch.setattr(ffmpeg.subprocess, "run", encode)
        return
    write = sf.SoundFile.write

    def full_write(self, data):
        if where in str(self.name):
            raise sf.LibsndfileError(2)  # "System error.": what soundfile says of a full disk
        return write(self, data)
    monkeypatch.setattr(sf.SoundFile, "write", full_write)
    monkeypatch.setattr(diskspace, "_sndfile_detail", lambda f: "System error : No space left on device.")


@pytest.mark.parametrize("where, named", [("mix.f32", "mix.f32"), ("master.wav", "master.wav"),
                                          (".piece.wav.", "out/piece.wav"), (".piece.flac.", "out/piece.flac"),
                                          ("mp3", "out/piece.mp3")])
def test_a_full_disk_while_writing_is_one_line_and_leaves_earlier_outputs(earlier, monkeypatch, where, named):
    folder, out, before = earlier
    inject(monkeypatch, where)
    result = CliRunner().invoke(main, ["render", str(write_score(folder, BODY.format(seed=2), TEXT)), "-o", str(out),
                                       "-q"])
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: no space left on device writing "), result.output
    assert lines[0].split(" writing ")[1].split(" (about ")[0].endswith(named), result.output
    assert f" MB needed in {out}); earlier outputs are left as they were" in lines[0]
    assert outputs(out) == before and leftovers(out) == []


def no_mixing(monkeypatch):
    from audio import render

    def mix(*args):
        raise AssertionError("the render began mixing")
    monkeypatch.setattr(render, "_mix", mix)


def test_a_render_that_cannot_fit_is_refused_before_any_work(earlier, monkeypatch):
    folder, out, before = earlier
    no_mixing(monkeypatch)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: Usage(10**9, 10**9 - 2_000_000, 2_000_000))
    result = CliRunner().invoke(main, ["render", str(write_score(folder, BODY.format(seed=2), TEXT)), "-o", str(out)])
    assert result.exit_code == 1
    assert result.output == (f"Error: {out}: not enough free space: the render needs about 7 MB (2 MB of work files, "
                             "5 MB of outputs) and 2 MB are free there\n")
    assert outputs(out) == before and leftovers(out) == []


def test_a_12_hour_render_counts_its_25_gb_of_work_files(tmp_path, monkeypatch):
    no_mixing(monkeypatch)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: Usage(10**12, 10**12 - 20 * 10**9, 20 * 10**9))
    path = write_score(tmp_path, BODY.format(seed=1).replace("22050", "44100"), TEXT)
    result = CliRunner().invoke(main, ["render", str(path), "-o", str(tmp_path / "out"), "--duration", "12h"])
    assert result.exit_code == 1
    assert ("the render needs about 46,764 MB (30,482 MB of work files, 16,282 MB of outputs) and 20,000 MB are "
            "free there") in result.output
    assert list((tmp_path / "out").iterdir()) == []
