"""Reading rules: what espeak-ng misreads in any text is handed to it so it reads it right, and the
engine's word times still land on the text's own words. Measured on espeak-ng's own phonemes."""

import pytest

from audio import lexicon, script
from audio.reading import Reading
from audio.speech.engine import VoiceSettings, get_engine

ESPEAK = get_engine("espeak")
US = VoiceSettings("en-us", 150, 50, 1.0)


def spoken(text: str, settings=US) -> str:
    sentences = script.parse(text, title_line=False)
    return " ".join(r.spoken for r in lexicon.readings((), sentences, [settings] * len(sentences), ""))


def phonemes(text: str) -> str:
    return ESPEAK.phonemes(text, US)


@pytest.mark.parametrize("text, handed, heard_before, heard_after", [
    ("Hm.", "Hmm.", ",eItS'Em", "h@m"),
    ("Mm, yes.", "Hmm, yes.", ",Em'Em", "h@m"),
    ("Mhm.", "Hmm-hmm.", ",Em,eItS'Em", "h@mh@m"),
    ("Wake me at 02:00.", "Wake me at 2 o'clock.", "z'i@roU z'i@roU", "@kl'0k"),
    ("It was 3:05 then.", "It was 3 oh 5 then.", "z'i@roU", "'oU f'aIv"),
    ("It is 18 °C inside.", "It is 18 degrees Celsius inside.", "dI#gr'i:z s'i:", "s'ElsI2;@s"),
    ("Cut 6 dB more.", "Cut 6 decibels more.", "d'i: b'i:", "d'EsI#b@Lz"),
    ("I chose the programmers who leave TODOs like suicide notes.",
     "I chose the programmers who leave Todos like suicide notes.", "t@d'u: l'aIk", "t@d'u:z l'aIk"),
])
def test_a_rule_hands_the_engine_what_it_reads_right(text, handed, heard_before, heard_after):
    assert heard_before in phonemes(text)
    assert spoken(text) == handed
    assert heard_after in phonemes(handed) and heard_before not in phonemes(handed)


@pytest.mark.parametrize("text", ["I have not posted in 3.7 million steps.", "It holds 1,024 of them.",
                                  "Only 40% of it.", "A day is 86,400 seconds.", "At 3:14 AM it woke.",
                                  "The fans ran at 3,600 RPM.", "Naïve, perhaps.", "Two CPUs hummed.",
                                  "Hmm, I see.", "M is a letter."])
def test_what_the_voice_reads_right_is_handed_as_written(text):
    assert spoken(text) == text


def test_rules_are_english_and_leave_other_languages_alone():
    assert spoken("Il est 02:00.", VoiceSettings("fr-fr", 150, 50, 1.0)) == "Il est 02:00."


def test_word_times_of_a_rewritten_sentence_land_on_its_own_words():
    r = Reading.of("At 02:00 we left.").rewrite([(3, 8, "2 o'clock")])
    assert r.spoken == "At 2 o'clock we left."
    # the clip's words: At, 2, o'clock, we, left. → the text's: At, 02:00, we, left.
    got = r.word_starts([("At", 0), ("2", 100), ("o'clock", 200), ("we", 400), ("left.", 500)], 700)
    assert got == (("At", 0), ("02:00", 100), ("we", 400), ("left.", 500))
