"""Write what a render produces: audio files, captions and the manifest, each atomically.

Every file is written under a temporary name in its final folder, flushed to disk, then renamed
into place, so an interrupted render leaves the previous file intact and no partial file behind.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import subprocess
import tempfile
import textwrap
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from audio.errors import RenderError

# Format table: how each output format is written. Lossless ones stream through soundfile;
# lossy ones are encoded by the bundled ffmpeg from the finished 16-bit WAV.
@dataclass(frozen=True)
class Format:
    name: str
    suffix: str
    lossless: bool
    ffmpeg_args: tuple = ()


FORMATS = {
    "wav": Format("wav", ".wav", True),
    "flac": Format("flac", ".flac", True),
    "mp3": Format("mp3", ".mp3", False, ("-c:a", "libmp3lame", "-b:a", "{mp3_kbps}k", "-write_xing", "1")),
    "ogg": Format("ogg", ".ogg", False, ("-c:a", "libvorbis", "-q:a", "6")),
}


def ffmpeg_exe() -> str:
    try:
        import imageio_ffmpeg
    except ImportError:
        raise RenderError("ffmpeg is missing: install the Python package imageio-ffmpeg "
                          "(pip install imageio-ffmpeg)") from None
    return imageio_ffmpeg.get_ffmpeg_exe()


@contextlib.contextmanager
def atomic_path(final: Path):
    """Yield a temporary path beside ``final``; on success fsync and rename it into place."""
    final = Path(final)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".part", dir=final.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_text_atomic(final: Path, text: str):
    with atomic_path(final) as tmp:
        tmp.write_text(text, encoding="utf-8")


DITHER_GRID = 1 << 16  # dither noise is drawn per 65,536-sample stretch of the piece, seeded by its index


class PcmWriter:
    """Streams 16-bit PCM blocks to a WAV or FLAC file, TPDF-dithered.

    The dither at a sample depends only on the seed and the sample's place in the piece, so a
    render of a span has exactly the samples the full render has there.
    """

    def __init__(self, path: Path, fmt: str, rate_hz: int, channels: int, seed: int, first_sample: int = 0):
        self.file = sf.SoundFile(str(path), "w", samplerate=rate_hz, channels=channels,
                                 format=fmt.upper(), subtype="PCM_16")
        self.seed, self.channels, self.position = seed, channels, first_sample

    def write(self, block: np.ndarray):
        self.file.write(to_pcm16(block, tpdf_dither(self.seed, self.position, block.shape[0], self.channels)))
        self.position += block.shape[0]

    def close(self):
        self.file.close()


def tpdf_dither(seed: int, first_sample: int, n: int, channels: int) -> np.ndarray:
    """Triangular dither of ±1 LSB for samples [first_sample, first_sample + n) of the piece."""
    out = np.empty((n, channels))
    k = first_sample // DITHER_GRID
    while k * DITHER_GRID < first_sample + n:
        rng = np.random.default_rng([seed, 16, k])
        stretch = rng.random((DITHER_GRID, channels)) - rng.random((DITHER_GRID, channels))
        lo, hi = max(first_sample, k * DITHER_GRID), min(first_sample + n, (k + 1) * DITHER_GRID)
        out[lo - first_sample: hi - first_sample] = stretch[lo - k * DITHER_GRID: hi - k * DITHER_GRID]
        k += 1
    return out


def to_pcm16(block: np.ndarray, dither: np.ndarray) -> np.ndarray:
    """Float (full scale ±1) to 16-bit with the given dither (in LSB)."""
    return np.clip(np.round(block * 32767.0 + dither), -32768, 32767).astype(np.int16)


def encode(wav_path: Path, final: Path, fmt: str, tags: dict, mp3_kbps: int):
    """Encode the finished WAV into a lossy format with the bundled ffmpeg, tags included."""
    args = [a.format(mp3_kbps=mp3_kbps) for a in FORMATS[fmt].ffmpeg_args]
    meta = []
    for key, value in tags.items():
        if value:
            meta += ["-metadata", f"{key}={value}"]
    if fmt == "mp3":
        meta += ["-id3v2_version", "3"]
    with atomic_path(final) as tmp:
        cmd = [ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", str(wav_path),
               *args, *meta, "-f", fmt, str(tmp)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RenderError(f"{final}: ffmpeg could not encode {fmt}: {proc.stderr.strip()[-500:]}")


def srt_time(t_s: float) -> str:
    ms = int(round(t_s * 1000))
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d},{ms:03d}"


def srt(cues) -> str:
    """One caption per spoken sentence, timed to the speech, lines wrapped at 42 characters."""
    out = []
    for n, cue in enumerate((c for c in cues if c.n_samples > 0), start=1):
        lines = textwrap.wrap(cue.text, width=42) or [cue.text]
        out.append(f"{n}\n{srt_time(cue.start_s)} --> {srt_time(cue.end_s)}\n" + "\n".join(lines) + "\n")
    return "\n".join(out)


def write_json(final: Path, data: dict):
    def clean(v):  # JSON has no infinity: an unmeasurable level is null
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, list):
            return [clean(x) for x in v]
        return v
    write_text_atomic(final, json.dumps(clean(data), indent=2, ensure_ascii=False) + "\n")
