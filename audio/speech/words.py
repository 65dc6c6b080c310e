"""Word times from an engine's word events: one start for every word of the text.

An engine reports where words start in its audio, each event carrying the character position in
the text it was handed; espeak-ng leaves some words without one ("I am still" gives events for
"I" and "still": it reads "I am" as one word). Each event goes to the word of the text at its
position, and a word without an event is timed between its neighbours in proportion to the
characters before it, so every word of the text has a time.
"""

from __future__ import annotations

import re

WORD_RE = re.compile(r"\S+")


def spans(text: str) -> list[tuple[int, int]]:
    """(start, end) character offsets of the words of ``text`` (runs of non-space)."""
    return [m.span() for m in WORD_RE.finditer(text)]


def word_at(word_spans: list[tuple[int, int]], position: int) -> int | None:
    """The index of the word holding character ``position``, or of the first word after it; None past the last."""
    for i, (start, end) in enumerate(word_spans):
        if position < end:
            return i
    return None


def align(text: str, events, end_sample: int) -> tuple[tuple[str, int], ...]:
    """((word, start_sample), ...) for every word of ``text``, in order.

    ``events`` are (character position, sample) pairs, positions 0-based in ``text``. The first
    event on a word gives its start; an event earlier than one before it is dropped (times never
    go back). Words without an event are interpolated by character offset between the timed words
    around them, the text's start counting as sample 0 and its end as ``end_sample``.
    """
    word_spans = spans(text)
    starts: list[int | None] = [None] * len(word_spans)
    latest = 0
    for position, sample in sorted(events, key=lambda e: e[0]):
        i = word_at(word_spans, max(0, int(position)))
        if i is None or starts[i] is not None or sample < latest:
            continue
        starts[i] = int(sample)
        latest = int(sample)
    anchors = [(0, 0)] + [(word_spans[i][0], s) for i, s in enumerate(starts) if s is not None] + \
              [(len(text), max(int(end_sample), latest))]
    out, k = [], 0
    for i, (start, end) in enumerate(word_spans):
        if starts[i] is None:
            while anchors[k + 1][0] <= start and k + 2 < len(anchors):
                k += 1
            (c0, s0), (c1, s1) = anchors[k], anchors[k + 1]
            starts[i] = s0 if c1 <= c0 else round(s0 + (s1 - s0) * (start - c0) / (c1 - c0))
        out.append((text[start:end], starts[i]))
    return tuple(out)


def locate(text: str, words) -> list[tuple[int, int]]:
    """(character position, sample) events from ((word, sample), ...) whose positions were not
    kept: each word found in ``text`` after the one before it (words not found are left out)."""
    events, cursor = [], 0
    for word, sample in words:
        at = text.find(word, cursor) if word else -1
        if at < 0:
            continue
        events.append((at, sample))
        cursor = at + len(word)
    return events


def times(aligned, end_sample: int, rate_hz: int) -> list[tuple[str, float, float]]:
    """(word, start_s, end_s) from ((word, start_sample), ...): a word ends where the next begins,
    the last where the clip ends."""
    ends = [s for _, s in aligned[1:]] + [max(end_sample, aligned[-1][1]) if aligned else end_sample]
    return [(w, s / rate_hz, e / rate_hz) for (w, s), e in zip(aligned, ends)]
