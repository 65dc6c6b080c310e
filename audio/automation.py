"""Breakpoint envelopes: a layer's gain, pan or any float generator parameter that moves in time.

In a score an envelope is a list of points ``[time, value]`` or ``[time, value, "exp"]``; a time
is anything a layer's ``start`` accepts (seconds, "end-5", "cue:<text>+1"). The third element
sets how the segment *from* that point to the next one moves: "linear" (default) or "exp"
(geometric, for frequencies and other positive values). Before the first point the first value
holds, after the last the last.

``check`` validates a score's envelope, ``resolve`` turns its times into samples (plan), and
``values`` gives the value at every sample of a block (mixer).
"""

from __future__ import annotations

import numpy as np

from audio.errors import score_error
from audio.schema import show_value
from audio.timeexpr import check_time_expr

CURVES = ("linear", "exp")


def is_envelope(value) -> bool:
    return isinstance(value, list)


def check(points, check_value, file, where) -> list:
    """Validate an envelope; ``check_value(v, where)`` checks one point's value (and returns it).
    Returns [(time expression, value, curve), ...]."""
    if not points:
        raise score_error(file, where, "an envelope needs at least one [time, value] point, got []")
    out = []
    for i, point in enumerate(points):
        here = f"{where}[{i}]"
        if not isinstance(point, list) or len(point) not in (2, 3):
            raise score_error(file, here, f"must be [time, value] or [time, value, curve], got {show_value(point)}")
        time, value, curve = (point + ["linear"])[:3]
        check_time_expr(time, file, f"{here}[0]")
        value = check_value(value, f"{here}[1]")
        if curve not in CURVES:
            raise score_error(file, f"{here}[2]", f"curve must be one of {', '.join(CURVES)}, got {show_value(curve)}")
        out.append((time, value, curve))
    for i, ((_, v0, curve), (_, v1, _)) in enumerate(zip(out, out[1:])):
        if curve == "exp" and (v0 <= 0 or v1 <= 0):
            raise score_error(file, f"{where}[{i}][2]", f"an \"exp\" segment needs positive values at both ends, "
                              f"got {show_value(v0)} → {show_value(v1)}; use \"linear\"")
    return out


def resolve(points, time_of, file, where) -> list:
    """Times to samples with ``time_of(expr, where) -> sample``; points must come in time order."""
    out = []
    for i, (time, value, curve) in enumerate(points):
        sample = time_of(time, f"{where}[{i}][0]")
        if out and sample < out[-1][0]:
            raise score_error(file, f"{where}[{i}][0]", f"{show_value(time)} is at sample {sample}, before the "
                              f"previous point (sample {out[-1][0]}); points must be in time order")
        out.append([sample, value, curve])
    return out


def values(points, lo: int, hi: int) -> np.ndarray:
    """The envelope's value at each sample in [lo, hi)."""
    idx = np.arange(lo, hi, dtype=np.float64)
    xs = np.array([p[0] for p in points], dtype=np.float64)
    ys = np.array([p[1] for p in points], dtype=np.float64)
    out = np.interp(idx, xs, ys)
    for (x0, y0, curve), (x1, y1, _) in zip(points, points[1:]):
        if curve != "exp" or x1 <= x0 or x1 <= lo or x0 >= hi:
            continue
        a, b = max(lo, x0), min(hi, x1)
        frac = (idx[a - lo: b - lo] - x0) / (x1 - x0)
        out[a - lo: b - lo] = y0 * (y1 / y0) ** frac
    return out
