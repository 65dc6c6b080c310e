"""The picture of a piece: geometry of the PNG, what its panels show, the timeline's layout, and
the streaming analysis behind it."""

from __future__ import annotations

import sys
import tracemalloc

import matplotlib
import numpy as np
import pytest
import soundfile as sf
from matplotlib.image import imread

from audio import analysis, manifest, picture
from audio.errors import RenderError, ScoreError

RATE_HZ = 22050
WIDTH_PX = 800


def manifest_for(duration_s: float, **extra) -> manifest.Overview:
    m = {"name": "test", "title": "Test piece", "duration_s": duration_s, "sample_rate": RATE_HZ, "channels": 2,
         "cues": [{"text": "A quiet sentence.", "start_s": 0.5, "end_s": 2.5},
                  {"text": "A loud one.", "start_s": 4.5, "end_s": 5.5}],
         "layers": [{"name": "bed", "source": "noise", "start_s": 0.0, "end_s": duration_s},
                    {"name": "sting", "source": "tone", "start_s": 3.0, "end_s": 4.0}],
         "measured": {"loudness_lufs": -16.0, "true_peak_dbtp": -1.0}}
    m.update(extra)
    return manifest.overview(m)


def timeline(m: dict, axis_width_px: float) -> dict:
    """The timeline of a manifest that has only duration_s, cues and layers."""
    piece = manifest.overview({"sample_rate": RATE_HZ, "channels": 2, **m})
    return picture.timeline_layout(piece.cues, piece.layers, piece.duration_s, axis_width_px)


@pytest.fixture(scope="module")
def quiet_then_loud(tmp_path_factory):
    """6 s of stereo: 3 s of a 100 Hz sine at 0.05, then 3 s of a 5 kHz sine at 0.8."""
    path = tmp_path_factory.mktemp("pic") / "ql.wav"
    t = np.arange(3 * RATE_HZ) / RATE_HZ
    x = np.concatenate([0.05 * np.sin(2 * np.pi * 100 * t), 0.8 * np.sin(2 * np.pi * 5000 * t)])
    sf.write(str(path), np.stack([x, -x], axis=1), RATE_HZ, subtype="PCM_16")
    return path


@pytest.fixture(scope="module")
def drawn(quiet_then_loud):
    png = quiet_then_loud.with_suffix(".png")
    result = picture.draw(manifest_for(6.0), quiet_then_loud, png, width_px=WIDTH_PX)
    return result, png, imread(str(png))


def test_the_png_has_the_asked_width_the_layout_height_and_is_not_blank(drawn):
    result, png, img = drawn
    assert result == png
    boxes = picture.panel_boxes_px(WIDTH_PX, n_layers=2)
    assert img.shape[:2] == (boxes["size"][1], WIDTH_PX)
    assert img[..., :3].std() > 0.1
    assert [p.name for p in png.parent.iterdir() if p.name.endswith(".part")] == []


def ink_per_column(img, box) -> np.ndarray:
    """Pixels of the waveform's blues in each column of a panel (grid and axis lines are grey)."""
    left, top, width, height = box
    rgb = img[top + 2: top + height - 2, left + 2: left + width - 2, :3]
    blue = rgb[..., 2] - rgb[..., 0] > 0.15
    return blue.sum(axis=0)


def test_the_waveform_panel_is_taller_where_the_audio_is_louder(drawn):
    _, _, img = drawn
    ink = ink_per_column(img, picture.panel_boxes_px(WIDTH_PX, 2)["waveform"])
    half = ink.size // 2
    quiet, loud = ink[10: half - 10], ink[half + 10: -10]
    assert quiet.min() > 0  # the quiet part is drawn, not lost
    # the panel spans -1..1: 0.05 fills ~5 % of its height, 0.8 fills ~80 %
    height = picture.WAVE_PX
    assert np.median(quiet) < 0.1 * height
    assert np.median(loud) > 0.7 * height


