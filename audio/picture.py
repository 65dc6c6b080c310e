"""A picture of a rendered piece: waveform, timeline of layers and sentences, spectrogram.

For listeners, and for checking the sound by eye. Three panels share one time axis:

1. the waveform: per pixel column, the lowest and highest sample of any channel (light) and the
   RMS (dark), so a click shows as a spike and a level change as a step;
2. the timeline: one row for the sentences (bars over the speech, with their text where there is
   room) and one row per layer (a bar from its start to its end, labelled with its name);
3. a spectrogram: per pixel column, the power spectrum averaged over a few FFT frames spread
   across the column, on a log frequency axis from 20 Hz to Nyquist, coloured in dB.

Both audio panels are computed streaming: the waveform from the WAV read in blocks, the
spectrogram from a few short reads per column found by seeking, so memory does not grow with the
file and an eight-hour piece draws like a one-minute one. Drawing uses matplotlib's object API
(``Figure`` + Agg canvas) and never touches pyplot's global state.
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
from pathlib import Path

import numpy as np
import scipy.fft

from audio.errors import RenderError, ScoreError

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

LABEL_FONT_PT = 7.5
CHAR_PX = 5.0  # generous average width of one character of the label font at DPI
LABEL_PAD_PX = 3.0
MIN_LABEL_CHARS = 8  # a sentence label shorter than this (with its ellipsis) is left out

BLOCK_FRAMES = 1 << 18  # waveform: frames read per block (2 MiB of float32 stereo)
FFT_SIZE = 4096  # spectrogram: frames per FFT at 44.1/48 kHz (scaled with the rate)
FFT_FRAMES_PER_COLUMN = 4
FFT_BATCH_COLUMNS = 32  # columns transformed together
SPEC_LOW_HZ = 20.0
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


def timeline_layout(manifest: dict, axis_width_px: float) -> dict:
    """Bars and labels of the timeline, in pixels from the panel's left edge.

    Returns ``{"cues": [...], "layers": [...]}``. A cue: ``text``, ``x0_px``, ``x1_px`` (its speech),
    ``label`` (the sentence cut to the room before the next sentence starts, or None when that room
    is too small). A layer: ``name``, ``row`` (0 = the first layer), ``x0_px``, ``x1_px``,
    ``label`` (the name, cut only if no place fits it), ``label_x_px`` and ``label_align``
    (``"left"`` inside or right of the bar, ``"right"`` left of it). Positions are exact
    (``t / duration * width``); drawing widens bars thinner than a pixel.
    """
    duration_s = float(manifest.get("duration_s") or 0)
    if not duration_s > 0:
        raise RenderError(f"manifest of {manifest.get('name', '?')!r}: duration_s must be positive, "
                          f"got {manifest.get('duration_s')!r}")
    scale = axis_width_px / duration_s

    def x(t_s):
        return min(max(float(t_s), 0.0), duration_s) * scale

    cues = [c for c in manifest.get("cues", []) if c.get("end_s", 0) > c.get("start_s", 0)]
    cue_out = []
    for i, cue in enumerate(cues):
        x0, x1 = x(cue["start_s"]), x(cue["end_s"])
        next_x = x(cues[i + 1]["start_s"]) if i + 1 < len(cues) else axis_width_px
        room = next_x - x0 - 2 * LABEL_PAD_PX
        cue_out.append({"text": cue["text"], "x0_px": x0, "x1_px": x1,
                        "label": fit_label(cue["text"], room, MIN_LABEL_CHARS)})

    layer_out = []
    for row, layer in enumerate(manifest.get("layers", [])):
        name = str(layer["name"])
        x0, x1 = x(layer["start_s"]), x(layer["end_s"])
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


# ---------------------------------------------------------------- streaming analysis

def _open_audio(wav_path: Path):
    """The audio file to draw, open for reading; a RenderError naming it if it cannot be read."""
    import soundfile as sf
    try:
        return sf.SoundFile(str(wav_path))
    except (RuntimeError, sf.LibsndfileError) as e:
        raise RenderError(f"{wav_path}: cannot read the audio to draw it: {e}") from None


def column_edges(n_frames: int, n_columns: int) -> np.ndarray:
    """First frame of each column, and ``n_frames`` last: ``n_columns + 1`` non-decreasing ints."""
    return (np.arange(n_columns + 1, dtype=np.int64) * n_frames + n_columns - 1) // n_columns


def waveform_columns(wav_path: Path, n_columns: int, block_frames: int = BLOCK_FRAMES) -> dict:
    """Per column of the waveform: ``min``, ``max`` (over all channels) and ``rms`` (over all
    channels), each an array of ``n_columns``, plus ``n_frames`` and ``rate_hz``.

    Reads the file in blocks of ``block_frames``; the result does not depend on the block size.
    A column that holds no frame (a file shorter than the panel is wide) repeats its neighbour.
    """
    wav_path = Path(wav_path)
    with _open_audio(wav_path) as f:
        n, rate_hz = f.frames, f.samplerate
        if n == 0:
            raise RenderError(f"{wav_path}: the audio file holds no samples, nothing to draw")
        edges = column_edges(n, n_columns)
        lo = np.full(n_columns, np.inf)
        hi = np.full(n_columns, -np.inf)
        power = np.zeros(n_columns)
        count = np.zeros(n_columns)
        start = 0
        for block in f.blocks(blocksize=block_frames, dtype="float32", always_2d=True):
            stop = start + block.shape[0]
            # columns that begin inside this block, and the one already running at its start
            c0 = int(np.searchsorted(edges, start, side="right")) - 1
            c1 = int(np.searchsorted(edges, stop - 1, side="right")) - 1
            cuts = np.concatenate([[0], edges[c0 + 1: c1 + 1] - start]).astype(np.int64)
            keep = np.concatenate([cuts[1:] > cuts[:-1], [True]])  # skip columns with no frame
            cuts, cols = cuts[keep], np.arange(c0, c1 + 1)[keep]
            # across channels one channel at a time: numpy reduces a short last axis slowly
            lo_frames, hi_frames = block[:, 0].copy(), block[:, 0].copy()
            sq_frames = np.square(block[:, 0], dtype=np.float64)
            for ch in range(1, block.shape[1]):
                np.minimum(lo_frames, block[:, ch], out=lo_frames)
                np.maximum(hi_frames, block[:, ch], out=hi_frames)
                sq_frames += np.square(block[:, ch], dtype=np.float64)
            lo[cols] = np.minimum(lo[cols], np.minimum.reduceat(lo_frames, cuts))
            hi[cols] = np.maximum(hi[cols], np.maximum.reduceat(hi_frames, cuts))
            power[cols] += np.add.reduceat(sq_frames, cuts)
            count[cols] += np.diff(np.append(cuts, block.shape[0])) * block.shape[1]
            start = stop
    empty = count == 0
    if empty.any():  # only when the file has fewer frames than columns
        nearest = np.minimum(np.searchsorted(np.flatnonzero(~empty), np.arange(n_columns)), (~empty).sum() - 1)
        full = np.flatnonzero(~empty)[nearest]
        lo, hi, power, count = lo[full], hi[full], power[full], count[full]
    return {"min": lo, "max": hi, "rms": np.sqrt(power / count), "n_frames": n, "rate_hz": rate_hz}


def log_bands_hz(low_hz: float, high_hz: float, n_rows: int) -> np.ndarray:
    """``n_rows + 1`` band edges spaced evenly in log frequency from ``low_hz`` to ``high_hz``."""
    return np.geomspace(low_hz, high_hz, n_rows + 1)


def spectrogram_columns(wav_path: Path, n_columns: int, n_rows: int,
                        frames_per_column: int = FFT_FRAMES_PER_COLUMN) -> dict:
    """A log-frequency power spectrogram: ``db`` (n_rows, n_columns), row 0 the lowest band, in
    dB where a full-scale sine reads 0 (up to the window's 1.4 dB scalloping); ``edges_hz`` the
    band edges (20 Hz to Nyquist), ``fft_size``.

    For each column, ``frames_per_column`` Hann-windowed FFT frames, spread evenly across the
    column's span, are read by seeking; their power spectra are averaged with all channels', then
    taken to bands by ``band_map``/``to_bands``. Memory holds one batch of frames, whatever the
    file's length.
    """
    wav_path = Path(wav_path)
    with _open_audio(wav_path) as f:
        n, rate_hz = f.frames, f.samplerate
        fft_size = FFT_SIZE if rate_hz <= 48000 else FFT_SIZE * 2 ** math.ceil(math.log2(rate_hz / 48000))
        window = np.hanning(fft_size).astype(np.float32)
        scale = 4.0 / window.sum() ** 2  # full-scale sine peak → power 1 (0 dB)
        freqs = np.fft.rfftfreq(fft_size, 1.0 / rate_hz)
        nyquist = rate_hz / 2
        edges_hz = log_bands_hz(SPEC_LOW_HZ, nyquist, n_rows)
        bands = band_map(freqs, edges_hz)
        rows = np.empty((n_columns, n_rows))
        col_edges = column_edges(n, n_columns)
        span = np.maximum(np.diff(col_edges), 1)
        offsets = (np.arange(frames_per_column) + 0.5) / frames_per_column
        starts = col_edges[:-1, None] + offsets[None, :] * span[:, None] - fft_size / 2
        starts = np.clip(starts, 0, max(n - fft_size, 0)).astype(np.int64)  # (columns, frames)
        frames = np.zeros((FFT_BATCH_COLUMNS, frames_per_column, fft_size, f.channels), dtype=np.float32)
        for c0 in range(0, n_columns, FFT_BATCH_COLUMNS):
            c1 = min(c0 + FFT_BATCH_COLUMNS, n_columns)
            for c in range(c0, c1):
                for k, pos in enumerate(starts[c]):
                    f.seek(int(pos))
                    out = frames[c - c0, k]
                    got = f.read(fft_size, dtype="float32", always_2d=True, out=out).shape[0]
                    out[got:] = 0.0
            x = frames[: c1 - c0].transpose(0, 1, 3, 2) * window  # (columns, frames, channels, fft)
            spectrum = scipy.fft.rfft(x, axis=-1)
            power = (spectrum.real ** 2 + spectrum.imag ** 2).mean(axis=(1, 2), dtype=np.float64) * scale
            rows[c0:c1] = to_bands(power, bands)
    with np.errstate(divide="ignore"):
        db = 10 * np.log10(np.maximum(rows.T, 1e-30))
    return {"db": db, "edges_hz": edges_hz, "fft_size": fft_size}


def band_map(freqs_hz: np.ndarray, edges_hz: np.ndarray) -> dict:
    """How ``to_bands`` takes a power spectrum's bins to log-frequency bands. A band holding at
    least one bin takes the strongest of its bins (``first``: its first bin; a wide band runs to
    the next wide band's first bin, the last to Nyquist), so a tone keeps its level however wide
    its band; a band narrower than a bin (low down) takes the power interpolated linearly at its
    centre (between bins ``i`` and ``i + 1``, weight ``w``)."""
    n_bins = freqs_hz.size
    bin_hz = freqs_hz[1] - freqs_hz[0]
    first = np.ceil(edges_hz[:-1] / bin_hz).astype(np.int64)
    past = np.minimum(np.ceil(edges_hz[1:] / bin_hz).astype(np.int64), n_bins)
    wide = past > first
    centre_bins = np.sqrt(edges_hz[:-1] * edges_hz[1:]) / bin_hz
    i = np.minimum(np.floor(centre_bins).astype(np.int64), n_bins - 2)
    return {"first": first[wide], "wide": wide, "i": i[~wide], "w": (centre_bins - i)[~wide]}


def to_bands(power: np.ndarray, bands: dict) -> np.ndarray:
    """Power spectra (columns, bins) as (columns, bands), by a ``band_map``."""
    out = np.empty((power.shape[0], bands["wide"].size))
    if bands["first"].size:
        out[:, bands["wide"]] = np.maximum.reduceat(power, bands["first"], axis=1)
    i, w = bands["i"], bands["w"]
    out[:, ~bands["wide"]] = power[:, i] * (1 - w) + power[:, i + 1] * w
    return out


# ---------------------------------------------------------------- drawing

def clock(t_s: float, hours: bool = False) -> str:
    """``M:SS``, or ``H:MM:SS`` when ``hours`` or past an hour (whole seconds)."""
    s = int(round(t_s))
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    return f"{h}:{m:02d}:{s:02d}" if h or hours else f"{m}:{s:02d}"


def title_text(manifest: dict, duration_s: float) -> str:
    """The piece's title, its length and its measured loudness and true peak."""
    measured = manifest.get("measured") or {}
    parts = [str(manifest.get("title") or manifest.get("name") or "untitled"), clock(duration_s)]
    lufs, dbtp = measured.get("loudness_lufs"), measured.get("true_peak_dbtp")
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
    return ticks, [clock(t, hours) for t in ticks], "time (h:mm:ss)" if hours else "time (m:ss)"


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


def draw(manifest: dict, wav_path: Path, png_path: Path, width_px: int = 1600) -> Path:
    """Draw the piece (waveform, timeline, spectrogram) into ``png_path``; return the path.

    ``manifest`` is a render's manifest (the dict ``render`` returns or its JSON file loaded);
    ``wav_path`` the rendered audio (WAV or FLAC), read streaming. The PNG is written under a
    temporary name in its folder and renamed into place. Raises ScoreError for a ``width_px``
    too small to draw in, RenderError naming the file when the audio cannot be read or does not
    match the manifest, or the PNG cannot be written.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    wav_path, png_path = Path(wav_path), Path(png_path)
    if isinstance(width_px, bool) or not isinstance(width_px, int) or width_px < MIN_WIDTH_PX:
        raise ScoreError(f"{png_path}: width_px must be a whole number of at least {MIN_WIDTH_PX}, got {width_px!r}")
    if not png_path.parent.is_dir():
        raise RenderError(f"{png_path}: cannot write the picture: the folder {png_path.parent} does not exist")
    layers = manifest.get("layers", [])
    boxes = panel_boxes_px(width_px, len(layers))
    size = boxes["size"]
    axis_w = boxes["waveform"][2]

    wave = waveform_columns(wav_path, axis_w)
    rate_hz, n_frames = wave["rate_hz"], wave["n_frames"]
    duration_s = n_frames / rate_hz
    expected_s = manifest.get("duration_s")
    if manifest.get("sample_rate") not in (None, rate_hz) or (
            expected_s is not None and abs(expected_s - duration_s) > 0.05):
        raise RenderError(f"{wav_path}: {duration_s:.3f} s at {rate_hz} Hz, but the manifest says "
                          f"{expected_s} s at {manifest.get('sample_rate')} Hz: not the audio of this render")
    spec = spectrogram_columns(wav_path, axis_w, boxes["spectrogram"][3])
    layout = timeline_layout({**manifest, "duration_s": duration_s}, axis_w)

    fig = Figure(figsize=(size[0] / DPI, size[1] / DPI), dpi=DPI, facecolor=BACKGROUND)
    FigureCanvasAgg(fig)
    fig.text(MARGIN_LEFT_PX / size[0], 1 - (TITLE_PX / 2) / size[1], title_text(manifest, duration_s),
             ha="left", va="center", fontsize=12, fontweight="bold")
    t = (np.arange(axis_w) + 0.5) * duration_s / axis_w
    ticks, tick_labels, time_label = time_ticks(duration_s, axis_w)

    # 1. waveform
    ax = axes_at(fig, boxes["waveform"], size)
    ax.fill_between(t, wave["min"], wave["max"], color=WAVE_PEAK_COLOUR, linewidth=0, step="mid")
    ax.fill_between(t, -wave["rms"], wave["rms"], color=WAVE_RMS_COLOUR, linewidth=0, step="mid")
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

    # 2. timeline: row 0 (top) the sentences, then one row per layer; y in rows, 0 at the top
    ax = axes_at(fig, boxes["timeline"], size)
    n_rows = len(layers) + 1
    ax.set_xlim(0, axis_w)
    ax.set_ylim(n_rows, 0)
    ax.set_xticks([x * axis_w / duration_s for x in ticks])
    ax.set_xticklabels([])
    ax.set_yticks(np.arange(n_rows) + 0.5)
    ax.set_yticklabels(["speech"] + ["" for _ in layers], fontsize=7)
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

    # 3. spectrogram
    ax = axes_at(fig, boxes["spectrogram"], size)
    db = spec["db"]
    top_db = math.ceil(float(np.percentile(db, 99.9)) / 10) * 10
    low, high = math.log10(spec["edges_hz"][0]), math.log10(spec["edges_hz"][-1])
    image = ax.imshow(db, origin="lower", aspect="auto", interpolation="nearest", cmap="magma",
                      vmin=top_db - SPEC_RANGE_DB, vmax=top_db, extent=(0, duration_s, low, high))
    f_ticks, f_labels = frequency_ticks(spec["edges_hz"][0], spec["edges_hz"][-1])
    ax.set_yticks(f_ticks)
    ax.set_yticklabels(f_labels)
    ax.set_ylabel("Hz", fontsize=8)
    ax.set_xlim(0, duration_s)
    ax.set_xticks(ticks)
    ax.set_xticklabels(tick_labels)
    ax.set_xlabel(time_label, fontsize=8)
    ax.tick_params(labelsize=7)
    left, top, width, height = boxes["spectrogram"]
    cax = axes_at(fig, (left + width + COLORBAR_GAP_PX, top, COLORBAR_PX, height), size)
    bar = fig.colorbar(image, cax=cax)
    bar.set_label("dB", fontsize=7)
    bar.ax.tick_params(labelsize=6)

    save_png(fig, png_path)
    return png_path


def save_png(fig, png_path: Path):
    """Save a figure as PNG under a temporary name beside ``png_path``, then rename it into place."""
    png_path = Path(png_path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{png_path.name}.", suffix=".part", dir=png_path.parent)
    except OSError as e:
        raise RenderError(f"{png_path}: cannot write the picture: {e.strerror or e}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            fig.savefig(f, format="png", dpi=DPI, facecolor=fig.get_facecolor())
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a picture is for sharing
        os.replace(tmp, png_path)
    except OSError as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise RenderError(f"{png_path}: cannot write the picture: {e.strerror or e}") from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
