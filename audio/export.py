"""Deliver a render: every output format from the float master, and the captions.

The master is a float WAV; lossless outputs are converted from it block by block (dithered to
their bit depth), lossy ones are encoded from it by the bundled ffmpeg, two at a time. Each file
is tagged and staged atomically (``files.staging``) before the render commits them together.
"""

from __future__ import annotations

import errno
import json
import tempfile
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import soundfile as sf

from audio import captions
from audio.files import diskspace, ffmpeg, riff, staging, tags
from audio.files.fsname import sndfile_name
from audio.score import MP3_CBR_KBPS, written_channels

if TYPE_CHECKING:
    from audio.plan import Plan, Tags

BLOCK = 1 << 17


@dataclass(frozen=True)
class Format:
    """How one output format is written: by soundfile (lossless) or by ffmpeg (lossy, through
    ``muxer``), and which kind of tag it carries."""

    name: str
    suffix: str
    lossless: bool
    tags: str  # "riff" (WAV INFO), "vorbis", "id3" or "mp4"
    codec_args: tuple = ()
    muxer: str = ""
    loops: bool = True  # can hold a seamless loop (MP3's and AAC's encoder delay and padding break one)


AAC_ARGS = ("-c:a", "aac", "-b:a", "128k", "-movflags", "+faststart")  # the index first: plays while it loads
FORMATS = {
    "wav": Format("wav", ".wav", True, "riff"),
    "flac": Format("flac", ".flac", True, "vorbis"),
    "mp3": Format("mp3", ".mp3", False, "id3", ("-c:a", "libmp3lame"), "mp3", loops=False),
    "ogg": Format("ogg", ".ogg", False, "vorbis", ("-c:a", "libvorbis", "-q:a", "6"), "ogg"),
    "opus": Format("opus", ".opus", False, "vorbis", ("-c:a", "libopus", "-b:a", "128k"), "opus"),
    "m4a": Format("m4a", ".m4a", False, "mp4", AAC_ARGS + ("-brand", "M4A "), "ipod", loops=False),
    "m4b": Format("m4b", ".m4b", False, "mp4", AAC_ARGS + ("-brand", "M4B "), "ipod", loops=False),
}
PCM_SUBTYPES = {16: "PCM_16", 24: "PCM_24", 32: "FLOAT"}
# The rates a lossy encoder takes, in the order ffmpeg's encoders list them (libmp3lame, libopus,
# the native AAC encoder): ffmpeg resamples any other rate to the nearest, the first listed on a tie.
AAC_RATES_HZ = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350)
ENCODER_RATES_HZ = {"mp3": (44100, 48000, 32000, 22050, 24000, 16000, 11025, 12000, 8000), "opus": (48000,),
                    "m4a": AAC_RATES_HZ, "m4b": AAC_RATES_HZ}
ENCODER_RATE_RULES = {"mp3": "MP3 takes 22.05, 24, 32, 44.1 or 48 kHz, none higher",
                      "opus": "Opus is always 48 kHz", "m4a": "AAC takes only its standard rates",
                      "m4b": "AAC takes only its standard rates"}
PODCAST_MAX_BYTES = 200_000_000  # many podcast hosts refuse a larger episode
OGG_SERIALS = 1 << 31  # ffmpeg's serial_offset is a non-negative int
DITHER_GRID = 1 << 16  # dither noise is drawn per 65,536-sample stretch of the piece, seeded by its index


@dataclass(frozen=True)
class Delivery:
    """How the master becomes files: their tags and chapters, bit depth, MP3 mode, dither seed,
    rate, the channels of the files and of the mix (fewer when a mono mix is written twice), where
    in the piece the master starts, and the loop (0 for none)."""

    tags: Tags
    chapters: tuple  # plan.Chapter
    bit_depth: int
    mp3_mode: str
    seed: int
    rate_hz: int
    channels: int
    mix_channels: int
    first_sample: int = 0
    loop_samples: int = 0

    @classmethod
    def from_plan(cls, plan: Plan, first_sample: int = 0, loop_samples: int = 0) -> Delivery:
        """The delivery a plan asks for; a podcast preset writes a mono mix as two identical channels
        (Apple refuses one-channel WAV and FLAC), in every format, so every file reads the same."""
        return cls(plan.tags, tuple(plan.chapters), plan.master.bit_depth, plan.master.mp3, plan.seed,
                   plan.sample_rate, written_channels(plan.master.preset, plan.channels), plan.channels,
                   first_sample, loop_samples)

    @property
    def cover(self) -> Path | None:
        return Path(self.tags.cover) if self.tags.cover else None


