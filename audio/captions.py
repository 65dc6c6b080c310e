"""Text outputs of a render: SRT and WebVTT captions, JSON transcript and JSON chapters.

Every function here is pure: it takes the plan's cues (or chapters) and returns a ``str`` or a
JSON-ready ``dict``; the caller writes the result atomically.

A cue has ``.text``, ``.start_s``, ``.end_s``, ``.n_samples`` (0 = silent, skipped) and ``.words``,
a list of ``(word, start_s, end_s)`` in absolute piece time, empty when no word timing is known.
Word timings are used only when they line up one to one with the whitespace-separated words of
``.text``; otherwise the cue is treated as untimed, so the displayed text is always ``.text``.
"""

from __future__ import annotations

import math
import textwrap

from audio.clock import clock

SRT_LINE_CHARS = 42
VTT_LINE_CHARS = 65
TRANSCRIPT_VERSION = "1.0.0"
CHAPTERS_VERSION = "1.2.0"


# ---------------------------------------------------------------- shared helpers

def spoken(cues) -> list:
    """The cues that are heard and have something to show: ``n_samples > 0`` and non-blank text."""
    return [c for c in cues if c.n_samples > 0 and c.text.strip()]


def to_ms(t_s: float) -> int:
    """Seconds to whole milliseconds (rounded), never below 0: caption formats have no negative times."""
    return max(0, int(round(float(t_s) * 1000)))


def timed_words(cue) -> list[tuple[str, float | None, float | None]]:
    """The words of ``cue.text`` as ``(word, start_s, end_s)``, times clamped into the cue.

    Times are ``None`` when the cue has no word timing or when its timed words do not match the
    text word for word in number (then no word can be trusted to carry its time).
    """
    words = cue.text.split()
    timing = list(getattr(cue, "words", None) or ())
    if not timing or len(timing) != len(words):
        return [(w, None, None) for w in words]
    lo, hi = float(cue.start_s), float(cue.end_s)
    out = []
    for word, (_, start_s, end_s) in zip(words, timing):
        start_s = min(max(float(start_s), lo), hi)
        end_s = min(max(float(end_s), start_s), hi)
        out.append((word, start_s, end_s))
    return out


def rounded_s(t_s: float) -> float:
    """Seconds rounded to the millisecond, as a float (JSON number)."""
    return round(float(t_s), 3)


# ---------------------------------------------------------------- SRT

def srt_time(t_s: float) -> str:
    """SubRip timestamp ``HH:MM:SS,mmm``."""
    return clock(to_ms(t_s) / 1000, mark=",", hours_width=2)


def srt(cues) -> str:
    """SubRip captions: one numbered caption per spoken cue, text wrapped at 42 characters.

    Format (de-facto SubRip): the counter from 1, ``HH:MM:SS,mmm --> HH:MM:SS,mmm``, the text
    lines, and a blank line between captions. Cues with blank text are skipped: an empty caption
    would end the block early for SRT readers.
    """
    out = []
    for n, cue in enumerate(spoken(cues), start=1):
        lines = textwrap.wrap(cue.text, width=SRT_LINE_CHARS)
        out.append(f"{n}\n{srt_time(cue.start_s)} --> {srt_time(cue.end_s)}\n" + "\n".join(lines) + "\n")
    return "\n".join(out)


# ---------------------------------------------------------------- WebVTT

def vtt_time(t_ms: int) -> str:
    """WebVTT timestamp ``HH:MM:SS.mmm`` (W3C WebVTT, 'WebVTT timestamp', hours always written)."""
    return clock(t_ms / 1000, hours_width=2)


