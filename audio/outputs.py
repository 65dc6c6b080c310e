"""What a render will write, named before any audio work, and the checks on those names.

No output may replace a file the score reads (its text, cover, samples, voice models), no two
outputs may share a file name, and a folder in the place of an output stops the render before
it starts rather than at the final renames.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

from audio.errors import RenderError, score_error
from audio.files.staging import safe_name

CAPTION_SUFFIXES = (".srt", ".vtt", ".transcript.json", ".chapters.json")
VOICE_STEM = "voice"  # the voice's stem (and its name in the audibility report): no layer may clean to it
PICTURE_SOURCES = ("wav", "flac")  # --picture draws from the written file: one of these must be among the formats


def can_draw_picture(formats) -> bool:
    """Whether a render writing ``formats`` has a file to draw its picture from."""
    return bool(set(PICTURE_SOURCES) & set(formats))


def stem_path(out_dir: Path, name: str, part: str) -> Path:
    """The stem file of ``part`` (the voice, or a layer's name) of piece ``name``."""
    return Path(out_dir) / f"{name}.stem-{safe_name(part, 'layer')}.wav"


def planned(out_dir: Path, name: str, formats, layer_names=(), preview=False, stems=False,
            picture=False) -> list[Path]:
    """Every file a render of piece ``name`` writes into ``out_dir``."""
    from audio.export import FORMATS
    stem = f"{name}.preview" if preview else name
    paths = [Path(out_dir) / f"{stem}{FORMATS[fmt].suffix}" for fmt in formats]
    if preview:
        return paths
    if stems:
        paths += [stem_path(out_dir, name, part) for part in (VOICE_STEM, *layer_names)]
    paths += [Path(out_dir) / f"{name}{suffix}" for suffix in (*CAPTION_SUFFIXES, ".json")]
    if picture:
        paths.append(Path(out_dir) / f"{name}.png")
    return paths


def check_layer_names(layers, file: str):
    """No layer may be written as the voice's stem: ``layers`` is (key path, name) pairs."""
    for where, name in layers:
        if safe_name(name, "layer").lower() == VOICE_STEM:
            raise score_error(file, f"{where}.name", f"{name!r} is the voice's own name (its stem "
                              f"NAME.stem-voice.wav, and in the audibility report); give the layer another name")


def check_stem_names(layers, file: str):
    """Each layer's stem file name is its own: ``layers`` is (key path, name) pairs. Names that
    differ only in what cleaning replaces ("a b", "a/b") or in case are refused, not renumbered,
    so a stem's file name always says which layer it is."""
    seen = {}
    for where, name in layers:
        cleaned = safe_name(name, "layer")
        first = seen.setdefault(cleaned.lower(), (where, name))
        if first[1] != name:
            raise score_error(file, f"{where}.name", f"{name!r} and {first[1]!r} ({first[0]}) would both be "
                              f"written as the stem NAME.stem-{cleaned}.wav (--stems); give them names that "
                              "differ in letters or digits")


def score_inputs(sc) -> list:
    """(key path, file) for every file a score reads."""
    inputs = [("piece.text", sc.text_path)]
    if sc.piece.cover:
        inputs.append(("piece.cover", sc.piece.cover))
    for layer in sc.layers:
        if isinstance(layer.params.get("path"), str):
            inputs.append((f"{layer.where}.params.path", layer.params["path"]))
    models = [("voice.model", sc.voice.model)] + [(f"{c.where}.model", c.model) for c in sc.cues]
    models += [(f"{t.where}.model", t.overrides.get("model")) for t in (*sc.speakers, *sc.spans)]
    for where, model in models:
        if isinstance(model, str) and model:
            inputs += [(where, model), (where, model + ".json")]
    return inputs


def plan_inputs(plan) -> list:
    """(key path in the manifest, file) for every file rendering a recorded plan reads."""
    inputs = [("tags.cover", plan.tags.cover)] if plan.tags.cover else []
    for i, layer in enumerate(plan.layers):
        if isinstance(layer.params.get("path"), str):
            inputs.append((f"layers[{i}].params.path", layer.params["path"]))
    for cue in plan.cues:
        model = cue.voice.get("model") if isinstance(cue.voice, dict) else None
        if isinstance(model, str) and model:
            inputs += [(f"cues[{cue.index}].voice.model", model), (f"cues[{cue.index}].voice.model", model + ".json")]
    return inputs


def check(paths: list, inputs: list, file: str):
    """Refuse, before any audio work, outputs that would replace one of ``inputs`` ((key path,
    file) pairs, as ``score_inputs`` gives) or that a folder stands in the way of."""
    for out in paths:
        for where, given in inputs:
            if _replaces(out, Path(given)):
                raise score_error(file, where, f"the output {out} would replace {given}, which the piece reads; "
                                  "render into another folder (-o) or rename the file")
    for out in paths:
        with contextlib.suppress(OSError):
            if stat.S_ISDIR(os.lstat(out).st_mode):
                raise RenderError(f"{out}: cannot write: a folder is in the way of the output; earlier outputs "
                                  "are left as they were")


def _replaces(out: Path, given: Path) -> bool:
    """Whether renaming a file to ``out`` replaces ``given`` (the file itself, or the link to it
    named there)."""
    try:
        out = out.parent.resolve() / out.name
        named = Path(os.path.abspath(given))
        named = named.parent.resolve() / named.name
        if out in (named, given.resolve()):
            return True
        # a folder that ignores case names one file two ways (a second hard link is another entry,
        # and a link at ``out`` is replaced itself)
        return os.path.samestat(os.lstat(out), os.stat(given)) and os.stat(given).st_nlink == 1
    except (OSError, RuntimeError, ValueError):
        return False
