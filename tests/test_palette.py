"""The palette in a piece: one-shot events land on their anchors, a sample loops without a seam."""

import numpy as np
import soundfile as sf
from conftest import write_score

from audio import mixer, plan, score
from audio.speech.cache import ClipCache

TEXT = "A first sentence here. Then the anchor line. And the last one.\n"
BODY = """
[piece]
title = "Events"
text = "TEXT"
sample_rate = 22050

[[layer]]
name = "knock"
source = "pulse"
start = "cue:Then the anchor line.+0.5"
end = "cue:And the last one."
fade_in = 0
fade_out = 0
gain_db = 0
[layer.params]
kind = "click"
rate_per_min = 0

[[layer]]
name = "break"
source = "glitch"
start = "cue:And the last one.-0.25"
end = "cue:And the last one.+1"
fade_in = 0
fade_out = 0
gain_db = 0
"""


def layer(p, name):
    return np.concatenate(list(mixer.render_blocks(p, ClipCache(), voice_on=False, layer_names=[name])))[:, 0]


def test_one_shot_events_start_on_their_anchors(tmp_path):
    p = plan.resolve(score.load(write_score(tmp_path, BODY, TEXT)), ClipCache())
    anchor = next(c for c in p.cues if c.text == "Then the anchor line.").start_sample
    last = next(c for c in p.cues if c.text == "And the last one.").start_sample
    knock, brk = layer(p, "knock"), layer(p, "break")
    onset = np.flatnonzero(np.abs(knock) > 1e-4)
    assert abs(onset[0] - (anchor + round(0.5 * p.sample_rate))) <= 2
    assert np.abs(knock[onset[0] + p.sample_rate // 10:]).max() < 1e-3  # one transient only, then quiet
    burst = np.flatnonzero(np.abs(brk) > 1e-4)
    assert abs(burst[0] - (last - round(0.25 * p.sample_rate))) <= round(0.005 * p.sample_rate)
    assert burst[-1] <= last + p.sample_rate


def test_a_sample_layer_loops_without_a_seam(tmp_path):
    sr = 22050
    t = np.arange(int(0.7317 * sr)) / sr  # not a whole number of periods: a hard loop would click
    sf.write(tmp_path / "loop.wav", 0.3 * np.sin(2 * np.pi * 220 * t), sr)
    body = """
[piece]
title = "Sample"
text = "TEXT"
sample_rate = 22050
[[layer]]
name = "loop"
source = "sample"
gain_db = 0
fade_in = 0
fade_out = 0
[layer.params]
path = "loop.wav"
crossfade_ms = 80
"""
    p = plan.resolve(score.load(write_score(tmp_path, body, "Just one sentence.")), ClipCache())
    x = layer(p, "loop")
    steps = np.abs(np.diff(x[: 5 * sr]))
    assert steps.max() <= 1.5 * 2 * np.pi * 220 * 0.3 / sr  # never a step larger than the sine's own slope
    assert np.abs(x[: 5 * sr]).min() < 0.01 and np.abs(x[sr: 5 * sr]).max() > 0.25  # still sounding


def test_a_missing_sample_file_is_a_score_error(tmp_path):
    from click.testing import CliRunner

    from audio.cli import main
    body = '[piece]\ntitle = "S"\ntext = "TEXT"\n[[layer]]\nname = "s"\nsource = "sample"\n[layer.params]\npath = "gone.wav"\n'
    result = CliRunner().invoke(main, ["validate", str(write_score(tmp_path, body, "Words."))])
    assert result.exit_code == 2 and 'layer "s".params.path' in result.output and "gone.wav" in result.output
