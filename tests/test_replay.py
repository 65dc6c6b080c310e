"""A manifest is a replayable plan: `Plan.from_dict` gives the plan back, `piece render NAME.json`
renders the same audio from it alone."""

import json

import pytest
from click.testing import CliRunner
from conftest import write_score

from audio import plan as plan_module
from audio import score
from audio.cli import main
from audio.speech.cache import ClipCache

BODY = """
[piece]
title = "Replay"
text = "TEXT"
seed = 5
author = "Someone"

[pauses]
lead_in = 0.4
tail = 0.6

[[layer]]
name = "bed"
source = "noise"
gain_db = -26
duck_db = 4
[layer.params]
color = "brown"
low_hz = [[0, 200], ["end", 800, "exp"]]

[[layer]]
name = "blip"
source = "tone"
start = "cue:Then a second"
end = "cue:Then a second+0.4"

[[chapter]]
title = "Only"
at = 0

[master]
formats = ["wav"]
"""
TEXT = "A first line.\nThen a second one.\n"


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_a_plan_survives_its_manifest(tmp_path):
    path = write_score(tmp_path, BODY, TEXT)
    plan = plan_module.resolve(score.load(path), ClipCache())
    again = plan_module.Plan.from_dict(json.loads(json.dumps(plan.to_dict())))
    assert again == plan


def test_rendering_a_manifest_gives_the_same_audio(tmp_path):
    path = write_score(tmp_path, BODY, TEXT)
    assert run("render", path, "-o", tmp_path / "a", "-q").exit_code == 0
    result = run("render", tmp_path / "a" / "piece.json", "-o", tmp_path / "b", "--format", "wav,flac", "-q")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "b" / "piece.wav").read_bytes() == (tmp_path / "a" / "piece.wav").read_bytes()
    assert (tmp_path / "b" / "piece.flac").exists()
    replayed = json.loads((tmp_path / "b" / "piece.json").read_text())
    assert replayed["cues"] == json.loads((tmp_path / "a" / "piece.json").read_text())["cues"]


@pytest.mark.parametrize("content, what", [
    ("{", "not a JSON manifest"),
    ('{"name": "x"}', "not a render manifest"),
    ("[1, 2]", "not a render manifest"),
])
def test_a_file_that_is_not_a_manifest_is_a_score_error(tmp_path, content, what):
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    result = CliRunner().invoke(main, ["render", str(bad), "-o", str(tmp_path / "o")])
    assert result.exit_code == 2 and f"Error: {bad}: {what}" in result.output, result.output


def test_options_that_change_the_plan_are_refused_for_a_manifest(tmp_path):
    path = write_score(tmp_path, BODY, TEXT)
    assert run("render", path, "-o", tmp_path / "a", "-q").exit_code == 0
    result = CliRunner().invoke(main, ["render", str(tmp_path / "a" / "piece.json"), "--duration", "1m"])
    assert result.exit_code == 2 and "--duration changes the plan" in result.output
