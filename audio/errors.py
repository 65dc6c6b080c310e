"""The package's errors: one root, subclasses that also subclass the built-in they resemble.

Only ``cli.py`` turns them into ``Error: …`` lines and exit codes.
"""

import re


class PieceError(Exception):
    """Root of every error this package raises on purpose."""

    exit_code = 1


class ScoreError(PieceError, ValueError):
    """A score, its text or its parameters are wrong: the user can fix it.

    The message names the file, the key path, the value and the rule.
    """

    exit_code = 2


class RenderError(PieceError, RuntimeError):
    """Rendering failed for a reason outside the score (engine, disk, encoder)."""

    exit_code = 1


class TTSError(RenderError):
    """The speech engine could not speak a sentence."""


def _one_line(text: str) -> str:
    """Control characters (a key with a line break in it) shown escaped, so an error stays one line."""
    return re.sub(r"[\x00-\x1f\x7f]", lambda m: repr(m.group())[1:-1], text)


def score_error(file, where, what):
    """Build a ScoreError formatted as ``<file>: <where>: <what>``, on one line."""
    parts = [str(p) for p in (file, where) if p]
    return ScoreError(_one_line(": ".join(parts + [what])))
