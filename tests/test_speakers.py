"""Speakers and spans: who speaks each line, with which voice, credited in the captions; a run of
sentences directed by one table. The two-speaker example renders with the right voices and <v> names."""

import json
import re

import numpy as np
import pytest
from conftest import REPO, write_score

from audio import mixer, plan, render, score, script
from audio.errors import ScoreError
from audio.speech import engine as speech_engine
from audio.speech.cache import ClipCache
from test_speech_engine import Tones

EXAMPLE = REPO / "scores" / "examples" / "the-night-shift.toml"


@pytest.fixture(scope="module")
def night_shift(tmp_path_factory, clip_cache):
    out = tmp_path_factory.mktemp("night-shift")
    cache = ClipCache(clip_cache / "tts")
    p = plan.resolve(score.with_options(score.load(EXAMPLE), formats=("wav",)), cache)
    manifest = render.render(p, cache, out)
    return p, manifest, out, cache


def f0_hz(x: np.ndarray, rate: int) -> float:
    """The median fundamental of the voiced 40 ms frames of ``x`` (autocorrelation, 60–400 Hz)."""
    n = round(0.04 * rate)
    found = []
    for a in range(0, x.size - n, n):
        frame = x[a: a + n] - x[a: a + n].mean()
        if np.sqrt(np.mean(frame ** 2)) < 0.02:
            continue
        ac = np.correlate(frame, frame, "full")[n - 1:]
        lo, hi = rate // 400, rate // 60
        lag = lo + int(np.argmax(ac[lo:hi]))
        if ac[lag] > 0.5 * ac[0]:
            found.append(rate / lag)
    return float(np.median(found))


def test_each_line_is_spoken_by_its_speaker_and_the_label_is_not_spoken(night_shift):
    p, manifest, _, _ = night_shift
    by_text = {c["text"]: c for c in manifest["cues"]}
    assert by_text["The tapes go into the vault."]["speaker"] == "KEEPER"
    assert by_text["Every night, the same."]["speaker"] == "KEEPER"  # the rest of the paragraph
    assert by_text["I am one of the files."]["speaker"] == "ARCHIVIST"
    assert by_text["Two voices keep it."]["speaker"] == ""  # the narrator
    voices = {c["speaker"]: c["voice"]["name"] for c in manifest["cues"]}
    assert voices == {"": "en-us", "KEEPER": "en-gb", "ARCHIVIST": "en-us+f2"}
    assert not any("KEEPER" in c["spoken"] or "ARCHIVIST" in c["text"] for c in manifest["cues"])


def test_the_speakers_sound_as_their_voices(night_shift):
    p, _, _, cache = night_shift
    x = np.concatenate(list(mixer.render_blocks(p, cache, layer_names=[]))).mean(axis=1)
    pitch = {}
    for who in ("KEEPER", "ARCHIVIST"):
        parts = [x[c.start_sample: c.start_sample + c.n_samples] for c in p.cues if c.speaker == who]
        pitch[who] = f0_hz(np.concatenate(parts), p.sample_rate)
    assert pitch["ARCHIVIST"] > 1.4 * pitch["KEEPER"], pitch  # f2 at pitch 75 over en-gb at pitch 30


def test_captions_credit_who_speaks(night_shift):
    p, _, out, _ = night_shift
    vtt = (out / "the-night-shift.vtt").read_text()
    named = [re.match(r"<v ([^>]+)>", block.split("\n")[1])[1] for block in vtt.strip().split("\n\n")[1:]]
    expected = [c.speaker or "Narrator" for c in p.cues]
    assert named == expected  # every sentence here fits one caption
    transcript = json.loads((out / "the-night-shift.transcript.json").read_text())
    speakers = [s["speaker"] for s in transcript["segments"]]
    assert speakers.count("KEEPER") == sum(len(c.text.split()) for c in p.cues if c.speaker == "KEEPER")
    srt = (out / "the-night-shift.srt").read_text()
    assert "KEEPER: The tapes go into the vault." in srt and "KEEPER: Every night" not in srt


