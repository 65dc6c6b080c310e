"""Captions, transcript and chapters: each output is parsed back by an independent reader written here."""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audio import captions
from audio.clock import clock


@dataclass
class Cue:
    text: str
    start_s: float
    end_s: float
    n_samples: int = 1000
    words: list = field(default_factory=list)
    speaker: str = ""


@dataclass
class Chapter:
    title: str
    start_s: float
    end_s: float


LONG = ("When the last of the evening light had gone from the valley and the river ran on in the dark, "
        "the old ferryman lit his lamp, counted the ropes, checked the hull for the small leaks that came "
        "with the autumn rain, and waited on the landing for travellers who might still need "
        "to cross over to the far side tonight.")


def timed(text: str, start_s: float, word_s: float = 0.31, gap_s: float = 0.04) -> Cue:
    """A cue whose words are spoken one after another, each ``word_s`` long, ``gap_s`` apart."""
    words, t = [], start_s + 0.1
    for w in text.split():
        words.append((w, t, t + word_s))
        t += word_s + gap_s
    return Cue(text, start_s, t + 0.1, words=words)


# ---------------------------------------------------------------- an independent WebVTT reader (W3C WebVTT)

TS = r"(?:(\d{2,}):)?([0-5]\d):([0-5]\d)\.(\d{3})"
TIMING = re.compile(rf"{TS}[ \t]+-->[ \t]+{TS}(?:[ \t].*)?")
TAG = re.compile(r"<([^>]*)>")
TS_TAG = re.compile(rf"<{TS}>")
VOICE = re.compile(r"<v(?:\.[^\s.>]+)*[ \t]+([^>]+)>")


def to_ms(t_s: float) -> int:
    return max(0, int(round(t_s * 1000)))


def seconds(h, m, s, ms) -> float:
    return int(h or 0) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000


def parse_vtt(text: str) -> list[dict]:
    """Cues as {start_s, end_s, lines, speaker, stamps_s, visible}; asserts the file's syntax on the way."""
    assert "\r" not in text
    lines = text.split("\n")
    assert re.fullmatch(r"\ufeff?WEBVTT(?:[ \t].*)?", lines[0]), lines[0]
    assert lines[1] == "", "the header must be followed by a blank line"
    cues = []
    for block in re.split(r"\n{2,}", text.strip("\n"))[1:]:
        blines = block.split("\n")
        if not TIMING.fullmatch(blines[0]):
            assert "-->" not in blines[0]
            blines.pop(0)  # a cue identifier
        m = TIMING.fullmatch(blines[0])
        assert m, f"bad timing line {blines[0]!r}"
        cue = {"start_s": seconds(*m.groups()[:4]), "end_s": seconds(*m.groups()[4:]), "lines": blines[1:],
               "speakers": [], "stamps_s": [], "visible": []}
        assert cue["lines"], "a cue needs a payload"
        for line in cue["lines"]:
            assert "-->" not in line
            for tag in TAG.findall(line):
                assert tag == "/v" or VOICE.fullmatch(f"<{tag}>") or TS_TAG.fullmatch(f"<{tag}>"), tag
            bare = TAG.sub("", line)
            assert not re.search(r"[<>]|&(?!(amp|lt|gt);)", bare), f"unescaped text in {line!r}"
            cue["speakers"] += [html.unescape(s) for s in VOICE.findall(line)]
            cue["stamps_s"] += [seconds(*g) for g in TS_TAG.findall(line)]
            cue["visible"].append(html.unescape(bare))
        cues.append(cue)
    return cues


def words_with_stamps(line: str) -> list[tuple[str, float | None]]:
    """The words of a payload line (voice tags removed), each with the timestamp tag just before it."""
    line = re.sub(r"</?v[^>]*>", "", line)
    out = []
    for token in line.split(" "):
        m = re.fullmatch(rf"<{TS}>(.*)", token)
        out.append((html.unescape(m.group(5)), seconds(*m.groups()[:4])) if m else (html.unescape(token), None))
    return out


