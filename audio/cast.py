"""Who speaks each sentence, and how: [voice], then the sentence's [[speaker]], then the [[span]]s
over it, then its [[cue]]; each later table's keys win over the earlier ones'.

Overrides are voice keys ("name" for the voice, "rate", "pitch", "volume", "gain_db", "effects",
and whatever else [voice] holds), plus a cue's "pause_before" and "pause_after".
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path

from audio import script
from audio.errors import score_error
from audio.speech.engine import VoiceSettings, get_engine

NEUTRAL_PITCH = 50  # what an engine without pitch control is given


@dataclass(frozen=True)
class Direction:
    """What the score decides for one sentence: who speaks it and every voice key."""

    speaker: str  # "" for the narrator ([voice])
    values: dict  # voice key → value, every key of [voice] and any a cue adds

    def settings(self) -> VoiceSettings:
        """The engine's voice settings for the sentence: a voice model's voice is named for its file,
        and an engine without pitch control gets a neutral pitch."""
        keys = {f.name for f in fields(VoiceSettings)}
        values = {k: v for k, v in self.values.items() if k in keys}
        if values.get("model"):
            values["name"] = Path(values["model"]).stem
        if not get_engine(values["engine"]).has_pitch:
            values["pitch"] = NEUTRAL_PITCH
        return VoiceSettings(**values)


def match_one(sentences, text, file, where, what):
    """The one sentence ``text`` names (as a [[cue]]'s match finds it), else a ScoreError."""
    found, _ = script.find_sentence(sentences, text)
    if not found:
        raise score_error(file, where, f"{what} {text!r} matches no sentence of the text")
    if len(found) > 1:
        lines = ", ".join(str(s.line) for s in found[:5])
        raise score_error(file, where, f"{what} {text!r} matches {len(found)} sentences (on lines {lines}); "
                          "give more of the sentence so it is unique")
    return found[0]


def cue_overrides(cue) -> dict:
    """A [[cue]]'s keys as overrides (its "voice" is the voice's name)."""
    return {("name" if f.name == "voice" else f.name): getattr(cue, f.name) for f in fields(cue)
            if f.name not in ("match", "where") and getattr(cue, f.name) is not None}


def direct(sc, sentences, text_path) -> list[Direction]:
    """Each sentence's Direction; a [[speaker]] whose label begins no line, a [[span]] whose ends
    are not found (or come in the wrong order) and two cues on one sentence are score errors."""
    file = str(sc.path)
    layers = [[] for _ in sentences]  # per sentence: overrides from the weakest to the strongest
    by_name = {sp.name: sp for sp in sc.speakers}
    for sp in sc.speakers:
        if not any(s.speaker == sp.name for s in sentences):
            raise score_error(file, f"{sp.where}.name", f"no line of {text_path} begins with the label "
                              f"{sp.name + ':'!r}")
    for s in sentences:
        if s.speaker:
            layers[s.index].append(by_name[s.speaker].overrides)
    for span in sc.spans:
        first = match_one(sentences, span.first, file, f"{span.where}.from", "span start")
        last = match_one(sentences, span.last, file, f"{span.where}.to", "span end")
        if last.index < first.index:
            raise score_error(file, f"{span.where}.to", f"{span.last!r} (line {last.line}) comes before "
                              f"{span.first!r} (line {first.line}); a span runs forward")
        for i in range(first.index, last.index + 1):
            layers[i].append(span.overrides)
    cued = {}
    for cue in sc.cues:
        s = match_one(sentences, cue.match, file, f"{cue.where}.match", "cue")
        if s.index in cued:
            raise score_error(file, f"{cue.where}.match", f"{cue.match!r} names the same sentence as "
                              f"{cued[s.index]}; one cue per sentence")
        cued[s.index] = cue.where
        layers[s.index].append(cue_overrides(cue))
    base = asdict(sc.voice)
    checked = set()
    out = []
    for s, overrides in zip(sentences, layers):
        values = dict(base)
        for o in overrides:
            values.update(_over(values, o))
        voice_key = (values["engine"], values["name"], values["model"])
        if voice_key not in checked:  # the engine a table inherits from the ones under it knows this voice
            checked.add(voice_key)
            if not values["model"]:
                get_engine(values["engine"]).check_voice_name(values["name"], file, f"piece.text: line {s.line}")
        out.append(Direction(s.speaker, values))
    return out


def _over(values: dict, overrides: dict) -> dict:
    """``overrides`` as they apply over ``values``: a table that changes the engine and names no
    voice speaks in that engine's default voice; one that names a voice drops the model under it."""
    out = dict(overrides)
    new_engine = "engine" in out and out["engine"] != values["engine"]
    if new_engine and "name" not in out:
        out["name"] = get_engine(out["engine"]).default_voice
    if (new_engine or "name" in out) and "model" not in out:
        out["model"] = ""
    return out
