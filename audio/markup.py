"""Markup a user may paste into a text: honoured, or refused with a score error; never read aloud,
never shown in captions.

Honoured:
- SSML ``<break time="2s"/>`` (or ``500ms``, or ``strength="weak"`` … ``"x-strong"``): a pause; the
  sentence ends there and the pause follows it in place of the text's own;
- SSML ``<speak>`` … ``</speak>``: dropped; XML character references (``&amp;``, ``&#233;``): the
  character they stand for;
- Markdown, read as Markdown renders it: a heading (``# Title``) is a paragraph of its own,
  emphasis (``*word*``, ``**word**``, ``_word_``) is spoken plainly, list bullets (``- ``, ``* ``)
  and inline code backticks are dropped, a link ``[text](url)`` is its text, a thematic break
  (``***``, ``---``) is a paragraph break. What Markdown shows as it is (``5 * 3``, ``#tag``,
  ``snake_case``) is text.

Refused (the message names the line and the score key that does the job):
- espeak-ng phonemes ``[[...]]`` in the text: captions would show them; a [[say]] entry with
  ``phonemes`` says the word that way and keeps its spelling;
- every other SSML (or HTML) tag: ``<prosody>`` ([[cue]] / [[span]] rate and pitch), ``<phoneme>``
  and ``<sub>`` ([[say]]), ``<voice>`` ([[speaker]]), ``<emphasis>``, ``<say-as>``, ``<p>``, ``<s>``…
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

from audio.errors import score_error

MAX_BREAK_S = 3600.0

SSML_TAGS = frozenset(
    "speak break prosody emphasis say-as phoneme sub voice p s audio mark lang lexicon lookup w token "
    "desc meta metadata par seq media".split())
HTML_TAGS = frozenset(
    "a abbr b big blockquote br code del div em font h1 h2 h3 h4 h5 h6 hr i img ins kbd li ol pre q small span "
    "strike strong sup tt u ul".split())
TAG_RE = re.compile(r"<\s*(?P<close>/)?\s*(?P<name>[A-Za-z][\w.-]*(?::[\w.-]+)?)"
                    r"(?P<attrs>(?:\s+[\w:-]+\s*=\s*(?:\"[^\"<>]*\"|'[^'<>]*'))*)\s*/?\s*>")  # name="value" only
LOOSE_SSML_RE = re.compile(r"<\s*/?\s*(?:speak|break|prosody|emphasis|say-as|phoneme|sub|voice|audio|mark|lang)\b",
                           re.IGNORECASE)  # the start of an SSML tag, well formed or not
PHONEMES_RE = re.compile(r"\[\[.*?\]\]")
ENTITY_RE = re.compile(r"&(?:[A-Za-z][A-Za-z0-9]{1,31}|#\d{1,7}|#[xX][0-9A-Fa-f]{1,6});")

# where the score does what a refused tag would
INSTEAD = {
    "prosody": "a [[cue]] or [[span]] with rate, pitch or volume",
    "emphasis": "a [[cue]] or [[span]] with rate or pitch (there is no emphasis control)",
    "phoneme": "a [[say]] entry with phonemes", "sub": "a [[say]] entry with as",
    "say-as": "a [[say]] entry", "voice": "a [[speaker]] and its label at the start of the line",
    "p": "a blank line between paragraphs", "s": "sentence punctuation", "br": "a line break",
    "audio": "a [[layer]] with the sample source", "lang": "a [[cue]] or [[span]] voice",
}

BREAK_STRENGTHS = {"none": 0.0, "x-weak": 0.1, "weak": 0.25, "medium": "sentence", "strong": "line",
                   "x-strong": "paragraph"}
TIME_RE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s)\s*$")
ATTR_RE = re.compile(r"""([\w:-]+)\s*=\s*(?:"([^"]*)"|'([^']*)')""")

HEADING_RE = re.compile(r"^\s{0,3}#{1,6}(?:\s+(.*?))?(?:\s+#+)?\s*$")
RULE_RE = re.compile(r"^\s{0,3}([-*_])(?:\s*\1){2,}\s*$")
BULLET_RE = re.compile(r"^(\s*)[-*+•]\s+(?=\S)")
EMPHASIS_RE = re.compile(r"(?<![\w*])(\*{1,3}|_{1,3})(?=[^\s*_])(.+?)(?<=[^\s*_])\1(?![\w*])")
CODE_RE = re.compile(r"`+([^`]+?)`+")
LINK_RE = re.compile(r"!?\[([^\[\]]+)\]\([^()\s]*(?:\s+\"[^\"]*\")?\)")


