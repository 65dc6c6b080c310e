"""Split a text into the sentences that are spoken, each with the kind of break that follows it.

A text is lines; a blank line ends a paragraph; a line holds one or more sentences. Sentences end
at ``.``, ``!``, ``?`` or ``…`` (closing quotes and brackets stay with them) followed by a space or
the line's end, but not inside numbers ("3.7", "02:00") nor after common abbreviations.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Abbreviations after which a full stop does not end a sentence (compared in lower case).
ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof sr jr st vs etc e.g i.e cf approx fig no vol ch pp mt ft ca al inc ltd co corp dept".split()
)

# A sentence end: terminal punctuation, then closing quotes/brackets, then whitespace or the end.
END_RE = re.compile(r"[.!?…]+[\"'”’»)\]]*(?=\s|$)")


@dataclass(frozen=True)
class Sentence:
    index: int
    text: str
    line: int  # 1-based line number in the text
    brk: str  # what follows: "sentence", "line", "paragraph", "title" or "end"


def _is_initial(token: str, words: list[str], after: str) -> bool:
    """A single capital as in "J. R. R. Tolkien": an initial when another initial is beside it."""
    def initial(w):
        return len(w) == 2 and w[0].isupper() and w[1] == "."
    if not (len(token) == 1 and token.isupper()):
        return False
    following = after.split()[:1]
    before = words[-2] if len(words) > 1 else ""
    return initial(before) or bool(following and initial(following[0]))


def split_sentences(line: str) -> list[str]:
    """Split one line of text into sentences."""
    out, start = [], 0
    for m in END_RE.finditer(line):
        candidate = line[start:m.end()]
        words = candidate[: m.start() - start].split()
        token = words[-1] if words else ""
        is_abbrev = line[m.start()] == "." and m.end() - m.start() == 1 and (
            token.lower().rstrip(".") in ABBREVIATIONS or _is_initial(token, words, line[m.end():])
        )
        if is_abbrev:
            continue
        if candidate.strip():
            out.append(candidate.strip())
        start = m.end()
    rest = line[start:].strip()
    if rest:
        out.append(rest)
    return out


def parse(text: str, title_line: bool) -> list[Sentence]:
    """The spoken sentences of a text, in order, each with the break that follows it."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    sentences: list[Sentence] = []
    pending_break = None  # break kind to assign to the previous sentence once we know what follows
    first_line_seen = False
    for line_no, line in enumerate(lines, start=1):
        if not line.strip():
            if sentences and pending_break != "title":
                pending_break = "paragraph"
            continue
        is_title = title_line and not first_line_seen
        first_line_seen = True
        parts = [line.strip()] if is_title else split_sentences(line)
        for i, part in enumerate(parts):
            if sentences and pending_break:
                prev = sentences[-1]
                sentences[-1] = Sentence(prev.index, prev.text, prev.line, pending_break)
            sentences.append(Sentence(len(sentences), part, line_no, "sentence"))
            pending_break = "sentence"
        if pending_break:
            pending_break = "title" if is_title else "line"
    if sentences:
        last = sentences[-1]
        sentences[-1] = Sentence(last.index, last.text, last.line, "end")
    return sentences


def find_sentence(sentences: list[Sentence], match: str) -> tuple[list[Sentence], bool]:
    """Sentences that ``match`` names: an exact sentence first, else sentences containing it.

    Returns (matches, exact).
    """
    wanted = " ".join(match.split())
    exact = [s for s in sentences if s.text == wanted]
    if exact:
        return exact, True
    return [s for s in sentences if wanted in s.text], False
