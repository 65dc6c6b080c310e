"""Render a plan to finished files.

Pass 1 mixes into a temporary float file (and one per stem) while measuring loudness. A seamless
loop then gets its end crossfaded into its start. Pass 2 gains, limits and writes the float
master, again at a better gain until the loudness is on target (usually once or twice); every
format, the captions, the manifest and (if asked) stems and a picture are made from it.
"""

from __future__ import annotations

import logging
import os
import queue
import shutil
import threading
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from audio import export, manifest, master, mixer
from audio.errors import RenderError, score_error
from audio.files import staging
from audio.plan import Plan
from audio.voice import ClipCache

log = logging.getLogger(__name__)


def _keep_freed_blocks_in_the_heap():
    """Ask glibc's malloc to reuse freed memory rather than give it back to the kernel.

    Every block of a render is a few MB of temporaries; by default glibc maps each afresh and
    unmaps it when freed, and the page faults of touching new pages again cost a third of a bed
    render's time (10-minute bed: 695,000 minor faults, 1.6 s of system time; with this, 31,000
    and 0.5 s). The heap keeps what the largest block needed, so memory stays flat. Elsewhere
    than glibc this does nothing.
    """
    import ctypes
    import ctypes.util
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return
    m_trim_threshold, m_mmap_threshold = -1, -3
    mallopt(m_mmap_threshold, 32 << 20)  # blocks under 32 MB come from the heap (glibc's largest setting)
    mallopt(m_trim_threshold, 512 << 20)  # and freed memory stays there, up to 512 MB


_keep_freed_blocks_in_the_heap()

LOUDNESS_TOLERANCE_LU = 0.1  # another output pass is made if the limited mix misses by more
LOUDNESS_LIMIT_LU = 0.4  # the best try must be at least this close, else the render fails
MAX_GAIN_ATTEMPTS = 12  # passes: each limits, meters and writes the master; the first on target stays


class _FloatFile:
    """Audio as raw float32 frames on disk, appended in blocks and read back with context."""

    def __init__(self, path: Path, channels: int):
        self.path, self.channels = path, channels
        self.frames = 0
        self._w = open(path, "wb")
        self.loop = False  # reads wrap around the end (a seamless loop's limiter sees its own start)

    def append(self, block: np.ndarray):
        self._w.write(np.ascontiguousarray(block, dtype=np.float32).tobytes())
        self.frames += block.shape[0]

    def close_writing(self):
        self._w.close()

    def read(self, a: int, b: int) -> np.ndarray:
        """Frames [a, b): zero outside the file, or wrapped around it for a loop."""
        if self.loop and (a < 0 or b > self.frames):
            return np.concatenate([self._read(lo, hi) for lo, hi in _wrapped_ranges(a, b, self.frames)])
        return self._read(a, b)

    def _read(self, a: int, b: int) -> np.ndarray:
        lo, hi = max(a, 0), min(b, self.frames)
        out = np.zeros((b - a, self.channels))
        if hi > lo:
            with open(self.path, "rb") as f:
                f.seek(lo * self.channels * 4)
                data = np.fromfile(f, dtype=np.float32, count=(hi - lo) * self.channels)
            out[lo - a: hi - a] = data.reshape(-1, self.channels)
        return out

    def overwrite(self, a: int, block: np.ndarray):
        with open(self.path, "r+b") as f:
            f.seek(a * self.channels * 4)
            f.write(np.ascontiguousarray(block, dtype=np.float32).tobytes())

    def truncate(self, frames: int):
        with open(self.path, "r+b") as f:
            f.truncate(frames * self.channels * 4)
        self.frames = frames

    def blocks(self, size=mixer.BLOCK_SAMPLES):
        for a in range(0, self.frames, size):
            yield self._read(a, min(a + size, self.frames))


def _wrapped_ranges(a: int, b: int, n: int):
    """[a, b) cut into ranges inside [0, n), wrapping around."""
    while a < b:
        start = a % n
        length = min(b - a, n - start)
        yield start, start + length
        a += length


