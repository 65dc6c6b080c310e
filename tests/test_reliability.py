"""Faults: a render killed at any point leaves the earlier outputs intact and nothing behind;
a long text is refused before any work; odd texts render or are refused with a reason."""

import os
import signal
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner
from conftest import REPO, write_score

from audio.cli import main
from audio.errors import ScoreError

BODY = """
[piece]
title = "Interrupted"
text = "TEXT"
sample_rate = 22050
seed = {seed}

[loop]
duration = 240.0

[[layer]]
name = "room"
source = "server_hum"

[master]
formats = ["wav", "flac", "mp3"]
"""
TEXT = "Something to say. And then some more.\n"


def outputs(folder):
    return {p.name: p.read_bytes() for p in folder.iterdir() if not p.name.startswith(".")}


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def start_render(score, out):
    return subprocess.Popen([sys.executable, "-m", "audio", "render", str(score), "-o", str(out), "-q"], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def first_render(tmp_path_factory):
    """A finished render in ``out``, and how long a render of this score takes as a process."""
    folder = tmp_path_factory.mktemp("reliable")
    score = write_score(folder, BODY.format(seed=1), TEXT)
    out = folder / "out"
    started = time.perf_counter()
    proc = start_render(score, out)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    return folder, out, outputs(out), time.perf_counter() - started


def assert_all_old_or_all_new(out, before):
    """The outputs are the earlier render's, or (the signal came after the last rename) all this one's:
    never a mix. The manifest names the seed, and every audio file differs between the two seeds."""
    after = outputs(out)
    assert after.keys() == before.keys()
    if after == before:
        return "old"
    audio = [name for name in after if name.endswith((".wav", ".flac", ".mp3"))]
    assert after["piece.json"] != before["piece.json"] and all(after[n] != before[n] for n in audio)
    return "new"


@pytest.mark.parametrize("sig, fraction", [(signal.SIGTERM, 0.25), (signal.SIGINT, 0.55), (signal.SIGTERM, 0.85)])
def test_an_interrupted_render_leaves_earlier_outputs_and_no_temporary_files(first_render, sig, fraction):
    folder, out, before, render_s = first_render
    score = write_score(folder, BODY.format(seed=2), TEXT)  # a different piece would overwrite every file
    proc = start_render(score, out)
    time.sleep(fraction * render_s)
    if proc.poll() is not None:
        proc.communicate()
        pytest.skip(f"the render finished in under {fraction * render_s:.1f} s")
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == (143 if sig == signal.SIGTERM else 130), err
    assert "Interrupted" in err and "Traceback" not in err
    assert leftovers(out) == []
    assert assert_all_old_or_all_new(out, before) == "old" or fraction > 0.5
    if outputs(out) != before:  # put the first render's files back for the next test
        score_1 = write_score(folder, BODY.format(seed=1), TEXT)
        assert CliRunner().invoke(main, ["render", str(score_1), "-o", str(out), "-q"]).exit_code == 0
        before.clear()
        before.update(outputs(out))  # the same audio; the manifest's timings differ


def test_a_killed_render_leaves_earlier_outputs_and_the_next_render_sweeps_its_leftovers(first_render):
    folder, out, before, render_s = first_render
    score = write_score(folder, BODY.format(seed=3), TEXT)
    proc = start_render(score, out)
    time.sleep(0.5 * render_s)
    if proc.poll() is not None:
        proc.communicate()
        pytest.skip("the render finished before it could be killed")
    proc.kill()  # SIGKILL: no cleanup can run
    proc.communicate(timeout=30)
    assert_all_old_or_all_new(out, before)
    score_1 = write_score(folder, BODY.format(seed=1), TEXT)
    result = CliRunner().invoke(main, ["render", str(score_1), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert leftovers(out) == []
    after = outputs(out)
    assert {k: v for k, v in after.items() if k != "piece.json"} == {k: v for k, v in before.items() if k != "piece.json"}
    before.clear()
    before.update(after)


def test_an_unwritable_output_folder_is_a_clear_error(first_render, tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root can write anywhere")
    folder, _, _, _ = first_render
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    result = CliRunner().invoke(main, ["render", str(folder / "piece.toml"), "-o", str(locked)])
    assert result.exit_code == 1 and "not writable" in result.output


def test_an_output_path_that_is_a_file_is_a_clear_error(first_render, tmp_path):
    folder, _, _, _ = first_render
    (tmp_path / "file").write_text("x")
    result = CliRunner().invoke(main, ["render", str(folder / "piece.toml"), "-o", str(tmp_path / "file" / "sub")])
    assert result.exit_code == 1 and "cannot create the output folder" in result.output


def test_a_text_too_long_for_the_limit_is_refused_before_any_speech(tmp_path):
    text = ("word " * 20 + ".\n") * 50_000  # about 1 MB: days of speech
    path = write_score(tmp_path, '[piece]\ntitle = "Long"\ntext = "TEXT"\n', text[:999_000])
    started = time.perf_counter()
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 2 and "piece.text" in result.output and "the limit is 12 h" in result.output
    assert time.perf_counter() - started < 10


@pytest.mark.parametrize("text", [
    "I love 🙂 this. Ünïcödé and symbols ™ © ∑ ≈ work too.",
    "🙂 🙂 🙂\nOnly this line speaks.",
    "مرحبا بالعالم.",  # an English voice spells what it cannot read; slow, but every word is there
])
def test_odd_texts_render(tmp_path, text):
    path = write_score(tmp_path, '[piece]\ntitle = "Odd"\ntext = "TEXT"\nsample_rate = 22050\n[pauses]\nlead_in = 0.2\n'
                                 'tail = 0.2\n[master]\nformats = ["wav"]\n', text)
    result = CliRunner().invoke(main, ["render", str(path), "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "piece.wav").stat().st_size > 1000


def test_a_line_of_5000_characters_without_punctuation_is_spoken_in_full(tmp_path):
    from audio import plan, score
    from audio.voice import ClipCache
    line = " ".join(["another", "word", "and", "more", "words", "flow", "on"] * 120)[:5000]
    path = write_score(tmp_path, '[piece]\ntitle = "Run-on"\ntext = "TEXT"\nsample_rate = 22050\n', line)
    p = plan.resolve(score.load(path), ClipCache())
    assert len(p.cues) == 1
    words = len(line.split())
    assert len(p.cues[0].words) == words
    assert p.cues[0].end_s - p.cues[0].start_s > 0.5 * words * 60 / 150


def test_two_renders_of_one_score_at_once_leave_valid_outputs_and_cache(tmp_path):
    import soundfile as sf
    score = write_score(tmp_path, BODY.format(seed=4).replace("240.0", "30.0"), TEXT + "A third sentence now.\n")
    env = {**os.environ, "PIECE_CACHE_DIR": str(tmp_path / "cache")}  # both start cold, on one cache
    procs = [subprocess.Popen([sys.executable, "-m", "audio", "render", str(score), "-o", str(tmp_path / "out"), "-q"],
                              cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    results = [p.communicate(timeout=240) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    assert leftovers(tmp_path / "out") == []
    audio, rate = sf.read(tmp_path / "out" / "piece.wav")
    assert audio.shape[0] == 30 * rate
    entries = list((tmp_path / "cache").rglob("*.npz"))
    assert len(entries) == 3 and not list((tmp_path / "cache").rglob("*.tmp"))
    from audio import voice
    for entry in entries:
        voice._read_entry(entry)  # each passes its checksum


def test_a_missing_ffmpeg_names_the_package_to_install(monkeypatch):
    import builtins

    from audio.errors import RenderError
    from audio.files import ffmpeg
    real_import = builtins.__import__

    def no_imageio_ffmpeg(name, *args, **kwargs):
        if name == "imageio_ffmpeg":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)
    monkeypatch.setattr(builtins, "__import__", no_imageio_ffmpeg)
    with pytest.raises(RenderError, match="install the Python package imageio-ffmpeg"):
        ffmpeg.exe()


def test_a_tts_failure_names_the_sentence_and_the_voice(tmp_path, monkeypatch):
    from audio import plan, score, voice
    monkeypatch.setattr(voice, "_synthesize_once", lambda text, settings: None)
    path = write_score(tmp_path, '[piece]\ntitle = "T"\ntext = "TEXT"\n', "Hello.\n")
    with pytest.raises(ScoreError) as caught:
        plan.resolve(score.load(path), voice.ClipCache(tmp_path / "c"))
    message = str(caught.value)
    assert "piece.text: line 1" in message and "'Hello.'" in message and "voice 'en-us'" in message
