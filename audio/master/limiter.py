"""The lookahead true-peak limiter: a gain held over each peak and smoothed, never above 1.

``limit`` is a pure function of a block and its context, so any block can be limited on its own
and the result does not depend on how the piece was cut into blocks.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import minimum_filter1d, uniform_filter1d

from audio.master.meters import TP_TAPS, true_peak_envelope

LIMITER_ATTACK_S = 0.003  # each of the two smoothing stages; the lookahead is twice this
LIMITER_HOLD_S = 0.030
LIMITER_MARGIN_DB = 0.3  # the limiter aims this far below the ceiling (dither, meters' interpolators)


def gain_reach(rate_hz: int, step: int = 1) -> int:
    """How far (in steps of ``step`` samples) the limiter's gain at a sample depends on the
    envelope on either side: the hold and the two smoothing stages."""
    return round((2 * LIMITER_ATTACK_S + LIMITER_HOLD_S) * rate_hz / step)


def limiter_context(rate_hz: int) -> int:
    """Samples of signal needed on each side of a block for ``limit`` to be exact."""
    return gain_reach(rate_hz) + TP_TAPS


def limiter_ceiling(ceiling_dbtp: float) -> float:
    """The linear level the limiter aims at: LIMITER_MARGIN_DB under the asked ceiling."""
    return 10 ** ((ceiling_dbtp - LIMITER_MARGIN_DB) / 20)


def limit(x_ext: np.ndarray, context: int, ceiling_dbtp: float, rate_hz: int,
          envelope: np.ndarray | None = None) -> np.ndarray:
    """Lookahead true-peak limiter: the middle of ``x_ext`` (``context`` samples cut from each side).

    ``envelope`` is ``true_peak_envelope(x_ext)`` if the caller has it (it scales with the signal,
    so it can be computed once and reused at any gain).
    """
    if envelope is None:
        envelope = true_peak_envelope(x_ext, limiter_ceiling(ceiling_dbtp))
    gain = limiter_gain(envelope, ceiling_dbtp, rate_hz)
    middle = slice(context, x_ext.shape[0] - context)
    return x_ext[middle] * gain[middle, None]


def limiter_gain(envelope: np.ndarray, ceiling_dbtp: float, rate_hz: int, step: int = 1) -> np.ndarray:
    """The limiter's gain for each value of a true-peak ``envelope``: the gain needed at each value
    is held, and smoothed by two moving averages; because the hold window reaches as far ahead as
    the smoothing reaches back, the smoothed gain at every peak is at most the gain that peak needs.

    With ``step`` > 1 each value stands for ``step`` samples (their largest) and every length is
    divided by ``step``: an estimate, for predicting the loudness the limiter leaves, not what
    ``limit`` applies.
    """
    needed = np.minimum(1.0, limiter_ceiling(ceiling_dbtp) / np.maximum(envelope, 1e-12))
    attack = max(1, round(LIMITER_ATTACK_S * rate_hz / step))
    hold = round(LIMITER_HOLD_S * rate_hz / step)
    gain = _window_min(needed, back=hold, ahead=2 * (attack - 1) + 1)
    for _ in range(2):
        gain = _trailing_mean(gain, attack)
    return gain


def _window_min(x: np.ndarray, back: int, ahead: int) -> np.ndarray:
    """y[n] = min(x[n - back .. n + ahead])."""
    size = back + ahead + 1
    return minimum_filter1d(x, size=size, origin=back - size // 2, mode="nearest")


def _trailing_mean(x: np.ndarray, size: int) -> np.ndarray:
    """y[n] = mean(x[n - size + 1 .. n])."""
    if size <= 1:
        return x
    return uniform_filter1d(x, size=size, origin=(size - 1) - size // 2, mode="nearest")
