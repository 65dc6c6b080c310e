"""Speech: one clip per sentence through pyttsx3's espeak driver, checked and cached on disk.

espeak-ng comes from the ``espeakng-loader`` wheel: its library is preloaded globally and its data
path exported before pyttsx3 is imported, so the driver's ``LoadLibrary("libespeak-ng.so.1")``
finds it by soname and no system package is needed.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import difflib
import gc
import hashlib
import io
import json
import logging
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import wave
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from math import gcd
from pathlib import Path

import numpy as np
from scipy.signal import resample_poly

from audio.errors import RenderError, TTSError, score_error

log = logging.getLogger(__name__)

ENGINE_RATE_HZ = 22050  # pyttsx3's espeak driver writes mono 16-bit at this rate, hard-coded
CACHE_FORMAT = 2
CHUNK_CHARS = 120  # a sentence that fails whole is spoken in clause chunks of at most this length
CHUNK_GAP_S = 0.12  # silence between the chunks of a split sentence, about a comma's pause
SILENCE_THRESHOLD = 10 ** (-50 / 20)  # a clip's leading and trailing samples below −50 dBFS are trimmed
ONSET_MARGIN_S = 0.005


@dataclass(frozen=True)
class VoiceSettings:
    name: str
    rate: int
    pitch: int
    volume: float

    def describe(self):
        return f"voice {self.name!r} at {self.rate} wpm, pitch {self.pitch}, volume {self.volume:g}"


@dataclass(frozen=True)
class Clip:
    """A spoken sentence: mono samples at ENGINE_RATE_HZ and where each word starts in them."""

    samples: np.ndarray
    words: tuple = ()  # ((word, start_sample), ...) in order

    def trimmed(self) -> Clip:
        """The clip without leading and trailing silence, word positions moved along."""
        start, end = trim_bounds(self.samples)
        words = tuple((w, min(max(0, pos - start), max(0, end - start - 1))) for w, pos in self.words)
        return Clip(self.samples[start:end], words)

    def word_times(self, rate_hz: int = ENGINE_RATE_HZ) -> list[tuple[str, float, float]]:
        """(word, start_s, end_s) relative to the clip's start; a word ends where the next begins."""
        ends = [pos for _, pos in self.words[1:]] + [self.samples.size]
        return [(w, pos / ENGINE_RATE_HZ, end / ENGINE_RATE_HZ) for (w, pos), end in zip(self.words, ends)]


@lru_cache(maxsize=1)
def _espeak():
    """Load espeak-ng from espeakng-loader and return pyttsx3's low-level binding, once per process."""
    try:
        import espeakng_loader
    except ImportError:
        raise RenderError("espeak-ng is missing: install the Python package espeakng-loader "
                          "(pip install espeakng-loader)") from None
    ctypes.CDLL(espeakng_loader.get_library_path(), mode=ctypes.RTLD_GLOBAL)
    data_path = espeakng_loader.get_data_path()
    if len(data_path.encode()) >= 160:
        raise RenderError(f"espeak-ng's data path is {len(data_path.encode())} bytes long; espeak-ng "
                          f"accepts at most 159: install into a shorter path ({data_path})")
    os.environ["ESPEAK_DATA_PATH"] = data_path
    with contextlib.redirect_stdout(io.StringIO()):
        import pyttsx3
        engine = pyttsx3.init("espeak")
    from pyttsx3.drivers import _espeak as binding
    driver = engine.proxy._driver

    def on_synth(wav, n_samples, events):
        """Note each word's sample position (espeak-ng reports it exactly), then let pyttsx3 work."""
        i = 0
        while events[i].type != binding.EVENT_LIST_TERMINATED:
            if events[i].type == binding.EVENT_WORD:
                _word_events.append((events[i].text_position, events[i].length, events[i].sample))
            i += 1
        return driver._onSynth(wav, n_samples, events)

    binding.SetSynthCallback(on_synth)
    atexit.register(_release_engine)
    return engine, binding, data_path


_word_events: list = []  # (1-based character position, length, sample) of the utterance being spoken


def _release_engine():
    """Let pyttsx3 tear its engine down while the interpreter is still whole (else its __del__ fails)."""
    _espeak.cache_clear()
    gc.collect()


