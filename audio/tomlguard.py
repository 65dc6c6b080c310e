"""Limits on a score's TOML as a document, before any key is read: how deep tables and arrays nest
and how many digits a whole number has. Python's own limits (its recursion depth, 4,300 digits
for a number read from text) would otherwise end a load in a traceback."""

from __future__ import annotations

import re
import sys

from audio.errors import score_error
from audio.schema import key_path

MAX_NESTING = 32  # tables and arrays inside one another; a score needs 5 (an envelope in a layer)
MAX_DIGITS = 20  # of a whole number; the largest seed, 2**63 - 1, has 19


def parse_error(e: BaseException, text: str, file: str):
    """The ScoreError for what the TOML reader raises past its own decode errors: a RecursionError
    (nesting far deeper than MAX_NESTING) or the ValueError of a number too long to convert."""
    if isinstance(e, RecursionError):
        return score_error(file, "", f"invalid TOML: tables and arrays nested too deep to read; "
                                     f"the limit is {MAX_NESTING} levels")
    limit = sys.get_int_max_str_digits()
    if "digits" not in str(e):
        return score_error(file, "", f"invalid TOML: {e}")
    m = re.search(rf"\d[\d_]{{{limit},}}", text)
    where = ""
    if m:
        line, column = text.count("\n", 0, m.start()) + 1, m.start() - text.rfind("\n", 0, m.start())
        where = f" (at line {line}, column {column})"
    return score_error(file, "", f"invalid TOML: a number of more than {limit} digits{where}; a whole number "
                                 f"has at most {MAX_DIGITS} digits")


def _digits(n: int) -> str:
    try:
        return str(len(str(abs(n))))
    except ValueError:  # a hexadecimal number can be longer than Python converts to decimal
        return f"more than {sys.get_int_max_str_digits()}"


def check_document(doc: dict, file: str):
    """Every value of a parsed score within the nesting and digit limits; raises ScoreError naming
    the key path of the first that is not."""
    stack = [(doc, "", 0)]
    while stack:
        value, where, depth = stack.pop()
        if isinstance(value, bool):
            continue
        if isinstance(value, int) and abs(value) >= 10 ** MAX_DIGITS:
            raise score_error(file, where, f"must be a number of at most {MAX_DIGITS} digits, got a whole number "
                                           f"of {_digits(value)} digits")
        if isinstance(value, (dict, list)) and depth > MAX_NESTING:
            raise score_error(file, where, f"tables and arrays nest more than {MAX_NESTING} levels deep here; "
                                           f"the limit is {MAX_NESTING}")
        if isinstance(value, dict):
            stack.extend((v, key_path(where, k), depth + 1) for k, v in reversed(value.items()))
        elif isinstance(value, list):
            stack.extend((v, f"{where}[{i}]", depth + 1) for i, v in reversed(list(enumerate(value))))
