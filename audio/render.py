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
import soundfile as sf

from audio import __version__, export, master, mixer
from audio.errors import RenderError
from audio.plan import Plan
from audio.voice import ClipCache

LOUDNESS_TOLERANCE_LU = 0.1  # another output pass is made if the limited mix misses by more
LOUDNESS_LIMIT_LU = 0.4  # the best try must be at least this close, else the render fails
MAX_GAIN_ATTEMPTS = 5


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


def _master_pass(mix: _FloatFile, plan: Plan, gain_db: float, sink, span=None, block=mixer.BLOCK_SAMPLES):
    """Gain and limit the whole mix block by block, feeding ``sink`` the samples inside ``span``
    (first, end sample; default everything).

    Returns (integrated loudness in LUFS, true peak in dBTP) of the whole mastered piece.
    """
    first, end = span or (0, mix.frames)
    sr, ch = plan.sample_rate, plan.channels
    context = master.limiter_context(sr)
    gain = 10 ** (gain_db / 20)
    meter, peak = master.LoudnessMeter(sr, ch), master.TruePeakMeter(ch)
    for a in range(0, mix.frames, block):
        b = min(a + block, mix.frames)
        y = master.limit(mix.read(a - context, b + context) * gain, context, plan.master["true_peak_dbtp"], sr)
        meter.add(y)
        peak.add(y)
        if first < b and a < end:
            sink(y[max(first, a) - a: min(end, b) - a])
    return meter.integrated_lufs(), peak.dbtp()


def _master_to_target(mix: _FloatFile, plan: Plan, wav_path: Path, gain_db: float, span=None):
    """Write the mastered 16-bit WAV (of ``span`` only, if given), trying gains until the whole
    piece's loudness is on target.

    Returns (gain in dB, loudness in LUFS, true peak in dBTP) of the whole mastered piece.
    """
    target = plan.master["loudness_lufs"]

    def write(gain):
        writer = export.PcmWriter(wav_path, "wav", plan.sample_rate, plan.channels, plan.seed,
                                  first_sample=span[0] if span else 0)
        try:
            return _master_pass(mix, plan, gain, writer.write, span)
        finally:
            writer.close()

    tried = []  # (gain_db, loudness, true peak) after the limiter: the limiter bends this curve
    while True:
        out_lufs, out_dbtp = write(gain_db)
        tried.append((gain_db, out_lufs, out_dbtp))
        if not np.isfinite(out_lufs) or abs(target - out_lufs) <= LOUDNESS_TOLERANCE_LU:
            return gain_db, out_lufs, out_dbtp
        if len(tried) == MAX_GAIN_ATTEMPTS:
            best_gain, best_lufs, best_dbtp = min(tried, key=lambda t: abs(target - t[1]))
            if abs(target - best_lufs) > LOUDNESS_LIMIT_LU:
                raise RenderError(
                    f"{plan.name}: could not bring the piece to {target:g} LUFS under the "
                    f"{plan.master['true_peak_dbtp']:g} dBTP ceiling (best {best_lufs:.2f} LUFS at "
                    f"{best_gain:+.1f} dB gain); the mix is too peaky for this target: lower master.loudness_lufs")
            if best_gain != gain_db:
                write(best_gain)
            return best_gain, best_lufs, best_dbtp
        gain_db = _next_gain_db(tried, target)


def _next_gain_db(tried: list, target_lufs: float) -> float:
    """The next gain to try. Loudness after the limiter bends below gain (and gating can even make
    it dip), so: step by the miss first, then interpolate between the closest tries on either side
    of the target once there are some, else extrapolate along the last two."""
    g1, l1, _ = tried[-1]
    if len(tried) == 1:
        return g1 + (target_lufs - l1)
    below = [t[:2] for t in tried if t[1] < target_lufs]
    above = [t[:2] for t in tried if t[1] > target_lufs]
    if below and above:
        (ga, la), (gb, lb) = max(below, key=lambda t: t[1]), min(above, key=lambda t: t[1])
        return ga + (gb - ga) * (target_lufs - la) / (lb - la)
    g0, l0, _ = tried[-2]
    slope = (l1 - l0) / (g1 - g0) if g1 != g0 else 1.0
    return g1 + (target_lufs - l1) / min(1.0, max(0.2, slope))


def render(plan: Plan, cache: ClipCache, out_dir: Path, formats=None, progress=None, span_s=None) -> dict:
    """Render ``plan`` into ``out_dir``; return the manifest. ``progress(n_samples)`` reports work.

    ``span_s`` (start, end in seconds) renders a preview: the whole piece is mixed and measured, so
    the span's samples are exactly those of the full render there, but only the span is written,
    as NAME.preview.FORMAT, with no captions or manifest.
    """
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
        span = None
        if span_s is not None:
            span = (min(round(span_s[0] * sr), mix.frames), min(round(span_s[1] * sr), mix.frames))
        gain_db, out_lufs, out_dbtp = _master_to_target(mix, plan, wav_tmp, gain_db, span)
        timings["master_s"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        tags = {"title": plan.title, "artist": plan.author, "comment": "rendered by piece"}
        written = {}
        stem = plan.name if span is None else f"{plan.name}.preview"
        for fmt in formats:
            final = out_dir / f"{stem}{export.FORMATS[fmt].suffix}"
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

    if span is not None:
        return {"files": written, "span_s": [span[0] / sr, span[1] / sr],
                "measured": {"mix_lufs": mix_lufs, "gain_db": gain_db, "loudness_lufs": out_lufs,
                             "true_peak_dbtp": out_dbtp}, "timings": timings}
    srt_path = out_dir / f"{plan.name}.srt"
    export.write_text_atomic(srt_path, export.srt(plan.cues))
    manifest = plan.to_dict()
    manifest.update({
        "files": {**written, "srt": str(srt_path), "json": str(out_dir / f"{plan.name}.json")},
        "versions": versions(),
        "measured": {"mix_lufs": mix_lufs, "gain_db": gain_db, "loudness_lufs": out_lufs,
                     "true_peak_dbtp": out_dbtp},
        "timings": timings,
    })
    export.write_json(out_dir / f"{plan.name}.json", manifest)
    return manifest


def _copy_pcm(src: Path, dst: Path, fmt: str, tags: dict):
    """Re-write 16-bit PCM into another lossless container, block by block, with tags."""
    with sf.SoundFile(str(src)) as f_in, sf.SoundFile(str(dst), "w", samplerate=f_in.samplerate,
                                                      channels=f_in.channels, format=fmt.upper(),
                                                      subtype="PCM_16") as f_out:
        for key in ("title", "artist", "comment"):
            if tags.get(key):
                setattr(f_out, key, tags[key])
        for block in f_in.blocks(blocksize=mixer.BLOCK_SAMPLES, dtype="int16"):
            f_out.write(block)
