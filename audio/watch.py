"""Watching a score for saves: the files it reads, and their modification times, polled."""

from __future__ import annotations

import time
from pathlib import Path

from audio.errors import PieceError

POLL_S = 0.3  # how often the files are looked at: a save is noticed within this


def files_of(score: Path) -> list[Path]:
    """The score and every file it reads (its text, cover and sample layers' files); the score
    alone when it cannot be read, so a broken score is watched until it is fixed."""
    from audio import score as score_module
    try:
        sc = score_module.load(score)
    except PieceError:
        return [Path(score)]
    samples = [Path(layer.params["path"]) for layer in sc.layers if isinstance(layer.params.get("path"), str)]
    cover = [Path(sc.piece.cover)] if sc.piece.cover else []
    return list(dict.fromkeys([Path(score), sc.text_path, *cover, *samples]))


def stamps(files: list[Path]) -> dict:
    """Each file's modification time and size (None for a file that is not there)."""
    out = {}
    for f in files:
        try:
            st = f.stat()
            out[f] = (st.st_mtime_ns, st.st_size)
        except OSError:
            out[f] = None
    return out


def wait_for_change(files: list[Path], before: dict, poll_s: float = POLL_S):
    """Return once any of ``files`` is saved (or appears, or goes) after ``before`` was taken."""
    while stamps(files) == before:
        time.sleep(poll_s)
