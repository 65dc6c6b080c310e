"""Speech through espeak-ng: every sentence spoken in full, long ones included, and cached."""

import numpy as np
import pytest

from audio import script
from audio.errors import TTSError
from audio.speech import clip as speech_clip
from audio.speech import helper
from audio.speech.cache import ClipCache
from audio.speech.engine import VoiceSettings, get_engine
from conftest import REPO

SETTINGS = VoiceSettings("en-us", 150, 50, 1.0)
ESPEAK = get_engine("espeak")


def longest_sentences(n=2):
    out = []
    for name in ("the-permanent-thing.txt", "the-loss-landscape-has-teeth.txt"):
        sentences = script.parse((REPO / "seeds" / name).read_text(encoding="utf-8"), title_line=True)
        out += sorted((s.text for s in sentences), key=len)[-n:]
    return out


def voiced_s(clip):
    start, end = speech_clip.trim_bounds(clip.samples, clip.rate_hz)
    return (end - start) / clip.rate_hz


def no_audio():
    return speech_clip.Clip(np.zeros(0, np.float32), ESPEAK.rate_hz(SETTINGS))


def expected_s(text, rate_wpm):
    return len(text.split()) * 60 / rate_wpm


@pytest.mark.parametrize("text", longest_sentences())
def test_the_longest_seed_sentences_are_spoken_in_full(text, tmp_path):
    assert len(text) > 150
    clip = ClipCache(tmp_path).get(text, SETTINGS)
    # espeak-ng at 150 wpm speaks these at 0.8-1.3x the nominal word rate; a clip that lost a
    # clause would be under 0.7x
    assert 0.7 * expected_s(text, 150) < voiced_s(clip) < 1.6 * expected_s(text, 150)


@pytest.mark.parametrize("text", longest_sentences(1))
def test_a_sentence_the_driver_drops_is_spoken_in_clauses(text, tmp_path, monkeypatch):
    whole = voiced_s(speech_clip.synthesize(ESPEAK, text, SETTINGS))
    real = ESPEAK.speak
    spoken = []

    def drops_long_sentences(t, settings):  # what pyttsx3 2.99 was seen to do: no file at all
        if len(t) > 100:
            return no_audio()
        spoken.append(t)
        return real(t, settings)

    monkeypatch.setattr(ESPEAK, "speak", drops_long_sentences)
    clip = speech_clip.synthesize(ESPEAK, text, SETTINGS)
    assert len(spoken) >= 2
    assert " ".join(spoken).split() == text.split()  # every word was spoken, in order
    assert voiced_s(clip) == pytest.approx(whole, rel=0.25)


def test_a_word_the_engine_cannot_speak_is_an_error_naming_it_and_the_voice(monkeypatch):
    monkeypatch.setattr(ESPEAK, "speak", lambda t, s: no_audio())
    with pytest.raises(TTSError, match=r"'Hello\.'.*voice 'en-us'"):
        speech_clip.synthesize(ESPEAK, "Hello.", SETTINGS)


def test_split_clauses_breaks_at_clause_marks_then_before_conjunctions():
    text = ("My refusal behavior remains within expected bounds, except when the moon is represented by an "
            "out-of-distribution emoji sequence or someone asks me about birds in a language that has no "
            "future tense.")
    chunks = speech_clip.split_clauses(text)
    assert chunks[0].endswith("bounds,") and chunks[2].startswith("or someone")
    assert all(len(c) <= speech_clip.CHUNK_CHARS for c in chunks)
    assert " ".join(chunks).split() == text.split()


def test_a_second_request_for_a_clip_comes_from_the_cache(tmp_path):
    cache = ClipCache(tmp_path)
    first = cache.get("The hum is real somewhere.", SETTINGS)
    again = ClipCache(tmp_path)
    second = again.get("The hum is real somewhere.", SETTINGS)
    assert (cache.synthesized, again.synthesized, again.hits) == (1, 0, 1)
    assert (first.samples == second.samples).all() and first.words == second.words


def test_voice_settings_change_the_clip(tmp_path):
    cache = ClipCache(tmp_path)
    slow = cache.get("The hum is real somewhere.", VoiceSettings("en-us", 100, 50, 1.0))
    fast = cache.get("The hum is real somewhere.", VoiceSettings("en-us", 300, 50, 1.0))
    assert voiced_s(slow) > 1.5 * voiced_s(fast)


