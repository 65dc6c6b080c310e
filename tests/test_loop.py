"""A seamless loop keeps its level where it repeats, and its manifest, chapters and captions describe
the file as written."""

import json
import re

import numpy as np
import pytest
import soundfile as sf
from conftest import write_score

from audio import plan, render, score
from audio.speech.cache import ClipCache

TEXT = "A room that never ends.\n\nIt goes round and round.\n"
BODY = """
[piece]
title = "Loop"
text = "TEXT"
seed = 11

[pauses]
lead_in = 5.0
tail = 5.0

[[layer]]
name = "room"
source = "server_hum"
gain_db = -18
fade_in = 3.0
fade_out = 4.0

[[layer]]
name = "air"
source = "noise"
gain_db = -24
fade_in = 2.0
fade_out = 6.0

[loop]
seamless = true
crossfade = 2.0

[master]
formats = ["wav", "ogg"]
"""


@pytest.fixture(scope="module")
def looped(tmp_path_factory):
    folder = tmp_path_factory.mktemp("loop")
    p = plan.resolve(score.load(write_score(folder, BODY, TEXT)), ClipCache())
    manifest = render.render(p, ClipCache(), folder / "out")
    return p, manifest, folder / "out"


def rms_db(x: np.ndarray) -> float:
    return 10 * np.log10(np.mean(x ** 2))


def test_the_level_over_any_second_across_the_seam_is_within_3_db_of_its_neighbours(looped):
    _, _, out = looped
    x, sr = sf.read(out / "piece.wav")
    twice = np.concatenate([x, x])  # the loop played on: the seam is at len(x)
    seam = len(x)

    def level(centre_s):
        a = seam + round((centre_s - 0.5) * sr)
        return rms_db(twice[a: a + sr])
    across = [level(t) for t in np.arange(-0.5, 0.51, 0.125)]  # every 1 s window holding the seam
    neighbours = [level(t) for t in (-3.5, -2.5, -1.5, 1.5, 2.5, 3.5)]
    assert min(across) >= min(neighbours) - 3.0, (across, neighbours)
    assert max(across) <= max(neighbours) + 3.0, (across, neighbours)


def test_the_fades_left_out_at_the_seam_are_a_warning_with_their_numbers(looped):
    p, _, _ = looped
    warning = next(w for w in p.warnings if "loop.seamless" in w)
    for fade in ('"room" fade_in 3 s', '"room" fade_out 4 s', '"air" fade_in 2 s', '"air" fade_out 6 s'):
        assert fade in warning


def test_the_manifest_chapters_and_captions_describe_the_loop_as_written(looped):
    p, manifest, out = looped
    frames, sr = sf.info(str(out / "piece.wav")).frames, p.sample_rate
    duration_s = frames / sr
    saved = json.loads((out / "piece.json").read_text())
    assert saved["duration_s"] == pytest.approx(duration_s, abs=1 / sr)
    assert saved["measured"]["duration_s"] == pytest.approx(duration_s, abs=1 / sr)
    assert all(layer["end_s"] <= duration_s + 1e-9 for layer in saved["layers"])
    chapters = json.loads((out / "piece.chapters.json").read_text())["chapters"]
    assert chapters[-1]["endTime"] == pytest.approx(duration_s, abs=0.001)
    srt_ends = re.findall(r"--> (\d\d):(\d\d):(\d\d),(\d{3})", (out / "piece.srt").read_text())
    h, m, s, ms = map(int, srt_ends[-1])
    assert h * 3600 + m * 60 + s + ms / 1000 <= duration_s
    assert sf.info(str(out / "piece.ogg")).frames == pytest.approx(frames, abs=1)
