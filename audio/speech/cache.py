"""Both speech clip caches on disk and their keys: spoken clips (as an engine spoke them) and voiced
clips (gained and through their effects, as the mixer plays them)."""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import os
import zipfile
from dataclasses import replace
from functools import lru_cache
from pathlib import Path

import numpy as np

from audio import __version__
from audio.files import reading, staging
from audio.speech.clip import Clip, speakable, synthesize
from audio.speech.engine import VoiceSettings, get_engine

log = logging.getLogger(__name__)

CACHE_FORMAT = 2  # the layout of a spoken-clip entry; part of every spoken-clip key
DAMAGED = (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError)  # what reading a bad entry raises


def default_cache_dir() -> Path:
    env = os.environ.get("PIECE_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "piece"


def spoken_key(text: str, settings: VoiceSettings) -> str:
    """A digest of the text, the voice settings and what else makes the engine's clips differ."""
    engine = get_engine(settings.engine)
    blob = json.dumps({"text": text, "voice": settings.name, "rate": settings.rate, "pitch": settings.pitch,
                       "volume": settings.volume,
                       "engine": f"{engine.voice_version(settings)}, cache format {CACHE_FORMAT}"}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def voiced_key(clip: Clip, recipe: dict, made_by: tuple) -> str:
    """A digest of everything that makes a voiced clip: the spoken clip, ``recipe`` (what is done to
    it, as JSON) and the code in ``made_by`` (modules and functions, by their source)."""
    h = hashlib.sha256(np.ascontiguousarray(clip.samples, dtype=np.float32).tobytes())
    h.update(json.dumps({"clip_rate_hz": clip.rate_hz, **recipe}, sort_keys=True).encode())
    h.update(_code_digest(made_by))
    return h.hexdigest()


@lru_cache(maxsize=None)
def _code_digest(made_by: tuple) -> bytes:
    """The source of ``made_by`` with the numpy and scipy versions, read once: a cached clip made by
    other code is never taken for one this code would make."""
    import scipy
    h = hashlib.sha256(f"numpy {np.__version__} scipy {scipy.__version__}".encode())
    for code in made_by:
        try:
            h.update(inspect.getsource(code).encode())
        except OSError:  # no source to read: the package's version stands in
            h.update(__version__.encode())
    return h.digest()


class ClipCache:
    """Speech clips on disk: spoken ones keyed by text, voice settings and engine version; voiced
    ones keyed by ``voiced_key``.

    An entry is a NumPy ``.npz`` with a SHA-256 of its contents, written atomically; a damaged or
    truncated entry fails its checksum and is made again, with a warning.
    """

    def __init__(self, folder: Path | None = None):
        self.folder = Path(folder) if folder else default_cache_dir() / "tts"
        self.synthesized = 0
        self.hits = 0
        self.voiced_made = 0  # clips put through their effects (not found in the cache)
        self.voiced_hits = 0

    def path(self, text: str, settings: VoiceSettings) -> Path:
        key = spoken_key(text, settings)
        return self.folder / key[:2] / f"{key}.npz"

    def get(self, text: str, settings: VoiceSettings) -> Clip:
        """The clip of a sentence, trimmed of silence, at its engine's rate; spoken if not cached."""
        engine = get_engine(settings.engine)
        if not speakable(text):
            return Clip(np.zeros(0, np.float32), engine.rate_hz(settings))
        path = self.path(text, settings)
        clip = None
        if path.exists():
            try:
                clip = _read_spoken(path, engine.rate_hz(settings))
                self.hits += 1
            except DAMAGED as e:
                log.warning("speech cache entry %s is damaged (%s): synthesizing it again", path, e)
        if clip is None:
            clip = _as_stored(synthesize(engine, text, settings))  # so a warm render plays what a cold one did
            self.synthesized += 1
            try:
                _write_spoken(path, clip)
            except OSError as e:
                log.warning("could not write speech cache entry %s: %s", path, e)
        return clip.trimmed()

    def voiced(self, clip: Clip, recipe: dict, made_by: tuple, make) -> np.ndarray:
        """``clip`` as the mixer plays it (float32, (n, channels)), cached under its ``voiced_key``;
        ``make()`` makes it when not cached. So an edit puts only the clips it changed through their
        effects again.

        Entries are renamed into place but not flushed to disk: a torn one fails its checksum and
        is made again, with a warning.
        """
        key = voiced_key(clip, recipe, made_by)
        path = self.folder / "voiced" / key[:2] / f"{key}.npz"
        if path.exists():
            try:
                x = _read_voiced(path)
                self.voiced_hits += 1
                return x
            except DAMAGED as e:
                log.warning("voiced clip cache entry %s is damaged (%s): making it again", path, e)
        x = np.ascontiguousarray(make(), dtype=np.float32)
        self.voiced_made += 1
        try:
            _write_voiced(path, x)
        except OSError as e:
            log.warning("could not write voiced clip cache entry %s: %s", path, e)
        return x


def _spoken_digest(pcm: np.ndarray, words: np.ndarray, starts: np.ndarray) -> str:
    h = hashlib.sha256(pcm.tobytes())
    h.update("\0".join(words.tolist()).encode())
    h.update(starts.tobytes())
    return h.hexdigest()


def _pcm(samples: np.ndarray) -> np.ndarray:
    """Samples as a spoken-clip entry keeps them: 16-bit."""
    return np.clip(np.round(samples * 32768.0), -32768, 32767).astype("<i2")


def _as_stored(clip: Clip) -> Clip:
    """The clip as its entry will read back (unchanged for an engine that writes 16-bit, as espeak-ng does)."""
    return replace(clip, samples=_pcm(clip.samples).astype(np.float32) / 32768.0)


# An entry's arrays: name → (dtype kind, dimensions); any other file at an entry's path is damaged.
SPOKEN_LAYOUT = {"pcm": ("i", 1), "words": ("U", 1), "starts": ("i", 1), "digest": ("U", 0)}
VOICED_LAYOUT = {"x": ("f", 2), "digest": ("U", 0)}


def _read_entry(path: Path, layout: dict) -> dict:
    """The arrays of a cache entry, each of the kind and dimensions its layout says; ValueError for
    anything else at its path (an .npy, another .npz, an array of another type)."""
    with reading.open_regular(path) as f:  # np.load leaks the file on a bad zip
        data = np.load(f, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise ValueError("not an .npz archive")
        with data:
            arrays = {name: data[name] for name in layout}
    for name, (kind, ndim) in layout.items():
        if arrays[name].dtype.kind != kind or arrays[name].ndim != ndim:
            raise ValueError(f"{name} is not a {ndim}-D array of kind {kind!r}")
    return arrays


def _read_spoken(path: Path, rate_hz: int) -> Clip:
    data = _read_entry(path, SPOKEN_LAYOUT)
    pcm, words, starts, digest = data["pcm"], data["words"], data["starts"], str(data["digest"])
    if _spoken_digest(pcm, words, starts) != digest:
        raise ValueError("checksum mismatch")
    return Clip(pcm.astype(np.float32) / 32768.0, rate_hz, tuple(zip(words.tolist(), starts.tolist())))


def _write_spoken(path: Path, clip: Clip):
    pcm = _pcm(clip.samples)
    words = np.array([w for w, _ in clip.words], dtype=str)
    starts = np.array([pos for _, pos in clip.words], dtype=np.int64)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging.write_with(path, lambda f: np.savez(f, pcm=pcm, words=words, starts=starts,
                                                digest=np.array(_spoken_digest(pcm, words, starts))))


def _read_voiced(path: Path) -> np.ndarray:
    data = _read_entry(path, VOICED_LAYOUT)
    x, digest = data["x"], str(data["digest"])
    if x.dtype != np.float32 or x.ndim != 2 or hashlib.sha256(x.tobytes()).hexdigest() != digest:
        raise ValueError("checksum mismatch")
    return x


def _write_voiced(path: Path, x: np.ndarray):
    path.parent.mkdir(parents=True, exist_ok=True)
    staging.write_with(path, lambda f: np.savez(f, x=x, digest=np.array(hashlib.sha256(x.tobytes()).hexdigest())),
                       fsync=False)  # a torn entry fails its checksum and is made again
