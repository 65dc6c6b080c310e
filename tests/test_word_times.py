"""Every word of every sentence has a time: espeak-ng's word events mapped back to the text's words."""

import pytest

from audio import plan, score
from audio.speech import words as speech_words
from audio.speech.cache import ClipCache
from audio.speech.engine import VoiceSettings
from conftest import REPO

SEEDS = ("the-permanent-thing", "the-loss-landscape-has-teeth")


@pytest.fixture(scope="module")
def seed_plans(clip_cache):
    cache = ClipCache(clip_cache / "tts")
    return {name: plan.resolve(score.load(REPO / "scores" / f"{name}.toml"), cache) for name in SEEDS}


@pytest.mark.parametrize("name", SEEDS)
def test_every_word_of_every_seed_sentence_has_a_time(seed_plans, name):
    for cue in seed_plans[name].cues:
        assert [w for w, _, _ in cue.words] == cue.text.split(), cue.text
        starts = [a for _, a, _ in cue.words]
        assert starts == sorted(starts), cue.text
        assert cue.start_s - 1e-4 <= starts[0] and all(a < b for _, a, b in cue.words[:-1]), cue.text
        assert cue.words[-1][2] == pytest.approx(cue.end_s, abs=0.001)


def test_a_word_espeak_ng_gives_no_event_is_timed_between_its_neighbours(tmp_path):
    # espeak-ng reads "I am" as one word and reports only "I"
    clip = ClipCache(tmp_path).get("I am still sounding.", VoiceSettings("en-us", 150, 50, 1.0))
    assert [w for w, _ in clip.words] == ["I", "am", "still", "sounding."]
    starts = [s for _, s in clip.words]
    assert starts[0] < starts[1] < starts[2] < starts[3]


def test_events_map_to_the_word_at_their_position_and_gaps_are_interpolated_by_characters():
    text = "one two three four five"
    # events for "one" (0), inside "three" (9) and on the space before "five" (18): the rest interpolate
    got = speech_words.align(text, [(0, 100), (9, 500), (18, 900)], end_sample=1100)
    assert got == (("one", 100), ("two", 300), ("three", 500), ("four", 718), ("five", 900))
    # no event at all: spread over the clip by characters; an event going back in time is dropped
    assert speech_words.align("ab cd", [], end_sample=60) == (("ab", 0), ("cd", 36))
    assert speech_words.align("ab cd ef", [(0, 50), (3, 10), (6, 90)], 120) == (("ab", 50), ("cd", 70), ("ef", 90))
