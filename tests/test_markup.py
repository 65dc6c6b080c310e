"""Markup pasted into a text is honoured or refused with a clear error, never read aloud nor captioned."""

import pytest
from conftest import write_score

from audio import markup, plan, score, script
from audio.errors import ScoreError
from audio.speech import engine as speech_engine
from audio.speech.cache import ClipCache
from test_speech_engine import Tones

BODY = """
[piece]
title = "Markup"
text = "TEXT"
sample_rate = 22050
[pauses]
lead_in = 0.5
sentence = 0.4
line = 0.9
paragraph = 2.0
tail = 0.5
[master]
formats = ["wav"]
"""


def texts(text):
    return [(s.text, s.brk) for s in script.parse(text, title_line=False)]


def test_markdown_is_read_as_it_renders():
    text = ("# The *Vault*\nIt is **shut**, and _nobody_ has the `key`. See [the log](http://x/log).\n"
            "- one item\n* * *\nTom &amp; Jerry &lt;3 and 5 * 3 = 15.\n")
    assert texts(text) == [("The Vault", "paragraph"), ("It is shut, and nobody has the key.", "sentence"),
                           ("See the log.", "line"), ("one item", "paragraph"),
                           ("Tom & Jerry <3 and 5 * 3 = 15.", "end")]


def test_a_break_ends_its_sentence_with_its_pause():
    got = [(s.text, s.pause) for s in script.parse('Wait <break time="1.5s"/> now. Go.<break/>\nOn.', False)]
    assert got == [("Wait", 1.5), ("now.", None), ("Go.", "sentence"), ("On.", None)]


def test_a_break_is_the_pause_in_samples(tmp_path, monkeypatch):
    monkeypatch.setitem(speech_engine.engines, "espeak", Tones())
    path = write_score(tmp_path, BODY, 'One two. <break time="750ms"/> Three four.\nFive.\n')
    p = plan.resolve(score.load(path), ClipCache(tmp_path / "cache"))
    gaps = [b.start_sample - (a.start_sample + a.n_samples) for a, b in zip(p.cues, p.cues[1:])]
    assert gaps == [round(0.75 * 22050), round(0.9 * 22050)]  # the break in place of the sentence pause


@pytest.mark.parametrize("line, message", [
    ("I [[r'Ed]] it.", r"piece\.text: line 2: \"\[\[r'Ed\]\]\": phonemes in the text .* \[\[say\]\] entry"),
    ('<prosody rate="slow">Slow.</prosody>',
     r"line 2: <prosody>: this markup is not read .* \[\[cue\]\] or \[\[span\]\]"),
    ('<phoneme ph="x">word</phoneme>', r"<phoneme>: .* a \[\[say\]\] entry with phonemes"),
    ("<emphasis>No.</emphasis>", r"<emphasis>: .*there is no emphasis control"),
    ('Wait <break time="2 seconds"/>.', r'<break time="2 seconds">: give seconds or milliseconds'),
    ('Wait <break time="2h"/>.', r"give seconds or milliseconds"),
    ('Wait <break strength="huge"/>.', r'<break strength="huge">: must be one of none, x-weak'),
    ('Wait <break time="4000s"/>.', r"is longer than 3600 s"),
    ("Wait <break time=2s/> now.", r"'<break time=2s/> now.': an SSML tag this cannot read"),
])
def test_markup_that_is_not_read_is_a_score_error_naming_the_line(tmp_path, line, message):
    path = write_score(tmp_path, BODY, f"First line.\n{line}\n")
    with pytest.raises(ScoreError, match=message):
        score.load(path)


def test_text_that_only_looks_like_markup_is_text():
    markup.check("if a<b and b>c then 3 < 4 > 2; <tag> is not SSML", "x")
    assert texts("a<b and b>c") == [("a<b and b>c", "end")]