def check_vtt(text: str, cues: list[Cue], speaker: str) -> list[dict]:
    """The invariants every WebVTT output must hold, checked on the parsed file: cues in order,
    each at most 2 lines of at most 42 visible characters (unless the sentence is too short to
    give each of its captions a millisecond), every line voiced by its cue's speaker."""
    parsed = parse_vtt(text)
    spoken = [c for c in cues if c.n_samples > 0 and c.text.strip()]
    piece_end_s = max((c.end_s for c in spoken), default=0.0)
    last_start_s = 0.0
    for cue in parsed:
        assert cue["start_s"] < cue["end_s"], cue
        assert cue["start_s"] >= last_start_s, "cue start times must not decrease"
        assert cue["end_s"] <= piece_end_s + 0.0005
        last_start_s = cue["start_s"]
        assert all(len(v) <= 42 for v in cue["visible"]), cue["visible"]
        at_ms = round(cue["start_s"] * 1000)
        owner = next(c for c in spoken if to_ms(c.start_s) <= at_ms <= max(to_ms(c.end_s), to_ms(c.start_s) + 1))
        if to_ms(owner.end_s) - to_ms(owner.start_s) >= 4:
            assert len(cue["lines"]) <= 2, cue["visible"]
        assert cue["speakers"] == [" ".join((owner.speaker or speaker).split())] * len(cue["lines"])
        prev = cue["start_s"]
        for t in cue["stamps_s"]:
            assert prev < t < cue["end_s"], (cue["start_s"], cue["stamps_s"], cue["end_s"])
            prev = t
    # The visible text, read in order, is exactly the spoken text.
    shown = " ".join(v for c in parsed for v in c["visible"])
    said = " ".join(" ".join(c.text.split()) for c in spoken)
    if max((len(w) for w in said.split()), default=0) > 42:  # a cut word gains spaces
        shown, said = shown.replace(" ", ""), said.replace(" ", "")
    assert shown == said
    return parsed


# ---------------------------------------------------------------- WebVTT

def test_webvtt_header_voice_and_short_cues():
    cues = [Cue("Hello there.", 0.5, 1.75), Cue("Nobody hears this.", 2.0, 3.0, n_samples=0),
            Cue("Second sentence.", 3.25, 4.5)]
    text = captions.webvtt(cues, "Narrator")
    assert text == ("WEBVTT\n\n00:00:00.500 --> 00:00:01.750\n<v Narrator>Hello there.</v>\n\n"
                    "00:00:03.250 --> 00:00:04.500\n<v Narrator>Second sentence.</v>\n")
    parsed = check_vtt(text, cues, "Narrator")
    assert [(c["start_s"], c["end_s"]) for c in parsed] == [(0.5, 1.75), (3.25, 4.5)]


def test_webvtt_long_sentence_without_word_timing_is_split_in_proportion():
    assert len(LONG) >= 300
    cue = Cue(LONG, 10.0, 31.0)
    parsed = check_vtt(captions.webvtt([cue], "Narrator"), [cue], "Narrator")
    assert len(parsed) == 4  # the fewest captions of 2 × 42 characters
    assert parsed[0]["start_s"] == 10.0 and parsed[-1]["end_s"] == 31.0
    for a, b in zip(parsed, parsed[1:]):
        assert a["end_s"] == b["start_s"], "the split cues follow each other without gaps"
    total_chars = sum(len(w) + 1 for w in LONG.split())
    for c in parsed:
        share = sum(len(w) + 1 for line in c["visible"] for w in line.split()) / total_chars * 21.0
        assert abs((c["end_s"] - c["start_s"]) - share) < 0.0025
        assert c["stamps_s"] == []