def written_rate_hz(fmt: str, rate_hz: int) -> int:
    """The sample rate a file of ``fmt`` is written at from a master at ``rate_hz``."""
    rates = ENCODER_RATES_HZ.get(fmt)
    return min(rates, key=lambda r: abs(r - rate_hz)) if rates else rate_hz


def rate_warnings(formats, rate_hz: int, file: str) -> list[str]:
    """A warning for each format written at another sample rate than the piece's, saying why."""
    out = []
    for fmt in formats:
        written = written_rate_hz(fmt, rate_hz)
        if written != rate_hz:
            out.append(f"{file}: piece.sample_rate: the {fmt} file is written at {written} Hz, not {rate_hz} Hz "
                       f"({ENCODER_RATE_RULES[fmt]})")
    return out


# ---------------------------------------------------------------------------- PCM

def tpdf_dither(seed: int, first_sample: int, n: int, channels: int) -> np.ndarray:
    """Triangular dither of ±1 LSB for samples [first_sample, first_sample + n) of the piece.

    It depends only on the seed and the sample's place in the piece, so a span rendered on its own
    has exactly the samples the full render has there.
    """
    out = np.empty((n, channels))
    k = first_sample // DITHER_GRID
    while k * DITHER_GRID < first_sample + n:
        rng = np.random.default_rng([seed, 16, k])
        stretch = rng.random((DITHER_GRID, channels)) - rng.random((DITHER_GRID, channels))
        lo, hi = max(first_sample, k * DITHER_GRID), min(first_sample + n, (k + 1) * DITHER_GRID)
        out[lo - first_sample: hi - first_sample] = stretch[lo - k * DITHER_GRID: hi - k * DITHER_GRID]
        k += 1
    return out


def quantize(block: np.ndarray, bits: int, dither: np.ndarray) -> np.ndarray:
    """Float (full scale ±1) to integer PCM of ``bits`` with the given dither (in LSB).

    16-bit comes as int16; 24-bit as int32 with the sample in the top 24 bits, which is how
    soundfile reads an int32 array (full scale at 2**31) into a 24-bit file."""
    full = 2.0 ** (bits - 1)
    pcm = np.clip(np.round(block * (full - 1) + dither), -full, full - 1)
    return pcm.astype(np.int16) if bits == 16 else pcm.astype(np.int32) << (32 - bits)


