"""Envelopes: values at their anchor times, smooth in between, and errors that name the point."""

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import write_score

from audio import automation, mixer, plan, score
from audio.cli import main
from audio.speech.cache import ClipCache

TEXT = "First words here. Then the anchor sentence.\nAnd a last line to end on.\n"
BODY = """
[piece]
title = "Envelopes"
text = "TEXT"
sample_rate = 22050

[pauses]
lead_in = 2.0
tail = 3.0

[[layer]]
name = "tone"
source = "tone"
fade_in = 0
fade_out = 0
gain_db = [[0, -40], ["cue:Then the anchor sentence.", -10], ["end-1", -30]]
pan = [[0, -1], ["end", 1]]
[layer.params]
freq_hz = 500
"""


def resolve(tmp_path, body=BODY):
    return plan.resolve(score.load(write_score(tmp_path, body, TEXT)), ClipCache())


def level_db(x):
    return 10 * np.log10(np.mean(x ** 2))


def test_gain_envelope_reaches_each_value_at_its_anchor(tmp_path):
    p = resolve(tmp_path)
    x = np.concatenate(list(mixer.render_blocks(p, ClipCache(), voice_on=False)))
    sr = p.sample_rate
    power = x[:, 0] ** 2 + x[:, 1] ** 2  # constant-power pan leaves the sum of the channels' power alone
    anchor = next(c for c in p.cues if c.text == "Then the anchor sentence.").start_sample
    tone_rms_db = 10 * np.log10(0.1 ** 2 * 2)  # both channels at -20 dBFS RMS
    for sample, want_db in [(0, -40), (anchor, -10), (p.total_samples - sr, -30)]:
        window = power[max(0, sample - 110): sample + 110]
        assert 10 * np.log10(window.mean()) - tone_rms_db == pytest.approx(want_db, abs=0.3)


def test_pan_envelope_moves_from_left_to_right(tmp_path):
    p = resolve(tmp_path)
    x = np.concatenate(list(mixer.render_blocks(p, ClipCache(), voice_on=False)))
    sr = p.sample_rate
    start, end = x[: sr // 10], x[-sr // 10:]
    assert level_db(start[:, 1]) < level_db(start[:, 0]) - 30
    assert level_db(end[:, 0]) < level_db(end[:, 1]) - 30


def test_envelope_is_smooth_no_steps():
    points = [[0, -40.0, "linear"], [1000, -10.0, "linear"], [3000, -30.0, "linear"]]
    v = automation.values(points, 0, 4000)
    assert v[0] == -40 and v[1000] == -10 and v[3000] == -30 and v[-1] == -30
    assert np.abs(np.diff(v)).max() <= 30 / 1000 + 1e-9


def test_exp_segments_move_geometrically():
    v = automation.values([[0, 100.0, "exp"], [100, 1000.0, "linear"]], 0, 101)
    assert v[50] == pytest.approx(np.sqrt(100 * 1000))


def test_values_do_not_depend_on_the_block():
    points = [[10, 1.0, "exp"], [5000, 9.0, "linear"], [7000, 2.0, "linear"]]
    whole = automation.values(points, 0, 8000)
    parts = np.concatenate([automation.values(points, a, min(a + 333, 8000)) for a in range(0, 8000, 333)])
    assert np.array_equal(whole, parts)


@pytest.mark.parametrize("envelope, message", [
    ('[]', "an envelope needs at least one [time, value] point"),
    ('[[0, -40], [5]]', "gain_db[1]: must be [time, value] or [time, value, curve]"),
    ('[[0, -40], [5, 99]]', "gain_db[1][1]: must be between -120 and 12, got 99"),
    ('[[0, -40], ["later", -10]]', 'gain_db[1][0]: must be seconds, "end"'),
    ('[[0, -40, "cubic"], [5, -10]]', "gain_db[0][2]: curve must be one of linear, exp"),
    ('[[0, -40, "exp"], [5, -10]]', 'an "exp" segment needs positive values'),
    ('[[5, -40], [1, -10]]', "gain_db[1][0]: 1 is at sample 22050, before the previous point"),
    ('-20\n[layer.params]\nfreq_hz = [[0, 500], [3, 90000]]', "params.freq_hz[1][1]: must be between 10 and 20000"),
    ('-20\n[layer.params]\nfreq_hz = [[0, 500], [3, "high"]]', 'params.freq_hz[1][1]: must be a number, got "high"'),
])
def test_a_bad_envelope_is_an_error_naming_the_point(tmp_path, envelope, message):
    body = BODY.replace('gain_db = [[0, -40], ["cue:Then the anchor sentence.", -10], ["end-1", -30]]',
                        f"gain_db = {envelope}")
    if "[layer.params]" in envelope:
        body = body.replace("[layer.params]\nfreq_hz = 500\n", "")
    result = CliRunner().invoke(main, ["validate", str(write_score(tmp_path, body, TEXT))])
    assert result.exit_code == 2, result.output
    assert 'layer "tone".' in result.output and message in result.output