def test_webvtt_long_sentence_with_word_timing_has_karaoke_stamps():
    cue = timed(LONG, 5.0)
    parsed = check_vtt(captions.webvtt([cue], "Narrator"), [cue], "Narrator")
    assert len(parsed) == 4
    starts = iter(cue.words)
    for i, c in enumerate(parsed):
        pairs = [pair for line in c["lines"] for pair in words_with_stamps(line)]
        first_word, first_start_s, _ = next(starts)
        assert pairs[0] == (first_word, None), "no stamp before a cue's first word"
        if i > 0:
            assert c["start_s"] == round(first_start_s, 3), "an inner split starts on its first word"
        for word, stamp_s in pairs[1:]:
            timed_word, start_s, _ = next(starts)
            assert (word, stamp_s) == (timed_word, round(start_s, 3))
    assert next(starts, None) is None
    assert parsed[0]["start_s"] == cue.start_s and parsed[-1]["end_s"] == round(cue.end_s, 3)


def test_a_long_sentence_is_cut_at_clause_ends_into_captions_of_a_second_or_more():
    text = "The train that should have come at nine came at last, but it came in very, very late."
    assert 84 < len(text) <= 90  # a greedy fill of two lines leaves "late." on its own
    cue = timed(text, 2.0, word_s=0.2, gap_s=0.05)
    parsed = check_vtt(captions.webvtt([cue], "N"), [cue], "N")
    assert [" ".join(c["visible"]) for c in parsed] == [
        "The train that should have come at nine came at last,", "but it came in very, very late."]
    assert all(c["end_s"] - c["start_s"] >= 1.0 for c in parsed)
    # each caption's two lines are balanced, not filled greedily
    lines = parse_srt(captions.srt([cue]))[0]["lines"]
    assert lines == ["The train that should have", "come at nine came at last,"]


def test_a_sentence_shorter_than_a_second_is_one_caption():
    cue = timed("Sorry.", 4.0, word_s=0.3)
    assert [c["visible"] for c in parse_vtt(captions.webvtt([cue], "N"))] == [["Sorry."]]


def test_each_cue_is_voiced_and_labelled_by_its_speaker():
    cues = [timed("The tapes go into the vault.", 0.0, gap_s=0.1),
            timed("I am one of the files.", 3.0),
            timed("And so am I.", 6.0),
            timed("The archive sleeps.", 9.0)]
    cues[1].speaker = cues[2].speaker = "ARCHIVIST"
    cues[0].speaker = "KEEPER"
    parsed = check_vtt(captions.webvtt(cues, "Narrator"), cues, "Narrator")
    assert [c["speakers"][0] for c in parsed] == ["KEEPER", "ARCHIVIST", "ARCHIVIST", "Narrator"]
    srt_lines = [c["lines"][0] for c in parse_srt(captions.srt(cues))]
    assert srt_lines == ["KEEPER: The tapes go into the vault.", "ARCHIVIST: I am one of the files.",
                         "And so am I.", "The archive sleeps."]
    segments = captions.transcript_json(cues, "Narrator")["segments"]
    assert [s["speaker"] for s in segments if s["body"] in ("vault.", "files.", "sleeps.")] == \
        ["KEEPER", "ARCHIVIST", "Narrator"]


def test_webvtt_escapes_text_and_speaker():
    cue = Cue("Fish & chips <cheap> -> dinner", 0, 2)
    text = captions.webvtt([cue], "Ann & <Bo>")
    assert "<v Ann &amp; &lt;Bo&gt;>Fish &amp; chips &lt;cheap&gt; -&gt; dinner</v>" in text
    check_vtt(text, [cue], "Ann & <Bo>")


def test_webvtt_untrustworthy_word_timing_falls_back_to_no_stamps():
    cue = Cue("three words here", 1.0, 2.0, words=[("three", 1.0, 1.2), ("words", 1.3, 1.5)])
    parsed = check_vtt(captions.webvtt([cue], "N"), [cue], "N")
    assert parsed[0]["stamps_s"] == []


def test_webvtt_stamps_never_repeat_or_leave_the_cue():
    words = [("a", 1.0, 1.1), ("b", 1.0, 1.1), ("c", 0.5, 0.6), ("d", 1.5, 1.6), ("e", 9.0, 9.5)]
    cue = Cue("a b c d e", 1.0, 2.0, words=words)
    parsed = check_vtt(captions.webvtt([cue], "N"), [cue], "N")
    assert parsed[0]["stamps_s"] == [1.5]


