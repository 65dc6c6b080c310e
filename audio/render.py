"""Render a plan to finished files: mix to a temporary float file while measuring loudness, then
gain, limit, dither and write every format; captions and the manifest beside them.
"""

from __future__ import annotations

import contextlib
import platform
import shutil
import tempfile
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np

from audio import __version__, export, master, mixer
from audio.errors import RenderError
from audio.plan import Plan
from audio.voice import ClipCache

LOUDNESS_TOLERANCE_LU = 0.1  # a second output pass is made if the limited mix misses by more


class _FloatFile:
    """The unmastered mix as raw float32 on disk, read back in blocks with context on each side."""

    def __init__(self, path: Path, channels: int):
        self.path, self.channels = path, channels
        self.frames = 0
        self._w = open(path, "wb")

    def append(self, block: np.ndarray):
        self._w.write(np.ascontiguousarray(block, dtype=np.float32).tobytes())
        self.frames += block.shape[0]

    def close_writing(self):
        self._w.close()

    def read(self, a: int, b: int) -> np.ndarray:
        """Frames [a, b), zero outside the file."""
        lo, hi = max(a, 0), min(b, self.frames)
        out = np.zeros((b - a, self.channels))
        if hi > lo:
            with open(self.path, "rb") as f:
                f.seek(lo * self.channels * 4)
                data = np.fromfile(f, dtype=np.float32, count=(hi - lo) * self.channels)
            out[lo - a: hi - a] = data.reshape(-1, self.channels)
        return out


def versions() -> dict:
    out = {"piece": __version__, "python": platform.python_version()}
    for pkg in ("numpy", "scipy", "pyttsx3", "soundfile", "espeakng-loader", "imageio-ffmpeg"):
        with contextlib.suppress(PackageNotFoundError):
            out[pkg] = version(pkg)
    return out


def _master_pass(mix: _FloatFile, plan: Plan, gain_db: float, sink, block=mixer.BLOCK_SAMPLES):
    """Gain and limit the whole mix block by block; feed each block to ``sink``; return its loudness."""
    sr, ch = plan.sample_rate, plan.channels
    context = master.limiter_context(sr)
    gain = 10 ** (gain_db / 20)
    meter = master.LoudnessMeter(sr, ch)
    for a in range(0, mix.frames, block):
        b = min(a + block, mix.frames)
        y = master.limit(mix.read(a - context, b + context) * gain, context, plan.master["true_peak_dbtp"], sr)
        meter.add(y)
        sink(y)
    return meter.integrated_lufs()


def render(plan: Plan, cache: ClipCache, out_dir: Path, formats=None, progress=None) -> dict:
    """Render ``plan`` into ``out_dir``; return the manifest. ``progress(n_samples)`` reports work."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    formats = tuple(formats or plan.master["formats"])
    sr, ch = plan.sample_rate, plan.channels
    target = plan.master["loudness_lufs"]
    timings = {}
    work = Path(tempfile.mkdtemp(prefix=f".{plan.name}.", dir=out_dir))
    try:
        t0 = time.perf_counter()
        mix = _FloatFile(work / "mix.f32", ch)
        meter = master.LoudnessMeter(sr, ch)
        for block in mixer.render_blocks(plan, cache):
            meter.add(block)
            mix.append(block)
            if progress:
                progress(block.shape[0])
        mix.close_writing()
        mix_lufs = meter.integrated_lufs()
        gain_db = master.gain_db_to(mix_lufs, target)
        timings["mix_s"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        wav_tmp = work / "master.wav"
        for attempt in range(2):
            writer = export.PcmWriter(wav_tmp, "wav", sr, ch, plan.seed)
            try:
                out_lufs = _master_pass(mix, plan, gain_db, writer.write)
            finally:
                writer.close()
            miss = target - out_lufs if np.isfinite(out_lufs) else 0.0
            if abs(miss) <= LOUDNESS_TOLERANCE_LU:
                break
            gain_db += miss  # the limiter took some loudness: aim again
        timings["master_s"] = time.perf_counter() - t0

        measured = measure_file(wav_tmp, sr, ch)
        t0 = time.perf_counter()
        tags = {"title": plan.title, "artist": plan.author, "comment": "rendered by piece"}
        written = {}
        for fmt in formats:
            final = out_dir / f"{plan.name}{export.FORMATS[fmt].suffix}"
            if fmt == "wav":
                with export.atomic_path(final) as tmp:
                    shutil.copyfile(wav_tmp, tmp)
            elif fmt == "flac":
                with export.atomic_path(final) as tmp:
                    _copy_pcm(wav_tmp, tmp, "flac", tags)
            else:
                export.encode(wav_tmp, final, fmt, tags, plan.master["mp3_bitrate_kbps"])
            written[fmt] = str(final)
        timings["export_s"] = time.perf_counter() - t0
    finally:
        shutil.rmtree(work, ignore_errors=True)

    srt_path = out_dir / f"{plan.name}.srt"
    export.write_text_atomic(srt_path, export.srt(plan.cues))
    manifest = plan.to_dict()
    manifest.update({
        "files": {**written, "srt": str(srt_path), "json": str(out_dir / f"{plan.name}.json")},
        "versions": versions(),
        "measured": {"mix_lufs": mix_lufs, "gain_db": gain_db, "loudness_lufs": measured["lufs"],
                     "true_peak_dbtp": measured["dbtp"]},
        "timings": timings,
    })
    export.write_json(out_dir / f"{plan.name}.json", manifest)
    return manifest


def _copy_pcm(src: Path, dst: Path, fmt: str, tags: dict):
    """Re-write 16-bit PCM into another lossless container, block by block, with tags."""
    import soundfile as sf
    with sf.SoundFile(str(src)) as f_in, sf.SoundFile(str(dst), "w", samplerate=f_in.samplerate,
                                                      channels=f_in.channels, format=fmt.upper(),
                                                      subtype="PCM_16") as f_out:
        for key in ("title", "artist", "comment"):
            if tags.get(key):
                setattr(f_out, key, tags[key])
        for block in f_in.blocks(blocksize=mixer.BLOCK_SAMPLES, dtype="int16"):
            f_out.write(block)


def measure_file(path: Path, sr: int, ch: int) -> dict:
    """Loudness and true peak of a written file, as the listener will get it (after dither)."""
    import soundfile as sf
    meter, peak = master.LoudnessMeter(sr, ch), master.TruePeakMeter(ch)
    try:
        with sf.SoundFile(str(path)) as f:
            for block in f.blocks(blocksize=mixer.BLOCK_SAMPLES, dtype="float64", always_2d=True):
                meter.add(block)
                peak.add(block)
    except (OSError, RuntimeError) as e:
        raise RenderError(f"{path}: cannot read back the rendered file: {e}") from None
    return {"lufs": meter.integrated_lufs(), "dbtp": peak.dbtp()}
