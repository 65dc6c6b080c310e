"""The package's errors: one root, subclasses that also subclass the built-in they resemble.

Only ``cli.py`` turns them into ``Error: …`` lines and exit codes.
"""


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


def score_error(file, where, what):
    """Build a ScoreError formatted as ``<file>: <where>: <what>``."""
    parts = [str(p) for p in (file, where) if p]
    return ScoreError(": ".join(parts + [what]))
