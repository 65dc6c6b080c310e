"""Reading rules: a sentence as written → the text its engine is handed.

A voice reads some common tokens wrongly whatever the text (measured from espeak-ng's own
phonemes): a clock time with a leading zero or whole hours ("02:00": "two zero zero"), a unit
after a number ("18 °C": "eighteen degrees C"), an interjection it spells out ("Hm": "aitch-em"),
the plural of an all-caps word it reads as a word ("TODOs": the plural lost). Each rule is a row
of ``RULES``: a pattern and what to say instead. They are English rules and apply to voices whose
language is English.

A ``Reading`` keeps, for every character handed to the engine, the character of the sentence it
reads, so the engine's word times map back onto the sentence's own words: captions, transcripts
and anchors keep the text's spelling. Text a [[say]] entry wrote is locked: no rule rewrites it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

from audio.speech import words as speech_words


@dataclass(frozen=True)
class Reading:
    """A sentence as written (``text``) and as handed to the engine (``spoken``)."""

    text: str
    spoken: str
    origin: tuple  # for each character of ``spoken``, the index of the character of ``text`` it reads
    locked: tuple  # for each character of ``spoken``, whether a [[say]] entry wrote it

    @classmethod
    def of(cls, text: str) -> Reading:
        return cls(text, text, tuple(range(len(text))), (False,) * len(text))

    def free(self, start: int, end: int) -> bool:
        """Whether no character of spoken[start:end] is locked."""
        return not any(self.locked[start:end])

    def rewrite(self, edits, lock=False) -> Reading:
        """``spoken`` with each (start, end, new) of ``edits`` (non-overlapping spans of ``spoken``)
        replaced; a new character reads the written character in proportion to where it falls in
        the span it replaces, so a respelling of two words maps onto both."""
        spoken, origin, locked, at = [], [], [], 0
        for start, end, new in sorted(edits):
            spoken.append(self.spoken[at:start])
            origin.extend(self.origin[at:start])
            locked.extend(self.locked[at:start])
            span = self.origin[start:end] or (self.origin[start:start + 1] or self.origin[-1:] or (0,))
            spoken.append(new)
            origin.extend(span[min(len(span) - 1, k * len(span) // max(1, len(new)))] for k in range(len(new)))
            locked.extend([lock or any(self.locked[start:end])] * len(new))
            at = end
        spoken.append(self.spoken[at:])
        origin.extend(self.origin[at:])
        locked.extend(self.locked[at:])
        return Reading(self.text, "".join(spoken), tuple(origin), tuple(locked))

    def word_starts(self, clip_words, end_sample: int) -> tuple[tuple[str, int], ...]:
        """The written words, each with its start sample, from a clip of ``spoken`` and its words
        ((word, start_sample), ...): each spoken word times the written word it reads."""
        events = [(self.origin[at] if at < len(self.origin) else len(self.text), sample)
                  for at, sample in speech_words.locate(self.spoken, clip_words)]
        return speech_words.align(self.text, events, end_sample)


@dataclass(frozen=True)
class Context:
    """What a rule may ask of the voice: its language, and its phonemes for a text (None when the
    engine cannot say)."""

    language: str = ""
    phonemes: Callable[[str], str] | None = None

    @property
    def english(self) -> bool:
        return self.language.lower().replace("_", "-").split("-")[0] == "en"


@dataclass(frozen=True)
class Rule:
    """One reading rule: where it applies and what the engine is handed there (None: as written)."""

    name: str
    doc: str
    pattern: re.Pattern
    say: Callable[[re.Match, Context], str | None]


def _clock(m: re.Match, ctx: Context) -> str | None:
    hour, minute, suffix = int(m["hour"]), int(m["minute"]), m["suffix"]
    if minute == 0:
        if suffix:
            return f"{hour} {suffix}"
        if hour == 0:
            return "midnight"
        return f"{hour} o'clock" if hour <= 12 else f"{hour} hundred"
    said = f"{hour} oh {minute}" if minute < 10 else f"{hour}:{m['minute']}"
    return said + (f" {suffix}" if suffix else "")


UNITS = {  # unit → (singular, plural)
    "°C": ("degree Celsius", "degrees Celsius"), "℃": ("degree Celsius", "degrees Celsius"),
    "°F": ("degree Fahrenheit", "degrees Fahrenheit"), "℉": ("degree Fahrenheit", "degrees Fahrenheit"),
    "km": ("kilometre", "kilometres"), "cm": ("centimetre", "centimetres"), "mm": ("millimetre", "millimetres"),
    "kg": ("kilogram", "kilograms"), "mg": ("milligram", "milligrams"),
    "ms": ("millisecond", "milliseconds"), "µs": ("microsecond", "microseconds"),
    "ns": ("nanosecond", "nanoseconds"),
    "kB": ("kilobyte", "kilobytes"), "KB": ("kilobyte", "kilobytes"), "MB": ("megabyte", "megabytes"),
    "GB": ("gigabyte", "gigabytes"), "TB": ("terabyte", "terabytes"),
    "Hz": ("hertz", "hertz"), "kHz": ("kilohertz", "kilohertz"), "MHz": ("megahertz", "megahertz"),
    "GHz": ("gigahertz", "gigahertz"), "dB": ("decibel", "decibels"),
    "mph": ("mile per hour", "miles per hour"), "km/h": ("kilometre per hour", "kilometres per hour"),
    "kph": ("kilometre per hour", "kilometres per hour"), "kW": ("kilowatt", "kilowatts"),
    "kWh": ("kilowatt hour", "kilowatt hours"), "mL": ("millilitre", "millilitres"),
    "ml": ("millilitre", "millilitres"),
}


def _unit(m: re.Match, ctx: Context) -> str:
    singular, plural = UNITS[m["unit"].replace(" ", "")]
    return f"{m['number']} {singular if m['number'] == '1' else plural}"


INTERJECTIONS = (  # (pattern, what espeak-ng reads as that sound); all measured
    (re.compile(r"(?i:h)m", re.ASCII), "Hmm"),             # "Hm": spelled "aitch-em"
    (re.compile(r"(?i:m)m+", re.ASCII), "Hmm"),            # "Mm", "Mmm": spelled "em-em"
    (re.compile(r"(?i:m)m*-?hm+|(?i:u)m-hm+", re.ASCII), "Hmm-hmm"),   # "Mhm", "Mm-hmm"
    (re.compile(r"(?i:h)mph", re.ASCII), "Humph"),         # "Hmph": spelled
    (re.compile(r"(?i:s)hh+", re.ASCII), "Sch"),           # "Shh": spelled "ess-aitch-aitch"
)


def _interjection(m: re.Match, ctx: Context) -> str | None:
    word = m.group()
    for pattern, said in INTERJECTIONS:
        if pattern.fullmatch(word):
            return said if word[0].isupper() else said.lower()
    return None


def _caps_plural(m: re.Match, ctx: Context) -> str | None:
    """An all-caps word's plural the voice reads as its singular ("TODOs" as "TODO") goes as
    "Todos", when the voice reads that as the plural (it does for words it reads as words; for
    words it spells out, "CPUs", the plural is already heard)."""
    if ctx.phonemes is None:
        return None
    caps = m["caps"]
    single, plural = _word_phonemes(ctx, caps), _word_phonemes(ctx, caps + "s")
    if plural != single:
        return None
    respelt = caps[0] + caps[1:].lower() + "s"
    said = _word_phonemes(ctx, respelt)
    return respelt if said != single and said.startswith(single.rstrip(";")) else None


def _word_phonemes(ctx: Context, word: str) -> str:
    """The voice's phonemes for ``word`` inside a short carrier phrase (a word alone, first in a
    clause, is read differently from the same word in a sentence)."""
    said = ctx.phonemes(f"the {word} here").split()
    return " ".join(said[1:-1])


WORD = r"(?<![\w'’-])"  # a whole word: not part of a longer word, an elision or a hyphenated compound
END = r"(?![\w'’-])"

RULES = (
    Rule("interjections", "Hm, Mm, Mhm, Mm-hmm, Hmph and Shh are said as sounds, not spelled out",
         re.compile(WORD + r"(?i:m+-?hm+|um-hm+|hmph|hm+|mm+|shh+)" + END), _interjection),
    Rule("clock times", "02:00 as \"two o'clock\", 14:00 as \"fourteen hundred\", 3:05 as \"three oh five\"; "
         "other times as the voice reads them",
         re.compile(r"(?<![\d:.,])(?P<hour>[01]?\d|2[0-3]):(?P<minute>[0-5]\d)(?![\d:])"
                    r"(?:\s?(?P<suffix>(?i:[ap]\.?m\.?)(?![\w])))?"), _clock),
    Rule("units after numbers", "18 °C as \"18 degrees Celsius\", 5 km as \"5 kilometres\", 6 dB as \"6 decibels\" "
         "(" + ", ".join(UNITS) + ")",
         re.compile(r"(?<![\w.,])(?P<number>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)\s?"
                    r"(?P<unit>" + "|".join(sorted((re.escape(u) for u in UNITS), key=len, reverse=True))
                    + r")(?![\w/])"), _unit),
    Rule("plurals of all-caps words", "TODOs as \"Todos\" where the voice would drop the plural",
         re.compile(WORD + r"(?P<caps>[A-Z][A-Z0-9]*[A-Z])s" + END), _caps_plural),
)


def apply_rules(reading: Reading, ctx: Context, rules=RULES) -> Reading:
    """``reading`` with every rule applied, in order, where no [[say]] entry has written."""
    if not ctx.english:
        return reading
    for rule in rules:
        edits = []
        for m in rule.pattern.finditer(reading.spoken):
            if not reading.free(*m.span()):
                continue
            said = rule.say(m, ctx)
            if said is not None and said != m.group():
                edits.append((m.start(), m.end(), said))
        if edits:
            reading = reading.rewrite(edits)
    return reading
