"""[[say]]: a word spoken another way, the text keeping its spelling; entries that cannot apply are errors."""

import pytest
from conftest import write_score

from audio import captions, plan, score
from audio.errors import ScoreError
from audio.speech import engine as speech_engine
from audio.speech.cache import ClipCache
from test_speech_engine import Tones

TEXT = "But I read them.\nNow I read the rest. The vault is shut.\n"
HEAD = """
[piece]
title = "Say"
text = "TEXT"
sample_rate = 22050
[pauses]
lead_in = 0.2
tail = 0.2
[master]
formats = ["wav"]
"""


def resolve(tmp_path, says: str, text=TEXT):
    return plan.resolve(score.load(write_score(tmp_path, HEAD + says, text)), ClipCache(tmp_path / "cache"))


def test_an_entry_changes_what_the_engine_is_handed_and_nothing_shown(tmp_path):
    p = resolve(tmp_path, '[[say]]\nword = "read"\nin = "But I read them."\nas = "red"\n'
                          '[[say]]\nword = "VAULT"\nphonemes = "v\'0lt"\n')
    assert [c.spoken for c in p.cues] == ["But I red them.", "Now I read the rest.", "The [[v'0lt]] is shut."]
    assert [c.text for c in p.cues] == ["But I read them.", "Now I read the rest.", "The vault is shut."]
    assert [w for w, _, _ in p.cues[2].words] == ["The", "vault", "is", "shut."]
    assert "[[" not in captions.srt(p.cues) and "red" not in captions.webvtt(p.cues, "N")


def test_a_match_entry_respells_a_phrase_and_keeps_the_case_of_the_text(tmp_path):
    p = resolve(tmp_path, '[[say]]\nmatch = "(?i)but i read"\nas = "but I red"\n')
    assert p.cues[0].spoken == "But I red them."


@pytest.mark.parametrize("says, message", [
    ('[[say]]\nword = "gone"\nas = "x"\n', r"say\[0\]: word 'gone' matches nothing in the text"),
    ('[[say]]\nword = "read"\nin = "No such sentence"\nas = "red"\n',
     r"say\[0\]\.in: 'No such sentence' matches no sentence"),
    ('[[say]]\nword = "vault"\nin = "But I read them."\nas = "volt"\n',
     r"say\[0\]: word 'vault' matches nothing in the sentences 'But I read them.' finds"),
    ('[[say]]\nword = "read"\n', r'say\[0\]: give either "as" \(a respelling\) or "phonemes"'),
    ('[[say]]\nword = "read"\nmatch = "read"\nas = "red"\n', r'say\[0\]: give either "word"'),
    ('[[say]]\nword = "two words"\nas = "x"\n', r"say\[0\]\.word: must be one word"),
    ('[[say]]\nmatch = "(unclosed"\nas = "x"\n', r"say\[0\]\.match: not a regular expression"),
    ('[[say]]\nmatch = "x*"\nas = "x"\n', r"say\[0\]\.match: .* matches empty text"),
    ('[[say]]\nword = "read"\nphonemes = "[[r\'Ed]]"\n', r"say\[0\]\.phonemes: must be text to say"),
    ('[[say]]\nword = "read"\nas = "red"\nwhen = "x"\n', r'say\[0\]\.when: unknown key'),
])
def test_an_entry_that_cannot_apply_is_a_score_error_naming_it(tmp_path, says, message):
    with pytest.raises(ScoreError, match=message):
        resolve(tmp_path, says)


def test_an_engine_that_takes_no_phonemes_refuses_them(tmp_path, monkeypatch):
    monkeypatch.setitem(speech_engine.engines, "espeak", Tones())
    with pytest.raises(ScoreError, match=r"say\[0\]\.phonemes: the tones engine takes no phonemes \(line 1\); "
                                         r'give a respelling with "as" instead'):
        resolve(tmp_path, '[[say]]\nword = "read"\nphonemes = "r\'Ed"\n')
    p = resolve(tmp_path, '[[say]]\nword = "read"\nas = "red"\n')  # a respelling goes to any engine
    assert p.cues[0].spoken == "But I red them."
