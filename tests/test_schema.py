"""The one validator (audio.schema): each rule's message, read from the error's attributes."""

import pickle

import pytest

from audio.errors import ScoreError, score_error
from audio.schema import REQUIRED, Param, check, check_rule, read_table, show_value, suggest

RATE = Param("rate", 150, "words per minute", 80, 450)
GAIN = Param("gain_db", 0.0, "gain, dB", -40.0, 12.0)
COLOUR = Param("color", "pink", "slope", choices=("white", "pink", "brown"))
FORMATS = Param("formats", ["wav"], "output formats", choices=("wav", "flac", "mp3"))
ROWS = (Param("title", REQUIRED, "title", kind=str), RATE, GAIN)


def error_of(fn, *args, **kwargs) -> ScoreError:
    with pytest.raises(ScoreError) as err:
        fn(*args, **kwargs)
    return err.value


def test_a_score_error_keeps_file_key_path_and_rule_apart():
    e = score_error("x.toml", 'layer "hum".gain_db', "must be between -120 and 12, got 40")
    assert (e.file, e.where, e.what) == ("x.toml", 'layer "hum".gain_db', "must be between -120 and 12, got 40")
    assert str(e) == 'x.toml: layer "hum".gain_db: must be between -120 and 12, got 40'
    assert isinstance(e, ValueError) and e.exit_code == 2


def test_a_score_error_message_stays_on_one_line_and_survives_pickling():
    e = score_error("x.toml", "piece.a\nb", "unknown key")
    assert str(e) == r"x.toml: piece.a\nb: unknown key" and e.where == "piece.a\nb"
    copy = pickle.loads(pickle.dumps(e))
    assert (copy.file, copy.where, copy.what, str(copy)) == (e.file, e.where, e.what, str(e))
    assert str(ScoreError("a whole message")) == "a whole message"


def test_a_value_of_the_wrong_kind_is_shown_as_toml_writes_it():
    e = error_of(check, RATE, "fast", "x.toml", "voice.rate")
    assert (e.file, e.where, e.what) == ("x.toml", "voice.rate", 'must be a whole number, got "fast"')
    assert error_of(check, GAIN, True, "f", "w").what == "must be a number, got true"
    assert error_of(check, Param("at", 0.0, "", kind=(float, str)), [1], "f", "w").what == \
        "must be a number or a string, got [1]"


def test_numbers_are_converted_to_the_rows_kind_and_must_be_whole_and_finite():
    assert check(RATE, 200.0, "f", "w") == 200 and isinstance(check(RATE, 200.0, "f", "w"), int)
    assert check(GAIN, 3, "f", "w") == 3.0 and isinstance(check(GAIN, 3, "f", "w"), float)
    assert error_of(check, RATE, 150.5, "f", "w").what == "must be a whole number, got 150.5"
    assert error_of(check, GAIN, float("nan"), "f", "w").what == "must be a finite number, got nan"


def test_a_number_out_of_range_names_the_bounds():
    assert error_of(check, RATE, 900, "f", "w").what == "must be between 80 and 450, got 900"
    assert error_of(check, Param("x", 1.0, "", 0.5), 0.25, "f", "w").what == "must be at least 0.5, got 0.25"
    assert error_of(check, Param("x", 1.0, "", None, 2), 3, "f", "w").what == "must be at most 2, got 3"


def test_a_choice_lists_the_choices_and_suggests_the_nearest():
    e = error_of(check, COLOUR, "pinc", "f", "layer.params.color")
    assert e.what == 'must be one of white, pink, brown, got "pinc"; did you mean "pink"?'
    assert error_of(check, COLOUR, 3, "f", "w").what == "must be one of white, pink, brown, got 3"


def test_a_list_of_choices_names_the_item_and_refuses_none():
    assert check(FORMATS, ["flac", "wav"], "f", "w") == ["flac", "wav"]
    e = error_of(check, FORMATS, ["wav", "mp4"], "f", "master.formats")
    assert (e.where, e.what) == ("master.formats[1]", 'must be one of wav, flac, mp3, got "mp4"; did you mean "mp3"?')
    assert error_of(check, FORMATS, [], "f", "w").what == "must name at least one of wav, flac, mp3, got []"


def test_read_table_fills_defaults_and_refuses_unknown_and_missing_keys():
    assert read_table(ROWS, {"title": "T", "rate": 180}, "f", "piece") == {"title": "T", "rate": 180, "gain_db": 0.0}
    e = error_of(read_table, ROWS, {"title": "T", "rat": 1}, "f", "piece")
    assert (e.where, e.what) == ("piece.rat", 'unknown key; did you mean "rate"? (known: title, rate, gain_db)')
    e = error_of(read_table, ROWS, {"title": "T", "rat": 1}, "f", "layer.params", owner="source noise")
    assert e.what.startswith('unknown parameter "rat" for source noise; did you mean "rate"?')
    e = error_of(read_table, ROWS, {}, "f", "piece")
    assert (e.where, e.what) == ("piece.title", "is required but missing")
    assert error_of(read_table, ROWS, {"": 1}, "f", "piece").where == 'piece.""'
    assert error_of(read_table, ROWS, [1], "f", "piece").what == "must be a table, got [1]"


def test_a_rule_across_keys_names_the_key_it_blames():
    def rule(values):
        return ("gain_db", "must be below rate") if values["gain_db"] > values["rate"] else None
    check_rule(rule, {"rate": 10, "gain_db": 1}, "f", "voice")
    e = error_of(check_rule, rule, {"rate": 0, "gain_db": 1}, "f", "voice")
    assert (e.where, e.what) == ("voice.gain_db", "must be below rate")


def test_suggest_and_show_value():
    assert suggest("pauze", ["pauses", "piece"]) == '; did you mean "pauses"?'
    assert suggest("zzz", ["pauses"]) == "" and suggest(3, ["3"]) == ""
    assert show_value({"a": [1.0, "b", False]}) == '{a = [1, "b", false]}' and show_value(0.25) == "0.25"


def test_a_row_must_say_its_kind_when_its_default_cannot():
    assert Param("x", [], "").kind is list and Param("y", None, "", kind=int).kinds == (int,)
    with pytest.raises(TypeError, match="give its kind"):
        Param("year", None, "year")
