"""The score's lexicon: [[say]] entries, how a word is spoken where a reading rule cannot know.

An entry finds a whole word (``word``, case-insensitive) or a regular expression (``match``),
optionally only in the sentences ``in`` finds (as a [[cue]]'s ``match`` finds one, but ``in``
may find several), and has it spoken as a respelling (``as``) or as the engine's own phonemes
(``phonemes``). The sentence keeps its spelling for captions, transcripts and anchors; only what
the engine is handed changes. Entries apply before the reading rules, which leave their text alone.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from audio import script
from audio.errors import score_error
from audio.reading import Context, Reading, apply_rules
from audio.schema import Param, show_value
from audio.speech.engine import Engine, VoiceSettings, get_engine

SAY_FIELDS = (
    Param("word", None, "a whole word, matched without regard to case", kind=str),
    Param("match", None, "or a regular expression (Python syntax) for what is said differently", kind=str),
    Param("in", None, "only in the sentences this finds (a sentence, or a part of one)", kind=str),
    Param("as", None, "a respelling the voice reads right", kind=str),
    Param("phonemes", None, "or the engine's phonemes (espeak-ng's ASCII codes, as `piece say` prints them)",
          kind=str),
)

MARKUP = re.compile(r"\[\[|\]\]|[<>\n\r]")  # what would turn a respelling or phonemes into markup


@dataclass(frozen=True)
class Say:
    pattern: re.Pattern
    within: str | None  # the ``in`` key: only in sentences this finds
    respelling: str | None
    phonemes: str | None
    where: str  # key path for messages, e.g. "say[2]"
    shown: str  # what the entry finds, as the score gives it, for messages

    def sentences(self, sentences) -> list:
        """The sentences the entry may apply in (all of them without ``in``)."""
        if self.within is None:
            return list(sentences)
        return script.find_sentence(sentences, self.within)[0]


def check(values: dict, file: str, where: str) -> Say:
    """One [[say]] table's values (from ``read_table``) checked across its keys."""
    if (values["word"] is None) == (values["match"] is None):
        raise score_error(file, where, 'give either "word" (a whole word) or "match" (a regular expression), '
                          "one of the two")
    if (values["as"] is None) == (values["phonemes"] is None):
        raise score_error(file, where, 'give either "as" (a respelling) or "phonemes", one of the two')
    if values["word"] is not None:
        word = values["word"].strip()
        if not word or any(ch.isspace() for ch in word):
            raise score_error(file, f"{where}.word", f"must be one word, got {show_value(values['word'])}; "
                              'use "match" for several')
        pattern = re.compile(r"(?<![\w])" + re.escape(word) + r"(?![\w])", re.IGNORECASE)
        shown = f"word {word!r}"
    else:
        try:
            pattern = re.compile(values["match"])
        except re.error as e:
            raise score_error(file, f"{where}.match", f"not a regular expression: {e}") from None
        if pattern.fullmatch(""):
            raise score_error(file, f"{where}.match", f"{show_value(values['match'])} matches empty text; "
                              "it must match a word or more")
        shown = f"match {values['match']!r}"
    key = "as" if values["as"] is not None else "phonemes"
    said = values[key]
    if not said.strip() or MARKUP.search(said):
        raise score_error(file, f"{where}.{key}", f"must be text to say, without [[, ]], < or > or line breaks, "
                          f"got {show_value(said)}")
    if values["in"] is not None and not values["in"].strip():
        raise score_error(file, f"{where}.in", 'must name a sentence or a part of one, got ""')
    return Say(pattern, values["in"], values["as"], values["phonemes"], where, shown)


def check_used(says, sentences, file: str):
    """Every entry finds its word in a sentence it may apply in, as a [[cue]] must find its sentence."""
    for say in says:
        found = say.sentences(sentences)
        if not found:
            raise score_error(file, f"{say.where}.in", f"{say.within!r} matches no sentence of the text")
        if not any(say.pattern.search(s.text) for s in found):
            place = f"the sentences {say.within!r} finds" if say.within is not None else "the text"
            raise score_error(file, say.where, f"{say.shown} matches nothing in {place}")


def _case_like(said: str, written: str) -> str:
    """A respelling starts upper case where the written word does ("Read" → "Red")."""
    if said[:1].islower() and written[:1].isupper():
        return said[0].upper() + said[1:]
    return said


def apply(reading: Reading, says, phoneme_block) -> Reading:
    """``reading`` with each entry applied in turn (an earlier entry's text is not rewritten by a
    later one). ``phoneme_block(phonemes, where)`` writes phonemes into the engine's input (``where``
    names the entry, for an engine that takes none)."""
    for say in says:
        edits = []
        for m in say.pattern.finditer(reading.spoken):
            if m.end() == m.start() or not reading.free(*m.span()):
                continue
            said = phoneme_block(say.phonemes, say.where) if say.phonemes is not None else \
                _case_like(say.respelling, m.group())
            edits.append((m.start(), m.end(), said))
        if edits:
            reading = reading.rewrite(edits, lock=True)
    return reading


def readings(says, sentences, voices, file: str) -> list[Reading]:
    """Each sentence as its engine is handed it: the [[say]] entries that may apply in it, then
    the reading rules. ``voices`` holds each sentence's VoiceSettings."""
    applies = [set(s.index for s in say.sentences(sentences)) for say in says]
    out = []
    for s, settings in zip(sentences, voices):
        engine = get_engine(settings.engine)

        def block(phonemes, where, engine=engine, line=s.line):
            written = engine.phoneme_block(phonemes)
            if written is None:
                raise score_error(file, f"{where}.phonemes", f"the {engine.name} engine takes no phonemes "
                                  f'(line {line}); give a respelling with "as" instead')
            return written
        entries = [say for say, where in zip(says, applies) if s.index in where]
        read = apply(Reading.of(s.text), entries, block)
        out.append(apply_rules(read, _context(engine, settings)))
    return out


def _context(engine: Engine, settings: VoiceSettings) -> Context:
    """What the reading rules may ask of a voice; its phonemes are asked once per text."""
    if type(engine).phonemes is Engine.phonemes:  # the engine cannot say
        return Context(engine.language(settings))
    return Context(engine.language(settings), functools.partial(_phonemes, engine.name, settings))


@functools.lru_cache(maxsize=4096)
def _phonemes(engine_name: str, settings: VoiceSettings, text: str) -> str:
    return get_engine(engine_name).phonemes(text, settings)