class FloatWriter:
    """Streams float blocks to a 32-bit float WAV (the master, and stems); a mono block written to
    a two-channel file goes into both channels."""

    def __init__(self, path: Path, rate_hz: int, channels: int):
        self.path = path
        self.channels = channels
        self.file = sf.SoundFile(sndfile_name(path), "w", samplerate=rate_hz, channels=channels, format="WAV",
                                 subtype="FLOAT")

    def write(self, block: np.ndarray):
        with diskspace.sndfile_writing(self.file, self.path):
            self.file.write(np.repeat(block.astype(np.float32), self.channels // block.shape[1], axis=1))

    def close(self):
        with diskspace.sndfile_writing(self.file, self.path):
            self.file.close()
        zero_peak_timestamp(self.path)


def zero_peak_timestamp(path: Path):
    """libsndfile stamps the wall-clock time into a float WAV's PEAK chunk; zero it so the same
    render gives the same bytes."""
    with open(path, "r+b") as f:
        head = f.read(512)
        at = head.find(b"PEAK")
        if at >= 0:
            f.seek(at + 12)  # "PEAK", chunk size, version, then the timestamp
            f.write(b"\0\0\0\0")


def convert_pcm(master: Path, final_tmp: Path, fmt: str, delivery: Delivery):
    """The float master as WAV/FLAC of the delivery's bit depth (dithered unless float); a WAV gets
    the tags in its INFO chunk."""
    bits = delivery.bit_depth
    with sf.SoundFile(sndfile_name(master)) as src, sf.SoundFile(
            sndfile_name(final_tmp), "w", samplerate=src.samplerate, channels=src.channels, format=fmt.upper(),
            subtype=PCM_SUBTYPES[bits]) as dst, diskspace.sndfile_writing(dst, final_tmp):
        if fmt == "wav":
            tags.write_wav_info(dst, asdict(delivery.tags))
        position = delivery.first_sample
        for block in src.blocks(blocksize=BLOCK, dtype="float64", always_2d=True):
            if bits == 32:
                out = block.astype(np.float32)
            else:
                dither = tpdf_dither(delivery.seed, position, block.shape[0], delivery.mix_channels)
                out = quantize(block, bits, np.repeat(dither, block.shape[1] // delivery.mix_channels, axis=1))
            dst.write(out)
            position += block.shape[0]
    if bits == 32 and fmt == "wav":
        zero_peak_timestamp(final_tmp)


# ---------------------------------------------------------------------------- writing a format

def mp3_args(mode: str) -> list[str]:
    """LAME settings for "cbr192" (constant bit rate) or "vbr2" (variable, quality 0 best .. 9)."""
    if mode.startswith("vbr"):
        return ["-q:a", mode[3:]]
    return ["-b:a", f"{mode[3:]}k"]


def mp3_mode_that_fits(duration_s: float, max_bytes: float | None = None) -> str | None:
    """The highest constant MP3 bit rate whose file of ``duration_s`` stays under ``max_bytes``
    (PODCAST_MAX_BYTES: what many podcast hosts take), with 1 % for tags and framing; None if none does."""
    max_bytes = PODCAST_MAX_BYTES if max_bytes is None else max_bytes
    fitting = [kbps for kbps in MP3_CBR_KBPS if kbps * 1000 / 8 * duration_s * 1.01 <= max_bytes]
    return f"cbr{max(fitting)}" if fitting else None


def write_format(master: Path, final: Path, fmt: str, delivery: Delivery, staged: staging.Staged | None = None):
    """One output file from the float master, tagged, staged (or renamed into place) when complete."""
    f = FORMATS[fmt]
    tag_values = asdict(delivery.tags)
    try:
        _write_format(master, final, f, fmt, delivery, tag_values, staged)
    except OSError as e:
        if e.errno == errno.ENOSPC:
            raise diskspace.full(final) from None  # the file's name, not its temporary one
        raise


def _write_format(master: Path, final: Path, f: Format, fmt: str, delivery: Delivery, tag_values: dict,
                  staged: staging.Staged | None):
    with staging.atomic_path(final, staged) as tmp:
        if f.lossless:
            convert_pcm(master, tmp, fmt, delivery)
        else:
            encode(master, tmp, f, delivery)
        if f.tags == "riff":
            if delivery.loop_samples:
                riff.add_smpl_chunk(tmp, 0, delivery.loop_samples - 1, delivery.rate_hz)
        elif f.tags == "id3":
            tags.write_id3(tmp, tag_values, delivery.chapters, delivery.cover)
        elif f.tags == "mp4":
            tags.write_mp4(tmp, tag_values, delivery.cover, audiobook=fmt == "m4b")
        else:
            tags.write_vorbis(tmp, tag_values, delivery.chapters, delivery.cover)


def encode(master: Path, tmp: Path, f: Format, delivery: Delivery):
    """A lossy format through ffmpeg: MP3 in the delivery's mode, Ogg with a stream serial from the
    seed (ffmpeg's is random, so two renders would differ), MP4 with its chapters."""
    args = f.codec_args
    if f.name == "mp3":
        args += tuple(mp3_args(delivery.mp3_mode))
    if f.muxer in ("ogg", "opus"):
        args += ("-serial_offset", str(delivery.seed % OGG_SERIALS))
    if f.tags != "mp4":
        ffmpeg.encode(master, tmp, args, muxer=f.muxer, what=f.name)
        return
    with tempfile.TemporaryDirectory() as folder:
        chapters = Path(folder) / "chapters.ffmetadata"
        chapters.write_text(tags.ffmetadata_chapters(delivery.chapters), encoding="utf-8")
        ffmpeg.encode(master, tmp, args, muxer=f.muxer, what=f.name, chapters=chapters)


def write_formats(master: Path, out_dir: Path, stem: str, formats, delivery: Delivery,
                  staged: staging.Staged | None = None, done=None) -> dict:
    """Every asked format, two at a time (ffmpeg and soundfile release the GIL); {format: path}.
    ``done()`` is called, on this thread, as each file is finished."""
    paths = {fmt: out_dir / f"{stem}{FORMATS[fmt].suffix}" for fmt in formats}
    with ThreadPoolExecutor(max_workers=2) as pool:
        jobs = [pool.submit(write_format, master, path, fmt, delivery, staged) for fmt, path in paths.items()]
        for job in as_completed(jobs):
            job.result()
            if done:
                done()
    return {fmt: str(path) for fmt, path in paths.items()}


def write_captions(out_dir: Path, stem: str, cues, chapters: list, title: str, speaker: str,
                   staged: staging.Staged | None = None) -> dict:
    """SRT, WebVTT, Podcasting 2.0 transcript and chapters JSON; {kind: path}."""
    written = {}
    for kind, name, text in [
        ("srt", f"{stem}.srt", captions.srt(cues)),
        ("vtt", f"{stem}.vtt", captions.webvtt(cues, speaker)),
        ("transcript", f"{stem}.transcript.json", _json(captions.transcript_json(cues, speaker))),
        ("chapters", f"{stem}.chapters.json", _json(captions.chapters_json(chapters, title))),
    ]:
        staging.write_text(out_dir / name, text, staged)
        written[kind] = str(out_dir / name)
    return written


def _json(data: dict) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
