"""A picture of a rendered piece: waveform, timeline of layers and sentences, spectrogram; drawing only.

For listeners, and for checking the sound by eye. Three panels share one time axis:

1. the waveform: per pixel column, the lowest and highest sample of any channel (light) and the
   RMS (dark), so a click shows as a spike and a level change as a step;
2. the timeline: one row for the sentences (bars over the speech, with their text where there is
   room) and one row per layer (a bar from its start to its end, labelled with its name);
3. a spectrogram: per pixel column, the power spectrum averaged over a few FFT frames spread
   across the column, on a log frequency axis from 20 Hz to Nyquist, coloured in dB.

The columns come from ``analysis`` (streaming: memory does not grow with the file), the
timeline from the manifest's ``Overview``. Drawing uses matplotlib's object API (``Figure`` +
Agg canvas) and never touches pyplot's global state.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from audio.analysis import Spectrogram, Waveform, spectrogram_columns, waveform_columns
from audio.clock import clock
from audio.errors import RenderError, ScoreError
from audio.files import staging
from audio.manifest import Overview

DPI = 100
MIN_WIDTH_PX = 480
MARGIN_LEFT_PX = 64
MARGIN_RIGHT_PX = 64  # room for the spectrogram's colour bar and its labels
TITLE_PX = 40
WAVE_PX = 180
GAP_PX = 6
ROW_PX = 16  # one timeline row
SPEC_PX = 180
AXIS_PX = 34  # time tick labels under the spectrogram
COLORBAR_GAP_PX = 8
COLORBAR_PX = 10
DURATION_TOLERANCE_S = 0.05  # the audio and the manifest may differ by this much

LABEL_FONT_PT = 7.5
CHAR_PX = 5.0  # generous average width of one character of the label font at DPI
LABEL_PAD_PX = 3.0
MIN_LABEL_CHARS = 8  # a sentence label shorter than this (with its ellipsis) is left out

SPEC_RANGE_DB = 100.0  # colour scale spans this far below its top

BACKGROUND = "white"
WAVE_PEAK_COLOUR = "#9ec3e6"
WAVE_RMS_COLOUR = "#1f5f99"
SENTENCE_COLOUR = "#f2c48d"
LAYER_COLOURS = ("#8fbf8f", "#c9a0dc", "#e6a5a5", "#a5c8e6", "#d8cf8a", "#9fd8cf")


# ---------------------------------------------------------------- layout

def panel_boxes_px(width_px: int, n_layers: int) -> dict:
    """Where each panel lies in the image, as ``(left, top, width, height)`` in pixels from the
    top-left corner; ``"size"`` is the whole image's ``(width, height)``.

    The timeline has one row for the sentences and one per layer. The three panels have the same
    left edge and width, so one pixel column is one slice of time in all of them.
    """
    axis_w = width_px - MARGIN_LEFT_PX - MARGIN_RIGHT_PX
    timeline_h = (n_layers + 1) * ROW_PX
    boxes, top = {}, TITLE_PX
    for name, height in (("waveform", WAVE_PX), ("timeline", timeline_h), ("spectrogram", SPEC_PX)):
        boxes[name] = (MARGIN_LEFT_PX, top, axis_w, height)
        top += height + GAP_PX
    boxes["size"] = (width_px, top - GAP_PX + AXIS_PX)
    return boxes


def fit_label(text: str, room_px: float, min_chars: int = 1) -> str | None:
    """``text`` as it fits in ``room_px`` (cut with an ellipsis), or None when fewer than
    ``min_chars`` characters would fit."""
    n = int(room_px // CHAR_PX)
    if n >= len(text):
        return text
    if n < max(min_chars, 2):
        return None
    return text[: n - 1].rstrip() + "…"


def timeline_layout(cues, layers, duration_s: float, axis_width_px: float) -> dict:
    """Bars and labels of the timeline, in pixels from the panel's left edge.

    ``cues`` and ``layers`` are the manifest's (``Overview.cues``, ``Overview.layers``). Returns
    ``{"cues": [...], "layers": [...]}``. A cue: ``text``, ``x0_px``, ``x1_px`` (its speech),
    ``label`` (the sentence cut to the room before the next sentence starts, or None when that room
    is too small). A layer: ``name``, ``row`` (0 = the first layer), ``x0_px``, ``x1_px``,
    ``label`` (the name, cut only if no place fits it), ``label_x_px`` and ``label_align``
    (``"left"`` inside or right of the bar, ``"right"`` left of it). Positions are exact
    (``t / duration * width``); drawing widens bars thinner than a pixel.
    """
    if not duration_s > 0:
        raise RenderError(f"the timeline's duration_s must be positive, got {duration_s!r}")
    scale = axis_width_px / duration_s

    def x(t_s):
        return min(max(float(t_s), 0.0), duration_s) * scale

    heard = [c for c in cues if c.end_s > c.start_s]
    cue_out = []
    for i, cue in enumerate(heard):
        x0, x1 = x(cue.start_s), x(cue.end_s)
        next_x = x(heard[i + 1].start_s) if i + 1 < len(heard) else axis_width_px
        room = next_x - x0 - 2 * LABEL_PAD_PX
        cue_out.append({"text": cue.text, "x0_px": x0, "x1_px": x1,
                        "label": fit_label(cue.text, room, MIN_LABEL_CHARS)})

    layer_out = []
    for row, layer in enumerate(layers):
        name = str(layer.name)
        x0, x1 = x(layer.start_s), x(layer.end_s)
        need = len(name) * CHAR_PX + 2 * LABEL_PAD_PX
        places = [  # (room, x, align): inside, right of the bar, left of the bar
            (x1 - x0, x0 + LABEL_PAD_PX, "left"),
            (axis_width_px - x1, x1 + LABEL_PAD_PX, "left"),
            (x0, x0 - LABEL_PAD_PX, "right"),
        ]
        room, label_x, align = next((p for p in places if p[0] >= need), max(places, key=lambda p: p[0]))
        layer_out.append({"name": name, "row": row, "x0_px": x0, "x1_px": x1,
                          "label": fit_label(name, room - 2 * LABEL_PAD_PX), "label_x_px": label_x,
                          "label_align": align})
    return {"cues": cue_out, "layers": layer_out}


# ---------------------------------------------------------------- drawing

def title_text(piece: Overview, duration_s: float) -> str:
    """The piece's title, its length and its measured loudness and true peak."""
    parts = [str(piece.title or piece.name or "untitled"), clock(duration_s, places=0)]
    lufs, dbtp = piece.loudness_lufs, piece.true_peak_dbtp
    if isinstance(lufs, (int, float)) and math.isfinite(lufs):
        parts.append(f"{lufs:.1f} LUFS")
    if isinstance(dbtp, (int, float)) and math.isfinite(dbtp):
        parts.append(f"{dbtp:.1f} dBTP")
    return "  ·  ".join(parts)