def test_the_spectrogram_panel_is_bright_at_each_halfs_frequency(drawn):
    _, _, img = drawn
    left, top, width, height = picture.panel_boxes_px(WIDTH_PX, 2)["spectrogram"]
    rows = img[top: top + height, left + 5: left + width - 5, :3].mean(axis=2)  # brightness, top row first
    edges = analysis.log_bands_hz(analysis.SPEC_LOW_HZ, RATE_HZ / 2, height)

    def row_of(freq_hz):
        return height - 1 - int(np.searchsorted(edges, freq_hz) - 1)

    half = rows.shape[1] // 2
    assert rows[row_of(100), 10: half - 10].mean() > rows[row_of(5000), 10: half - 10].mean() + 0.3
    assert rows[row_of(5000), half + 10: -10].mean() > rows[row_of(100), half + 10: -10].mean() + 0.3


def test_drawing_leaves_pyplot_and_the_backend_alone(quiet_then_loud, tmp_path):
    backend = matplotlib.get_backend()
    had_pyplot = "matplotlib.pyplot" in sys.modules
    picture.draw(manifest_for(6.0), quiet_then_loud, tmp_path / "x.png", width_px=picture.MIN_WIDTH_PX)
    assert matplotlib.get_backend() == backend
    assert ("matplotlib.pyplot" in sys.modules) == had_pyplot
    assert imread(str(tmp_path / "x.png")).shape[1] == picture.MIN_WIDTH_PX


# ---------------------------------------------------------------- timeline layout

def test_timeline_bars_sit_at_their_times():
    m = {"duration_s": 10.0,
         "cues": [{"text": "One.", "start_s": 1.0, "end_s": 2.0}, {"text": "Two.", "start_s": 6.0, "end_s": 7.5}],
         "layers": [{"name": "bed", "start_s": 0.0, "end_s": 10.0},
                    {"name": "event", "start_s": 2.5, "end_s": 7.5}]}
    layout = timeline(m, 1000)
    assert [(c["x0_px"], c["x1_px"]) for c in layout["cues"]] == [(100.0, 200.0), (600.0, 750.0)]
    assert [(la["name"], la["row"], la["x0_px"], la["x1_px"]) for la in layout["layers"]] == [
        ("bed", 0, 0.0, 1000.0), ("event", 1, 250.0, 750.0)]
    assert [la["label"] for la in layout["layers"]] == ["bed", "event"]
    assert layout["layers"][1]["label_x_px"] == 250.0 + picture.LABEL_PAD_PX  # inside its bar


def test_a_layer_label_goes_beside_a_bar_too_short_for_it():
    m = {"duration_s": 100.0, "cues": [],
         "layers": [{"name": "a-long-layer-name", "start_s": 10.0, "end_s": 11.0},
                    {"name": "late-layer-name", "start_s": 98.0, "end_s": 99.0}]}
    early, late = timeline(m, 500)["layers"]
    assert (early["label"], early["label_align"]) == ("a-long-layer-name", "left")
    assert early["label_x_px"] == pytest.approx(55.0 + picture.LABEL_PAD_PX)  # right of its bar
    assert (late["label"], late["label_align"]) == ("late-layer-name", "right")
    assert late["label_x_px"] == pytest.approx(490.0 - picture.LABEL_PAD_PX)  # left of its bar


