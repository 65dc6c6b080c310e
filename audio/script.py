"""Split a text into the sentences that are spoken, each with the kind of break that follows it.

A text is lines; a blank line ends a paragraph; a line holds one or more sentences. Sentences end
at ``.``, ``!``, ``?`` or ``…`` (closing quotes and brackets stay with them) followed by a space or
the line's end, but not inside numbers ("3.7", "02:00") nor after common abbreviations.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from audio import markup

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
    speaker: str = ""  # the [[speaker]] whose label began its line or paragraph; "" for the narrator
    pause: float | str | None = None  # a <break> after it: seconds, or the kind of pause; None for none


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


def parse(text: str, title_line: bool, speakers=()) -> list[Sentence]:
    """The spoken sentences of a text, in order, each with the break that follows it.

    Markup is read as ``markup`` says (a heading is a paragraph of its own, a <break> ends its
    sentence with a pause). A line that begins with the label of one of ``speakers`` ("KEEPER:")
    and the lines after it in its paragraph are that speaker's; the label is not part of the text.
    """
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    sentences: list[Sentence] = []
    pending_break = None  # break kind to assign to the previous sentence once we know what follows
    first_line_seen = False
    speaker = ""
    label = re.compile(r"^\s*(" + "|".join(re.escape(n) for n in speakers) + r"):(?:\s+|$)") if speakers else None

    def end_previous(kind, pause=None):
        if sentences:
            prev = sentences[-1]
            add = prev.pause if pause is None else pause if prev.pause is None else _sum(prev.pause, pause)
            sentences[-1] = replace(prev, brk=kind or prev.brk, pause=add)

    for line_no, raw in enumerate(lines, start=1):
        cleaned = markup.clean_line(raw)
        if not raw.strip() or cleaned.kind == "rule":
            if sentences and pending_break != "title":
                pending_break = "paragraph"
            speaker = ""
            continue
        is_title = title_line and not first_line_seen
        first_line_seen = True
        if cleaned.kind == "heading":
            speaker = ""
            if sentences and pending_break != "title":
                pending_break = "paragraph"
        parts = list(cleaned.parts)
        produced = False
        if label and not is_title:
            m = label.match(parts[0][0])
            if m:
                speaker = m[1]
                parts[0] = (parts[0][0][m.end():], parts[0][1])
        for part, pause in parts:
            texts = [part.strip()] if is_title or cleaned.kind == "heading" else split_sentences(part)
            for piece in (t for t in texts if t):
                if sentences and pending_break:
                    end_previous(pending_break)
                sentences.append(Sentence(len(sentences), piece, line_no, "sentence", speaker))
                pending_break, produced = "sentence", True
            if pause is not None:
                end_previous(None, pause)
        if produced:
            pending_break = "title" if is_title else "paragraph" if cleaned.kind == "heading" else "line"
    if sentences:
        sentences[-1] = replace(sentences[-1], brk="end")
    return sentences


def _sum(a, b):
    """Two <break> pauses in a row: their seconds added; a kind of pause gives way to seconds."""
    if isinstance(a, float) and isinstance(b, float):
        return a + b
    return b if isinstance(b, float) else a if isinstance(a, float) else b


def find_sentence(sentences: list[Sentence], match: str) -> tuple[list[Sentence], bool]:
    """Sentences that ``match`` names: an exact sentence first, else sentences containing it.

    Returns (matches, exact).
    """
    wanted = " ".join(match.split())
    exact = [s for s in sentences if s.text == wanted]
    if exact:
        return exact, True
    return [s for s in sentences if wanted in s.text], False
