"""A render stopped twice, or started without its standard streams: one line (or none), the exit
status of the stop, the cleanup done, no traceback."""

import os
import signal
import subprocess
import sys
import time

import pytest
import soundfile as sf
from conftest import REPO, write_score

from test_reliability import leftovers, wait_until, work_files

BODY = """
[piece]
title = "Stopped"
text = "TEXT"
sample_rate = 22050

[loop]
duration = 60.0

[[layer]]
name = "room"
source = "server_hum"

[master]
formats = ["wav"]
"""
TEXT = "Something to say.\n"
INTERRUPTED = "Interrupted: earlier outputs are left as they were.\n"

# The command line with two hooks, each touching its marker and waiting for the test's go-ahead: the
# render's removal of its work folder (its cleanup after a stop) and the last exit callback (after
# espeak-ng's release). The test sends its second Ctrl-C at each.
HOLD_IN_CLEANUP = """
import atexit, sys, time
from pathlib import Path
from audio.files import staging
folder = Path(sys.argv.pop(1))
remove_work_dir = staging.remove_work_dir

def hold(name):
    (folder / name).touch()
    deadline = time.monotonic() + 60
    while not (folder / f"{name}.go").exists() and time.monotonic() < deadline:
        time.sleep(0.001)

def remove(work):
    hold("cleaning")
    remove_work_dir(work)

staging.remove_work_dir = remove
atexit.register(hold, "exiting")  # registered first, so called last
from audio.cli import main
main(sys.argv[1:], prog_name="piece")
"""


def test_ctrl_c_during_the_cleanup_and_the_exit_is_one_line_exit_130(tmp_path):
    score = write_score(tmp_path, BODY, TEXT)
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-c", HOLD_IN_CLEANUP, str(tmp_path), "render", str(score), "-o",
                             str(out), "-q"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: "mix.f32" in work_files(out), proc)
        proc.send_signal(signal.SIGINT)
        for stage in ("cleaning", "exiting"):
            wait_until((tmp_path / stage).exists, proc, timeout_s=60)
            proc.send_signal(signal.SIGINT)  # Ctrl-C again, while it cleans up
            (tmp_path / f"{stage}.go").touch()
    finally:
        (tmp_path / "cleaning.go").touch()
        (tmp_path / "exiting.go").touch()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and err == INTERRUPTED, err
    assert leftovers(out) == [] and list(out.iterdir()) == []


def test_ctrl_c_twice_at_once_is_one_line_exit_130(tmp_path):
    score = write_score(tmp_path, BODY, TEXT)
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "audio", "render", str(score), "-o", str(out), "-q"], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_until(lambda: "mix.f32" in work_files(out), proc)
    proc.send_signal(signal.SIGINT)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and err == INTERRUPTED, err


@pytest.mark.parametrize("closed", ["2>&-", ">&- 2>&- <&-"])
def test_a_render_with_its_standard_streams_closed_renders(tmp_path, closed):
    score = write_score(tmp_path, BODY.replace("duration = 60.0", "duration = 6.0"), TEXT)
    out = tmp_path / "out"
    command = f'exec "{sys.executable}" -m audio render "{score}" -o "{out}" {closed}'
    proc = subprocess.run(["sh", "-c", command], cwd=REPO, timeout=120)
    assert proc.returncode == 0
    info = sf.info(str(out / "piece.wav"))
    assert info.frames == 6 * 22050 and info.channels == 2
    assert leftovers(out) == []


def test_a_refused_score_with_stderr_closed_exits_2(tmp_path):
    score = write_score(tmp_path, BODY.replace("sample_rate = 22050", "sample_rate = 1"), TEXT)
    proc = subprocess.run(["sh", "-c", f'exec "{sys.executable}" -m audio render "{score}" -o "{tmp_path}/out" 2>&-'],
                          cwd=REPO, timeout=60, stdout=subprocess.PIPE)
    assert proc.returncode == 2 and proc.stdout == b""
    assert not (tmp_path / "out").exists()


def test_stops_are_ignored_after_the_first_until_the_process_ends(tmp_path):
    """A stop after the line is printed, while Python itself exits, is ignored too (not a death by signal)."""
    started = time.monotonic()
    code = ("import os, signal, sys\nfrom audio import cli\n"
            "def body():\n    os.kill(os.getpid(), signal.SIGTERM)\n"
            "try:\n    cli._run(body)\nfinally:\n"
            "    assert all(signal.getsignal(s) == signal.SIG_IGN for s in cli._STOPS)\n"
            "    os.kill(os.getpid(), signal.SIGINT)\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 143 and proc.stderr == INTERRUPTED, proc.stderr
    assert time.monotonic() - started < 30
