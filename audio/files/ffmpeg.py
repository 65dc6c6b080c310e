"""The bundled ffmpeg (imageio-ffmpeg): find it, encode a file with it, decode a file through it in blocks."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import numpy as np

from audio.errors import RenderError
from audio.files import diskspace

QUIET = ("-nostdin", "-hide_banner", "-loglevel", "error")
ERROR_TAIL_CHARS = 500  # of ffmpeg's message, kept in the error


def exe() -> str:
    """The path of the ffmpeg program that imageio-ffmpeg ships."""
    try:
        import imageio_ffmpeg
    except ImportError:
        raise RenderError("ffmpeg is missing: install the Python package imageio-ffmpeg "
                          "(pip install imageio-ffmpeg)") from None
    return imageio_ffmpeg.get_ffmpeg_exe()


def encode(src: Path, dst: Path, codec_args, muxer: str, what: str, chapters: Path | None = None):
    """Encode ``src`` into ``dst`` with ``codec_args``, as ``muxer``, dropping ``src``'s metadata;
    ``chapters`` is an ffmetadata file whose chapters go into the output (MP4 chapters).

    Bit-exact: no encoder version or random stream serial in the file, so the same input gives the
    same bytes. Raises RenderError with ffmpeg's message, saying it could not encode ``what``.
    """
    inputs = ["-i", str(src)]
    if chapters is None:
        mapping = ["-map_metadata", "-1"]
    else:  # the ffmetadata file has no tags: mapping its metadata keeps the chapter titles only
        inputs += ["-f", "ffmetadata", "-i", str(chapters)]
        mapping = ["-map", "0:a", "-map_metadata", "1", "-map_chapters", "1"]
    cmd = [exe(), *QUIET, "-y", *inputs, *codec_args, *mapping, "-fflags", "+bitexact", "-f", muxer, str(dst)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0 and diskspace.NO_SPACE in proc.stderr:
        raise diskspace.full(dst)
    if proc.returncode != 0:
        raise RenderError(f"ffmpeg could not encode {what}: {proc.stderr.strip()[-ERROR_TAIL_CHARS:]}")


def decode_blocks(path: Path, rate_hz: int, channels: int, block_frames: int):
    """Float64 blocks (n, channels) of any file ffmpeg decodes, read from a raw float32 pipe.

    ffmpeg is told the rate and channel count so the raw stream's layout is known. Memory holds
    one block whatever the file's length. Raises RenderError naming the file with ffmpeg's
    message when decoding fails.
    """
    frame_bytes = 4 * channels
    cmd = [exe(), *QUIET, "-i", str(path), "-vn", "-f", "f32le", "-acodec", "pcm_f32le", "-ar", str(rate_hz),
           "-ac", str(channels), "-"]
    with tempfile.TemporaryFile() as err:
        try:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL)
        except OSError as e:
            raise RenderError(f"{path}: cannot start ffmpeg to decode it: {e.strerror or e}") from None
        try:
            rest = b""
            while True:
                data = proc.stdout.read(block_frames * frame_bytes)
                if not data:
                    break
                data = rest + data
                whole = len(data) // frame_bytes * frame_bytes
                rest = data[whole:]
                if whole:
                    yield np.frombuffer(data[:whole], dtype="<f4").reshape(-1, channels).astype(np.float64)
        finally:
            proc.stdout.close()
            if proc.poll() is None:
                proc.kill()
            code = proc.wait()
        if code != 0:
            err.seek(0)
            message = err.read().decode("utf-8", errors="replace").strip()[-ERROR_TAIL_CHARS:]
            raise RenderError(f"{path}: ffmpeg could not decode the file (exit {code}): {message}")
