"""Pieces to start from: a commented starter score and text (`piece new NAME`), and the seed pieces
shipped with the package (`piece new --example NAME`)."""

from __future__ import annotations

import re
import tomllib
from importlib import resources
from pathlib import Path

from audio.errors import PieceError
from audio.files import staging
from audio.schema import suggest

TEXT_KEY = re.compile(r'^text\s*=\s*"[^"\n]*"', re.M)  # [piece].text, the one key named so at a line start


def _here():
    return resources.files(__name__)


def names() -> list[str]:
    """The seed pieces, by score name."""
    return sorted(p.name.removesuffix(".toml") for p in (_here() / "scores").iterdir() if p.name.endswith(".toml"))


def find(example: str) -> str:
    """The seed piece ``example`` names: its score name, or that without its leading "the-"."""
    for name in names():
        if example in (name, name.removeprefix("the-")):
            return name
    known = names() + [name.removeprefix("the-") for name in names()]
    raise PieceError(f"no example piece {example!r}{suggest(example, known)} (examples: {', '.join(names())})")


def write_new(name: str, folder: Path, example: str | None = None) -> list[Path]:
    """Write ``NAME.toml`` and ``NAME.txt`` into ``folder``: the starter, or a seed piece's score
    (pointed at its text beside it) and text. Existing files are never overwritten."""
    stem = staging.safe_name(name, "piece")
    score_path, text_path = folder / f"{stem}.toml", folder / f"{stem}.txt"
    for path in (score_path, text_path):
        if path.exists():
            raise PieceError(f"{path} already exists; choose another name, or move it away first")
    if example is None:
        title = re.sub(r"[-_]+", " ", stem).strip().title() or "Untitled"
        score = (_here() / "new.toml").read_text(encoding="utf-8").replace("NAME", stem).replace("TITLE", title)
        text = (_here() / "new.txt").read_text(encoding="utf-8").replace("TITLE", title)
    else:
        original = (_here() / "scores" / f"{find(example)}.toml").read_text(encoding="utf-8")
        text_name = Path(tomllib.loads(original)["piece"]["text"]).name
        score = TEXT_KEY.sub(f'text = "{stem}.txt"', original, count=1)
        text = (_here() / "seeds" / text_name).read_text(encoding="utf-8")
    folder.mkdir(parents=True, exist_ok=True)
    staging.write_text(text_path, text)
    staging.write_text(score_path, score)
    return [score_path, text_path]
