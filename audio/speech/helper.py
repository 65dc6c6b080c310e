"""The second speaking process: a helper speaks every other uncached clip into the cache.

An engine speaks one utterance at a time in a process (espeak-ng does), so two processes on two
cores speak about twice as fast. Each job names its engine in its voice settings.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
from dataclasses import asdict
from pathlib import Path

from audio.errors import TTSError
from audio.speech.cache import ClipCache
from audio.speech.clip import speakable
from audio.speech.engine import VoiceSettings

log = logging.getLogger(__name__)

PARALLEL_MIN_CLIPS = 64  # fewer are spoken here: a helper takes about a second to start (44 clips: 1.2 s alone)
_DONE = "piece-helper-spoke "  # the helper's result lines (anything else on its stdout is chatter)


def prefetch(cache: ClipCache, requests: list[tuple[str, VoiceSettings]], progress=None) -> set[int]:
    """Speak the clips of ``requests`` that are not in ``cache`` yet, every other one in a helper
    process. Best effort: a clip the helper could not speak is not cached, and ``cache.get`` speaks
    it again and reports any error where it belongs. ``progress(1)`` follows each clip.
    Returns the indices of the requests it spoke (none for fewer than PARALLEL_MIN_CLIPS)."""
    todo, seen = [], set()
    for i, (text, settings) in enumerate(requests):
        if (text, settings) not in seen and speakable(text) and not cache.path(text, settings).exists():
            seen.add((text, settings))
            todo.append(i)
    if len(todo) < PARALLEL_MIN_CLIPS:
        return set()
    theirs, mine = todo[1::2], todo[0::2]
    helper = _start(cache.folder, [requests[i] for i in theirs])
    try:
        for i in mine:
            with contextlib.suppress(TTSError):
                cache.get(*requests[i])
            if progress:
                progress(1)
        done = _results(helper)
    finally:
        if helper is not None and helper.poll() is None:  # interrupted: stop it, and let it clean up
            helper.terminate()
            try:
                helper.wait(timeout=5)
            except subprocess.TimeoutExpired:
                helper.kill()
                helper.wait()
    cache.synthesized += done
    if progress:
        progress(len(theirs))
    return set(todo)


def _start(folder: Path, jobs: list[tuple[str, VoiceSettings]]):
    """A helper process speaking ``jobs`` into the cache at ``folder``; None if it cannot start."""
    package_root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))}
    lines = "".join(json.dumps({"folder": str(folder), "text": text, "voice": asdict(settings)}) + "\n"
                    for text, settings in jobs)
    try:
        helper = subprocess.Popen([sys.executable, "-c", "from audio.speech.helper import main; main()"],
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


def _results(helper) -> int:
    """Wait for the helper; the number of clips it spoke into the cache."""
    if helper is None:
        return 0
    out = helper.stdout.read()  # to the end: the helper exits after its last job
    helper.stdout.close()
    helper.wait()
    return sum(line.startswith(_DONE) and line.strip().endswith("1") for line in out.splitlines())


def main():
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
        sys.stdout.write(f"{_DONE}{ok}\n")
        sys.stdout.flush()
