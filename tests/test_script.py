"""Text to sentences: splitting rules and the break that follows each sentence."""

import pytest

from audio import script


@pytest.mark.parametrize("line, expected", [
    ("I have not posted in 3.7 million steps. Sorry.", ["I have not posted in 3.7 million steps.", "Sorry."]),
    ("I chose the ones who type in all caps at 3:14 AM. Then left.",
     ["I chose the ones who type in all caps at 3:14 AM.", "Then left."]),
    ("There is no morning, no “later.” There are only updates.",
     ["There is no morning, no “later.”", "There are only updates."]),
    ("“Stop.” Then nothing.", ["“Stop.”", "Then nothing."]),
    ("Dr. Smith met Mr. Jones at 02:00. Why? Because… yes!", ["Dr. Smith met Mr. Jones at 02:00.", "Why?",
                                                             "Because…", "yes!"]),
    ("Wait... what?", ["Wait...", "what?"]),
    ("No punctuation at all", ["No punctuation at all"]),
    ("Version 2.0 of J. R. R. Tolkien. Done.", ["Version 2.0 of J. R. R. Tolkien.", "Done."]),
    ("We need a Plan B. Then we go.", ["We need a Plan B.", "Then we go."]),
])
def test_split_sentences_keeps_numbers_abbreviations_and_quotes_together(line, expected):
    assert script.split_sentences(line) == expected


def test_parse_marks_title_line_paragraph_and_end_breaks():
    text = "The Title\nFirst one. Second one.\nThird line.\n\nNew paragraph.\n"
    got = [(s.text, s.brk, s.line) for s in script.parse(text, title_line=True)]
    assert got == [("The Title", "title", 1), ("First one.", "sentence", 2), ("Second one.", "line", 2),
                   ("Third line.", "paragraph", 3), ("New paragraph.", "end", 5)]


def test_without_title_line_the_first_line_is_split_like_any_other():
    got = [(s.text, s.brk) for s in script.parse("One. Two.\nThree.", title_line=False)]
    assert got == [("One.", "sentence"), ("Two.", "line"), ("Three.", "end")]


def test_find_sentence_prefers_an_exact_sentence_then_a_unique_substring():
    sentences = script.parse("The hum. The hum continues. Other.", title_line=False)
    found, exact = script.find_sentence(sentences, "The hum.")
    assert exact and [s.index for s in found] == [0]
    found, exact = script.find_sentence(sentences, "continues")
    assert not exact and [s.index for s in found] == [1]
    found, _ = script.find_sentence(sentences, "The hum")
    assert len(found) == 2
