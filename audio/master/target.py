"""Master a mix onto its loudness target: the true-peak envelope store, the pass, the gain search.

Loudness needs the whole piece before the gain is known: the mix is metered (and its true-peak
envelope kept) as it is made; each try here gains, limits, meters and writes the whole mix, at a
better gain until the limited piece is on target (usually once: the first try allows for what the
limiter will take).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Protocol

import numpy as np

from audio.beside import Beside
from audio.errors import score_error
from audio.files.floatfile import FloatFile
from audio.master.limiter import gain_reach, limit, limiter_ceiling, limiter_context, limiter_gain
from audio.master.meters import TP_REACH, LoudnessMeter, TruePeakMeter, integrated_lufs, true_peak_envelope
from audio.mixer import BLOCK_SAMPLES

if TYPE_CHECKING:
    from audio.plan import MasterSettings

LOUDNESS_TOLERANCE_LU = 0.1  # another output pass is made if the limited mix misses by more
LOUDNESS_LIMIT_LU = 0.4  # the best try must be at least this close, else the render fails
MAX_GAIN_ATTEMPTS = 12  # passes: each limits, meters and writes the master; the first on target stays


@dataclass(frozen=True)
class MasterResult:
    """What mastering measured, of the whole piece (also when only a span was written)."""

    mix_lufs: float  # the mix, before gain and limiter
    gain_db: float
    loudness_lufs: float
    true_peak_dbtp: float


class BlockWriter(Protocol):
    """Where the master goes, block by block (export.FloatWriter)."""

    def write(self, block: np.ndarray): ...
    def close(self): ...


class Envelope:
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

    def __init__(self, mix: FloatFile, work: Path):
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
            if block.shape[0] < TP_REACH:  # too short to show all that follows the pending block
                self._pending = np.concatenate([self._pending, block])
                return
            self._judge(block)
        self._pending = block

    def finish(self):
        if self._pending is not None:
            self._judge(np.zeros((0, self.mix.channels)))
            self._close()
            self.floor = self.STREAM_FLOOR

    def _judge(self, after: np.ndarray):
        reach, pending = TP_REACH, self._pending
        ext = np.concatenate([self._before, pending, after[:reach]])
        ext = np.pad(ext, ((reach - len(self._before), reach - min(reach, len(after))), (0, 0)))
        self._append(true_peak_envelope(ext, self.STREAM_FLOOR)[reach: reach + len(pending)])
        self._before = np.concatenate([self._before, pending])[-reach:]

    def ensure(self, floor: float):
        """Make it exact wherever the envelope could reach ``floor`` (at unit gain); when it has to
        be made, make it as the mixer's thread would (or good for 6 dB more gain, if that is lower),
        so a render gives the same bytes whichever way its envelope was made."""
        if self.floor is not None and floor >= self.floor:
            return
        self.floor = floor = min(floor / 2.0, self.STREAM_FLOOR)
        self._start()
        reach = TP_REACH
        for a in range(0, self.mix.frames, BLOCK_SAMPLES):
            b = min(a + BLOCK_SAMPLES, self.mix.frames)
            env = true_peak_envelope(self.mix.read(a - reach, b + reach), floor)
            self._append(env[reach: reach + b - a])
        self._close()

    def _start(self):
        self.file = FloatFile(self.work / "envelope.f32", 1)
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


def master_to_target(mix: FloatFile, envelope: Envelope, step_power: list, rate_hz: int,
                     settings: MasterSettings, open_writer: Callable[[], BlockWriter], offset: np.ndarray,
                     span: tuple[int, int] | None = None, score: str = "", copies: int = 1,
                     progress=None) -> MasterResult:
    """Write the master (of ``span`` only, if given: first, end sample) through a writer from
    ``open_writer`` (a fresh one for each try), at the gain that puts the limited piece on
    ``settings.loudness_lufs``: each try writes; the first on target stays. ``step_power`` is the
    mix's (``LoudnessMeter.step_power``, with ``offset`` per channel removed), ``score`` names the
    score in messages. ``copies``: each channel is written this many times (a mono mix as two
    identical channels), and loudness is what a meter reads from the file as written: BS.1770 sums
    the channels' power, so each copy adds the channel's power again (two read 3 LU above one).
    ``progress(attempt, n_samples)`` reports each pass's work (attempts count from 1).
    """
    target, ceiling_dbtp = settings.loudness_lufs, settings.true_peak_dbtp
    step_power = np.asarray(step_power) * copies
    mix_lufs = integrated_lufs(step_power)
    if not np.isfinite(mix_lufs):
        raise score_error(score, "layer", "the mix is silent (below the -70 LUFS gate): "
                          f"nothing to bring to {target:g} LUFS; raise a layer's gain_db")
    ceiling = limiter_ceiling(ceiling_dbtp)
    gain_db = target - mix_lufs
    envelope.ensure(ceiling / 10 ** (gain_db / 20))
    gain_db = _first_gain_db(step_power, envelope, rate_hz, settings, gain_db)

    attempts = 0

    def write_at(gain_db):
        nonlocal attempts
        attempts += 1
        envelope.ensure(ceiling / 10 ** (gain_db / 20))
        writer = open_writer()
        step = None if progress is None else lambda n, attempt=attempts: progress(attempt, n)
        try:
            return _master_pass(mix, envelope, rate_hz, ceiling_dbtp, gain_db, offset, writer.write, span, copies,
                                step)
        finally:
            writer.close()

    tried = []  # (gain_db, loudness after the limiter): the limiter bends this curve
    while True:
        out_lufs, out_dbtp = write_at(gain_db)
        tried.append((gain_db, out_lufs))
        if not np.isfinite(out_lufs) or abs(target - out_lufs) <= LOUDNESS_TOLERANCE_LU:
            return MasterResult(mix_lufs, gain_db, out_lufs, out_dbtp)
        if len(tried) == MAX_GAIN_ATTEMPTS:
            break
        gain_db = _next_gain_db(tried, target)
    best_db, best_lufs = min(tried, key=lambda t: abs(target - t[1]))
    if abs(target - best_lufs) > LOUDNESS_LIMIT_LU:
        raise score_error(score, "master.loudness_lufs",
                          f"{target:g} LUFS cannot be reached under the {ceiling_dbtp:g} dBTP "
                          f"ceiling (best {best_lufs:.2f} LUFS at {best_db:+.1f} dB gain): this mix is too "
                          "peaky for it; lower the target or raise the ceiling")
    if best_db != gain_db:  # the last try was not the best: write the best again
        best_lufs, out_dbtp = write_at(best_db)
    return MasterResult(mix_lufs, best_db, best_lufs, out_dbtp)


def _master_pass(mix: FloatFile, envelope: Envelope, rate_hz: int, ceiling_dbtp: float, gain_db: float,
                 offset: np.ndarray, sink, span=None, copies=1, progress=None, block=BLOCK_SAMPLES):
    """Gain and limit the whole mix block by block (``offset`` per channel removed first), feeding
    ``sink`` the samples inside ``span`` (first, end sample; default everything); ``progress(n)``
    after each block.

    Returns (integrated loudness in LUFS, true peak in dBTP) of the whole mastered piece, each
    channel written ``copies`` times; the true peak is metered on the other core, beside the limiter.
    """
    first, end = span or (0, mix.frames)
    context = limiter_context(rate_hz)
    gain = 10 ** (gain_db / 20)
    slack = float(np.abs(offset).max())  # removing a DC offset moves the envelope by at most that much
    meter, peak = LoudnessMeter(rate_hz, mix.channels), TruePeakMeter(mix.channels)
    with Beside(peak.add) as beside:
        for a in range(0, mix.frames, block):
            b = min(a + block, mix.frames)
            x = (mix.read(a - context, b + context) - offset) * gain
            env = (envelope.read(a - context, b + context) + slack) * gain
            y = limit(x, context, ceiling_dbtp, rate_hz, env)
            beside.put(y)
            meter.add(y)
            if first < b and a < end:
                sink(y[max(first, a) - a: min(end, b) - a])
            if progress:
                progress(b - a)
    return integrated_lufs(np.asarray(meter.step_power) * copies), peak.dbtp()


def _first_gain_db(step_power: list, envelope: Envelope, rate_hz: int, settings: MasterSettings,
                   gain_db: float) -> float:
    """The gain whose limited loudness is predicted on target, starting from ``gain_db`` (the mix's
    own loudness to the target): a few steps along the prediction, ``gain_db`` if it has none."""
    target = settings.loudness_lufs
    for _ in range(4):
        predicted = _predicted_lufs(step_power, envelope, rate_hz, settings.true_peak_dbtp, gain_db)
        if not np.isfinite(predicted) or abs(target - predicted) < 0.01:
            break
        gain_db += target - predicted
    return gain_db


def _predicted_lufs(step_power: list, envelope: Envelope, rate_hz: int, ceiling_dbtp: float,
                    gain_db: float) -> float:
    """The loudness the limiter would leave at ``gain_db``, predicted without a pass over the mix:
    each 100 ms step's mix power (gained) times the mean square of the limiter's gain there (coarse,
    from the kept envelope; weighted by the envelope's square, since the limiter acts where the
    step's power is), gated as BS.1770 does."""
    steps = len(step_power)
    step_samples = round(0.1 * rate_hz)
    coarse, values = envelope.STEP, envelope.n_values()
    gain = 10 ** (gain_db / 20)
    context = 4 * gain_reach(rate_hz, coarse) + 4
    squares, weights = np.zeros(steps), np.zeros(steps)
    for a in range(0, values, 1 << 16):
        b = min(a + (1 << 16), values)
        env = envelope.values(a - context, b + context) * gain
        limiter = limiter_gain(env, ceiling_dbtp, rate_hz, coarse)
        limiter, weight = limiter[context: context + b - a], env[context: context + b - a] ** 2
        step = np.arange(a, b) * coarse // step_samples
        inside = step < steps
        squares += np.bincount(step[inside], weights=(limiter * limiter * weight)[inside], minlength=steps)
        weights += np.bincount(step[inside], weights=weight[inside], minlength=steps)
    factor = np.where(weights > 0, squares / np.where(weights > 0, weights, 1.0), 1.0)
    return integrated_lufs(np.asarray(step_power) * gain * gain * factor)


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
