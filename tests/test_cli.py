"""The command line through click's CliRunner: renders, listings, and every kind of score error."""

import os
import re

import pytest
import soundfile as sf
from click.testing import CliRunner
from conftest import REPO, write_score

from audio import export
from audio.cli import Clock, Duration, FormatList, main

GOOD = """
[piece]
title = "Tiny"
text = "TEXT"
seed = 2

[voice]
name = "en-us"
rate = 180

[pauses]
lead_in = 0.5
tail = 0.5

[[cue]]
match = "Second sentence here."
pause_before = 0.3

[[layer]]
name = "bed"
source = "noise"
gain_db = -24
end = "end"
[layer.params]
color = "pink"

[[layer]]
name = "blip"
source = "tone"
start = "cue:Second sentence"
end = "cue:Second sentence+0.5"
"""
TEXT = "First sentence here. Second sentence here.\nThird one.\n"


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def good(tmp_path):
    return write_score(tmp_path, GOOD, TEXT, name="tiny")


def test_render_writes_the_asked_formats_into_the_output_folder(good, tmp_path):
    result = run("render", good, "-o", tmp_path / "out", "--format", "flac,ogg", "-q")
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == ["tiny.chapters.json", "tiny.flac", "tiny.json", "tiny.ogg", "tiny.srt",
                     "tiny.transcript.json", "tiny.vtt"]
    assert sf.info(str(tmp_path / "out" / "tiny.flac")).channels == 2


def test_render_reports_duration_loudness_and_files(good, tmp_path):
    result = run("render", good, "-o", tmp_path / "out")
    assert result.exit_code == 0
    assert "LUFS" in result.output and "tiny.wav" in result.output and "tiny.mp3" in result.output


def test_an_unknown_format_on_the_command_line_is_a_usage_error(good, tmp_path):
    result = run("render", good, "--format", "wav,aiff")
    assert result.exit_code == 2 and "unknown format 'aiff'" in result.output and "(known: wav, flac" in result.output


def test_times_and_formats_on_the_command_line_are_read_by_their_types():
    assert Clock().convert("1:02:03.5", None, None) == 3723.5 and Clock().convert("80", None, None) == 80.0
    assert Duration().convert("90m", None, None) == Duration().convert("1:30:00", None, None) == 5400.0
    assert FormatList().convert("WAV, mp3,wav", None, None) == ("wav", "mp3")


@pytest.mark.parametrize("option, value", [("--from", "nan"), ("--from", "1:-5"), ("--to", "1:2:3:4"),
                                           ("--duration", "infh"), ("--duration", "2x")])
def test_a_time_that_is_not_one_is_a_usage_error(good, tmp_path, option, value):
    result = run("render", good, "-o", tmp_path, option, value)
    assert result.exit_code == 2 and f"Invalid value for '{option}'" in result.output and repr(value) in result.output
    assert not list(tmp_path.glob("*.wav"))


def test_validate_accepts_both_seed_scores():
    result = run("validate", *sorted((REPO / "scores").glob("*.toml")))
    assert result.exit_code == 0, result.output
    assert result.output.count(": ok (") == 2


def test_plan_prints_the_timeline(good):
    result = run("plan", good)
    assert result.exit_code == 0
    assert "Second sentence here." in result.output and "layer 'blip'" in result.output


def test_voices_lists_english_voices_and_variants():
    result = run("voices", "--lang", "en")
    assert result.exit_code == 0 and "gmw/en-us" in result.output and "gmw/de" not in result.output
    result = run("voices", "--variants")
    assert "whisper" in result.output and "m3" in result.output


def test_sources_lists_every_generator_with_its_parameters():
    result = run("sources")
    for name in ("server_hum:", "noise:", "drone:", "tone:", "mains_hz", "fan_rpm", "color", "root_hz"):
        assert name in result.output


