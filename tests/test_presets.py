"""Presets are deliverables: what is written reads on the preset's target by an independent meter
(ffmpeg's ebur128), the manifest says what that meter reads, and a score that contradicts its own
preset is refused."""

import re
import subprocess

import numpy as np
import pytest
import soundfile as sf
from conftest import ebur128, ffmpeg, write_score

from audio import plan, render, score
from audio.errors import ScoreError
from audio.speech.cache import ClipCache

TEXT = "One short line to speak. And a second one.\n"
BODY = """
[piece]
title = "Preset"
text = "TEXT"
seed = 3
{piece}

[pauses]
lead_in = 1.0
tail = 1.0

[[layer]]
name = "air"
source = "noise"
gain_db = -24

[master]
formats = ["wav", "mp3"]
{master}
"""


def load(tmp_path, piece="", master="", **options):
    path = write_score(tmp_path, BODY.format(piece=piece, master=master), TEXT)
    return score.with_options(score.load(path), **options)


def stream_channels(path) -> str:
    probe = subprocess.run([ffmpeg(), "-hide_banner", "-i", str(path)], capture_output=True, text=True).stderr
    return re.search(r"Audio: \w+.*?, \d+ Hz, (\w+)", probe).group(1)


@pytest.mark.parametrize("piece, master, options", [
    ("channels = 1", 'preset = "podcast"', {}),  # a mono score under the stereo podcast preset
    ("", "", {"preset": "podcast-mono"}),         # the mono preset, from the command line
])
def test_a_mono_podcast_reads_on_target_as_written_in_every_format(tmp_path, piece, master, options):
    p = plan.resolve(load(tmp_path, piece, master, **options), ClipCache())
    assert p.channels == 1
    manifest = render.render(p, ClipCache(), tmp_path / "out")
    theirs = ebur128(tmp_path / "out" / "piece.wav")["lufs"]
    assert theirs == pytest.approx(-16.0, abs=0.3)
    assert manifest["measured"]["loudness_lufs"] == pytest.approx(theirs, abs=0.15)
    assert ebur128(tmp_path / "out" / "piece.mp3")["lufs"] == pytest.approx(-16.0, abs=1.0)
    wav, _ = sf.read(tmp_path / "out" / "piece.wav")
    assert wav.shape[1] == 2 and np.array_equal(wav[:, 0], wav[:, 1])  # two identical channels
    assert stream_channels(tmp_path / "out" / "piece.mp3") == "stereo"


def test_a_mono_score_without_a_podcast_preset_stays_one_channel_on_target(tmp_path):
    p = plan.resolve(load(tmp_path, "channels = 1", 'preset = "broadcast"', formats=["wav"]), ClipCache())
    manifest = render.render(p, ClipCache(), tmp_path / "out")
    assert sf.info(str(tmp_path / "out" / "piece.wav")).channels == 1
    theirs = ebur128(tmp_path / "out" / "piece.wav")["lufs"]
    assert theirs == pytest.approx(-23.0, abs=0.3)
    assert manifest["measured"]["loudness_lufs"] == pytest.approx(theirs, abs=0.15)


@pytest.mark.parametrize("piece, master, where, says", [
    ("channels = 2", 'preset = "podcast-mono"', "piece.channels", 'contradicts preset "podcast-mono" (a mono mix)'),
    ("", 'preset = "broadcast"\nloudness_lufs = -20.0', "master.loudness_lufs", "-20 contradicts preset"),
    ("", 'preset = "podcast"\ntrue_peak_dbtp = -0.5', "master.true_peak_dbtp", "-1 dBTP at most"),
])
def test_a_score_that_contradicts_its_own_preset_is_refused(tmp_path, piece, master, where, says):
    with pytest.raises(ScoreError) as e:
        load(tmp_path, piece, master)
    assert e.value.where == where and says in e.value.what


def test_keys_that_agree_with_the_preset_are_kept(tmp_path):
    sc = load(tmp_path, "channels = 1", 'preset = "podcast"\nloudness_lufs = -16.0\ntrue_peak_dbtp = -2.0')
    assert (sc.piece.channels, sc.master.loudness_lufs, sc.master.true_peak_dbtp) == (1, -16.0, -2.0)
    assert load(tmp_path, master='preset = "streaming"').master.loudness_lufs == -14.0


def test_the_command_line_preset_makes_its_deliverable_and_says_what_it_replaced(tmp_path):
    sc = load(tmp_path, "channels = 2", "loudness_lufs = -20.0", preset="podcast-mono")
    assert (sc.piece.channels, sc.master.loudness_lufs, sc.master.preset) == (1, -16.0, "podcast-mono")
    assert any("replaces piece.channels = 2 with 1" in w for w in sc.warnings)
    assert any("replaces master.loudness_lufs = -20 with -16" in w for w in sc.warnings)