def engine_version() -> str:
    _, binding, _ = _espeak()
    info = binding.Info(None)
    return info.decode() if isinstance(info, bytes) else str(info)


@lru_cache(maxsize=1)
def list_voices() -> list[dict]:
    """Every espeak-ng voice: id, name, language codes, gender."""
    _, binding, _ = _espeak()
    out = []
    for v in binding.ListVoices(None):
        langs = []
        raw = v.languages or b""
        i = 0
        while i < len(raw) and raw[i] != 0:  # priority byte, then a NUL-terminated language name
            end = raw.index(b"\0", i + 1) if b"\0" in raw[i + 1:] else len(raw)
            langs.append(raw[i + 1:end].decode("utf-8", "replace"))
            i = end + 1
        out.append({"id": v.identifier.decode().lower(), "name": v.name.decode(),
                    "languages": langs, "gender": [None, "male", "female"][v.gender] if v.gender < 3 else None})
    return out


@lru_cache(maxsize=1)
def list_variants() -> list[str]:
    _, _, data_path = _espeak()
    folder = Path(data_path) / "voices" / "!v"
    return sorted(p.name for p in folder.iterdir() if p.is_file())


def _voice_keys():
    keys = set()
    for v in list_voices():
        keys.add(v["id"])
        keys.add(v["id"].split("/")[-1])
        keys.add(v["name"].lower())
        keys.update(lang.lower() for lang in v["languages"])
    return keys


def check_voice_name(name: str, file="", where="voice.name") -> str:
    """Raise a ScoreError unless ``name`` ("en-us", "gmw/en-us", "en-us+whisper") is a known voice."""
    base, _, variant = name.partition("+")
    keys = _voice_keys()
    if base.lower() not in keys:
        close = difflib.get_close_matches(base.lower(), sorted(keys), n=3, cutoff=0.5)
        hint = f"; nearest: {', '.join(close)}" if close else ""
        raise score_error(file, where, f"unknown voice {name!r}{hint} (see `piece voices`)")
    if variant and variant not in list_variants():
        close = difflib.get_close_matches(variant, list_variants(), n=3, cutoff=0.5)
        hint = f"; nearest: {', '.join(close)}" if close else ""
        raise score_error(file, where, f"unknown voice variant {variant!r} in {name!r}{hint} "
                          "(see `piece voices --variants`)")
    return name