def test_webvtt_word_longer_than_a_line_is_cut():
    cue = Cue("short " + "x" * 150 + " end", 0, 3)
    parsed = check_vtt(captions.webvtt([cue], "N"), [cue], "N")
    assert [len(v) for c in parsed for v in c["visible"]] == [5, 42, 42, 42, 28]


def test_webvtt_cue_shorter_than_its_lines_becomes_one_multiline_cue():
    cue = Cue(LONG, 1.0, 1.002)
    parsed = check_vtt(captions.webvtt([cue], "N"), [cue], "N")
    assert len(parsed) == 1 and len(parsed[0]["lines"]) >= 5
    assert (parsed[0]["start_s"], parsed[0]["end_s"]) == (1.0, 1.002)


def test_webvtt_zero_length_cue_still_ends_after_it_starts():
    parsed = parse_vtt(captions.webvtt([Cue("Blink.", 2.0, 2.0)], "N"))
    assert (parsed[0]["start_s"], parsed[0]["end_s"]) == (2.0, 2.001)


def test_webvtt_blank_speaker_has_no_voice_tag():
    text = captions.webvtt([Cue("Hi.", 0, 1)], "  ")
    assert "<v" not in text and "</v>" not in text
    assert parse_vtt(text)[0]["visible"] == ["Hi."]


sentence = st.lists(st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Z")),
                            min_size=1, max_size=20), min_size=1, max_size=40)


@settings(max_examples=60, deadline=None)
@given(words=sentence, with_timing=st.booleans(), start_s=st.floats(0, 5000), word_s=st.floats(0.0001, 2))
def test_webvtt_invariants_hold_for_any_sentence(words, with_timing, start_s, word_s):
    text = " ".join(words)
    cue = timed(text, start_s, word_s=word_s) if with_timing else Cue(text, start_s, start_s + word_s * len(words))
    cues = [cue, Cue("After.", cue.end_s + 1, cue.end_s + 2)]
    check_vtt(captions.webvtt(cues, "V"), cues, "V")


# ---------------------------------------------------------------- SRT

SRT_TIME = r"(\d{2}):(\d{2}):(\d{2}),(\d{3})"


def parse_srt(text: str) -> list[dict]:
    out = []
    for block in text.strip("\n").split("\n\n"):
        lines = block.split("\n")
        m = re.fullmatch(rf"{SRT_TIME} --> {SRT_TIME}", lines[1])
        assert m, lines[1]
        g = m.groups()
        out.append({"n": int(lines[0]), "start_s": seconds(*g[:4]), "end_s": seconds(*g[4:]), "lines": lines[2:]})
    return out


def test_srt_exact_format():
    cues = [Cue("Hello there.", 0.5, 1.75), Cue("Quiet.", 2, 3, n_samples=0), Cue("Again.", 3661.0015, 3662)]
    assert captions.srt(cues) == ("1\n00:00:00,500 --> 00:00:01,750\nHello there.\n\n"
                                  "2\n01:01:01,002 --> 01:01:02,000\nAgain.\n")


def test_srt_round_trip_of_a_long_sentence():
    cues = [Cue(LONG, 1.0, 20.0), Cue("Short.", 21.0, 22.5)]
    parsed = parse_srt(captions.srt(cues))
    assert [c["n"] for c in parsed] == [1, 2, 3, 4, 5]
    assert parsed[0]["start_s"] == 1.0 and parsed[3]["end_s"] == 20.0
    assert all(a["end_s"] == b["start_s"] for a, b in zip(parsed[:3], parsed[1:4]))
    assert (parsed[4]["start_s"], parsed[4]["end_s"]) == (21.0, 22.5)
    assert all(0 < len(line) <= 42 for c in parsed for line in c["lines"])
    assert all(len(c["lines"]) <= 2 for c in parsed)
    assert " ".join(line for c in parsed[:4] for line in c["lines"]) == LONG and parsed[4]["lines"] == ["Short."]


