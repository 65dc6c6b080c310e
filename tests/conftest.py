"""Shared test helpers: an independent loudness meter (the bundled ffmpeg's ebur128), small scores."""

from __future__ import annotations

import os
import re
import subprocess
import textwrap
from pathlib import Path

import pytest
from hypothesis import settings

REPO = Path(__file__).resolve().parents[1]

# Property tests run the same examples every time (a test run passes or fails on the code, not on
# luck); HYPOTHESIS_PROFILE=explore draws new ones, to look for bugs.
settings.register_profile("repeatable", derandomize=True, database=None)
settings.register_profile("explore", max_examples=500, database=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))


@pytest.fixture(scope="session", autouse=True)
def clip_cache(tmp_path_factory):
    """One speech cache for the whole run, outside the user's home."""
    folder = tmp_path_factory.mktemp("cache")
    mp = pytest.MonkeyPatch()
    mp.setenv("PIECE_CACHE_DIR", str(folder))
    yield folder
    mp.undo()


def ffmpeg() -> str:
    import imageio_ffmpeg
    return imageio_ffmpeg.get_ffmpeg_exe()


def ebur128(path) -> dict:
    """Integrated loudness (LUFS) and true peak (dBTP) of a file, measured by ffmpeg's ebur128."""
    proc = subprocess.run([ffmpeg(), "-nostats", "-hide_banner", "-i", str(path), "-filter_complex",
                           "ebur128=peak=true", "-f", "null", "-"], capture_output=True, text=True, check=True)
    summary = proc.stderr[proc.stderr.rindex("Summary:"):]
    lufs = float(re.search(r"I:\s+(-?[\d.]+|-inf) LUFS", summary).group(1))
    peak = float(re.search(r"Peak:\s+(-?[\d.]+|-inf) dBFS", summary).group(1))
    return {"lufs": lufs, "dbtp": peak}


def write_score(folder: Path, body: str, text: str, name="piece") -> Path:
    """A score and its text in ``folder``; returns the score path."""
    (folder / f"{name}.txt").write_text(text, encoding="utf-8")
    path = folder / f"{name}.toml"
    path.write_text(textwrap.dedent(body).replace("TEXT", f"{name}.txt"), encoding="utf-8")
    return path
