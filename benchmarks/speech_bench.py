"""The speech rows of the benchmark: each engine's cold synthesis speed, a Piper render's memory,
and how well an offline recogniser understands each engine's voice stem.

Piece 1 is spoken by espeak-ng (``scores/the-permanent-thing.toml``) and by Piper
(``scores/examples/the-permanent-thing.neural.toml``, the same piece re-timed for the joe voice).
The recogniser is pocketsphinx with its own US English model (``pip install pocketsphinx``: the
benchmark's extra, never needed to render).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCORES = {"espeak": REPO / "scores" / "the-permanent-thing.toml",
          "piper": REPO / "scores" / "examples" / "the-permanent-thing.neural.toml"}
FLOOR_DBFS = -60.0  # pocketsphinx decodes digital silence badly: a noise floor this loud under the stem
RECOGNISER_HZ = 16000
PAD_S = 0.3  # of the stem around each sentence, so its first and last sounds are whole


def load() -> str:
    return "%.2f" % os.getloadavg()[0]


def speak_cold(engine: str, cache_dir: Path) -> dict:
    """Resolve piece 1 in ``engine``'s voice with an empty speech cache: every clip is spoken (in
    worker processes for Piper). Returns wall seconds, seconds of speech and the load average."""
    from audio import plan, score
    from audio.speech.cache import ClipCache
    sc = score.load(SCORES[engine])
    load_before = load()
    c0, t0 = _cpu_s(), time.perf_counter()
    p = plan.resolve(sc, ClipCache(cache_dir))
    wall, cpu = time.perf_counter() - t0, _cpu_s() - c0
    speech_s = sum(c.n_samples for c in p.cues) / p.sample_rate
    return {"wall_s": wall, "cpu_s": cpu, "speech_s": speech_s, "x_real_time": speech_s / wall,
            "x_real_time_per_cpu_s": speech_s / cpu, "clips": len(p.cues), "load": f"{load_before}->{load()}"}


def _cpu_s() -> float:
    """CPU seconds of this process and of its children that have been waited for (the workers)."""
    import resource
    c = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + c.ru_utime + c.ru_stime


def _rss_kb(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _tree(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return out


def render_child(engine: str, out_dir: Path, cache_dir: Path) -> dict:
    """`piece render` of piece 1 (WAV and stems) in a fresh process, its process tree sampled every
    20 ms: the peak RSS of each process (its VmHWM) and of the tree (the sum of VmRSS at once)."""
    cmd = [sys.executable, "-m", "audio", "render", str(SCORES[engine]), "-o", str(out_dir), "--cache-dir",
           str(cache_dir), "--format", "wav", "--stems", "-q"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peaks, tree_peak, stop = {}, [0], threading.Event()

    def sample():
        while not stop.is_set():
            pids = _tree(proc.pid)
            tree_peak[0] = max(tree_peak[0], sum(_rss_kb(p, "VmRSS:") for p in pids))
            for p in pids:
                peaks[p] = max(peaks.get(p, 0), _rss_kb(p, "VmHWM:"))
            stop.wait(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, err = proc.communicate()
    stop.set()
    sampler.join()
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): {err.strip()}")
    per_process = sorted((kb / 1024 for kb in peaks.values() if kb), reverse=True)
    return {"wall_s": time.perf_counter() - t0, "tree_peak_mb": tree_peak[0] / 1024,
            "process_peaks_mb": per_process, "processes": len(per_process)}


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower().replace("—", " ").replace("-", " "))


def edit_distance(a: list, b: list) -> int:
    d = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        prev, d[0] = d[0], i
        for k, y in enumerate(b, 1):
            prev, d[k] = d[k], min(d[k] + 1, d[k - 1] + 1, prev + (x != y))
    return d[len(b)]


def recognise_stem(manifest: dict, stem: str) -> dict:
    """Word error rate of pocketsphinx on each sentence of a voice stem, cut out by the manifest's
    times, mixed to mono, resampled to 16 kHz, over a seeded −60 dBFS noise floor."""
    import numpy as np
    import soundfile as sf
    from pocketsphinx import Decoder
    from scipy.signal import resample_poly
    x, rate = sf.read(stem, dtype="float32", always_2d=True)
    x = x.mean(axis=1)
    decoder = Decoder(samprate=RECOGNISER_HZ, loglevel="FATAL")
    rng = np.random.default_rng(0)
    errors = total = 0
    t0 = time.perf_counter()
    for cue in manifest["cues"]:
        a, b = max(0, round((cue["start_s"] - PAD_S) * rate)), round((cue["end_s"] + PAD_S) * rate)
        y = resample_poly(x[a:b], RECOGNISER_HZ, rate) if rate != RECOGNISER_HZ else x[a:b]
        y = y + rng.standard_normal(y.size) * 10 ** (FLOOR_DBFS / 20)
        decoder.start_utt()
        decoder.process_raw((np.clip(y, -1, 1) * 32767).astype("<i2").tobytes(), full_utt=True)
        decoder.end_utt()
        hyp = decoder.hyp().hypstr if decoder.hyp() else ""
        ref = words(cue["text"])
        errors += edit_distance(ref, words(hyp))
        total += len(ref)
    return {"wer": errors / total, "errors": errors, "words": total, "decode_s": time.perf_counter() - t0}


def recognise_both(stems: dict) -> dict:
    """``recognise_stem`` for each engine's (manifest, stem), the engines side by side on two cores."""
    import multiprocessing
    with ProcessPoolExecutor(max_workers=2, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {engine: pool.submit(recognise_stem, *args) for engine, args in stems.items()}
        return {engine: f.result() for engine, f in futures.items()}
