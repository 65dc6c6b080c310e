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


# ---------------------------------------------------------------- the README's limits and the code's

def limits_section() -> str:
    section = README.split("### Limits", 1)[1].split("\n### ", 1)[0]
    return " ".join(section.split())


def documented_limits() -> dict:
    """Each limit constant the code enforces, and the words the README's Limits section gives it."""
    from audio import effects, manifest, markup, timeexpr, tomlguard
    from audio.files import cover
    from audio.sources import sample
    from audio.speech import clip
    rates = next(f for f in score.PIECE_FIELDS if f.name == "sample_rate")
    return {
        "MAX_DURATION_S": f"at most {timeexpr.MAX_DURATION_S / 3600:g} hours",
        "MAX_TEXT_BYTES": f"at most {score.MAX_TEXT_BYTES:,} bytes of UTF-8",
        "MAX_SENTENCES": f"at most {score.MAX_SENTENCES:,} sentences",
        "MAX_LAYERS": f"at most {score.MAX_LAYERS} layers",
        "MAX_CUES": f"at most {score.MAX_CUES:,} cues, and at most {score.MAX_CUES:,} each of `[[say]]`, "
                    "`[[speaker]]` and `[[span]]`",
        "sample_rate": f"sample rates {rates.min:,} to {rates.max:,} Hz",
        "MAX_BREAK_S": f"a `<break>` is at most {markup.MAX_BREAK_S:,.0f} s",
        "MAX_SAMPLE_S": f"at most {sample.MAX_SAMPLE_S:.0f} s",
        "MAX_COVER_BYTES": f"at most {cover.MAX_COVER_BYTES:,} bytes",
        "MAX_COVER_PIXELS": f"{cover.MAX_COVER_PIXELS:,} pixels",
        "MAX_SCORE_BYTES": f"a score file is at most {score.MAX_SCORE_BYTES:,} bytes",
        "MAX_MANIFEST_BYTES": f"at most {manifest.MAX_MANIFEST_BYTES // 2**20} MiB",
        "MAX_WORD_CHARS": f"is at most {score.MAX_WORD_CHARS:,} characters",
        "MAX_UTTERANCE_CHARS": f"clause chunks of at most {clip.MAX_UTTERANCE_CHARS:,} characters",
        "MAX_CHAPTERS": f"at most {score.MAX_CHAPTERS} `[[chapter]]` tables",
        "MAX_CHAIN_EFFECTS": f"an effect chain holds at most {effects.MAX_CHAIN_EFFECTS} effects",
        "MAX_NESTING": f"nest at most {tomlguard.MAX_NESTING} levels deep",
        "MAX_DIGITS": f"has at most {tomlguard.MAX_DIGITS} digits",
    }


# MAX_ constants that are not limits on what a user gives: how the code works inside, or a warning
NOT_LIMITS = {
    "MAX_OVERSHOOT": "the true-peak meter's worst-case interpolation gain",
    "MAX_GAIN_ATTEMPTS": "passes of the loudness search",
    "MAX_PIECE": "the convolver's partition sizes",
    "MAX_CALL": "the convolver's block per call",
    "MAX_CHARS": "piper speaks a longer text in chunks, it is not refused",
    "PODCAST_MAX_BYTES": "a larger MP3 is a warning, not a refusal",
    "MAX_BOOST": "the noise filter's level correction",
    "MARKER_MAX_BYTES": "the size of the marker a render's work folder holds, which the sweep reads",
    "UINT32_MAX": "a file format's field (ID3 chapter times, RIFF sizes); 12 hours are well inside it",
}


def test_the_readme_limits_give_every_limit_the_code_enforces_with_its_value():
    section = limits_section()
    for name, words in documented_limits().items():
        assert words in section, (name, words)


def test_every_max_constant_in_the_code_is_a_documented_limit_or_said_not_to_be_one():
    found = {}
    for path in (REPO / "audio").rglob("*.py"):
        for line in path.read_text(encoding="utf-8").splitlines():
            m = re.match(r"\s*([A-Z][A-Z0-9_]*(?:\s*,\s*[A-Z][A-Z0-9_]*)*)\s*=(?!=)", line)
            if m:
                found.update({name.strip(): path.name for name in m.group(1).split(",") if "MAX" in name})
    unknown = {name: where for name, where in found.items() if name not in documented_limits()
               and name not in NOT_LIMITS}
    assert not unknown, f"limits missing from the README's Limits (and from documented_limits here): {unknown}"
