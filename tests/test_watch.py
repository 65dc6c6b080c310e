"""`piece watch` renders again each time the score is saved, printing the render line."""

import json
import queue
import subprocess
import sys
import threading

from conftest import write_score

BODY = """
[piece]
title = "Watched"
text = "TEXT"

[pauses]
lead_in = 0.5
tail = 0.5

[[layer]]
name = "air"
source = "noise"
gain_db = -24
"""
FAILURE_BOUND_S = 120  # a render line that has not come by then will not come


def test_watch_renders_again_when_the_score_is_saved(tmp_path):
    score = write_score(tmp_path, BODY, "Save me and I speak again.\n")
    proc = subprocess.Popen([sys.executable, "-m", "audio", "watch", str(score), "-o", str(tmp_path / "out"),
                             "--format", "wav"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = queue.Queue()

    def read():
        for line in proc.stdout:
            lines.put(line)
        lines.put("")  # the process has ended: no line will come
    threading.Thread(target=read, daemon=True).start()
    try:
        first = lines.get(timeout=FAILURE_BOUND_S)
        assert first.startswith("piece: ") and "LUFS" in first and "piece.wav" in first
        assert json.loads((tmp_path / "out" / "piece.json").read_text())["layers"][0]["gain_db"] == -24
        score.write_text(score.read_text().replace("gain_db = -24", "gain_db = -30.5"))
        second = lines.get(timeout=FAILURE_BOUND_S)
        assert second.startswith("piece: ") and "LUFS" in second
        assert json.loads((tmp_path / "out" / "piece.json").read_text())["layers"][0]["gain_db"] == -30.5
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=FAILURE_BOUND_S)
    assert proc.returncode == 143, err  # SIGTERM stops it cleanly
    assert "Watching piece.toml, piece.txt" in err
