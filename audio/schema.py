"""The one validator: a table's keys as ``Param`` rows, and the checks every score table goes through.

Score tables, generator parameters and effect parameters are all tuples of rows; ``read_table``
checks a table against its rows, ``check`` one value against its row. Messages name the file, the
key path, the value (as TOML writes it) and the rule: ``x.toml: voice.rate: must be between 80 and
450, got 900``.
"""

from __future__ import annotations

import difflib
import math
import numbers
from dataclasses import dataclass
from typing import Callable

from audio.errors import score_error

REQUIRED = object()  # a Param default meaning "must be given"

KIND_NAMES = {bool: "true or false", int: "a whole number", float: "a number", str: "a string", list: "a list",
              dict: "a table"}


@dataclass(frozen=True)
class Param:
    """One key of a table: its default, its doc and the rules its value must meet.

    ``kind`` is the default's type unless given (it must be, for a REQUIRED or None default, or for
    a key taking several kinds, e.g. ``(float, str)``). For a list, ``choices`` applies to each item.
    """

    name: str
    default: object
    doc: str
    min: float | None = None
    max: float | None = None
    choices: tuple | None = None
    auto: bool = False                  # a number the score may give as an envelope (generators)
    kind: type | tuple | None = None

    def __post_init__(self):
        if self.kind is None:
            if type(self.default) not in KIND_NAMES:
                raise TypeError(f"Param {self.name!r}: give its kind (the default {self.default!r} does not say it)")
            object.__setattr__(self, "kind", type(self.default))

    @property
    def kinds(self) -> tuple:
        return self.kind if isinstance(self.kind, tuple) else (self.kind,)


def show_value(v) -> str:
    """A value as messages show it: TOML-ish, strings quoted, 40.0 as 40."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return f'"{v}"'
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() else f"{v:g}"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k} = {show_value(x)}" for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ", ".join(show_value(x) for x in v) + "]"
    return str(v)


def kind_name(v) -> str:
    """What kind of TOML value ``v`` is, as messages say it: "a list", "a string", "true or false"."""
    kind = next((k for k in (bool, int, float, str, list, dict) if isinstance(v, k)), None)
    return "a boolean" if kind is bool else KIND_NAMES[kind] if kind else f"a {type(v).__name__}"


def suggest(word, known) -> str:
    """'; did you mean "x"?' for the closest known name, or nothing."""
    close = difflib.get_close_matches(word, list(known), n=1) if isinstance(word, str) else []
    return f'; did you mean "{close[0]}"?' if close else ""


def _is(kind, v) -> bool:
    """v is a value of this kind (a bool is only a bool; any real number passes for int and float)."""
    if kind is bool or isinstance(v, bool):
        return kind is bool and isinstance(v, bool)
    if kind in (int, float):
        return isinstance(v, numbers.Real)
    return isinstance(v, kind)


def _one_of(row: Param, v, file, where):
    if v not in row.choices:
        shown = ", ".join(str(c) for c in row.choices if c != "")
        raise score_error(file, where, f"must be one of {shown}, got {show_value(v)}{suggest(v, row.choices)}")


def check(row: Param, v, file, where):
    """One value against its row (kind, finite, whole, range, choices); returns it as the row's kind."""
    if row.choices and row.kind is str:  # before the kind: the message lists what is allowed
        _one_of(row, v, file, where)
    if not any(_is(kind, v) for kind in row.kinds):
        raise score_error(file, where, f"must be {' or '.join(KIND_NAMES[k] for k in row.kinds)}, "
                                       f"got {show_value(v)}")
    if isinstance(v, float) and not math.isfinite(v):
        raise score_error(file, where, f"must be a finite number, got {show_value(v)}")
    if row.kind is int and isinstance(v, float) and not v.is_integer():
        raise score_error(file, where, f"must be a whole number, got {show_value(v)}")
    if row.kind in (int, float):
        v = row.kind(v)
        if row.min is not None and v < row.min or row.max is not None and v > row.max:
            rule = (f"between {show_value(row.min)} and {show_value(row.max)}" if None not in (row.min, row.max)
                    else f"at least {show_value(row.min)}" if row.min is not None
                    else f"at most {show_value(row.max)}")
            raise score_error(file, where, f"must be {rule}, got {show_value(v)}")
        if row.choices:
            _one_of(row, v, file, where)
    if row.choices and row.kind is list:
        if not v:
            raise score_error(file, where, f"must name at least one of {', '.join(row.choices)}, got []")
        for i, item in enumerate(v):
            _one_of(row, item, file, f"{where}[{i}]")
    return v


def key_path(where: str, key: str) -> str:
    """The path of a key in the table at ``where`` (an empty key shown as "")."""
    key = key or '""'
    return f"{where}.{key}" if where else key


def read_table(rows, table, file, where, owner: str = "") -> dict:
    """A table against its rows: unknown keys refused ("did you mean"), each value checked, defaults
    filled in. ``owner`` names what a table of parameters belongs to ("source noise")."""
    if not isinstance(table, dict):
        raise score_error(file, where, f"must be a table{' of parameters' if owner else ''}, got {show_value(table)}")
    known = {row.name: row for row in rows}
    for key in table:
        if key not in known:
            what = f'unknown parameter "{key}" for {owner}' if owner else "unknown key"
            raise score_error(file, key_path(where, key), f"{what}{suggest(key, known)} (known: {', '.join(known)})")
    out = {}
    for row in rows:
        if row.name in table:
            out[row.name] = check(row, table[row.name], file, key_path(where, row.name))
        elif row.default is REQUIRED:
            raise score_error(file, key_path(where, row.name), "is required but missing")
        else:
            out[row.name] = row.default
    return out


def check_rule(rule: Callable[[dict], tuple[str, str] | None] | None, values: dict, file, where) -> None:
    """A rule across a table's values: ``rule(values)`` gives (key, message) for a broken one, or None."""
    problem = rule(values) if rule else None
    if problem:
        raise score_error(file, key_path(where, problem[0]), problem[1])
