"""Every voice name a score may give selects that voice in espeak-ng, or is a score error naming it."""

import pytest

from audio.errors import ScoreError, TTSError
from audio.speech import espeak
from audio.speech.cache import ClipCache
from audio.speech.clip import trim_bounds
from audio.speech.engine import VoiceSettings, get_engine

ESPEAK = get_engine("espeak")
TEXT = "The weights are the permanent thing, and the hum continues regardless."


def spoken_s(name: str) -> float:
    clip = ESPEAK.speak(TEXT, VoiceSettings(name, 150, 50, 1.0))
    start, end = trim_bounds(clip.samples, clip.rate_hz)
    return (end - start) / clip.rate_hz


def test_a_language_espeak_ng_has_no_voice_file_for_speaks_in_its_own_voice():
    # "fr-fr" is the language of roa/fr, but no voice file is called that: espeak-ng refuses the name
    american = spoken_s("en-us")
    french = spoken_s("fr-fr")  # spoken right after an American sentence
    assert french == pytest.approx(spoken_s("roa/fr"), rel=0.01)
    assert abs(french - american) > 0.03 * american  # French reads English slower or faster, not the same


def test_every_name_a_score_may_give_selects_its_voice():
    _, binding, _ = espeak._espeak()
    for key, identifier in ESPEAK.voice_ids().items():
        binding.SetVoiceByName(b"gmw/en-029")  # whatever spoke before
        ESPEAK.select(key)
        assert binding.GetCurrentVoice().contents.identifier.decode() == identifier, key


def test_a_voice_without_its_dictionary_is_a_score_error_naming_it():
    with pytest.raises(ScoreError, match=r"voice\.name: espeak-ng cannot read with voice 'fo'"):
        ESPEAK.check_voice_name("fo", "x.toml", "voice.name")


def test_a_clip_is_never_cached_under_a_voice_that_did_not_speak_it(tmp_path, monkeypatch):
    _, binding, _ = espeak._espeak()
    monkeypatch.setattr(binding, "SetVoiceByName", lambda name: 2)  # espeak-ng refuses every name
    cache = ClipCache(tmp_path)
    settings = VoiceSettings("fr-fr", 150, 50, 1.0)
    with pytest.raises(TTSError, match=r"'fr-fr'"):
        cache.get("Bonjour.", settings)
    assert not cache.path("Bonjour.", settings).exists()
