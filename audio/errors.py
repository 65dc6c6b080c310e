"""The package's errors: one root, subclasses that also subclass the built-in they resemble.

Only ``cli.py`` turns them into ``Error: …`` lines and exit codes.
"""

import re


class PieceError(Exception):
    """Root of every error this package raises on purpose."""

    exit_code = 1


class ScoreError(PieceError, ValueError):
    """A score, its text or its parameters are wrong: the user can fix it.

    ``file``, ``where`` (the key path, e.g. ``layer "hum".gain_db``) and ``what`` (the value and the
    rule) are kept as given; the message joins them as ``<file>: <where>: <what>``, on one line.
    """

    exit_code = 2

    def __init__(self, what: str, file="", where=""):
        self.file, self.where, self.what = str(file or ""), str(where or ""), what
        super().__init__(_one_line(": ".join([p for p in (self.file, self.where) if p] + [what])))

    def __reduce__(self):
        return type(self), (self.what, self.file, self.where)


class RenderError(PieceError, RuntimeError):
    """Rendering failed for a reason outside the score (engine, disk, encoder)."""

    exit_code = 1


class TTSError(RenderError):
    """The speech engine could not speak a sentence."""


def _one_line(text: str) -> str:
    """Control characters (a key with a line break in it) shown escaped, so an error stays one line."""
    return re.sub(r"[\x00-\x1f\x7f]", lambda m: repr(m.group())[1:-1], text)


def score_error(file, where, what) -> ScoreError:
    """A ScoreError naming the file, the key path and what is wrong with the value there."""
    return ScoreError(what, file, where)