def test_sentence_labels_only_where_there_is_room():
    text = "A sentence long enough to need cutting."
    m = {"duration_s": 100.0, "layers": [],
         "cues": [{"text": text, "start_s": 10.0, "end_s": 12.0},
                  {"text": "Crowded.", "start_s": 30.0, "end_s": 30.5},
                  {"text": "Next.", "start_s": 30.6, "end_s": 31.0},
                  {"text": "Silent.", "start_s": 40.0, "end_s": 40.0}]}
    cues = timeline(m, 1000)["cues"]
    assert [c["text"] for c in cues] == [text, "Crowded.", "Next."]  # a cue with no speech is not drawn
    room = 200 - 2 * picture.LABEL_PAD_PX  # 10 s → 30 s
    fits = int(room // picture.CHAR_PX)
    assert fits < len(text)
    assert cues[0]["label"] == text[: fits - 1].rstrip() + "…"
    assert len(cues[0]["label"]) * picture.CHAR_PX <= room
    assert cues[1]["label"] is None  # 6 px before the next sentence
    assert cues[2]["label"] == "Next."


def test_a_manifest_without_a_duration_is_an_error():
    with pytest.raises(RenderError, match="duration_s must be positive"):
        picture.timeline_layout((), (), 0.0, 500)


# ---------------------------------------------------------------- streaming analysis

def test_waveform_columns_do_not_depend_on_the_block_size(tmp_path):
    rng = np.random.default_rng(7)
    x = (rng.standard_normal((50_001, 2)) * 0.2).astype(np.float32)
    path = tmp_path / "n.wav"
    sf.write(str(path), x, RATE_HZ, subtype="FLOAT")
    edges = analysis.column_edges(x.shape[0], 300)
    want_min = [x[a:b].min() for a, b in zip(edges[:-1], edges[1:])]
    want_rms = [np.sqrt(np.mean(x[a:b].astype(np.float64) ** 2)) for a, b in zip(edges[:-1], edges[1:])]
    for block in (1000, 7919, 1 << 20):
        cols = analysis.waveform_columns(path, 300, block_frames=block)
        np.testing.assert_array_equal(cols.min, want_min)
        np.testing.assert_allclose(cols.rms, want_rms, rtol=1e-9)


def test_a_file_shorter_than_the_panel_fills_every_column(tmp_path):
    path = tmp_path / "short.wav"
    sf.write(str(path), np.linspace(-1, 1, 100)[:, None], RATE_HZ, subtype="FLOAT")
    cols = analysis.waveform_columns(path, 400)
    assert np.isfinite(cols.max).all() and np.isfinite(cols.rms).all()
    assert cols.max[0] < 0 < cols.max[-1]
    assert np.all(np.diff(cols.max) >= 0)


def test_memory_does_not_grow_with_the_file(tmp_path):
    peaks = []
    for seconds in (20, 80):
        path = tmp_path / f"{seconds}.wav"
        with sf.SoundFile(str(path), "w", samplerate=RATE_HZ, channels=2, subtype="PCM_16") as f:
            for _ in range(seconds // 10):
                f.write(np.full((RATE_HZ * 10, 2), 0.1))
        tracemalloc.start()
        try:
            analysis.waveform_columns(path, 400)
            analysis.spectrogram_columns(path, 400, 100)
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
    assert peaks[1] < 1.3 * peaks[0], f"4x the audio: peak {peaks[0] / 1e6:.1f} → {peaks[1] / 1e6:.1f} MB"


# ---------------------------------------------------------------- errors

def test_errors_name_the_file_and_the_problem(quiet_then_loud, tmp_path):
    text = tmp_path / "notes.wav"
    text.write_text("not audio\n")
    with pytest.raises(RenderError, match=r"notes\.wav: cannot read the audio"):
        picture.draw(manifest_for(6.0), text, tmp_path / "a.png")
    with pytest.raises(RenderError, match=r"ql\.wav: 6\.000 s at 22050 Hz, but the manifest says 60\.0 s"):
        picture.draw(manifest_for(60.0), quiet_then_loud, tmp_path / "b.png")
    with pytest.raises(ScoreError, match=r"c\.png: width_px must be .* at least"):
        picture.draw(manifest_for(6.0), quiet_then_loud, tmp_path / "c.png", width_px=100)
    with pytest.raises(RenderError, match=r"missing/d\.png: cannot write the picture"):
        picture.draw(manifest_for(6.0), quiet_then_loud, tmp_path / "missing" / "d.png", width_px=picture.MIN_WIDTH_PX)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.wav"]


def test_a_sine_reads_its_level_in_its_band_and_nothing_far_from_it(tmp_path):
    path = tmp_path / "sine.wav"
    t = np.arange(2 * RATE_HZ) / RATE_HZ
    sf.write(str(path), 0.5 * np.sin(2 * np.pi * 3000 * t), RATE_HZ, subtype="FLOAT")
    spec = analysis.spectrogram_columns(path, 20, 120)
    edges = spec.edges_hz
    assert (edges[0], edges[-1]) == pytest.approx((20.0, RATE_HZ / 2))
    band = int(np.searchsorted(edges, 3000)) - 1
    level_db = spec.db[band]
    assert np.all(np.abs(level_db - 20 * np.log10(0.5)) < 1.5), level_db  # −6 dB, up to Hann scalloping
    assert spec.db[int(np.searchsorted(edges, 100)) - 1].max() < -80
    assert spec.db[int(np.searchsorted(edges, 200)) - 1].max() < level_db.min() - 60