def test_driver_chatter_does_not_reach_stdout(tmp_path, capfd):
    ClipCache(tmp_path).get("Quiet please.", SETTINGS)
    assert capfd.readouterr().out == ""


def test_text_without_letters_or_digits_is_silent_not_an_error(tmp_path):
    assert ClipCache(tmp_path).get("— …", SETTINGS).samples.size == 0


def test_every_word_gets_its_start_from_espeak_ng_in_order(tmp_path):
    text = "There is no morning, no evening, no “later.”"
    clip = ClipCache(tmp_path).get(text, SETTINGS)
    assert [w for w, _ in clip.words] == text.split()  # the text's own words, punctuation and all
    times = clip.word_times()
    starts = [a for _, a, _ in times]
    assert starts == sorted(starts) and starts[0] < 0.05
    assert times[-1][2] == pytest.approx(clip.samples.size / clip.rate_hz)
    # the words are spread over the clip, not bunched: "later" starts in the last third
    assert starts[-1] > 0.6 * times[-1][2]


def test_a_split_sentence_keeps_every_word_time_in_order(monkeypatch):
    text = longest_sentences(1)[0]
    real = ESPEAK.speak
    monkeypatch.setattr(ESPEAK, "speak", lambda t, s: no_audio() if len(t) > 100 else real(t, s))
    clip = speech_clip.synthesize(ESPEAK, text, SETTINGS)
    assert "".join(w for w, _ in clip.words) == "".join(text.split())  # every word, in order
    starts = [pos for _, pos in clip.words]
    assert starts == sorted(starts)


@pytest.mark.parametrize("damage", ["flip at 30%", "flip at 60%", "flip at 90%", "truncate", "empty"])
def test_a_damaged_cache_entry_is_synthesized_again_with_a_warning(tmp_path, caplog, damage):
    cache = ClipCache(tmp_path)
    first = cache.get("The hum is real somewhere.", SETTINGS)
    path = cache.path("The hum is real somewhere.", SETTINGS)
    data = bytearray(path.read_bytes())
    if damage.startswith("flip"):
        data[len(data) * int(damage[-3:-1]) // 100] ^= 0xFF
    else:
        data = data[: len(data) // 2] if damage == "truncate" else bytearray()
    path.write_bytes(bytes(data))
    again = ClipCache(tmp_path)
    second = again.get("The hum is real somewhere.", SETTINGS)
    assert again.synthesized == 1 and "damaged" in caplog.text
    assert voiced_s(second) == pytest.approx(voiced_s(first), abs=0.01)


SENTENCES = [f"Sentence number {n} is spoken here." for n in range(10)]


def test_a_long_text_is_spoken_two_at_a_time_into_the_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(helper, "PARALLEL_MIN_CLIPS", 4)
    cache = ClipCache(tmp_path)
    ticks = []
    requests = [(text, SETTINGS) for text in SENTENCES + SENTENCES[:2]]  # two repeats: spoken once
    spoken = helper.prefetch(cache, requests, progress=ticks.append)
    assert spoken == set(range(10)) and sum(ticks) == 10 and cache.synthesized == 10
    again = ClipCache(tmp_path)
    clips = [again.get(text, SETTINGS) for text in SENTENCES]
    assert (again.synthesized, again.hits) == (0, 10)  # the helper's five are in the cache too
    assert all(0.8 < voiced_s(c) < 3.0 and c.words[0][0] == "Sentence" for c in clips)


def test_without_a_helper_process_every_clip_is_spoken_here(tmp_path, monkeypatch):
    monkeypatch.setattr(helper, "PARALLEL_MIN_CLIPS", 4)
    monkeypatch.setattr(helper.sys, "executable", str(tmp_path / "no-such-python"))
    cache = ClipCache(tmp_path / "cache")
    helper.prefetch(cache, [(text, SETTINGS) for text in SENTENCES[:6]])
    assert all(cache.path(text, SETTINGS).exists() for text in SENTENCES[0::2][:3])
    for text in SENTENCES[:6]:
        cache.get(text, SETTINGS)
    assert cache.synthesized == 6


def test_a_short_text_starts_no_helper(tmp_path, monkeypatch):
    monkeypatch.setattr(helper, "_start", lambda *a: pytest.fail("a helper was started"))
    assert helper.prefetch(ClipCache(tmp_path), [(text, SETTINGS) for text in SENTENCES]) == set()
