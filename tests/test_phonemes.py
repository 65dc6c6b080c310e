"""espeak-ng's phonemes: shown for a text, and spoken as they are from [[...]] in what it is handed."""

import pytest

from audio.speech.clip import trim_bounds
from audio.speech.engine import VoiceSettings, get_engine

ESPEAK = get_engine("espeak")
SETTINGS = VoiceSettings("en-us", 150, 50, 1.0)


def voiced_s(text: str) -> float:
    clip = ESPEAK.speak(text, SETTINGS)
    start, end = trim_bounds(clip.samples, clip.rate_hz)
    return (end - start) / clip.rate_hz


def test_phonemes_are_espeak_ngs_ascii_codes_and_blocks_pass_through():
    assert ESPEAK.phonemes("But I read them.", SETTINGS) == "b,Vt aI r'i:d D,Em"
    assert ESPEAK.phonemes("But I [[r'Ed]] them.", SETTINGS).split()[-2:] == ["r'Ed", "D,Em"]


def test_a_phoneme_block_is_spoken_as_phonemes_not_spelled_out():
    # read as text, "[[r'Ed]]" would be spelled: "ar", "red", a third longer
    assert voiced_s("But I [[r'Ed]] them.") == pytest.approx(voiced_s("But I red them."), rel=0.04)
    clip = ESPEAK.speak("But I [[r'Ed]] them.", SETTINGS)
    assert [w for w, _ in clip.words] == ["But", "I", "[[r'Ed]]", "them."]


def test_a_sentence_spoken_in_clauses_never_cuts_its_phonemes():
    from audio.speech.clip import split_clauses
    text = "I am predicting your [[s@k'A:dz]], every one; [[h@'loU w'3:ld]] and the rest of it, slowly."
    chunks = split_clauses(text, limit=24)
    assert len(chunks) >= 3 and " ".join(chunks) == text
    assert all(c.count("[[") == c.count("]]") for c in chunks)
