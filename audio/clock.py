"""Times written as clock readings: ``M:SS``, ``H:MM:SS.mmm``, ``HH:MM:SS,mmm``."""

from __future__ import annotations


def clock(t_s: float, places: int = 3, mark: str = ".", hours_width: int = 0) -> str:
    """``t_s`` as ``M:SS`` with ``places`` decimals after ``mark``, rounded to the last one.

    Hours are shown (``H:MM:SS``) past an hour, or always when ``hours_width`` is above 0, then
    zero-padded to that many digits; they keep growing past it. SubRip is
    ``clock(t, mark=",", hours_width=2)``, WebVTT and Vorbis chapters ``clock(t, hours_width=2)``.
    """
    unit = 10 ** places
    n = int(round(t_s * unit))
    h, n = divmod(n, 3600 * unit)
    m, n = divmod(n, 60 * unit)
    s, fraction = divmod(n, unit)
    tail = f"{mark}{fraction:0{places}d}" if places else ""
    if h or hours_width:
        return f"{h:0{hours_width}d}:{m:02d}:{s:02d}{tail}"
    return f"{m}:{s:02d}{tail}"
