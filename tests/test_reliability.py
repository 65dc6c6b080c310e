"""Faults: a render stopped at any stage leaves the earlier outputs intact and nothing behind;
a long text is refused before any work; odd texts render or are refused with a reason.

The stopping tests signal a render on an event, never after a guessed time: a file of the stage
appearing in the output folder (the render's work folder, a staged output), or, inside the final
renames, a hook in the rendering process that says when the first rename is done."""

import contextlib
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
duration = 120.0

[[layer]]
name = "room"
source = "server_hum"

[master]
formats = ["wav", "flac", "mp3"]
"""
TEXT = "Something to say. And then some more.\n"
AUDIO = (".wav", ".flac", ".mp3")


def outputs(folder):
    return {p.name: p.read_bytes() for p in folder.iterdir() if not p.name.startswith(".")}


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


PIECE = [sys.executable, "-m", "audio"]


def render_args(score, out):
    return ["render", str(score), "-o", str(out), "-q"]


def start(command):
    return subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def work_files(out):
    """Names of the files in the render's work folders (.piece.PID.*/) in ``out``."""
    names = set()
    for entry in out.glob(".piece.*"):
        with contextlib.suppress(OSError):  # a staged file, or a folder just removed
            names.update(p.name for p in entry.iterdir())
    return names


# What shows in the output folder that a render has reached a stage, each well before the final
# renames. "encoding" waits for the mp3 (the last format to start, after wav or flac is done):
# a signal while the formats are still being handed to their threads can leave a thread unjoined.
STAGES = {
    "mixing": lambda out: "mix.f32" in work_files(out),
    "mastering": lambda out: "master.wav" in work_files(out),
    "writing": lambda out: any(out.glob(".piece.wav.*.part")),
    "encoding": lambda out: any(out.glob(".piece.mp3.*.part")),
}


def wait_until(reached, proc, timeout_s=120):
    deadline = time.monotonic() + timeout_s
    while not reached():
        if proc.poll() is not None:
            pytest.fail(f"the render ended (exit {proc.returncode}) before the awaited stage: {proc.communicate()}")
        assert time.monotonic() < deadline, "the render did not reach the awaited stage in time"
        time.sleep(0.002)


@pytest.fixture(scope="module")
def first_render(tmp_path_factory):
    """A finished render in ``out``: the earlier outputs every stopped render must leave alone."""
    folder = tmp_path_factory.mktemp("reliable")
    score = write_score(folder, BODY.format(seed=1), TEXT)
    out = folder / "out"
    proc = start([*PIECE, *render_args(score, out)])
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    return folder, out, outputs(out)


@pytest.mark.parametrize("sig, stage", [(signal.SIGTERM, "mixing"), (signal.SIGINT, "mastering"),
                                        (signal.SIGTERM, "writing"), (signal.SIGTERM, "encoding"),
                                        (signal.SIGHUP, "mastering")])
def test_an_interrupted_render_leaves_earlier_outputs_and_no_temporary_files(first_render, sig, stage):
    folder, out, before = first_render
    score = write_score(folder, BODY.format(seed=2), TEXT)  # a different piece would overwrite every file
    proc = start([*PIECE, *render_args(score, out)])
    wait_until(lambda: STAGES[stage](out), proc)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + sig, err  # 143, 130, 129
    assert "Interrupted" in err and "Traceback" not in err
    assert leftovers(out) == []
    assert outputs(out) == before


# The command line with one hook: after the first rename of a finished output into place (the final
# renames), it touches the marker file and waits until the test's SIGTERM has come (its handler is
# called, or it is pending, held back).
HOLD_AFTER_FIRST_RENAME = """
import os, signal, sys, time
from pathlib import Path
marker, out = Path(sys.argv.pop(1)), Path(sys.argv.pop(1))
rename = os.replace

def replace(src, dst):
    rename(src, dst)
    if marker.exists() or Path(dst).parent != out or Path(dst).name.startswith("."):
        return
    received, handler = [], signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, lambda *args: (received.append(1), handler(*args)))
    marker.touch()
    deadline = time.monotonic() + 60
    while not received and signal.SIGTERM not in signal.sigpending() and time.monotonic() < deadline:
        time.sleep(0.001)

os.replace = replace
from audio.cli import main
main(sys.argv[1:], prog_name="piece")
"""