def vtt_escape(text: str) -> str:
    """Escape ``&``, ``<`` and ``>`` as character references (W3C WebVTT, 'cue text')."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def wrap_words(words: list, width: int) -> list[list]:
    """Greedily pack ``(word, start_s, end_s)`` items into lines of at most ``width`` characters.

    Words join with one space. A word longer than ``width`` is cut into ``width``-sized pieces;
    the pieces after the first carry no start time (they get no inline timestamp).
    """
    pieces = []
    for word, start_s, end_s in words:
        cuts = [word[i:i + width] for i in range(0, len(word), width)]
        pieces.append((cuts[0], start_s, end_s))
        pieces.extend((cut, None, end_s) for cut in cuts[1:])
    lines, line, line_chars = [], [], 0
    for piece in pieces:
        n_chars = len(piece[0])
        if line and line_chars + 1 + n_chars > width:
            lines.append(line)
            line, line_chars = [], 0
        line_chars += n_chars + (1 if line else 0)
        line.append(piece)
    if line:
        lines.append(line)
    return lines


def line_bounds_ms(cue, lines: list[list]) -> list[int]:
    """Times (ms) where each line's cue starts, plus the last cue's end: ``len(lines) + 1`` values.

    The first line starts at the cue's start and the last ends at the cue's end, so the sentence
    stays on screen for its whole duration. Inner boundaries are the first word's start when word
    timing is known, else proportional to the characters spoken before the line. Boundaries are
    strictly increasing (a WebVTT cue must end after it starts) and stay within the cue, which
    needs at least 1 ms per line: ``vtt_cues`` checks that first.
    """
    start_ms, end_ms = to_ms(cue.start_s), to_ms(cue.end_s)
    texts = [" ".join(p[0] for p in line) for line in lines]
    total_chars = sum(len(t) for t in texts)
    bounds, chars_before = [start_ms], 0
    for line, text in zip(lines[1:], texts):
        chars_before += len(text)
        first_start_s = line[0][1]
        if first_start_s is not None:
            bounds.append(to_ms(first_start_s))
        else:
            bounds.append(start_ms + round((end_ms - start_ms) * chars_before / total_chars))
    bounds.append(end_ms)
    for i in range(len(bounds) - 2, 0, -1):  # leave 1 ms for every later line
        bounds[i] = min(bounds[i], bounds[i + 1] - 1)
    for i in range(1, len(bounds) - 1):  # and never go back
        bounds[i] = max(bounds[i], bounds[i - 1] + 1)
    return bounds


def vtt_cues(cue) -> list[tuple[int, int, list[list]]]:
    """The WebVTT cues for one sentence as ``(start_ms, end_ms, lines)``.

    Normally one line per cue. A sentence too short to give each line a millisecond of its own
    becomes a single cue holding all its lines (lengthened to 1 ms if it rounds to nothing).
    """
    lines = wrap_words(timed_words(cue), VTT_LINE_CHARS)
    start_ms, end_ms = to_ms(cue.start_s), to_ms(cue.end_s)
    if end_ms - start_ms < len(lines):
        return [(start_ms, max(end_ms, start_ms + 1), lines)]
    bounds = line_bounds_ms(cue, lines)
    return [(a, b, [line]) for line, a, b in zip(lines, bounds, bounds[1:])]


def vtt_payload(lines: list[list], start_ms: int, end_ms: int) -> list[str]:
    """The escaped text lines of one cue, with a timestamp tag before each word after the first.

    W3C WebVTT, 'WebVTT cue timestamp': each timestamp inside a cue must be greater than the cue's
    start, greater than any earlier timestamp in the cue, and less than the cue's end. A word whose
    time breaks that rule (or is unknown) gets no tag and shares the previous word's timing.
    """
    out, last_ms, first = [], start_ms, True
    for line in lines:
        parts = []
        for word, word_start_s, _ in line:
            tag = ""
            if not first and word_start_s is not None:
                t_ms = to_ms(word_start_s)
                if last_ms < t_ms < end_ms:
                    tag, last_ms = f"<{vtt_time(t_ms)}>", t_ms
            parts.append(tag + vtt_escape(word))
            first = False
        out.append(" ".join(parts))
    return out


def vtt_voice(speaker: str) -> str:
    """The voice span start tag ``<v Speaker>``; empty when the speaker is blank.

    The annotation may not contain a line break, ``&`` or ``>`` unescaped (W3C WebVTT, 'cue span
    start tag annotation text'), so whitespace runs collapse to one space and the text is escaped.
    """
    name = " ".join(str(speaker or "").split())
    return f"<v {vtt_escape(name)}>" if name else ""


def webvtt(cues, speaker: str) -> str:
    """WebVTT captions (W3C 'WebVTT: The Web Video Text Tracks Format').

    ``WEBVTT`` header, then one cue per caption line: ``HH:MM:SS.mmm --> HH:MM:SS.mmm`` and one
    payload line ``<v Speaker>text</v>`` (several lines only for a sentence shorter than 1 ms per
    line). Each line shows at most 65 characters of text (the limit counts what the viewer sees:
    tags are not counted and an escaped ``&amp;`` counts as one); a longer sentence becomes several consecutive cues, split between words, timed from the word
    timings when known, else in proportion to their characters. With word timings, a karaoke
    timestamp tag ``<HH:MM:SS.mmm>`` precedes each word after the first within a cue.
    Cue start times never decrease and every cue ends after it starts, as the format requires.
    """
    blocks = ["WEBVTT\n"]
    voice = vtt_voice(speaker)
    close = "</v>" if voice else ""
    for cue in sorted(spoken(cues), key=lambda c: (c.start_s, c.end_s)):
        for start_ms, end_ms, lines in vtt_cues(cue):
            payload = "".join(f"{voice}{text}{close}\n" for text in vtt_payload(lines, start_ms, end_ms))
            blocks.append(f"{vtt_time(start_ms)} --> {vtt_time(end_ms)}\n{payload}")
    return "\n".join(blocks)


# ---------------------------------------------------------------- JSON transcript

def transcript_json(cues, speaker: str) -> dict:
    """Podcasting 2.0 JSON transcript (podcast-namespace ``transcripts/transcripts.md``, "JSON").

    ``{"version": "1.0.0", "segments": [...]}``, each segment ``speaker``, ``startTime``,
    ``endTime`` (seconds, float) and ``body``. The spec has no separate place for word timing; it
    allows segments of any size, down to one word (its own example). So a cue with word timings
    becomes one segment per word, and a cue without them one segment for the whole sentence.
    ``speaker`` is left out of the segments when blank (the spec marks it optional).
    """
    name = " ".join(str(speaker or "").split())
    who = {"speaker": name} if name else {}
    segments = []
    for cue in spoken(cues):
        words = timed_words(cue)
        if words and words[0][1] is not None:
            for word, start_s, end_s in words:
                segments.append({**who, "startTime": rounded_s(start_s), "endTime": rounded_s(end_s),
                                 "body": word})
        else:
            segments.append({**who, "startTime": rounded_s(cue.start_s), "endTime": rounded_s(cue.end_s),
                             "body": " ".join(cue.text.split())})
    return {"version": TRANSCRIPT_VERSION, "segments": segments}


# ---------------------------------------------------------------- JSON chapters

def chapters_json(chapters, title: str) -> dict:
    """Podcasting 2.0 JSON chapters, format version 1.2 (podcast-namespace ``chapters/jsonChapters.md``).

    ``{"version": "1.2.0", "title": ..., "chapters": [{"startTime", "endTime", "title"}, ...]}``,
    times in seconds (float, millisecond precision), chapters in ascending ``startTime`` as the
    spec assumes. Blank titles are left out (``title`` is optional at both levels).
    Raises ValueError, naming the chapter and value, for a non-finite, negative or reversed time.
    """
    items = []
    for ch in sorted(chapters, key=lambda c: (c.start_s, c.end_s)):
        start_s, end_s = float(ch.start_s), float(ch.end_s)
        if not (math.isfinite(start_s) and math.isfinite(end_s)) or start_s < 0 or end_s < start_s:
            raise ValueError(f"chapter {ch.title!r}: times must be finite with 0 <= start_s <= end_s, "
                             f"got start_s={start_s!r}, end_s={end_s!r}")
        item = {"startTime": rounded_s(start_s), "endTime": rounded_s(end_s)}
        if str(ch.title or "").strip():
            item["title"] = str(ch.title)
        items.append(item)
    out = {"version": CHAPTERS_VERSION}
    if str(title or "").strip():
        out["title"] = str(title)
    out["chapters"] = items
    return out