def _make_seamless(files: list[_FloatFile], crossfade: int) -> None:
    """Crossfade each file's last ``crossfade`` frames into its first (equal power) and cut them
    off, so the end runs on into the start without a seam."""
    for f in files:
        n = f.frames
        if n <= 2 * crossfade:
            raise RenderError(f"a seamless loop needs more than twice the crossfade ({crossfade} samples), "
                              f"the piece has {n}")
        theta = (np.arange(crossfade) + 0.5) / crossfade * (np.pi / 2)
        head, tail = f.read(0, crossfade), f.read(n - crossfade, n)
        f.overwrite(0, head * np.sin(theta)[:, None] + tail * np.cos(theta)[:, None])
        f.truncate(n - crossfade)
        f.loop = True


def _measure(mix: _FloatFile, plan: Plan, offset: np.ndarray) -> master.LoudnessMeter:
    meter = master.LoudnessMeter(plan.sample_rate, plan.channels)
    for block in mix.blocks():
        meter.add(block - offset)
    return meter


class _Envelope:
    """The unmastered mix's true-peak envelope, kept on disk: it scales with gain, so the costly 4x
    oversampling is done once for all the gains the loudness search tries.

    Kept as the largest value in each STEP samples (absolute positions): a sixteenth of the bytes
    to write and read on every try, and the limiter, which holds its gain for 30 ms around a peak,
    only starts and ends at most STEP - 1 samples sooner and later than with every sample's value.

    It is made as the mix is (``add`` each block, then ``finish``), exact down to STREAM_FLOOR, or
    afterwards by ``ensure`` (a seamless loop's mix changes after pass 1).
    """

    STREAM_FLOOR = 1e-5  # exact wherever it reaches -100 dBFS: good for any gain up to +99 dB
    STEP = 16  # samples per stored value

    def __init__(self, mix: _FloatFile, work: Path):
        self.mix, self.work = mix, work
        self.floor = None
        self.file = None
        self._before = np.zeros((0, mix.channels))  # the samples before the pending block (up to TP_REACH)
        self._pending = None  # the last block added: judged once the next one shows what follows it
        self._carry = np.zeros(0)  # judged samples not yet making a whole STEP

    def add(self, block: np.ndarray):
        if self.file is None:
            self._start()
        if self._pending is not None:
            self._judge(block)
        self._pending = block

    def finish(self):
        if self._pending is not None:
            self._judge(np.zeros((0, self.mix.channels)))
            self._close()
            self.floor = self.STREAM_FLOOR

    def _judge(self, after: np.ndarray):
        reach, pending = master.TP_REACH, self._pending
        ext = np.concatenate([self._before, pending, after[:reach]])
        ext = np.pad(ext, ((reach - len(self._before), reach - min(reach, len(after))), (0, 0)))
        self._append(master.true_peak_envelope(ext, self.STREAM_FLOOR)[reach: reach + len(pending)])
        self._before = np.concatenate([self._before, pending])[-reach:]

    def ensure(self, floor: float):
        """Make it exact wherever the envelope could reach ``floor`` (at unit gain); when it has to
        be made, make it as the mixer's thread would (or good for 6 dB more gain, if that is lower),
        so a render gives the same bytes whichever way its envelope was made."""
        if self.floor is not None and floor >= self.floor:
            return
        self.floor = floor = min(floor / 2.0, self.STREAM_FLOOR)
        self._start()
        reach = master.TP_REACH
        for a in range(0, self.mix.frames, mixer.BLOCK_SAMPLES):
            b = min(a + mixer.BLOCK_SAMPLES, self.mix.frames)
            env = master.true_peak_envelope(self.mix.read(a - reach, b + reach), floor)
            self._append(env[reach: reach + b - a])
        self._close()

    def _start(self):
        self.file = _FloatFile(self.work / "envelope.f32", 1)
        self._carry = np.zeros(0)

    def _append(self, env: np.ndarray):
        env = np.concatenate([self._carry, env])
        whole = len(env) // self.STEP * self.STEP
        steps = env[:whole].reshape(-1, self.STEP)
        top = steps[:, 0].copy()
        for j in range(1, self.STEP):  # column by column: numpy reduces a short last axis slowly
            np.maximum(top, steps[:, j], out=top)
        self.file.append(top[:, None])
        self._carry = env[whole:]

    def _close(self):
        if len(self._carry):
            self.file.append(np.array([[self._carry.max()]]))
        self.file.close_writing()

    def n_values(self) -> int:
        """How many values are kept (one per STEP samples)."""
        return self.file.frames

    def values(self, a: int, b: int) -> np.ndarray:
        """Kept values [a, b) (each the largest of its STEP samples), zero outside."""
        return self.file.read(a, b)[:, 0]

    def read(self, a: int, b: int) -> np.ndarray:
        """The envelope at samples [a, b): zero outside the mix, or wrapped around a loop."""
        n, step = self.mix.frames, self.STEP
        if not (self.mix.loop and (a < 0 or b > n)):
            out = np.zeros(b - a)
            lo, hi = max(a, 0), min(b, n)
            if hi > lo:
                first = lo // step
                values = np.repeat(self.file.read(first, (hi - 1) // step + 1)[:, 0], step)
                out[lo - a: hi - a] = values[lo - first * step: hi - first * step]
            return out
        pos = np.arange(a, b) % n  # across a loop's seam
        index = pos // step
        lo = int(index.min())
        return self.file.read(lo, int(index.max()) + 1)[index - lo, 0]


def _master_pass(mix: _FloatFile, envelope: _Envelope, plan: Plan, gain_db: float, offset, sink, span=None,
                 block=mixer.BLOCK_SAMPLES):
    """Gain and limit the whole mix block by block (``offset`` per channel removed first), feeding
    ``sink`` the samples inside ``span`` (first, end sample; default everything).

    Returns (integrated loudness in LUFS, true peak in dBTP) of the whole mastered piece; the true
    peak is metered on the other core, beside the limiter.
    """
    sr, ch = plan.sample_rate, plan.channels
    first, end = span or (0, mix.frames)
    context = master.limiter_context(sr)
    gain = 10 ** (gain_db / 20)
    slack = float(np.abs(offset).max())  # removing a DC offset moves the envelope by at most that much
    meter, peak = master.LoudnessMeter(sr, ch), master.TruePeakMeter(ch)
    with _Beside(peak.add) as beside:
        for a in range(0, mix.frames, block):
            b = min(a + block, mix.frames)
            x = (mix.read(a - context, b + context) - offset) * gain
            env = (envelope.read(a - context, b + context) + slack) * gain
            y = master.limit(x, context, plan.master.true_peak_dbtp, sr, env)
            beside.put(y)
            meter.add(y)
            if first < b and a < end:
                sink(y[max(first, a) - a: min(end, b) - a])
    return meter.integrated_lufs(), peak.dbtp()


class _Beside:
    """Run ``consume(block)`` over blocks in a thread of its own, beside the caller's loop (numpy and
    scipy let go of the GIL in their loops, so it takes the other core). Blocks must not change
    after ``put``. Leaving the ``with`` waits for the last block, and raises what the thread raised."""

    def __init__(self, consume):
        self.consume = consume
        self.queue = queue.Queue(maxsize=2)  # bounded: memory stays flat if the thread falls behind
        self.error = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while (block := self.queue.get()) is not None:
            if self.error is None:
                try:
                    self.consume(block)
                except BaseException as e:  # handed to the caller on leaving the with
                    self.error = e

    def put(self, block: np.ndarray):
        if self.error is not None:
            raise self.error
        self.queue.put(block)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, kind, value, tb):
        self.queue.put(None)
        self.thread.join()
        if kind is None and self.error is not None:
            raise self.error
        return False


def _master_to_target(mix: _FloatFile, envelope: _Envelope, step_power: list, plan: Plan, work: Path,
                      gain_db: float, offset, span=None):
    """Write the float master (of ``span`` only, if given), searching the gain that puts the limited
    piece on its loudness target: each try writes; the first on target stays. The first try allows
    for what the limiter will take (``step_power``: the mix's, per 100 ms), so it is usually the last.

    Returns (path of the master, gain in dB, loudness in LUFS, true peak in dBTP) of the whole piece.
    """
    target = plan.master.loudness_lufs
    ceiling = master.limiter_ceiling(plan.master.true_peak_dbtp)
    path = work / "master.wav"
    envelope.ensure(ceiling / 10 ** (gain_db / 20))
    gain_db = _first_gain_db(step_power, envelope, plan, gain_db)

    def write_at(gain_db):
        envelope.ensure(ceiling / 10 ** (gain_db / 20))
        writer = export.FloatWriter(path, plan.sample_rate, plan.channels)
        try:
            return _master_pass(mix, envelope, plan, gain_db, offset, writer.write, span)
        finally:
            writer.close()

    tried = []  # (gain_db, loudness after the limiter): the limiter bends this curve
    while True:
        out_lufs, out_dbtp = write_at(gain_db)
        tried.append((gain_db, out_lufs))
        if not np.isfinite(out_lufs) or abs(target - out_lufs) <= LOUDNESS_TOLERANCE_LU:
            return path, gain_db, out_lufs, out_dbtp
        if len(tried) == MAX_GAIN_ATTEMPTS:
            break
        gain_db = _next_gain_db(tried, target)
    best_db, best_lufs = min(tried, key=lambda t: abs(target - t[1]))
    if abs(target - best_lufs) > LOUDNESS_LIMIT_LU:
        raise score_error(plan.score or plan.name, "master.loudness_lufs",
                          f"{target:g} LUFS cannot be reached under the {plan.master.true_peak_dbtp:g} dBTP "
                          f"ceiling (best {best_lufs:.2f} LUFS at {best_db:+.1f} dB gain): this mix is too "
                          "peaky for it; lower the target or raise the ceiling")
    if best_db != gain_db:  # the last try was not the best: write the best again
        best_lufs, out_dbtp = write_at(best_db)
    return path, best_db, best_lufs, out_dbtp


def _first_gain_db(step_power: list, envelope: _Envelope, plan: Plan, gain_db: float) -> float:
    """The gain whose limited loudness is predicted on target, starting from ``gain_db`` (the mix's
    own loudness to the target): a few steps along the prediction, ``gain_db`` if it has none."""
    target = plan.master.loudness_lufs
    for _ in range(4):
        predicted = _predicted_lufs(step_power, envelope, plan, gain_db)
        if not np.isfinite(predicted) or abs(target - predicted) < 0.01:
            break
        gain_db += target - predicted
    return gain_db


def _predicted_lufs(step_power: list, envelope: _Envelope, plan: Plan, gain_db: float) -> float:
    """The loudness the limiter would leave at ``gain_db``, predicted without a pass over the mix:
    each 100 ms step's mix power (gained) times the mean square of the limiter's gain there (coarse,
    from the kept envelope; weighted by the envelope's square, since the limiter acts where the
    step's power is), gated as BS.1770 does."""
    steps = len(step_power)
    step_samples = round(0.1 * plan.sample_rate)
    coarse, values = envelope.STEP, envelope.n_values()
    gain = 10 ** (gain_db / 20)
    context = 4 * round((2 * master.LIMITER_ATTACK_S + master.LIMITER_HOLD_S) * plan.sample_rate / coarse) + 4
    squares, weights = np.zeros(steps), np.zeros(steps)
    for a in range(0, values, 1 << 16):
        b = min(a + (1 << 16), values)
        env = envelope.values(a - context, b + context) * gain
        limiter = master.limiter_gain_coarse(env, coarse, plan.master.true_peak_dbtp, plan.sample_rate)
        limiter, weight = limiter[context: context + b - a], env[context: context + b - a] ** 2
        step = np.arange(a, b) * coarse // step_samples
        inside = step < steps
        squares += np.bincount(step[inside], weights=(limiter * limiter * weight)[inside], minlength=steps)
        weights += np.bincount(step[inside], weights=weight[inside], minlength=steps)
    factor = np.where(weights > 0, squares / np.where(weights > 0, weights, 1.0), 1.0)
    return master.integrated_lufs(np.asarray(step_power) * gain * gain * factor)


def _next_gain_db(tried: list, target_lufs: float) -> float:
    """The next gain to try. Loudness after the limiter bends below gain, and gating can even make
    it dip as gain rises, so: step by the miss first; once tries sit on both sides of the target,
    interpolate between the two gains that bracket it most tightly (bisect if that repeats a try);
    else extrapolate along the last two."""
    g1, l1 = tried[-1]
    if len(tried) == 1:
        return g1 + (target_lufs - l1)
    below = [g for g, lufs in tried if lufs < target_lufs]
    above = [g for g, lufs in tried if lufs > target_lufs]
    pairs = [(a, b) for a in below for b in above]
    if pairs:
        ga, gb = min(pairs, key=lambda ab: abs(ab[0] - ab[1]))
        la, lb = dict(tried)[ga], dict(tried)[gb]
        guess = ga + (gb - ga) * (target_lufs - la) / (lb - la)
        return guess if all(abs(guess - g) > 1e-3 for g, _ in tried) else (ga + gb) / 2
    g0, l0 = tried[-2]
    slope = (l1 - l0) / (g1 - g0) if g1 != g0 else 1.0
    return g1 + (target_lufs - l1) / min(1.0, max(0.2, slope))


def _write_stems(stems: dict, out_dir: Path, plan: Plan, gain_db: float, seamless: bool,
                 staged: staging.Staged) -> dict:
    """Each stem as float WAV, with the master's gain and no limiter: together they sum to the mix
    (before the limiter; a loop's stems each lose their own DC, as the mix lost theirs together)."""
    gain = 10 ** (gain_db / 20)
    written = {}
    for name, f in stems.items():
        final = out_dir / f"{plan.name}.stem-{staging.safe_name(name, 'layer')}.wav"
        offset = _mean(f) if seamless else 0.0
        with staging.atomic_path(final, staged) as tmp:
            writer = export.FloatWriter(tmp, plan.sample_rate, plan.channels)
            try:
                for block in f.blocks():
                    writer.write((block - offset) * gain)
            finally:
                writer.close()
        written[name] = str(final)
    return written


def _mean(f: _FloatFile) -> np.ndarray:
    total = np.zeros(f.channels)
    for block in f.blocks():
        total += block.sum(axis=0)
    return total / max(1, f.frames)


def render(plan: Plan, cache: ClipCache, out_dir: Path, formats=None, progress=None, span_s=None,
           stems=False, picture=False) -> dict:
    """Render ``plan`` into ``out_dir``; return the manifest. ``progress(n_samples)`` reports work.

    ``span_s`` (start, end in seconds) renders a preview: the whole piece is mixed and measured, so
    the span's samples are exactly those of the full render there, but only the span is written,
    as NAME.preview.FORMAT, with no captions or manifest.
    """
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RenderError(f"{out_dir}: cannot create the output folder: {e.strerror}") from None
    if not os.access(out_dir, os.W_OK | os.X_OK):
        raise RenderError(f"{out_dir}: the output folder is not writable; earlier outputs are left as they were")
    for name in staging.clean_stale(out_dir, plan.name):
        log.warning("removed %s, left behind by an interrupted render", out_dir / name)
    formats = tuple(formats or plan.master.formats)
    seamless = plan.loop.seamless
    for fmt in formats:
        if seamless and not export.FORMATS[fmt].loops:
            raise RenderError(f"{plan.name}: {fmt} cannot loop without a gap (the encoder pads the start and end); "
                              "choose wav, flac, ogg or opus for a loop")
    if picture and not {"wav", "flac"} & set(formats):
        raise RenderError(f"{plan.name}: a picture is drawn from the WAV or FLAC; add one of them to the formats")
    sr, ch = plan.sample_rate, plan.channels
    timings = {}
    work = staging.work_dir(out_dir, plan.name)
    staged = staging.Staged()
    try:
        t0 = time.perf_counter()
        mix = _FloatFile(work / "mix.f32", ch)
        envelope = _Envelope(mix, work)
        stem_files = {}
        meter = master.LoudnessMeter(sr, ch)

        def keep(block):  # beside the mixer, on the other core: meter, write, true-peak envelope
            meter.add(block)
            mix.append(block)
            if not seamless:
                envelope.add(block)

        with _Beside(keep) as beside:
            for parts in mixer.render_parts(plan, cache, split=stems):
                block = sum(parts.values()) if stems else parts["mix"]
                beside.put(block)
                if stems:
                    for name, x in parts.items():
                        if name not in stem_files:
                            stem_files[name] = _FloatFile(work / f"stem-{len(stem_files)}.f32", ch)
                        stem_files[name].append(x)
                if progress:
                    progress(block.shape[0])
        envelope.finish()
        for f in [mix, *stem_files.values()]:
            f.close_writing()
        offset = np.zeros(ch)
        if seamless:
            _make_seamless([mix, *stem_files.values()], round(plan.loop.crossfade_s * sr))
            envelope = _Envelope(mix, work)  # made afresh from the loop, on demand
            offset = _mean(mix)  # a loop must not carry DC
            meter = _measure(mix, plan, offset)
        mix_lufs = meter.integrated_lufs()
        if not np.isfinite(mix_lufs):
            raise score_error(plan.score or plan.name, "layer", "the mix is silent (below the -70 LUFS gate): "
                              f"nothing to bring to {plan.master.loudness_lufs:g} LUFS; raise a layer's gain_db")
        gain_db = master.gain_db_to(mix_lufs, plan.master.loudness_lufs)
        timings["mix_s"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        span = None
        if span_s is not None:
            span = (min(round(span_s[0] * sr), mix.frames), min(round(span_s[1] * sr), mix.frames))
        master_wav, gain_db, out_lufs, out_dbtp = _master_to_target(mix, envelope, meter.step_power, plan, work,
                                                                    gain_db, offset, span)
        timings["master_s"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        delivery = export.Delivery.from_plan(plan, first_sample=span[0] if span else 0,
                                             loop_samples=mix.frames if seamless else 0)
        stem = plan.name if span is None else f"{plan.name}.preview"
        written = export.write_formats(master_wav, out_dir, stem, formats, delivery, staged)
        if span is None and stems:
            written["stems"] = _write_stems(stem_files, out_dir, plan, gain_db, seamless, staged)
        timings["export_s"] = time.perf_counter() - t0

        measured = manifest.Measured(mix_lufs, gain_db, out_lufs, out_dbtp, mix.frames / sr)
        if span is not None:
            result = {"files": written, "span_s": [span[0] / sr, span[1] / sr], "measured": asdict(measured),
                      "timings": timings}
        else:
            written.update(export.write_captions(out_dir, plan.name, plan.cues, plan.chapters, plan.title,
                                                 plan.author or "Narrator", staged))
            json_path, png = out_dir / f"{plan.name}.json", out_dir / f"{plan.name}.png"
            written["json"] = str(json_path)
            if picture:
                written["png"] = str(png)
            result = manifest.build(plan, written, measured, timings)
            if picture:
                from audio import picture as picture_module
                drawn_from = staged.temporary(written.get("wav") or written["flac"])
                picture_module.draw(manifest.overview(result), drawn_from, png, staged=staged)
            manifest.write(json_path, result, staged)
        staged.commit()  # every file into place at once: an interrupted render leaves the earlier set
    except OSError as e:
        raise RenderError(f"{e.filename or out_dir}: cannot write: {e.strerror}; earlier outputs are left as "
                          "they were") from None
    finally:
        staged.discard()
        shutil.rmtree(work, ignore_errors=True)
    return result
