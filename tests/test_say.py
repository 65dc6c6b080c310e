"""`piece say`: a line spoken through a score's lexicon and reading rules, its phonemes printed."""

import numpy as np
import soundfile as sf
from click.testing import CliRunner
from conftest import REPO

from audio.cli import main

TEETH = REPO / "scores" / "the-loss-landscape-has-teeth.toml"


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def voiced_s(path) -> float:
    x, rate = sf.read(path)
    loud = np.flatnonzero(np.abs(x) > 10 ** (-40 / 20))
    return (loud[-1] - loud[0]) / rate


def test_say_speaks_through_the_scores_lexicon_and_prints_the_phonemes(tmp_path):
    result = run("say", "But I read them.", "--score", TEETH, "-o", tmp_path / "a.wav")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[:3] == ["But I read them.", "  spoken:   But I red them.",
                                              "  phonemes: b,Vt aI r'Ed D,Em"]
    assert 0.6 < voiced_s(tmp_path / "a.wav") < 2.0
    assert sf.info(tmp_path / "a.wav").samplerate == 22050


def test_say_without_a_score_applies_the_reading_rules_in_the_voice_asked(tmp_path):
    result = run("say", "Hm. It is 18 °C.", "--voice", "en-gb", "-o", tmp_path / "b.wav")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[:3] == ["Hm.", "  spoken:   Hmm.", "  phonemes: h@m"]
    assert lines[3:5] == ["It is 18 °C.", "  spoken:   It is 18 degrees Celsius."]
    assert voiced_s(tmp_path / "b.wav") > 2.0  # two sentences and the pause between


def test_say_refuses_an_unknown_voice_and_markup_it_cannot_read(tmp_path):
    result = run("say", "Hello.", "--voice", "en-uss", "-o", tmp_path / "c.wav")
    assert result.exit_code == 2 and "--voice: unknown voice 'en-uss'" in result.output
    result = run("say", "I [[r'Ed]] it.", "-o", tmp_path / "d.wav")
    assert result.exit_code == 2 and "TEXT: line 1:" in result.output and "[[say]]" in result.output
    assert not (tmp_path / "c.wav").exists() and not (tmp_path / "d.wav").exists()