def test_a_span_directs_every_sentence_of_its_run(night_shift):
    p, _, _, _ = night_shift
    run = [c for c in p.cues if c.index >= next(c.index for c in p.cues if c.text == "The fans spin on.")]
    assert [(c.voice["rate"], c.gain_db) for c in run] == [(120, -3.0)] * 3
    assert run[-1].speaker == "KEEPER" and run[-1].voice["name"] == "en-gb"  # a span over a speaker's line
    before = [c for c in p.cues if c.index < run[0].index]
    assert all(c.voice["rate"] != 120 for c in before)


def test_a_word_anchor_starts_on_its_word_not_its_sentence(night_shift):
    p, _, _, _ = night_shift
    relay = next(la for la in p.layers if la.name == "relay")
    cue = next(c for c in p.cues if c.text == "The tapes go into the vault.")
    vault = next(a for w, a, _ in cue.words if w == "vault.")
    assert relay.start_s == pytest.approx(vault, abs=0.0001)
    assert relay.start_s - cue.start_s > 1.0  # where "cue:" would have started it


BODY = """
[piece]
title = "Cast"
text = "TEXT"
sample_rate = 22050
[voice]
rate = 150
[pauses]
lead_in = 0.2
tail = 0.2
[master]
formats = ["wav"]
"""


@pytest.fixture
def tones(monkeypatch):
    monkeypatch.setitem(speech_engine.engines, "espeak", Tones())


def resolve(tmp_path, tables, text):
    return plan.resolve(score.load(write_score(tmp_path, BODY + tables, text)), ClipCache(tmp_path / "cache"))


def test_a_cue_wins_over_a_span_which_wins_over_a_speaker(tmp_path, tones):
    tables = ('[[speaker]]\nname = "ANN"\nrate = 200\npitch = 20\nvolume = 0.5\n'
              '[[span]]\nfrom = "One."\nto = "Three."\nrate = 100\npitch = 30\n'
              '[[cue]]\nmatch = "Two."\nrate = 90\n')
    p = resolve(tmp_path, tables, "ANN: One.\nTwo. Three.\n\nFour.\n")
    got = [(c.speaker, c.voice["rate"], c.voice["pitch"], c.voice["volume"]) for c in p.cues]
    assert got == [("ANN", 100, 30, 0.5), ("ANN", 90, 30, 0.5), ("ANN", 100, 30, 0.5), ("", 150, 50, 1.0)]


def test_a_label_alone_on_its_line_starts_a_turn_and_a_blank_line_ends_it():
    got = [(s.text, s.speaker) for s in script.parse("ANN:\nHello.\nAgain.\n\nBOB: Hi. NOTE: kept.\nOn.\n",
                                                       False, speakers=("ANN", "BOB"))]
    assert got == [("Hello.", "ANN"), ("Again.", "ANN"), ("Hi.", "BOB"), ("NOTE: kept.", "BOB"), ("On.", "BOB")]


@pytest.mark.parametrize("tables, message", [
    ('[[speaker]]\nname = "BOB"\n', r"speaker\[0\]\.name: no line of .* begins with the label 'BOB:'"),
    ('[[speaker]]\nname = "ANN"\n[[speaker]]\nname = "ANN"\n', r'speaker\[1\]\.name: duplicate speaker "ANN"'),
    ('[[speaker]]\nname = "ANN:"\n', r"speaker\[0\]\.name: must be a label"),
    ('[[span]]\nfrom = "Two."\nto = "One."\nrate = 100\n', r"span\[0\]\.to: 'One\.' \(line 1\) comes before"),
    ('[[span]]\nfrom = "Nope."\nto = "One."\n', r"span\[0\]\.from: span start 'Nope\.' matches no sentence"),
    ('[[span]]\nfrom = "One."\nto = "Two."\npause_after = 1\n', r"span\[0\]\.pause_after: unknown key"),
])
def test_a_speaker_or_span_that_cannot_apply_is_a_score_error(tmp_path, tones, tables, message):
    with pytest.raises(ScoreError, match=message):
        resolve(tmp_path, tables, "ANN: One.\nTwo.\n")


def test_a_speakers_voice_is_checked_as_the_score_loads(tmp_path):
    path = write_score(tmp_path, BODY + '[[speaker]]\nname = "ANN"\nvoice = "en-uss"\n', "ANN: One.\n")
    with pytest.raises(ScoreError, match=r"speaker\[0\]\.voice: unknown voice 'en-uss'"):
        score.load(path)