def test_python_dash_m_audio_is_the_same_tool():
    import subprocess
    import sys
    proc = subprocess.run([sys.executable, "-m", "audio", "sources"], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0 and "server_hum" in proc.stdout


# Each: a change to the good score (old → new), and what the error must say.
BAD = [
    ('seed = 2', 'seed = 2\ntitel = "x"', 'piece.titel: unknown key; did you mean "title"?'),
    ('rate = 180', 'rate = "fast"', 'voice.rate: must be a whole number, got "fast"'),
    ('rate = 180', 'rate = 900', "voice.rate: must be between 80 and 450, got 900"),
    ('name = "en-us"', 'name = "en-uss"', "voice.name: unknown voice 'en-uss'; nearest: en-us"),
    ('name = "en-us"', 'name = "en-us+wisper"', "voice.name: unknown voice variant 'wisper'"),
    ('source = "noise"', 'source = "noize"', 'layer "bed".source: unknown source "noize"; did you mean "noise"?'),
    ('color = "pink"', 'color = "purple"', "purple"),
    ('color = "pink"', 'colour = "pink"', 'did you mean "color"'),
    ('match = "Second sentence here."', 'match = "Nowhere in the text."',
     "cue[0].match: cue 'Nowhere in the text.' matches no sentence"),
    ('match = "Second sentence here."', 'match = "sentence"', "cue[0].match: cue 'sentence' matches 2 sentences"),
    ('name = "blip"', 'name = "bed"', 'layer[1].name: duplicate layer name "bed"'),
    ('end = "cue:Second sentence+0.5"', 'end = "cue:Second sentence-0.5"', 'layer "blip".end: the layer ends at'),
    ('end = "cue:Second sentence+0.5"', 'end = "later"', 'layer "blip".end: must be seconds, "end"'),
    ('start = "cue:Second sentence"', 'start = "cue:Fourth"', "layer \"blip\".start: anchor 'Fourth' matches no"),
    ('gain_db = -24', 'gain_db = 40', 'layer "bed".gain_db: must be between -120 and 12, got 40'),
    ('[pauses]', '[pause]', 'pause: unknown table; did you mean "pauses"?'),
    ('seed = 2', 'seed = 2\nseed = 3', "invalid TOML"),
    ('text = "TEXT"', 'text = "missing.txt"', "piece.text: text file not found"),
    ('[[cue]]', '[cue]', "cue: must be written [[cue]] (an array of tables), got {"),
    ('title = "Tiny"\n', '', "piece.title: is required but missing"),
]


@pytest.mark.parametrize("old, new, message", BAD, ids=[b[2][:40] for b in BAD])
def test_every_kind_of_score_error_exits_2_with_a_message_naming_the_key(tmp_path, old, new, message):
    assert old in GOOD
    path = write_score(tmp_path, GOOD.replace(old, new, 1), TEXT, name="bad")
    result = run("validate", path)
    assert result.exit_code == 2, result.output
    assert result.output.startswith(f"Error: {path}: ")
    assert message in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize("content, message", [
    (b"", "is empty"),
    (b"   \n\n  \t\n", "is empty"),
    (b"caf\xe9 au lait.", "is not UTF-8: byte 0xe9 at offset 3"),
    (b"\x00\x01\x02binary", "looks binary"),
])
def test_an_unusable_text_is_refused_with_the_reason(tmp_path, content, message):
    path = write_score(tmp_path, GOOD, "x", name="t")
    (tmp_path / "t.txt").write_bytes(content)
    result = run("validate", path)
    assert result.exit_code == 2 and "piece.text:" in result.output and message in result.output


def test_a_missing_score_file_is_an_error_not_a_traceback(tmp_path):
    result = run("render", tmp_path / "nope.toml")
    assert result.exit_code == 2
    assert "nope.toml: score file not found" in result.output


def test_a_render_error_leaves_no_output_behind(tmp_path):
    path = write_score(tmp_path, GOOD.replace('rate = 180', 'rate = 900'), TEXT, name="bad")
    result = run("render", path, "-o", tmp_path / "out")
    assert result.exit_code == 2
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_from_and_to_write_a_preview_of_the_span(good, tmp_path):
    result = run("render", good, "-o", tmp_path, "--from", "0:01", "--to", "2.5", "--format", "wav")
    assert result.exit_code == 0, result.output
    assert sf.info(str(tmp_path / "tiny.preview.wav")).frames == round(1.5 * 44100)


def test_a_preview_that_ends_before_it_starts_is_a_usage_error(good, tmp_path):
    result = run("render", good, "-o", tmp_path, "--from", "1:00", "--to", "0:30")
    assert result.exit_code == 2 and "--to" in result.output


def test_info_describes_a_rendered_file_and_a_score(good, tmp_path):
    assert run("render", good, "-o", tmp_path / "out", "--format", "mp3", "-q").exit_code == 0
    result = run("info", tmp_path / "out" / "tiny.mp3")
    assert result.exit_code == 0, result.output
    assert re.search(r"loudness_lufs\s+-1[5-7]\.\d", result.output) and "chapters" in result.output
    result = run("info", good, "-o", tmp_path / "out")
    assert result.exit_code == 0
    assert re.search(r"cue_count\s+3\b", result.output) and re.search(r"1\. bed\s+0:00", result.output)


def test_info_on_a_missing_file_is_a_clear_error(tmp_path):
    result = run("info", tmp_path / "nope.wav")
    assert result.exit_code == 2 and "nope.wav" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("kind", ["fifo", "text", "empty"])
def test_info_on_a_file_that_is_not_audio_is_bad_input_exit_2(tmp_path, kind):
    path = tmp_path / "x.wav"
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path.write_bytes(b"RIFF but not really a wave file" if kind == "text" else b"")
    result = run("info", path)
    assert result.exit_code == 2, result.output
    assert result.output.startswith("Error: ") and "x.wav" in result.output and result.output.count("\n") == 1


def test_the_readme_documents_every_score_key():
    from audio import score
    readme = (REPO / "README.md").read_text()
    for table, fields in {**score.TABLES, **score.ARRAYS}.items():
        for f in fields:
            assert f"`{f.name}`" in readme, f"{table}.{f.name} is not in the README"
    for name in score.PRESETS:
        assert name in readme


def test_picture_draws_a_png_beside_the_render(good, tmp_path):
    result = run("render", good, "-o", tmp_path, "--format", "wav", "--picture", "-q")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "tiny.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    result = run("render", good, "-o", tmp_path / "b", "--format", "mp3", "--picture")
    assert result.exit_code == 2 and "WAV or FLAC" in result.output
    assert not list((tmp_path / "b").glob("*.mp3"))  # refused before any work


def test_the_render_line_says_the_size_of_each_audio_file(tmp_path):
    result = run("render", write_score(tmp_path, GOOD, TEXT), "-o", tmp_path / "out", "--format", "wav,mp3")
    assert result.exit_code == 0, result.output
    assert re.search(r"piece\.wav \(\d+(\.\d)? (kB|MB)\), piece\.mp3 \(\d+(\.\d)? (kB|MB)\)", result.output)


def test_an_mp3_past_the_podcast_limit_is_a_warning_that_names_a_mode_that_fits(tmp_path, monkeypatch):
    monkeypatch.setattr(export, "PODCAST_MAX_BYTES", 60_000)  # six seconds at 192 kbit/s pass it
    result = CliRunner().invoke(main, ["render", str(write_score(tmp_path, GOOD, TEXT)), "-o",
                                       str(tmp_path / "out"), "--format", "mp3"])
    assert result.exit_code == 0, result.output
    assert re.search(r"Warning: piece: the MP3 is \d+ kB, over the 60 kB many podcast hosts take; --mp3 cbr\d+ fits",
                     result.output)


@pytest.mark.parametrize("duration_s, mode", [(2 * 3600, "cbr192"), (2 * 3600 + 20 * 60, "cbr160"),
                                              (3 * 3600, "cbr128"), (8 * 3600, "cbr48"), (60 * 3600, None)])
def test_the_mp3_mode_that_fits_200_mb(duration_s, mode):
    assert export.mp3_mode_that_fits(duration_s) == mode
