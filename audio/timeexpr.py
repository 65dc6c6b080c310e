"""The time grammar of a score: seconds, "end", "end-N", "cue:<text>[+N|-N]" (the start of the
sentence <text> names) and "word:<text>[+N|-N]" (the start of the first word of <text> in it)."""

from __future__ import annotations

import math
import re

from audio.errors import score_error
from audio.schema import show_value

MAX_DURATION_S = 12 * 3600.0  # no time, offset or piece may be longer

TIME_RE = re.compile(r"^\s*(?:(?P<end>end)|(?P<kind>cue|word):(?P<cue>.+?))\s*"
                     r"(?:(?P<sign>[+-])\s*(?P<offset>\d+(?:\.\d*)?|\.\d+))?\s*$")


def parse_time_expr(value):
    """Split a time expression into (kind, text, offset_s); kind is "abs", "end", "cue" or "word"."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    if isinstance(value, (int, float)):
        return "abs", None, float(value)
    m = TIME_RE.match(value)
    if not m:
        return None
    offset = float(m["offset"]) * (-1 if m["sign"] == "-" else 1) if m["offset"] else 0.0
    if m["end"]:
        return "end", None, offset
    return m["kind"], m["cue"].strip(), offset


def check_time_expr(value, file, where):
    """A time expression the grammar accepts, within MAX_DURATION_S; raises ScoreError otherwise."""
    parsed = parse_time_expr(value)
    if parsed is None:
        raise score_error(file, where, f'must be seconds, "end", "end-N", "cue:<text>[+N|-N]" or '
                                       f'"word:<text>[+N|-N]", '
                                       f"got {show_value(value)}")
    kind, _, offset = parsed
    if kind == "abs" and not (0 <= offset <= MAX_DURATION_S and math.isfinite(offset)):
        raise score_error(file, where, f"must be between 0 and {MAX_DURATION_S:g} seconds, got {show_value(value)}")
    if not abs(offset) <= MAX_DURATION_S:  # also catches an offset too long to be a number
        raise score_error(file, where, f"the offset must be at most {MAX_DURATION_S:g} seconds, "
                                       f"got {show_value(value)}")
