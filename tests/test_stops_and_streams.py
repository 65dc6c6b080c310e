"""A render stopped twice, or started without its standard streams: one line (or none), the exit
status of the stop, the cleanup done, no traceback."""

import subprocess
import sys

import pytest
import soundfile as sf
from conftest import REPO, write_score

from test_reliability import leftovers

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
