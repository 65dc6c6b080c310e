"""Text outputs of a render: SRT and WebVTT captions, JSON transcript and JSON chapters.

Every function here is pure: it takes the plan's cues (or chapters) and returns a ``str`` or a
JSON-ready ``dict``; the caller writes the result atomically.

A cue has ``.text``, ``.start_s``, ``.end_s``, ``.n_samples`` (0 = silent, skipped), ``.words``,
a list of ``(word, start_s, end_s)`` in absolute piece time (empty when no word timing is known),
and optionally ``.speaker`` (who says it; blank for the narrator). Word timings are used only when
they line up one to one with the whitespace-separated words of ``.text``; otherwise the cue is
treated as untimed, so the displayed text is always ``.text``.

Captions read well (the BBC's and Netflix's subtitle guidelines agree on these): a caption holds
at most 2 lines of at most 42 characters, so a long sentence is cut into several captions at word
times, preferring clause ends and captions of even length; a caption lasts at least about 1 s
unless the sentence is shorter, so "late." is not left on its own; the two lines of a caption are
balanced.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from audio.clock import clock

LINE_CHARS = 42
SRT_LINE_CHARS = LINE_CHARS  # the same rules serve both formats
CAPTION_LINES = 2
MIN_CAPTION_S = 1.0
CLAUSE_END = tuple(".,;:!?…—–)”’\"'")
TRANSCRIPT_VERSION = "1.0.0"
CHAPTERS_VERSION = "1.2.0"


# ---------------------------------------------------------------- shared helpers

def spoken(cues) -> list:
    """The cues that are heard and have something to show: ``n_samples > 0`` and non-blank text."""
    return [c for c in cues if c.n_samples > 0 and c.text.strip()]


def speaker_of(cue, default: str) -> str:
    """Who says ``cue``: its own speaker, else ``default`` (the narrator)."""
    return " ".join(str(getattr(cue, "speaker", "") or default or "").split())


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


# ---------------------------------------------------------------- cutting a sentence into captions

@dataclass(frozen=True)
class Word:
    text: str
    start_s: float  # when it is spoken: its time, or (untimed) its share of the sentence by characters
    stamp_s: float | None  # its own time, for WebVTT's inline timestamps; None when not known


@dataclass(frozen=True)
class Caption:
    start_ms: int
    end_ms: int
    lines: tuple  # (tuple of Word, ...), at most CAPTION_LINES of at most LINE_CHARS characters


def words_of(cue, label: str = "") -> list[Word]:
    """The cue's words, each with a time; a word longer than a line is cut into line-long pieces
    (the pieces after the first carry no time of their own). ``label`` ("KEEPER:") goes first."""
    timed = timed_words(cue)
    start, end = float(cue.start_s), float(cue.end_s)
    texts = ([label] if label else []) + [w for w, _, _ in timed]
    total = sum(len(t) + 1 for t in texts) or 1
    out, chars = [], 0
    stamps = [None] * (1 if label else 0) + [a for _, a, _ in timed]
    for text, stamp in zip(texts, stamps):
        share = start + (end - start) * chars / total
        chars += len(text) + 1
        cuts = [text[i:i + LINE_CHARS] for i in range(0, len(text), LINE_CHARS)] or [text]
        at = stamp if stamp is not None else share
        out.append(Word(cuts[0], at, stamp))
        out.extend(Word(cut, at, None) for cut in cuts[1:])
    return out


def _length(words) -> int:
    return sum(len(w.text) for w in words) + max(0, len(words) - 1)


def _line_break(words, prefix, i: int, j: int) -> int | None:
    """Where words[i:j] break into two lines of at most LINE_CHARS characters, the longer as short
    as can be (after a clause end when that costs nothing): j for one line, None if they do not fit.
    ``prefix[k]`` is the length of words[:k] with a space after each."""
    if prefix[j] - prefix[i] - 1 <= LINE_CHARS:
        return j
    best = None
    for k in range(i + 1, j):
        a, b = prefix[k] - prefix[i] - 1, prefix[j] - prefix[k] - 1
        if a > LINE_CHARS:
            break
        if b > LINE_CHARS:
            continue
        cost = (max(a, b), not words[k - 1].text.endswith(CLAUSE_END), b < a)
        if best is None or cost < best[0]:
            best = (cost, k)
    return None if best is None else best[1]


def balanced_lines(words) -> tuple | None:
    """``words`` as at most two balanced lines of at most LINE_CHARS characters; None if they do not fit."""
    prefix = [0]
    for w in words:
        prefix.append(prefix[-1] + len(w.text) + 1)
    k = _line_break(words, prefix, 0, len(words))
    if k is None:
        return None
    return (tuple(words[:k]),) if k == len(words) else (tuple(words[:k]), tuple(words[k:]))


def _duration_s(words, i: int, j: int, end_s: float) -> float:
    return (words[j].start_s if j < len(words) else end_s) - words[i].start_s


def split_captions(cue, label: str = "") -> list[Caption]:
    """The captions for one sentence, in order, covering it from its start to its end.

    The cut points are chosen (dynamic programming over word boundaries) for the fewest captions,
    then, among as few, for no caption shorter than MIN_CAPTION_S (unless the whole sentence is),
    cuts after clause ends, and captions of even length. A sentence too short to give each
    caption a millisecond of its own is one caption, however many lines it takes.
    """
    words = words_of(cue, label)
    start_ms, end_ms = to_ms(cue.start_s), to_ms(cue.end_s)
    if not words:
        return []
    n, end_s = len(words), float(cue.end_s)
    prefix = [0]
    for w in words:
        prefix.append(prefix[-1] + len(w.text) + 1)
    fits, ends_at = {}, [[] for _ in range(n + 1)]  # fits[i, j]: where words[i:j] break into lines
    for i in range(n):
        for j in range(i + 1, n + 1):
            if prefix[j] - prefix[i] - 1 > CAPTION_LINES * LINE_CHARS + 1 and j > i + 1:
                break
            k = _line_break(words, prefix, i, j) if j > i + 1 else j
            if k is None:
                continue
            fits[i, j] = k
            ends_at[j].append(i)
    fewest = [0] + [0] * n  # the fewest captions for words[:j], and for words[i:]
    for j in range(1, n + 1):
        fewest[j] = min(fewest[i] + 1 for i in ends_at[j])
    rest = [0] * (n + 1)
    starts_at = [[] for _ in range(n + 1)]
    for (i, j) in fits:
        starts_at[i].append(j)
    for i in range(n - 1, -1, -1):
        rest[i] = min(rest[j] + 1 for j in starts_at[i])
    count = fewest[n]
    mean = prefix[n] / count - 1
    short_ok = end_s - float(cue.start_s) < MIN_CAPTION_S

    def cost(i, j):
        d = _duration_s(words, i, j, end_s)
        short = 0.0 if short_ok or d >= MIN_CAPTION_S else 100.0 * (1 - max(0.0, d) / MIN_CAPTION_S)
        clause = 0.0 if j == n or words[j - 1].text.endswith(CLAUSE_END) else 4.0
        return short + clause + 10.0 * ((prefix[j] - prefix[i] - 1 - mean) / (2 * LINE_CHARS)) ** 2

    # best[j, g]: the least cost of words[:j] as g captions, for the g that still finish in `count`
    best = {(0, 0): (0.0, None)}
    for j in range(1, n + 1):
        for g in range(fewest[j], count - rest[j] + 1):
            options = [(best[i, g - 1][0] + cost(i, j), i) for i in ends_at[j] if (i, g - 1) in best]
            if options:
                best[j, g] = min(options)
    cuts, j, g = [], n, count
    while j > 0:
        i = best[j, g][1]
        cuts.append((i, j))
        j, g = i, g - 1
    cuts.reverse()
    def lines(i, j):
        k = fits[i, j]
        return (tuple(words[i:k]),) if k == j else (tuple(words[i:k]), tuple(words[k:j]))

    if end_ms - start_ms < len(cuts):
        return [Caption(start_ms, max(end_ms, start_ms + 1), tuple(line for i, j in cuts for line in lines(i, j)))]
    bounds = [start_ms] + [to_ms(words[i].start_s) for i, _ in cuts[1:]] + [end_ms]
    for k in range(len(bounds) - 2, 0, -1):  # leave 1 ms for every later caption
        bounds[k] = min(bounds[k], bounds[k + 1] - 1)
    for k in range(1, len(bounds) - 1):  # and never go back
        bounds[k] = max(bounds[k], bounds[k - 1] + 1)
    return [Caption(a, b, lines(i, j)) for (i, j), a, b in zip(cuts, bounds, bounds[1:])]


def _turns(cues) -> list[tuple]:
    """(cue, label) for each spoken cue: a speaker's name and a colon where a new speaker begins."""
    out, previous = [], ""
    for cue in spoken(cues):
        who = speaker_of(cue, "")
        out.append((cue, f"{who}:" if who and who != previous else ""))
        previous = who
    return out