def test_a_signal_during_the_final_renames_waits_for_the_last_one(first_render):
    folder, out, before = first_render
    score = write_score(folder, BODY.format(seed=2), TEXT)
    marker = folder / "first-rename-done"
    proc = start([sys.executable, "-c", HOLD_AFTER_FIRST_RENAME, str(marker), str(out), *render_args(score, out)])
    try:
        wait_until(marker.exists, proc)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 143, err
        assert leftovers(out) == []
        after = outputs(out)
        assert after.keys() == before.keys()
        new = {"piece.json", *(name for name in after if name.endswith(AUDIO))}
        assert {name for name in new if after[name] != before[name]} == new  # every one is this render's
    finally:
        for name, data in before.items():  # the first render's files back, for the next test
            (out / name).write_bytes(data)


def test_a_killed_render_leaves_earlier_outputs_and_the_next_render_sweeps_its_leftovers(first_render):
    folder, out, before = first_render
    score = write_score(folder, BODY.format(seed=3), TEXT)
    proc = start([*PIECE, *render_args(score, out)])
    wait_until(lambda: STAGES["writing"](out), proc)
    proc.kill()  # SIGKILL: no cleanup can run
    proc.communicate(timeout=30)
    assert outputs(out) == before
    assert leftovers(out)  # its work folder and staged files
    score_1 = write_score(folder, BODY.format(seed=1), TEXT)
    result = CliRunner().invoke(main, ["render", str(score_1), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "left behind by an interrupted render" in result.output
    assert leftovers(out) == []
    after = outputs(out)
    assert {k: v for k, v in after.items() if k != "piece.json"} == {k: v for k, v in before.items() if k != "piece.json"}
    before.clear()
    before.update(after)


def without_root_override() -> list[str]:
    """A command prefix that takes root's licence to write anywhere (CAP_DAC_OVERRIDE) away, so a
    permission test means the same run as root (as CI runs it) as run by anyone else."""
    if os.geteuid() != 0:
        return []
    return ["setpriv", "--inh-caps=-dac_override", "--bounding-set=-dac_override"]


def test_an_unwritable_output_folder_is_a_clear_error(first_render, tmp_path):
    folder, _, _ = first_render
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    proc = subprocess.run([*without_root_override(), *PIECE, *render_args(folder / "piece.toml", locked)],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "not writable" in proc.stderr, proc.stderr
    assert list(locked.iterdir()) == []


def test_an_output_path_that_is_a_file_is_a_clear_error(first_render, tmp_path):
    folder, _, _ = first_render
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
    from audio.speech.cache import ClipCache
    line = " ".join(["another", "word", "and", "more", "words", "flow", "on"] * 120)[:5000]
    path = write_score(tmp_path, '[piece]\ntitle = "Run-on"\ntext = "TEXT"\nsample_rate = 22050\n', line)
    p = plan.resolve(score.load(path), ClipCache())
    assert len(p.cues) == 1
    words = len(line.split())
    assert len(p.cues[0].words) == words
    assert p.cues[0].end_s - p.cues[0].start_s > 0.5 * words * 60 / 150


def test_two_renders_of_one_score_at_once_leave_valid_outputs_and_cache(tmp_path):
    import soundfile as sf
    body = BODY.format(seed=4).replace("duration = 120.0", "duration = 30.0")
    score = write_score(tmp_path, body, TEXT + "A third sentence now.\n")
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
    from audio.speech import cache, espeak
    for entry in entries:
        cache._read_spoken(entry, espeak.RATE_HZ)  # each passes its checksum


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
    import numpy as np

    from audio import plan, score
    from audio.speech.cache import ClipCache
    from audio.speech.clip import Clip
    from audio.speech.engine import get_engine
    monkeypatch.setattr(get_engine("espeak"), "speak", lambda text, settings: Clip(np.zeros(0, np.float32), 22050))
    path = write_score(tmp_path, '[piece]\ntitle = "T"\ntext = "TEXT"\n', "Hello.\n")
    with pytest.raises(ScoreError) as caught:
        plan.resolve(score.load(path), ClipCache(tmp_path / "c"))
    message = str(caught.value)
    assert "piece.text: line 1" in message and "'Hello.'" in message and "voice 'en-us'" in message