def time_ticks(duration_s: float, axis_width_px: float) -> tuple[list[float], list[str], str]:
    """Round tick times about every 100 px, their labels and the axis label.

    Under two minutes the labels are seconds; longer pieces are labelled ``M:SS`` or ``H:MM:SS``.
    """
    steps = [0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400]
    want = duration_s * 100 / max(axis_width_px, 1)
    step = next((s for s in steps if s >= want), steps[-1])
    ticks = [float(t) for t in np.arange(0, duration_s + 1e-9, step)]
    if duration_s < 120:
        return ticks, [f"{t:g}" for t in ticks], "time (s)"
    hours = duration_s >= 3600
    return ticks, [clock(t, places=0, hours_width=int(hours)) for t in ticks], "time (h:mm:ss)" if hours else "time (m:ss)"


def frequency_ticks(low_hz: float, high_hz: float) -> tuple[list[float], list[str]]:
    """Tick positions (log10 Hz) and labels for the spectrogram's frequency axis."""
    out = [(math.log10(f), f"{f / 1000:g}k" if f >= 1000 else f"{f:g}")
           for f in (20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 40000) if low_hz <= f <= high_hz]
    return [p for p, _ in out], [label for _, label in out]


def axes_at(fig, box_px: tuple, size_px: tuple):
    """An Axes placed at a pixel box ``(left, top, width, height)`` of a figure of ``size_px``."""
    left, top, width, height = box_px
    w, h = size_px
    return fig.add_axes((left / w, 1 - (top + height) / h, width / w, height / h))