# ---------------------------------------------------------------- SRT

def srt_time(t_ms: int) -> str:
    """SubRip timestamp ``HH:MM:SS,mmm``."""
    return clock(t_ms / 1000, mark=",", hours_width=2)


def srt(cues) -> str:
    """SubRip captions: numbered, at most 2 lines of 42 characters each, a long sentence cut at
    word times; a speaker's name and a colon begin the caption where a [[speaker]] starts talking.

    Format (de-facto SubRip): the counter from 1, ``HH:MM:SS,mmm --> HH:MM:SS,mmm``, the text
    lines, and a blank line between captions. Cues with blank text are skipped: an empty caption
    would end the block early for SRT readers.
    """
    out, n = [], 0
    for cue, label in _turns(cues):
        for caption in split_captions(cue, label):
            n += 1
            text = "\n".join(" ".join(w.text for w in line) for line in caption.lines)
            out.append(f"{n}\n{srt_time(caption.start_ms)} --> {srt_time(caption.end_ms)}\n{text}\n")
    return "\n".join(out)


# ---------------------------------------------------------------- WebVTT

def vtt_time(t_ms: int) -> str:
    """WebVTT timestamp ``HH:MM:SS.mmm`` (W3C WebVTT, 'WebVTT timestamp', hours always written)."""
    return clock(t_ms / 1000, hours_width=2)


