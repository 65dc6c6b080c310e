"""The other speaking processes: helpers speak uncached clips into the cache beside this one.

An engine speaks one utterance at a time in a process (espeak-ng does), so two processes on two
cores speak about twice as fast. Each job names its engine in its voice settings. An engine that
speaks only out of process (Piper: see ``audio.speech.piper``) has all its clips spoken by worker
helpers, one for a short text, two for a long one, and a worker kept open speaks any single
utterance this process asks of it (``speaker()``).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
from dataclasses import asdict
from pathlib import Path

import numpy as np

from audio.errors import PieceError, TTSError
from audio.speech.cache import ClipCache
from audio.speech.clip import Clip, speakable
from audio.speech.engine import VoiceSettings, get_engine

log = logging.getLogger(__name__)

PARALLEL_MIN_CLIPS = 64  # fewer are spoken here: a helper takes about a second to start (44 clips: 1.2 s alone)
TWO_WORKERS_MIN_CHARS = 600  # an out-of-process engine's clips go to two workers from this much text
_DONE = "piece-helper-spoke "  # the helper's result lines (anything else on its stdout is chatter)


def prefetch(cache: ClipCache, requests: list[tuple[str, VoiceSettings]], progress=None) -> set[int]:
    """Speak the clips of ``requests`` that are not in ``cache`` yet: an out-of-process engine's in
    worker helpers, and of the others every other one in a helper once there are
    PARALLEL_MIN_CLIPS. Best effort: a clip a helper could not speak is not cached, and
    ``cache.get`` speaks it again and reports any error where it belongs. ``progress(1)`` follows
    each clip. Returns the indices of the requests it spoke."""
    todo, seen = [], set()
    for i, (text, settings) in enumerate(requests):
        if (text, settings) not in seen and speakable(text) and not cache.path(text, settings).exists():
            seen.add((text, settings))
            todo.append(i)
    away = [i for i in todo if get_engine(requests[i][1].engine).out_of_process]
    here = [i for i in todo if not get_engine(requests[i][1].engine).out_of_process]
    if not away and len(here) < PARALLEL_MIN_CLIPS:
        return set()
    groups = [(g, True) for g in _halves(away, requests) if g]
    mine = here
    if len(here) >= PARALLEL_MIN_CLIPS:
        groups.append((here[1::2], False))
        mine = here[0::2]
    helpers = [(_start(cache.folder, [requests[i] for i in g], worker), g) for g, worker in groups]
    done = 0
    try:
        for i in mine:
            with contextlib.suppress(TTSError):
                cache.get(*requests[i])
            if progress:
                progress(1)
        for helper, _ in helpers:
            done += _results(helper, progress)
    finally:
        for helper, _ in helpers:
            _stop(helper)
    cache.synthesized += done
    return set(mine).union(*(g for helper, g in helpers if helper is not None))


def _halves(indices: list[int], requests) -> list[list[int]]:
    """A short text whole, a long one in two halves of about equal length, each in text order."""
    chars = [len(requests[i][0]) for i in indices]
    if sum(chars) < TWO_WORKERS_MIN_CHARS:
        return [indices]
    halves, load = ([], []), [0, 0]
    for i, n in zip(indices, chars):
        k = int(load[1] < load[0])
        halves[k].append(i)
        load[k] += n
    return list(halves)


def _stop(helper):
    """Stop a helper that is still running (interrupted), and let it clean up."""
    if helper is not None and helper.poll() is None:
        helper.terminate()
        try:
            helper.wait(timeout=5)
        except subprocess.TimeoutExpired:
            helper.kill()
            helper.wait()


def _start(folder: Path, jobs: list[tuple[str, VoiceSettings]], worker=False):
    """A helper process speaking ``jobs`` into the cache at ``folder`` (a worker for an
    out-of-process engine if ``worker``); None if it cannot start."""
    lines = "".join(json.dumps({"folder": str(folder), "text": text, "voice": asdict(settings)}) + "\n"
                    for text, settings in jobs)
    helper = _spawn(worker)
    if helper is not None:
        threading.Thread(target=_feed, args=(helper.stdin, lines), daemon=True).start()
    return helper


def _spawn(worker: bool):
    package_root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")])),
           "OMP_NUM_THREADS": "1"}
    try:
        return subprocess.Popen([sys.executable, "-c", f"from audio.speech.helper import main; main(worker={worker})"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                text=True, encoding="utf-8", env=env)
    except OSError as e:
        log.info("could not start another speaking process (%s): speaking one clip at a time", e)
        return None


def _feed(pipe, text: str):
    with contextlib.suppress(OSError, ValueError):  # the helper died: its clips are spoken here instead
        pipe.write(text)
        pipe.close()


def _results(helper, progress=None) -> int:
    """Wait for the helper; the number of clips it spoke into the cache. ``progress(1)`` follows
    each clip it reports."""
    if helper is None:
        return 0
    spoke = 0
    for line in helper.stdout:  # to the end: the helper exits after its last job
        if line.startswith(_DONE):
            spoke += line[len(_DONE):].startswith("1")
            if progress:
                progress(1)
    helper.stdout.close()
    helper.wait()
    return spoke


class Speaker:
    """A worker process kept open to speak single utterances for this process, for an engine
    that cannot speak here."""

    def __init__(self):
        self.process = None
        self.lock = threading.Lock()

    def speak(self, text: str, settings: VoiceSettings) -> Clip:
        fd, out = tempfile.mkstemp(suffix=".npz", prefix="piece-clip-")
        os.close(fd)
        try:
            self._ask({"out": out, "text": text, "voice": asdict(settings)}, f"speaking {text!r}", settings)
            with np.load(out, allow_pickle=False) as data:
                return Clip(data["samples"], int(data["rate_hz"]),
                            tuple(zip(data["words"].tolist(), data["starts"].tolist())))
        finally:
            with contextlib.suppress(OSError):
                os.unlink(out)

    def phonemes(self, text: str, settings: VoiceSettings) -> str:
        job = {"phonemes": True, "text": text, "voice": asdict(settings)}
        return json.loads(self._ask(job, f"phonemizing {text!r}", settings))

    def _ask(self, job: dict, doing: str, settings: VoiceSettings) -> str:
        """Hand ``job`` to the worker; what its result line carries after "1 " (or a TTSError)."""
        with self.lock:
            if self.process is None or self.process.poll() is not None:
                self.process = _spawn(worker=True)
                if self.process is None:
                    raise TTSError(f"could not start a process for {doing} with the {settings.engine} engine")
            try:
                self.process.stdin.write(json.dumps(job) + "\n")
                self.process.stdin.flush()
                line = next((x for x in self.process.stdout if x.startswith(_DONE)), "")
            except OSError:
                line = ""
            if not line:
                self.process = None
                raise TTSError(f"the {settings.engine} engine's process stopped while {doing}")
            if not line[len(_DONE):].startswith("1"):
                raise TTSError(json.loads(line[len(_DONE) + 2:]))
            return line[len(_DONE) + 2:].strip()

    def close(self):
        if self.process is not None:
            with contextlib.suppress(OSError):
                self.process.stdin.close()
            _stop(self.process)
            self.process = None


_speaker = None


def speaker() -> Speaker:
    """This process's kept-open worker (started on first use, stopped at exit)."""
    global _speaker
    if _speaker is None:
        _speaker = Speaker()
        atexit.register(_speaker.close)
    return _speaker