def default_cache_dir() -> Path:
    env = os.environ.get("PIECE_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "piece"


@lru_cache(maxsize=1)
def engine_id() -> str:
    """What makes clips differ besides text and settings: engine versions and the cache format."""
    from importlib.metadata import version
    return f"espeak-ng {engine_version()}, pyttsx3 {version('pyttsx3')}, cache format {CACHE_FORMAT}"


def _cache_key(text: str, settings: VoiceSettings) -> str:
    blob = json.dumps({"text": text, "voice": settings.name, "rate": settings.rate, "pitch": settings.pitch,
                       "volume": settings.volume, "engine": engine_id()}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def _read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as w:
        if w.getsampwidth() != 2 or w.getnchannels() != 1:
            raise RenderError(f"{path}: expected mono 16-bit speech, got {w.getnchannels()} channels, "
                              f"{8 * w.getsampwidth()}-bit")
        data = w.readframes(w.getnframes())
    return np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0


def _synthesize_once(text: str, settings: VoiceSettings) -> Clip | None:
    """One pass through pyttsx3; None when the driver wrote no file (a known pyttsx3 2.99 failure)."""
    engine, binding, _ = _espeak()
    fd, tmp = tempfile.mkstemp(suffix=".wav", prefix="piece-tts-")
    os.close(fd)
    os.unlink(tmp)
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # the driver prints "Audio saved to …"
            try:
                engine.setProperty("voice", settings.name)
                engine.setProperty("rate", settings.rate)
                engine.setProperty("pitch", settings.pitch)
                engine.setProperty("volume", settings.volume)
                binding.Synchronize()  # espeak-ng applies settings on its own thread: let it finish
                _word_events.clear()
                engine.save_to_file(text, tmp)
                engine.runAndWait()
            finally:
                binding.Synchronize()  # its file is complete (or, interrupted, done with) before it goes
        if not os.path.exists(tmp) or os.path.getsize(tmp) <= 44:
            return None
        words = tuple((text[pos - 1: pos - 1 + length], sample) for pos, length, sample in _word_events)
        return Clip(_read_wav(Path(tmp)), words)
    except (ValueError, RuntimeError) as e:
        raise TTSError(f"espeak-ng failed on {text!r} with {settings.describe()}: {e}") from None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def speakable(text: str) -> bool:
    """Whether a text has anything to say (letters or digits)."""
    return any(ch.isalnum() for ch in text)


def plausible(clip: Clip | None, text: str, rate_wpm: int) -> bool:
    """A clip is plausible when its voiced length fits its word count at the asked rate."""
    if clip is None or clip.samples.size == 0:
        return False
    voiced = trim_bounds(clip.samples)
    duration_s = (voiced[1] - voiced[0]) / ENGINE_RATE_HZ
    words = max(1, len(text.split()))
    expected_s = words * 60.0 / rate_wpm
    # too short means words were lost; far too long means the engine ran away. Spelling out letters
    # of a script the voice does not read (Arabic with an English voice) is slow but not lost.
    return 0.3 * expected_s - 0.3 <= duration_s <= 10.0 * expected_s + 5.0


CONJUNCTIONS = frozenset("and or but nor so yet because which that when where while who whom whose if than".split())


def split_clauses(text: str, limit=CHUNK_CHARS) -> list[str]:
    """Split a long sentence into chunks of at most ``limit`` characters where a speaker would breathe.

    First at clause marks (, ; : — –); a clause still too long is halved before the conjunction
    nearest its middle ("… emoji sequence | or someone asks …"), else at the space nearest it.
    """
    clauses = [p.strip() for p in re.split(r"(?<=[,;:—–])\s*", text) if p.strip()]
    chunks, current = [], ""
    for clause in clauses:
        for part in _halve(clause, limit):
            joined = f"{current} {part}".strip()
            if current and len(joined) > limit:
                chunks.append(current)
                current = part
            else:
                current = joined
    if current:
        chunks.append(current)
    return chunks


def _halve(clause: str, limit: int) -> list[str]:
    words = clause.split()
    if len(clause) <= limit or len(words) < 2:
        return [clause]
    middle = len(clause) / 2
    starts = [len(" ".join(words[:i])) for i in range(1, len(words))]  # char offset of each split
    candidates = [i for i in range(1, len(words)) if words[i].lower() in CONJUNCTIONS] or list(range(1, len(words)))
    cut = min(candidates, key=lambda i: abs(starts[i - 1] - middle))
    return _halve(" ".join(words[:cut]), limit) + _halve(" ".join(words[cut:]), limit)


def synthesize(text: str, settings: VoiceSettings) -> Clip:
    """Speak a sentence in full; if the whole fails the check, speak it in clause chunks and join."""
    clip = _synthesize_once(text, settings)
    if plausible(clip, text, settings.rate):
        return clip
    chunks = split_clauses(text)
    if len(chunks) <= 1 and len(text.split()) <= 1:
        got = "no audio" if clip is None else f"{clip.samples.size / ENGINE_RATE_HZ:.2f} s of audio"
        raise TTSError(f"espeak-ng could not speak {text!r} with {settings.describe()}: got {got}")
    if len(chunks) <= 1:
        chunks = split_clauses(text, limit=max(1, len(text) // 2))
    gap = np.zeros(int(CHUNK_GAP_S * ENGINE_RATE_HZ), np.float32)
    parts, words, offset = [], [], 0
    for chunk in chunks:
        part = synthesize(chunk, settings).trimmed()
        words += [(w, offset + pos) for w, pos in part.words]
        parts.extend([part.samples, gap])
        offset += part.samples.size + gap.size
    log.info("spoke %r in %d chunks after the whole sentence failed the length check", text[:60], len(chunks))
    return Clip(np.concatenate(parts[:-1]), tuple(words))


def trim_bounds(samples: np.ndarray) -> tuple[int, int]:
    """First and one-past-last sample above the silence threshold, with a few ms of margin."""
    loud = np.flatnonzero(np.abs(samples) > SILENCE_THRESHOLD)
    if loud.size == 0:
        return 0, 0
    margin = int(ONSET_MARGIN_S * ENGINE_RATE_HZ)
    return max(0, int(loud[0]) - margin), min(samples.size, int(loud[-1]) + 1 + 4 * margin)


class ClipCache:
    """Speech clips on disk, keyed by text, voice settings and engine version.

    An entry is a NumPy ``.npz`` (samples as 16-bit, words and their positions, and a SHA-256 of
    them), written atomically; a damaged or truncated entry fails its checksum and is synthesized
    again, with a warning.
    """

    def __init__(self, folder: Path | None = None):
        self.folder = Path(folder) if folder else default_cache_dir() / "tts"
        self.synthesized = 0
        self.hits = 0
        self.voiced_made = 0  # clips put through their effects (not found in the cache)
        self.voiced_hits = 0

    def path(self, text: str, settings: VoiceSettings) -> Path:
        key = _cache_key(text, settings)
        return self.folder / key[:2] / f"{key}.npz"

    def get(self, text: str, settings: VoiceSettings) -> Clip:
        """The clip of a sentence, trimmed of silence, at the engine rate; synthesized if not cached."""
        if not speakable(text):
            return Clip(np.zeros(0, np.float32))
        path = self.path(text, settings)
        clip = None
        if path.exists():
            try:
                clip = _read_entry(path)
                self.hits += 1
            except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as e:
                log.warning("speech cache entry %s is damaged (%s): synthesizing it again", path, e)
        if clip is None:
            clip = synthesize(text, settings)
            self.synthesized += 1
            try:
                _write_entry(path, clip)
            except OSError as e:
                log.warning("could not write speech cache entry %s: %s", path, e)
        return clip.trimmed()


    def prefetch(self, requests: list[tuple[str, VoiceSettings]], progress=None) -> set[int]:
        """Speak the clips of ``requests`` that are not cached yet, every other one in a helper
        process: espeak-ng speaks one utterance at a time in a process, so two cores speak about
        twice as fast. Best effort: a clip the helper could not speak is not cached, and ``get``
        speaks it again and reports any error where it belongs. ``progress(1)`` follows each clip.
        Returns the indices of the requests it spoke (none for fewer than PARALLEL_MIN_CLIPS)."""
        todo, seen = [], set()
        for i, (text, settings) in enumerate(requests):
            if (text, settings) not in seen and speakable(text) and not self.path(text, settings).exists():
                seen.add((text, settings))
                todo.append(i)
        if len(todo) < PARALLEL_MIN_CLIPS:
            return set()
        theirs, mine = todo[1::2], todo[0::2]
        helper = _start_helper(self.folder, [requests[i] for i in theirs])
        try:
            for i in mine:
                with contextlib.suppress(TTSError):
                    self.get(*requests[i])
                if progress:
                    progress(1)
            done = _helper_results(helper)
        finally:
            if helper is not None and helper.poll() is None:  # interrupted: stop it, and let it clean up
                helper.terminate()
                try:
                    helper.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    helper.kill()
                    helper.wait()
        self.synthesized += done
        if progress:
            progress(len(theirs))
        return set(todo)

    def voiced(self, key: str, make) -> np.ndarray:
        """A clip as the mixer plays it (gained, through its effects: float32, (n, channels)), cached
        under ``key``, a digest of everything that made it; ``make()`` makes it when not cached. So
        an edit puts only the clips it changed through their effects again.

        Entries are renamed into place but not flushed to disk: a torn one fails its checksum and
        is made again, with a warning.
        """
        path = self.folder / "voiced" / key[:2] / f"{key}.npz"
        if path.exists():
            try:
                x = _read_voiced(path)
                self.voiced_hits += 1
                return x
            except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as e:
                log.warning("voiced clip cache entry %s is damaged (%s): making it again", path, e)
        x = np.ascontiguousarray(make(), dtype=np.float32)
        self.voiced_made += 1
        try:
            _write_voiced(path, x)
        except OSError as e:
            log.warning("could not write voiced clip cache entry %s: %s", path, e)
        return x


PARALLEL_MIN_CLIPS = 64  # fewer are spoken here: a helper takes about a second to start (44 clips: 1.2 s alone)
_HELPER_DONE = "piece-helper-spoke "  # the helper's result lines (anything else on its stdout is chatter)


def _start_helper(folder: Path, jobs: list[tuple[str, VoiceSettings]]):
    """A helper process speaking ``jobs`` into the cache at ``folder``; None if it cannot start."""
    package_root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))}
    lines = "".join(json.dumps({"folder": str(folder), "text": text, "voice": vars(settings)}) + "\n"
                    for text, settings in jobs)
    try:
        helper = subprocess.Popen([sys.executable, "-c", "from audio.voice import _helper_main; _helper_main()"],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                  text=True, encoding="utf-8", env=env)
    except OSError as e:
        log.info("could not start a second speaking process (%s): speaking one clip at a time", e)
        return None
    threading.Thread(target=_feed, args=(helper.stdin, lines), daemon=True).start()
    return helper


def _feed(pipe, text: str):
    with contextlib.suppress(OSError, ValueError):  # the helper died: its clips are spoken here instead
        pipe.write(text)
        pipe.close()


def _helper_results(helper) -> int:
    """Wait for the helper; the number of clips it spoke into the cache."""
    if helper is None:
        return 0
    out = helper.stdout.read()  # to the end: the helper exits after its last job
    helper.stdout.close()
    helper.wait()
    return sum(line.startswith(_HELPER_DONE) and line.strip().endswith("1") for line in out.splitlines())


def _helper_main():
    """The helper process: speak each job read from stdin (JSON lines) into its cache folder."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group: the parent handles it
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # the parent stops it: clean up on the way out
    for line in sys.stdin:
        job = json.loads(line)
        try:
            ClipCache(Path(job["folder"])).get(job["text"], VoiceSettings(**job["voice"]))
            ok = 1
        except TTSError:
            ok = 0
        sys.stdout.write(f"{_HELPER_DONE}{ok}\n")
        sys.stdout.flush()


def _read_voiced(path: Path) -> np.ndarray:
    with open(path, "rb") as f, np.load(f, allow_pickle=False) as data:
        x, digest = data["x"], str(data["digest"])
    if x.dtype != np.float32 or x.ndim != 2 or hashlib.sha256(x.tobytes()).hexdigest() != digest:
        raise ValueError("checksum mismatch")
    return x


def _write_voiced(path: Path, x: np.ndarray):
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, x=x, digest=np.array(hashlib.sha256(x.tobytes()).hexdigest()))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _digest(pcm: np.ndarray, words: np.ndarray, starts: np.ndarray) -> str:
    h = hashlib.sha256(pcm.tobytes())
    h.update("\0".join(words.tolist()).encode())
    h.update(starts.tobytes())
    return h.hexdigest()


def _read_entry(path: Path) -> Clip:
    with open(path, "rb") as f, np.load(f, allow_pickle=False) as data:  # np.load leaks the file on a bad zip
        pcm, words, starts, digest = data["pcm"], data["words"], data["starts"], str(data["digest"])
    if _digest(pcm, words, starts) != digest:
        raise ValueError("checksum mismatch")
    return Clip(pcm.astype(np.float32) / 32768.0, tuple(zip(words.tolist(), starts.tolist())))


def _write_entry(path: Path, clip: Clip):
    path.parent.mkdir(parents=True, exist_ok=True)
    pcm = np.clip(np.round(clip.samples * 32768.0), -32768, 32767).astype("<i2")
    words = np.array([w for w, _ in clip.words], dtype=str)
    starts = np.array([pos for _, pos in clip.words], dtype=np.int64)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, pcm=pcm, words=words, starts=starts, digest=np.array(_digest(pcm, words, starts)))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def resample(samples: np.ndarray, rate_hz: int) -> np.ndarray:
    """Resample a clip from the engine rate to the piece's rate (polyphase, exact ratio)."""
    if rate_hz == ENGINE_RATE_HZ or samples.size == 0:
        return samples.astype(np.float32)
    g = gcd(rate_hz, ENGINE_RATE_HZ)
    return resample_poly(samples, rate_hz // g, ENGINE_RATE_HZ // g).astype(np.float32)
