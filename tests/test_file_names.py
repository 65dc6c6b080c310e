"""File names that are not UTF-8 (bytes Python keeps as lone surrogates): a score, its folder, a
sample and the output folder so named render, and the manifest names them so they read back."""

import json
import os
import sys

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from audio.cli import main

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="a file name of any bytes: Linux")

BODY = """[piece]
title = "Bytes"
text = "piece.txt"
sample_rate = 22050

[pauses]
lead_in = 0.2
tail = 0.2

[[layer]]
name = "room"
source = "sample"
params = {path = "room.wav"}

[master]
formats = ["wav", "flac", "mp3"]
"""


def test_a_score_folder_and_output_folder_named_in_bytes_that_are_not_utf8_render(tmp_path):
    folder = tmp_path / os.fsdecode(b"scores-\xfe")
    folder.mkdir()
    score = folder / os.fsdecode(b"\xff.toml")
    score.write_text(BODY)
    (folder / "piece.txt").write_text("Hello there.\n")
    sf.write(str(tmp_path / "room.wav"), np.full((22050, 2), 0.01, np.float32), 22050)
    os.replace(tmp_path / "room.wav", folder / "room.wav")
    out = tmp_path / os.fsdecode(b"out-\xfd")
    result = CliRunner().invoke(main, ["render", str(score), "-o", str(out), "--picture"])
    assert result.exit_code == 0, result.output
    names = sorted(os.listdir(os.fsencode(out)))
    assert names == sorted(b"piece." + ext for ext in (b"wav", b"flac", b"mp3", b"json", b"srt", b"vtt", b"png",
                                                       b"transcript.json", b"chapters.json"))
    manifest = json.loads((out / "piece.json").read_bytes())
    assert os.fsencode(manifest["score"]) == os.fsencode(score)
    again = CliRunner().invoke(main, ["render", str(out / "piece.json"), "-o", str(tmp_path / "again")])
    assert again.exit_code == 0, again.output
    assert (tmp_path / "again" / "piece.wav").read_bytes() == (out / "piece.wav").read_bytes()
    shown = CliRunner().invoke(main, ["info", str(out / "piece.flac")])
    assert shown.exit_code == 0 and "22050" in shown.output.replace(",", ""), shown.output