def main(worker=False):
    """A helper process: speak each job read from stdin (JSON lines) into its cache folder, or
    (a job with ``out``) into that file as it was spoken. A ``worker`` runs the out-of-process
    engines itself, and must be given no job of another engine."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group: the parent handles it
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # and so does a closed terminal's SIGHUP
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # the parent stops it: clean up on the way out
    if worker:
        from audio.speech import piper
        piper.speak_here()
    for line in sys.stdin:
        job = json.loads(line)
        if worker and "folder" in job:
            from audio.speech import piper_voice
            piper_voice.keep_models_in(Path(job["folder"]) / "models")
        settings = VoiceSettings(**job["voice"])
        try:
            if job.get("phonemes"):
                said = get_engine(settings.engine).phonemes(job["text"], settings)
                sys.stdout.write(f"{_DONE}1 {json.dumps(said)}\n")
                sys.stdout.flush()
                continue
            if "out" in job:
                clip = get_engine(settings.engine).speak(job["text"], settings)
                np.savez(job["out"], samples=clip.samples.astype(np.float32), rate_hz=clip.rate_hz,
                         words=np.array([w for w, _ in clip.words], dtype=str),
                         starts=np.array([pos for _, pos in clip.words], dtype=np.int64))
            else:
                ClipCache(Path(job["folder"])).get(job["text"], settings)
            result = "1"
        except PieceError as e:
            result = "0 " + json.dumps(str(e))
        sys.stdout.write(f"{_DONE}{result}\n")
        sys.stdout.flush()
