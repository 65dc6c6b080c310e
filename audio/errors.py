"""The package's errors: one root, subclasses that also subclass the built-in they resemble.

Only ``cli.py`` turns them into ``Error: …`` lines and exit codes.
"""

import unicodedata


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
        super().__init__(printable(": ".join([p for p in (self.file, self.where) if p] + [what])))

    def __reduce__(self):
        return type(self), (self.what, self.file, self.where)


class RenderError(PieceError, RuntimeError):
    """Rendering failed for a reason outside the score (engine, disk, encoder)."""

    exit_code = 1


class InputError(RenderError):
    """A file a command was given cannot be read as what it reads (missing, a pipe, not audio):
    bad input, like a score error."""

    exit_code = 2


class TTSError(RenderError):
    """The speech engine could not speak a sentence."""


# Characters a terminal would act on or not show: controls (C0, DEL, C1 such as the CSI U+009B),
# formats (the right-to-left override U+202E, zero-width ones), line and paragraph separators,
# private-use, unassigned and lone surrogates (from a file name that is not UTF-8).
HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Co", "Cn", "Cs"})


def printable(text: str) -> str:
    """``text`` with every character of HIDDEN_CATEGORIES shown as its escape (``\\n``, ``\\x9b``,
    ``\\u202e``), so a message prints on one line and as written; other letters are left alone."""
    return "".join(repr(c)[1:-1] if unicodedata.category(c) in HIDDEN_CATEGORIES else c for c in text)


def score_error(file, where, what) -> ScoreError:
    """A ScoreError naming the file, the key path and what is wrong with the value there."""
    return ScoreError(what, file, where)