def _is_markup_tag(name: str) -> bool:
    name = name.lower()
    return name in SSML_TAGS or name in HTML_TAGS or ":" in name


def _break_pause(attrs: str, file, where):
    """A <break>'s pause: seconds, or the name of the score's pause it stands for."""
    values = {m[1].lower(): m[2] if m[2] is not None else m[3] for m in ATTR_RE.finditer(attrs)}
    unknown = set(values) - {"time", "strength"}
    if unknown:
        raise score_error(file, where, f"<break> takes time or strength, got {', '.join(sorted(unknown))}")
    if "time" in values:
        m = TIME_RE.match(values["time"])
        if not m:
            raise score_error(file, where, f'<break time="{values["time"]}">: give seconds or milliseconds, '
                              'e.g. time="2s" or time="500ms"')
        seconds = float(m[1]) / (1000.0 if m[2] == "ms" else 1.0)
        if seconds > MAX_BREAK_S:
            raise score_error(file, where, f'<break time="{values["time"]}"> is longer than {MAX_BREAK_S:g} s')
        return seconds
    strength = values.get("strength", "medium").lower()
    if strength not in BREAK_STRENGTHS:
        raise score_error(file, where, f'<break strength="{strength}">: must be one of '
                          f"{', '.join(BREAK_STRENGTHS)}")
    return BREAK_STRENGTHS[strength]


def check(text: str, file, where="piece.text"):
    """Refuse the markup this package does not honour, naming the line; check every <break>."""
    for n, line in enumerate(text.replace("\r\n", "\n").replace("\r", "\n").split("\n"), start=1):
        here = f"{where}: line {n}"
        m = PHONEMES_RE.search(line)
        if m:
            raise score_error(file, here, f"{m.group()!r}: phonemes in the text would be shown in captions; "
                              "write the word and give its phonemes in a [[say]] entry (phonemes = ...)")
        tags = list(TAG_RE.finditer(line))
        for loose in LOOSE_SSML_RE.finditer(line):
            if not any(t.start() == loose.start() for t in tags):
                raise score_error(file, here, f"{line[loose.start():loose.start() + 40]!r}: an SSML tag this "
                                  'cannot read; write a pause as <break time="2s"/> (attribute values quoted)')
        for tag in tags:
            name = tag["name"].lower()
            if not _is_markup_tag(name):
                continue
            if name == "break" and not tag["close"]:
                _break_pause(tag["attrs"], file, here)
            elif name != "speak":
                instead = INSTEAD.get(name, "the score's own keys")
                raise score_error(file, here, f"<{tag['close'] or ''}{tag['name']}>: this markup is not read "
                                  f"(only <break> and <speak> are); use {instead} instead")


@dataclass(frozen=True)
class Line:
    kind: str  # "text", "heading" (a paragraph of its own) or "rule" (a paragraph break)
    parts: tuple  # ((text, pause after it), ...): the line cut at its <break> tags; None after the last


MARK = "\x00"  # stands for a <break> while the rest is cleaned (a text holds no NUL: the score refuses it)


def clean_line(line: str) -> Line:
    """One line of the text with its honoured markup applied (``check`` has refused the rest)."""
    if RULE_RE.match(line):
        return Line("rule", (("", None),))
    kind = "text"
    heading = HEADING_RE.match(line)
    if heading:
        kind, line = "heading", heading[1] or ""
    pauses = []

    def tag(t: re.Match) -> str:
        name = t["name"].lower()
        if name == "break" and not t["close"]:
            pauses.append(_break_pause(t["attrs"], "", ""))
            return MARK
        return " " if _is_markup_tag(name) else t.group()

    line = TAG_RE.sub(tag, BULLET_RE.sub(r"\1", line))
    line = CODE_RE.sub(r"\1", LINK_RE.sub(r"\1", line))
    previous = None
    while previous != line:  # nested emphasis: ***word*** or **_word_**
        previous, line = line, EMPHASIS_RE.sub(r"\2", line)
    line = ENTITY_RE.sub(lambda m: html.unescape(m.group()), line)  # last: a decoded "<" is text
    texts = line.split(MARK)
    return Line(kind, tuple(zip(texts, pauses + [None])))