def vtt_escape(text: str) -> str:
    """Escape ``&``, ``<`` and ``>`` as character references (W3C WebVTT, 'cue text')."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def vtt_payload(lines, start_ms: int, end_ms: int) -> list[str]:
    """The escaped text lines of one cue, with a timestamp tag before each word after the first.

    W3C WebVTT, 'WebVTT cue timestamp': each timestamp inside a cue must be greater than the cue's
    start, greater than any earlier timestamp in the cue, and less than the cue's end. A word whose
    time breaks that rule (or is unknown) gets no tag and shares the previous word's timing.
    """
    out, last_ms, first = [], start_ms, True
    for line in lines:
        parts = []
        for word in line:
            tag = ""
            if not first and word.stamp_s is not None:
                t_ms = to_ms(word.stamp_s)
                if last_ms < t_ms < end_ms:
                    tag, last_ms = f"<{vtt_time(t_ms)}>", t_ms
            parts.append(tag + vtt_escape(word.text))
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

    ``WEBVTT`` header, then the captions of each sentence (as SRT cuts them: at most 2 lines of 42
    characters, at least about a second each): ``HH:MM:SS.mmm --> HH:MM:SS.mmm`` and each line as
    ``<v Speaker>text</v>``, the speaker being the cue's [[speaker]] or ``speaker`` (the narrator).
    The limit counts what the viewer sees: tags are not counted and an escaped ``&amp;`` counts as
    one. With word timings, a karaoke timestamp tag ``<HH:MM:SS.mmm>`` precedes each word after
    the first within a cue. Cue start times never decrease and every cue ends after it starts, as
    the format requires.
    """
    blocks = ["WEBVTT\n"]
    for cue in sorted(spoken(cues), key=lambda c: (c.start_s, c.end_s)):
        voice = vtt_voice(speaker_of(cue, speaker))
        close = "</v>" if voice else ""
        for caption in split_captions(cue):
            payload = "".join(f"{voice}{text}{close}\n"
                              for text in vtt_payload(caption.lines, caption.start_ms, caption.end_ms))
            blocks.append(f"{vtt_time(caption.start_ms)} --> {vtt_time(caption.end_ms)}\n{payload}")
    return "\n".join(blocks)


# ---------------------------------------------------------------- JSON transcript

def transcript_json(cues, speaker: str) -> dict:
    """Podcasting 2.0 JSON transcript (podcast-namespace ``transcripts/transcripts.md``, "JSON").

    ``{"version": "1.0.0", "segments": [...]}``, each segment ``speaker``, ``startTime``,
    ``endTime`` (seconds, float) and ``body``. The spec has no separate place for word timing; it
    allows segments of any size, down to one word (its own example). So a cue with word timings
    becomes one segment per word, and a cue without them one segment for the whole sentence.
    ``speaker`` is the cue's [[speaker]], else ``speaker`` (the narrator); it is left out of the
    segments when blank (the spec marks it optional).
    """
    segments = []
    for cue in spoken(cues):
        name = speaker_of(cue, speaker)
        who = {"speaker": name} if name else {}
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
