"""The README, every --help and the Makefile say what the tool does."""

import re
import shutil
import subprocess

import pytest
from click.testing import CliRunner
from conftest import REPO, write_score

from audio import export, schema, score
from audio.cli import main

README = (REPO / "README.md").read_text(encoding="utf-8")
BODY = """
[piece]
title = "Docs"
text = "TEXT"

[pauses]
lead_in = 0.5
tail = 0.5

[[layer]]
name = "air"
source = "noise"
gain_db = -24
"""


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_the_format_help_the_score_and_the_readme_name_every_format_there_is():
    assert tuple(export.FORMATS) == score.FORMATS
    help_text = " ".join(run("render", "--help").output.split())
    assert ",".join(score.FORMATS) in help_text.replace(" ", "")
    row = next(line for line in README.splitlines() if line.startswith("| `formats` |"))
    assert all(fmt in row for fmt in score.FORMATS), row


def test_the_mp3_help_names_the_modes_the_score_takes():
    help_text = " ".join(run("render", "--help").output.split())
    low, high = score.MP3_CBR_KBPS[0], score.MP3_CBR_KBPS[-1]
    assert f"cbr{low} .. cbr{high}" in help_text and "vbr0 .. vbr9" in help_text
    assert f"cbr{low} .. cbr{high}" in README and "vbr0 .. vbr9" in README


@pytest.mark.parametrize("command", ["render", "watch", "validate", "plan", "say"])
def test_every_cache_dir_option_says_what_it_is(command):
    assert "Speech clip cache" in run(command, "--help").output


def test_the_output_folder_help_says_it_is_relative_to_the_current_folder():
    assert "relative to the current folder" in " ".join(run("render", "--help").output.split())


def test_voices_for_a_language_no_voice_speaks_is_a_usage_error():
    result = CliRunner().invoke(main, ["voices", "--lang", "zz"])
    assert result.exit_code == 2 and "no voice speaks a language starting with 'zz'" in result.output


def test_sources_print_defaults_as_a_score_would_write_them():
    out = run("sources").output
    assert "odd_even = 1 " in out and 'color = "pink"' in out and "stutter = 4 " in out
    assert not re.search(r"\d\.\d{7,}", out)  # no float printed to its last digit
    assert schema.show_value(1 / 3) == "0.333333"  # as a default like 1/3 is listed


def test_what_the_readme_says_make_demo_writes_is_what_a_render_of_the_demo_formats_writes(tmp_path):
    demo_formats = next(f.default for f in score.MASTER_FIELDS if f.name == "formats")
    result = run("render", write_score(tmp_path, BODY, "Words.\n", name="NAME"), "-o", tmp_path / "out",
                 "--format", ",".join(demo_formats), "-q")
    assert result.exit_code == 0, result.output
    sentence = " ".join(README.split("`make demo` writes")[1].split(".\n")[0].split())
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written and all(f"`{name}`" in sentence for name in written), (written, sentence)


def test_make_clean_removes_everything_a_render_writes_and_keeps_the_folder(tmp_path):
    shutil.copy(REPO / "Makefile", tmp_path)
    out = tmp_path / "output"
    out.mkdir()
    (out / ".gitkeep").write_text("")
    for suffix in ("wav", "flac", "mp3", "ogg", "opus", "m4a", "m4b", "srt", "vtt", "json", "transcript.json",
                   "chapters.json", "png", "stem-voice.wav", "preview.wav"):
        (out / f"x.{suffix}").write_text("")
    subprocess.run(["make", "-s", "clean"], cwd=tmp_path, check=True, capture_output=True)
    assert [p.name for p in out.iterdir()] == [".gitkeep"]
