"""What a picture shows of the audio: per pixel column, the waveform's extremes and RMS, and a log-frequency spectrogram.

Both are computed streaming: the waveform from the file read in blocks, the spectrogram from a
few short reads per column found by seeking, so memory does not grow with the file and an
eight-hour piece is read like a one-minute one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.fft

from audio.errors import RenderError
from audio.files.fsname import sndfile_name

BLOCK_FRAMES = 1 << 18  # waveform: frames read per block (2 MiB of float32 stereo)
FFT_SIZE = 4096  # spectrogram: frames per FFT at 44.1/48 kHz (scaled with the rate)
FFT_FRAMES_PER_COLUMN = 4
FFT_BATCH_COLUMNS = 32  # columns transformed together
SPEC_LOW_HZ = 20.0


@dataclass(frozen=True, eq=False)
class Waveform:
    """Per column, over all channels: the lowest and highest sample and the RMS; and the file's
    length and rate."""

    min: np.ndarray
    max: np.ndarray
    rms: np.ndarray
    n_frames: int
    rate_hz: int


@dataclass(frozen=True, eq=False)
class Spectrogram:
    """Power in dB, (n_rows, n_columns) with row 0 the lowest band; the band edges; the FFT size."""

    db: np.ndarray
    edges_hz: np.ndarray
    fft_size: int


@dataclass(frozen=True, eq=False)
class BandMap:
    """How ``to_bands`` takes a power spectrum's bins to bands (see ``band_map``)."""

    first: np.ndarray  # first bin of each band that holds one
    wide: np.ndarray  # which bands hold at least one bin
    i: np.ndarray  # for the others: the bin below the band's centre …
    w: np.ndarray  # … and the weight of the bin above it


def _open_audio(wav_path: Path):
    """The audio file, open for reading; a RenderError naming it if it cannot be read."""
    import soundfile as sf
    try:
        return sf.SoundFile(sndfile_name(wav_path))
    except (RuntimeError, sf.LibsndfileError) as e:
        raise RenderError(f"{wav_path}: cannot read the audio to draw it: {e}") from None


def column_edges(n_frames: int, n_columns: int) -> np.ndarray:
    """First frame of each column, and ``n_frames`` last: ``n_columns + 1`` non-decreasing ints."""
    return (np.arange(n_columns + 1, dtype=np.int64) * n_frames + n_columns - 1) // n_columns


def waveform_columns(wav_path: Path, n_columns: int, block_frames: int = BLOCK_FRAMES) -> Waveform:
    """The waveform in ``n_columns`` columns.

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
    return Waveform(lo, hi, np.sqrt(power / count), n, rate_hz)


def log_bands_hz(low_hz: float, high_hz: float, n_rows: int) -> np.ndarray:
    """``n_rows + 1`` band edges spaced evenly in log frequency from ``low_hz`` to ``high_hz``."""
    return np.geomspace(low_hz, high_hz, n_rows + 1)


def spectrogram_columns(wav_path: Path, n_columns: int, n_rows: int,
                        frames_per_column: int = FFT_FRAMES_PER_COLUMN) -> Spectrogram:
    """A log-frequency power spectrogram in ``n_rows`` bands from 20 Hz to Nyquist, in dB where a
    full-scale sine reads 0 (up to the window's 1.4 dB scalloping).

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
    return Spectrogram(db, edges_hz, fft_size)


def band_map(freqs_hz: np.ndarray, edges_hz: np.ndarray) -> BandMap:
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
    return BandMap(first[wide], wide, i[~wide], (centre_bins - i)[~wide])


def to_bands(power: np.ndarray, bands: BandMap) -> np.ndarray:
    """Power spectra (columns, bins) as (columns, bands), by a ``band_map``."""
    out = np.empty((power.shape[0], bands.wide.size))
    if bands.first.size:
        out[:, bands.wide] = np.maximum.reduceat(power, bands.first, axis=1)
    i, w = bands.i, bands.w
    out[:, ~bands.wide] = power[:, i] * (1 - w) + power[:, i + 1] * w
    return out
