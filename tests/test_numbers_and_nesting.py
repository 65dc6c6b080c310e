"""A score's numbers and nesting beyond what Python reads: refused in one line naming the key and the
limit, never an OverflowError, ValueError or RecursionError from the reader or a check."""

from __future__ import annotations

import copy
import sys

import pytest
from click.testing import CliRunner

from audio import effects, score, sources
from audio.cli import main
from audio.errors import ScoreError
from audio.tomlguard import MAX_DIGITS, MAX_NESTING

HUGE = 10 ** 400
BASE = {"piece": {"title": "Numbers", "text": "piece.txt", "sample_rate": 22050}, "master": {"formats": ["wav"]}}
REQUIRED = {"cue": {"match": "Hello."}, "chapter": {"title": "One", "at": 0.0}, "speaker": {"name": "A"},
            "span": {"from": "Hello.", "to": "Hello."}, "say": {"word": "hello", "as": "hullo"},
            "layer": {"name": "bed", "source": "noise"}}


def _numeric(row) -> bool:
    return any(kind in (int, float) for kind in row.kinds)


def numeric_keys():
    """(test id, key path, document) for every number a score can give: each table's and array's keys, each
    generator's and effect's parameters, envelope times and values."""
    cases = []
    for table, rows in score.TABLES.items():
        for row in filter(_numeric, rows):
            cases.append((f"{table}.{row.name}",) * 2 + ({table: {row.name: HUGE}},))
    for array, rows in score.ARRAYS.items():
        for row in filter(_numeric, rows):
            cases.append((f"{array}[0].{row.name}",) * 2 + ({array: [{**REQUIRED.get(array, {}), row.name: HUGE}]},))
    for name, source in sources.SOURCES.items():
        for row in filter(_numeric, source.params):
            layer = {"name": "bed", "source": name, "params": {row.name: HUGE}}
            cases.append((f"{name}.{row.name}", f"layer[0].params.{row.name}", {"layer": [layer]}))
    for name, effect in effects.EFFECTS.items():
        for row in filter(_numeric, effect.params):
            chain = [{"effect": name, row.name: HUGE}]
            cases.append((f"effects.{name}.{row.name}", f"voice.effects[0].{row.name}", {"voice": {"effects": chain}}))
    for point, shown in (([HUGE, -20.0], "[0][0]"), ([0.0, HUGE], "[0][1]")):
        cases.append((f"layer[0].gain_db{shown}",) * 2 + ({"layer": [{**REQUIRED["layer"], "gain_db": [point]}]},))
    return cases


def write(tmp_path, doc: dict, text="Hello.\n"):
    from test_fuzz import toml_dumps
    (tmp_path / "piece.txt").write_text(text)
    path = tmp_path / "piece.toml"
    path.write_text(toml_dumps(doc))
    return path


def merged(extra: dict) -> dict:
    doc = copy.deepcopy(BASE)
    for key, value in extra.items():
        doc[key] = {**doc.get(key, {}), **value} if isinstance(value, dict) else value
    return doc


@pytest.mark.parametrize("key, extra", [case[1:] for case in numeric_keys()], ids=[c[0] for c in numeric_keys()])
def test_a_400_digit_number_in_any_numeric_key_is_refused_naming_it(tmp_path, key, extra):
    path = write(tmp_path, merged(extra))
    with pytest.raises(ScoreError) as caught:
        score.load(path)
    assert str(caught.value) == f"{path}: {key}: must be a number of at most {MAX_DIGITS} digits, got a whole " \
                                f"number of 401 digits"


def test_the_numeric_keys_walked_include_those_that_overflowed():
    walked = {case[0] for case in numeric_keys()}
    for where in ("layer[0].start", "layer[0].end", "chapter[0].at", "layer[0].gain_db[0][0]", "noise.low_hz",
                  "noise.stereo_width", "server_hum.mains_hz", "server_hum.harmonics", "server_hum.fans",
                  "effects.reverb.size", "effects.compressor.ratio"):
        assert where in walked
    assert len(walked) > 100


def test_a_20_digit_seed_is_checked_by_its_range(tmp_path):
    path = write(tmp_path, merged({"piece": {"seed": 10 ** MAX_DIGITS - 1}}))
    with pytest.raises(ScoreError, match=r"piece\.seed: must be between 0 and 9223372036854775807"):
        score.load(path)


def test_a_long_hexadecimal_number_is_refused(tmp_path):
    path = write(tmp_path, BASE)
    path.write_text(path.read_text().replace("sample_rate = 22050", "sample_rate = 0x" + "f" * 5000))
    with pytest.raises(ScoreError, match=r"piece\.sample_rate: must be a number of at most 20 digits, got a whole "
                                         r"number of more than 4300 digits"):
        score.load(path)


def test_a_5000_digit_number_is_one_line_exit_2(tmp_path):
    path = write(tmp_path, BASE)
    path.write_text(path.read_text().replace("sample_rate = 22050", "sample_rate = 22050\nseed = " + "9" * 5000))
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 2, result.output
    limit = sys.get_int_max_str_digits()
    assert result.output == (f"Error: {path}: invalid TOML: a number of more than {limit} digits (at line 5, "
                             f"column 8); a whole number has at most {MAX_DIGITS} digits\n")


def nested(levels: int) -> str:
    return "[" * levels + "]" * levels


@pytest.mark.parametrize("levels, message", [
    (MAX_NESTING + 1, f"layer[0].gain_db{'[0]' * (MAX_NESTING - 2)}: tables and arrays nest more than "
                      f"{MAX_NESTING} levels deep here; the limit is {MAX_NESTING}"),
    (2000, f"invalid TOML: tables and arrays nested too deep to read; the limit is {MAX_NESTING} levels"),
])
def test_nesting_too_deep_is_one_line_exit_2(tmp_path, levels, message):
    path = write(tmp_path, BASE)
    path.write_text(path.read_text() + f'[[layer]]\nname = "bed"\nsource = "noise"\ngain_db = {nested(levels)}\n')
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 2, result.output
    assert result.output == f"Error: {path}: {message}\n"


def test_dotted_keys_nested_deeper_than_python_recurses_are_refused(tmp_path):
    path = write(tmp_path, BASE)
    path.write_text(path.read_text() + "[voice." + ".".join(["a"] * 5000) + "]\n")
    with pytest.raises(ScoreError, match=f"nest more than {MAX_NESTING} levels"):
        score.load(path)


def test_nesting_at_the_limit_is_read(tmp_path):
    from audio import tomlguard
    deepest = []
    for _ in range(MAX_NESTING - 2):  # inside [voice] and its key x
        deepest = [deepest]
    tomlguard.check_document({"voice": {"x": deepest}}, "f.toml")
    with pytest.raises(ScoreError, match="nest more than"):
        tomlguard.check_document({"voice": {"x": [deepest]}}, "f.toml")


@pytest.mark.parametrize("option, value", [("--from", "nan"), ("--to", "nan"), ("--from", "inf"), ("--to", "-inf"),
                                           ("--from", "1:nan"), ("--to", "1e400"), ("--duration", "nanh"),
                                           ("--duration", "infm"), ("--to", "1e308:00:00")])
def test_a_time_option_that_is_not_a_finite_number_is_one_line_exit_2(tmp_path, option, value):
    path = write(tmp_path, BASE)
    result = CliRunner().invoke(main, ["render", str(path), "-o", str(tmp_path / "out"), f"{option}={value}"])
    assert result.exit_code == 2, result.output
    assert f"Error: Invalid value for '{option}': expected " in result.output and repr(value) in result.output
    assert "Traceback" not in result.output and not (tmp_path / "out").exists()