def draw(piece: Overview, wav_path: Path, png_path: Path, width_px: int = 1600,
         staged: staging.Staged | None = None) -> Path:
    """Draw the piece (waveform, timeline, spectrogram) into ``png_path``; return the path.

    ``piece`` is the render's manifest (``manifest.overview``); ``wav_path`` the rendered audio
    (WAV or FLAC), read streaming. The PNG is written atomically, or staged with ``staged``.
    Raises ScoreError for a ``width_px`` too small to draw in, RenderError naming the file when
    the audio cannot be read or does not match the manifest, or the PNG cannot be written.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    wav_path, png_path = Path(wav_path), Path(png_path)
    if isinstance(width_px, bool) or not isinstance(width_px, int) or width_px < MIN_WIDTH_PX:
        raise ScoreError(f"{png_path}: width_px must be a whole number of at least {MIN_WIDTH_PX}, got {width_px!r}")
    if not png_path.parent.is_dir():
        raise RenderError(f"{png_path}: cannot write the picture: the folder {png_path.parent} does not exist")
    boxes = panel_boxes_px(width_px, len(piece.layers))
    size = boxes["size"]
    axis_w = boxes["waveform"][2]

    wave = waveform_columns(wav_path, axis_w)
    duration_s = wave.n_frames / wave.rate_hz
    if piece.sample_rate_hz != wave.rate_hz or abs(piece.duration_s - duration_s) > DURATION_TOLERANCE_S:
        raise RenderError(f"{wav_path}: {duration_s:.3f} s at {wave.rate_hz} Hz, but the manifest says "
                          f"{piece.duration_s} s at {piece.sample_rate_hz} Hz: not the audio of this render")
    spec = spectrogram_columns(wav_path, axis_w, boxes["spectrogram"][3])
    layout = timeline_layout(piece.cues, piece.layers, duration_s, axis_w)

    fig = Figure(figsize=(size[0] / DPI, size[1] / DPI), dpi=DPI, facecolor=BACKGROUND)
    FigureCanvasAgg(fig)
    fig.text(MARGIN_LEFT_PX / size[0], 1 - (TITLE_PX / 2) / size[1], title_text(piece, duration_s),
             ha="left", va="center", fontsize=12, fontweight="bold")
    ticks = time_ticks(duration_s, axis_w)
    _waveform_panel(axes_at(fig, boxes["waveform"], size), wave, duration_s, ticks[0])
    _timeline_panel(axes_at(fig, boxes["timeline"], size), layout, len(piece.layers), duration_s, axis_w, ticks[0])
    _spectrogram_panel(fig, boxes["spectrogram"], size, spec, duration_s, ticks)
    try:
        staging.write_with(png_path, lambda f: fig.savefig(f, format="png", dpi=DPI, facecolor=fig.get_facecolor()),
                           staged)
    except OSError as e:
        raise RenderError(f"{png_path}: cannot write the picture: {e.strerror or e}") from None
    return png_path


def _waveform_panel(ax, wave: Waveform, duration_s: float, ticks: list):
    """Extremes (light) and RMS (dark) per column, from -1 to 1."""
    t = (np.arange(wave.min.size) + 0.5) * duration_s / wave.min.size
    ax.fill_between(t, wave.min, wave.max, color=WAVE_PEAK_COLOUR, linewidth=0, step="mid")
    ax.fill_between(t, -wave.rms, wave.rms, color=WAVE_RMS_COLOUR, linewidth=0, step="mid")
    ax.axhline(0, color="#666666", linewidth=0.5)
    ax.set_xlim(0, duration_s)
    ax.set_ylim(-1.0, 1.0)
    ax.set_yticks([-1, -0.5, 0, 0.5, 1])
    ax.set_ylabel("level", fontsize=8)
    ax.set_xticks(ticks)
    ax.set_xticklabels([])
    ax.tick_params(labelsize=7)
    ax.grid(axis="x", color="#dddddd", linewidth=0.5)
    ax.set_axisbelow(True)


def _timeline_panel(ax, layout: dict, n_layers: int, duration_s: float, axis_w: int, ticks: list):
    """Row 0 (top) the sentences, then one row per layer; x in pixels, y in rows from the top."""
    n_rows = n_layers + 1
    ax.set_xlim(0, axis_w)
    ax.set_ylim(n_rows, 0)
    ax.set_xticks([x * axis_w / duration_s for x in ticks])
    ax.set_xticklabels([])
    ax.set_yticks(np.arange(n_rows) + 0.5)
    ax.set_yticklabels(["speech"] + ["" for _ in range(n_layers)], fontsize=7)
    ax.tick_params(length=0, labelsize=7)
    ax.grid(axis="x", color="#eeeeee", linewidth=0.5)
    ax.set_axisbelow(True)
    for r in range(1, n_rows):
        ax.axhline(r, color="#e4e4e4", linewidth=0.5)
    cues = layout["cues"]
    ax.broken_barh([(c["x0_px"], max(c["x1_px"] - c["x0_px"], 1.0)) for c in cues], (0.15, 0.7),
                   facecolors=SENTENCE_COLOUR, edgecolor="none")
    for c in cues:
        if c["label"]:
            ax.text(c["x0_px"] + LABEL_PAD_PX, 0.5, c["label"], fontsize=LABEL_FONT_PT, va="center",
                    ha="left", clip_on=True)
    for lay in layout["layers"]:
        y = lay["row"] + 1
        ax.broken_barh([(lay["x0_px"], max(lay["x1_px"] - lay["x0_px"], 1.0))], (y + 0.15, 0.7),
                       facecolors=LAYER_COLOURS[lay["row"] % len(LAYER_COLOURS)], edgecolor="none")
        if lay["label"]:
            ax.text(lay["label_x_px"], y + 0.5, lay["label"], fontsize=LABEL_FONT_PT, va="center",
                    ha=lay["label_align"], clip_on=True)


def _spectrogram_panel(fig, box: tuple, size: tuple, spec: Spectrogram, duration_s: float, ticks: tuple):
    """The spectrogram on a log frequency axis, with the time axis under it and a dB colour bar."""
    ax = axes_at(fig, box, size)
    top_db = math.ceil(float(np.percentile(spec.db, 99.9)) / 10) * 10
    low, high = math.log10(spec.edges_hz[0]), math.log10(spec.edges_hz[-1])
    image = ax.imshow(spec.db, origin="lower", aspect="auto", interpolation="nearest", cmap="magma",
                      vmin=top_db - SPEC_RANGE_DB, vmax=top_db, extent=(0, duration_s, low, high))
    f_ticks, f_labels = frequency_ticks(spec.edges_hz[0], spec.edges_hz[-1])
    ax.set_yticks(f_ticks)
    ax.set_yticklabels(f_labels)
    ax.set_ylabel("Hz", fontsize=8)
    time_s, time_labels, time_label = ticks
    ax.set_xlim(0, duration_s)
    ax.set_xticks(time_s)
    ax.set_xticklabels(time_labels)
    ax.set_xlabel(time_label, fontsize=8)
    ax.tick_params(labelsize=7)
    left, top, width, height = box
    cax = axes_at(fig, (left + width + COLORBAR_GAP_PX, top, COLORBAR_PX, height), size)
    bar = fig.colorbar(image, cax=cax)
    bar.set_label("dB", fontsize=7)
    bar.ax.tick_params(labelsize=6)