# ---------------------------------------------------------------- JSON transcript (Podcasting 2.0)

def is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def check_segments(doc: dict) -> list[dict]:
    doc = json.loads(json.dumps(doc, allow_nan=False))
    assert set(doc) == {"version", "segments"} and doc["version"] == "1.0.0"
    for seg in doc["segments"]:
        assert set(seg) <= {"speaker", "startTime", "endTime", "body"} and {"startTime", "body"} <= set(seg)
        assert is_number(seg["startTime"]) and is_number(seg["endTime"]) and isinstance(seg["body"], str)
        assert 0 <= seg["startTime"] <= seg["endTime"]
    starts = [s["startTime"] for s in doc["segments"]]
    assert starts == sorted(starts)
    return doc["segments"]


def test_transcript_sentence_segments_without_word_timing():
    cues = [Cue(LONG, 1.0, 20.0), Cue("Silent.", 20, 21, n_samples=0), Cue("Short  one.", 21.0, 22.5)]
    segs = check_segments(captions.transcript_json(cues, "Narrator"))
    assert segs == [{"speaker": "Narrator", "startTime": 1.0, "endTime": 20.0, "body": LONG},
                    {"speaker": "Narrator", "startTime": 21.0, "endTime": 22.5, "body": "Short one."}]


def test_transcript_word_segments_with_word_timing():
    cue = timed(LONG, 3.0)
    segs = check_segments(captions.transcript_json([cue, Cue("Then this.", 200, 201)], "N"))
    assert [s["body"] for s in segs[:-1]] == LONG.split()
    expected = [(round(a, 3), round(b, 3)) for _, a, b in cue.words]
    assert [(s["startTime"], s["endTime"]) for s in segs[:-1]] == expected
    assert segs[-1] == {"speaker": "N", "startTime": 200.0, "endTime": 201.0, "body": "Then this."}
    assert {s["speaker"] for s in segs} == {"N"}


# ---------------------------------------------------------------- JSON chapters 1.2 (Podcasting 2.0)

def test_chapters_json_per_spec():
    chapters = [Chapter("Two", 61.25, 120.0), Chapter("One", 0, 61.25), Chapter("", 120, 130.5)]
    doc = json.loads(json.dumps(captions.chapters_json(chapters, "The Piece"), allow_nan=False))
    assert doc["version"] == "1.2.0" and doc["title"] == "The Piece"
    assert set(doc) == {"version", "title", "chapters"}
    assert doc["chapters"] == [{"startTime": 0.0, "endTime": 61.25, "title": "One"},
                               {"startTime": 61.25, "endTime": 120.0, "title": "Two"},
                               {"startTime": 120.0, "endTime": 130.5}]
    assert all(isinstance(c["startTime"], float) and isinstance(c["endTime"], float) for c in doc["chapters"])


def test_chapters_json_rejects_reversed_times_naming_them():
    with pytest.raises(ValueError, match=r"'Bad'.*start_s=5\.0, end_s=2\.0"):
        captions.chapters_json([Chapter("Bad", 5.0, 2.0)], "T")


# ---------------------------------------------------------------- one clock for every time written

@pytest.mark.parametrize("t_s, style, text", [
    (3723.4567, {"mark": ",", "hours_width": 2}, "01:02:03,457"),  # SubRip
    (59.9996, {"hours_width": 2}, "00:01:00.000"),  # WebVTT, Vorbis chapters: rounding carries
    (360000.0, {"hours_width": 2}, "100:00:00.000"),  # hours keep growing
    (61.25, {}, "1:01.250"),  # info's table
    (3661.0, {}, "1:01:01.000"),
    (125.4, {"places": 0}, "2:05"),  # the picture's axis and title
    (125.4, {"places": 0, "hours_width": 1}, "0:02:05"),
])
def test_one_clock_writes_every_style(t_s, style, text):
    assert clock(t_s, **style) == text
