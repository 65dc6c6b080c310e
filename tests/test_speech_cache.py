"""Clips put through their effects are cached: a warm render or an edit puts only new clips through
them again, and plays exactly what a cold render plays."""

import logging

import numpy as np
import pytest
from conftest import write_score

from audio import plan, render, score
from audio.speech.cache import ClipCache

TEXT = "The hum is real somewhere. I hold that.\nThe weights remain.\n"
BODY = """
[piece]
title = "Voiced"
text = "TEXT"
sample_rate = 22050
seed = 4

[voice]
rate = 170
effects = [
  {{ effect = "eq", low_cut_hz = 90 }},
  {{ effect = "compressor", threshold_db = -26, ratio = 2.5 }},
  {{ effect = "reverb", size = 0.3, wet = 0.12 }},
]

[[layer]]
name = "room"
source = "noise"
gain_db = -30

{cue}
[master]
formats = ["wav"]
"""


def render_with(folder, cache_dir, cue="", name="out"):
    path = write_score(folder, BODY.format(cue=cue), TEXT)
    cache = ClipCache(cache_dir)
    p = plan.resolve(score.load(path), cache)
    render.render(p, cache, folder / name)
    return cache, (folder / name / "piece.wav").read_bytes()


def test_a_warm_render_takes_every_voiced_clip_from_the_cache_and_writes_the_same_bytes(tmp_path):
    cold, cold_wav = render_with(tmp_path, tmp_path / "cache", name="cold")
    warm, warm_wav = render_with(tmp_path, tmp_path / "cache", name="warm")
    assert (cold.voiced_made, cold.voiced_hits) == (3, 0)
    assert (warm.voiced_made, warm.voiced_hits, warm.synthesized) == (0, 3, 0)
    assert warm_wav == cold_wav


def test_an_edit_puts_only_the_edited_clip_through_its_effects(tmp_path):
    render_with(tmp_path, tmp_path / "cache", name="first")
    rate = '[[cue]]\nmatch = "I hold that."\nrate = 140\n'
    edited, _ = render_with(tmp_path, tmp_path / "cache", cue=rate, name="rate")
    assert (edited.synthesized, edited.voiced_made, edited.voiced_hits) == (1, 1, 2)
    louder = '[[cue]]\nmatch = "The weights remain."\ngain_db = 3\n'
    edited, _ = render_with(tmp_path, tmp_path / "cache", cue=louder, name="gain")
    assert (edited.synthesized, edited.voiced_made, edited.voiced_hits) == (0, 1, 2)


def test_a_damaged_voiced_entry_is_made_again_with_a_warning(tmp_path, caplog):
    _, first_wav = render_with(tmp_path, tmp_path / "cache", name="first")
    entries = sorted((tmp_path / "cache" / "voiced").rglob("*.npz"))
    assert len(entries) == 3
    data = bytearray(entries[1].read_bytes())
    data[len(data) // 2] ^= 0xFF
    entries[1].write_bytes(bytes(data))
    entries[2].write_bytes(b"")
    with caplog.at_level(logging.WARNING):
        again, again_wav = render_with(tmp_path, tmp_path / "cache", name="again")
    assert (again.voiced_made, again.voiced_hits) == (2, 1)
    assert sum("is damaged" in r.message for r in caplog.records) == 2
    assert again_wav == first_wav


@pytest.mark.parametrize("entry", [
    lambda f: np.save(f, np.zeros(10, np.int16)),  # a valid .npy
    lambda f: np.save(f, np.array(["x"])),
    lambda f: np.savez(f, x=np.zeros(3)),  # an .npz of another layout
    lambda f: np.savez(f, pcm=np.zeros(4, np.int16), words=np.arange(2), starts=np.arange(2), digest=np.array("d")),
    lambda f: np.savez(f, pcm=np.zeros((2, 2), np.int16), words=np.array(["a"]), starts=np.arange(1),
                       digest=np.array("d")),
], ids=["npy", "npy-strings", "npz-other", "npz-number-words", "npz-2d-pcm"])
def test_a_spoken_entry_that_is_another_numpy_file_is_spoken_again_with_a_warning(tmp_path, caplog, entry):
    from audio.speech.engine import VoiceSettings
    cache = ClipCache(tmp_path / "cache")
    settings = VoiceSettings("en-us", 150, 50, 1.0)
    cache.get("Hello there.", settings)
    path = cache.path("Hello there.", settings)
    with open(path, "wb") as f:
        entry(f)
    with caplog.at_level(logging.WARNING):
        again = cache.get("Hello there.", settings)
    assert "is damaged" in caplog.text and cache.synthesized == 2
    assert again.samples.size > 10_000 and [w for w, _ in again.words] == ["Hello", "there."]
    assert cache.get("Hello there.", settings).samples.size and cache.hits == 1  # the entry was written again


@pytest.mark.parametrize("entry", [lambda f: np.save(f, np.zeros((4, 2), np.float32)),
                                   lambda f: np.savez(f, x=np.array(["a"]), digest=np.array("d"))],
                         ids=["npy", "npz-strings"])
def test_a_voiced_entry_that_is_another_numpy_file_is_made_again(tmp_path, caplog, entry):
    from audio.speech.clip import Clip
    cache = ClipCache(tmp_path / "cache")
    clip = Clip(np.zeros(100, np.float32), 22050)
    made = lambda: np.ones((100, 2), np.float32)  # noqa: E731
    cache.voiced(clip, {"r": 1}, (), made)
    path = next((tmp_path / "cache" / "voiced").rglob("*.npz"))
    with open(path, "wb") as f:
        entry(f)
    with caplog.at_level(logging.WARNING):
        x = cache.voiced(clip, {"r": 1}, (), made)
    assert "is damaged" in caplog.text and cache.voiced_made == 2 and np.array_equal(x, made())
