"""A render reports its work phase by phase, so a progress bar never sits full while work goes on."""

from conftest import write_score

from audio import plan, render, score
from audio.speech.cache import ClipCache

BODY = """
[piece]
title = "Progress"
text = "TEXT"

[pauses]
lead_in = 0.5
tail = 0.5

[[layer]]
name = "air"
source = "noise"

[master]
formats = ["wav", "flac", "mp3"]
"""


def test_a_render_reports_mixing_mastering_and_writing_each_to_its_total(tmp_path):
    p = plan.resolve(score.load(write_score(tmp_path, BODY, "A few words to speak.\n")), ClipCache())
    calls = []
    render.render(p, ClipCache(), tmp_path / "out", progress=lambda *call: calls.append(call))
    phases = list(dict.fromkeys(phase for phase, _, _ in calls))
    assert phases[0] == "mixing" and phases[1] == "mastering" and phases[-1] == "writing files"
    assert [c for c in calls if c[0] == "writing files"] == [("writing files", 1, 3)] * 3
    for phase in phases:
        steps = [(n, total) for name, n, total in calls if name == phase]
        assert sum(n for n, _ in steps) == steps[0][1], phase  # each phase reaches its own total
    assert calls.index(next(c for c in calls if c[0] == "mastering")) > max(
        i for i, c in enumerate(calls) if c[0] == "mixing")
