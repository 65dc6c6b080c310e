"""Benchmark for piece: rendering speed against ffmpeg, seed pieces, the edit loop, loudness
metering, memory and scaling. Prints a table; every figure is a median of several runs, and every
ratio is taken side by side in the same run. See benchmarks/README.md.

    python benchmarks/bench.py            # the full bench (~15 min on 2 idle cores, more if shared)
    python benchmarks/bench.py --quick    # fewer repeats, 30 minutes at most (a few minutes)
    python benchmarks/bench.py --rows 1,4 # only some rows (dependencies are rendered as needed)

Only the package's public API is used: score.load, plan.resolve, plan.Plan / plan.LayerPlan (keyword
arguments only), speech.cache.ClipCache, render.render, master.LoudnessMeter / TruePeakMeter.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # measure this working tree (the editable install points here too)

SAMPLE_RATE = 44100
BED_MINUTES = 10
SCALING_MINUTES = (1, 5, 10, 30, 60)
MEMORY_MINUTES = (10, 60)  # row 5: peak RSS of the longer render at most MEMORY_RATIO x the shorter's
QUICK_MEMORY_MINUTES = (10, 30)  # --quick renders no 60 minutes: flat memory is judged up to 30
MEMORY_RATIO = 1.15

# The bed of row 1: brown noise low-passed at 3 kHz plus a 60 Hz hum with its 2nd and 3rd harmonics.
# `tone` layers (not `server_hum`, which adds fans and rumble) so that it is the same signal as the
# ffmpeg graph below. Gains are relative (the master stage brings the mix to the score's loudness).
BED_LAYERS = (
    ("noise", "noise", {"color": "brown", "high_hz": 3000}, 0.0),
    ("hum 60", "tone", {"freq_hz": 60}, -6.0),
    ("hum 120", "tone", {"freq_hz": 120}, -12.0),
    ("hum 180", "tone", {"freq_hz": 180}, -16.0),
)
BED_FADE_S = 0.5


def log(msg: str):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def _cpu_s() -> float:
    """CPU seconds used so far by this process and by its children that have been waited for."""
    import resource
    c = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + c.ru_utime + c.ru_stime


def measure(fn, *args, **kwargs):
    """(wall seconds, CPU seconds of this process and any children it ran, result)."""
    c0, t0 = _cpu_s(), time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - t0, _cpu_s() - c0, result


def timed(fn, *args, **kwargs):
    wall, _, result = measure(fn, *args, **kwargs)
    return wall, result


def ffmpeg_exe() -> str:
    import imageio_ffmpeg
    return imageio_ffmpeg.get_ffmpeg_exe()


# --- building plans through the public API -------------------------------------------------------

def _keywords(cls, **kwargs):
    """Construct a dataclass with keywords, dropping any this version of it does not have."""
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in kwargs.items() if k in names})


def _master():
    """The score's [master] table at its defaults, WAV only (typed where the plan has a type for it)."""
    from audio import plan as plan_mod
    from audio import score
    out = {"loudness_lufs": -16.0, "true_peak_dbtp": -1.0, "formats": ["wav"], "mp3_bitrate_kbps": 192}
    for f in getattr(score, "MASTER_FIELDS", ()):
        if f.name not in out and f.default is not getattr(score, "REQUIRED", object()):
            out[f.name] = list(f.default) if isinstance(f.default, tuple) else f.default
    out["formats"] = ["wav"]
    settings = getattr(plan_mod, "MasterSettings", None)
    if settings is None:
        return out
    names = [f.name for f in dataclasses.fields(settings)]
    return settings(**{k: tuple(v) if k == "formats" else v for k, v in out.items() if k in names})


def ambience_plan(minutes: float, name: str = "bed"):
    """A plan with no speech: the bed layers over ``minutes`` of stereo 44.1 kHz."""
    from audio import plan as plan_mod
    from audio import sources
    sr, seed = SAMPLE_RATE, 1
    n = round(minutes * 60 * sr)
    stable = getattr(plan_mod, "stable_hash",
                     lambda s: int.from_bytes(hashlib.sha256(s.encode()).digest()[:8], "little"))
    layers = []
    for layer_name, source, params, gain_db in BED_LAYERS:
        full = sources.check_params(source, dict(params), "", layer_name)
        layers.append(_keywords(
            plan_mod.LayerPlan, name=layer_name, source=source, params=full, gain_db=gain_db,
            start_sample=0, end_sample=n, fade_in_s=BED_FADE_S, fade_out_s=BED_FADE_S, duck_db=0.0,
            pan=0.0, seed=[seed, stable(layer_name)], start_s=0.0, end_s=n / sr))
    return _keywords(
        plan_mod.Plan, name=name, title=f"{minutes:g} min ambience", author="bench", sample_rate=sr,
        channels=2, seed=seed, total_samples=n, duration_s=n / sr, cues=[], layers=layers,
        master=_master(), score_sha256="", engine="")


def render_ambience(minutes: float, out_dir: Path, name: str = "bed"):
    """Render the bed through the real path (mix, master, WAV). Returns (seconds, CPU seconds, manifest)."""
    from audio import render
    from audio.speech.cache import ClipCache
    plan = ambience_plan(minutes, name)
    cache = ClipCache(out_dir / "unused-tts-cache")
    return measure(render.render, plan, cache, out_dir, formats=["wav"])


def render_score(score_path: Path, cache_dir: Path, out_dir: Path):
    """Load, resolve (speaking through the cache) and render to WAV.

    Returns (seconds in all, manifest, cache, seconds of load + resolve, CPU seconds in all)."""
    from audio import plan, render, score
    from audio.speech.cache import ClipCache
    c0, t0 = _cpu_s(), time.perf_counter()
    sc = score.load(score_path)
    cache = ClipCache(cache_dir)
    p = plan.resolve(sc, cache)
    prep = time.perf_counter() - t0
    manifest = render.render(p, cache, out_dir, formats=["wav"])
    return time.perf_counter() - t0, manifest, cache, prep, _cpu_s() - c0


# --- ffmpeg ----------------------------------------------------------------------------------------

def bed_graph(seconds: float) -> str:
    """The bed as an ffmpeg lavfi graph: anoisesrc brown + 3 sines, amix, lowpass 3 kHz."""
    d = f"{seconds:g}"
    sines = "".join(f"sine=frequency={f}:sample_rate={SAMPLE_RATE}:duration={d}[s{i}];"
                    for i, f in enumerate((60, 120, 180)))
    weights = " ".join(f"{10 ** (g / 20):.4f}" for *_, g in BED_LAYERS)
    return (f"anoisesrc=color=brown:sample_rate={SAMPLE_RATE}:amplitude=0.5:seed=1:duration={d}[n];"
            f"{sines}[n][s0][s1][s2]amix=inputs=4:weights={weights},lowpass=f=3000")


def run_ffmpeg(args: list[str]) -> str:
    """Run the bundled ffmpeg; its stderr (where it reports)."""
    proc = subprocess.run([ffmpeg_exe(), "-nostdin", "-hide_banner", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"ffmpeg failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    return proc.stderr


def ffmpeg_bed(out_path: Path, seconds: float):
    """The same bed by ffmpeg's lavfi, to 16-bit WAV."""
    run_ffmpeg(["-loglevel", "error", "-y", "-filter_complex", bed_graph(seconds),
                "-ac", "2", "-ar", str(SAMPLE_RATE), "-c:a", "pcm_s16le", str(out_path)])


def ffmpeg_bed_mastered(out_path: Path, seconds: float) -> dict:
    """The same bed mastered by ffmpeg as a producer would: loudnorm's two passes (measure, then a
    linear gain to -16 LUFS under -1 dBTP, true peak by 4x oversampling) to 16-bit WAV at 44.1 kHz.
    Returns loudnorm's own report of the second pass."""
    target = "loudnorm=I=-16:TP=-1:LRA=20"
    graph = bed_graph(seconds) + ","
    report = run_ffmpeg(["-filter_complex", graph + target + ":print_format=json", "-f", "null", "-"])
    m = json.loads(report[report.rindex("{"):report.rindex("}") + 1])
    second = (f"{target}:measured_I={m['input_i']}:measured_TP={m['input_tp']}:measured_LRA={m['input_lra']}"
              f":measured_thresh={m['input_thresh']}:offset={m['target_offset']}:linear=true:print_format=json")
    report = run_ffmpeg(["-y", "-filter_complex", graph + second, "-ac", "2", "-ar", str(SAMPLE_RATE),
                         "-c:a", "pcm_s16le", str(out_path)])
    return json.loads(report[report.rindex("{"):report.rindex("}") + 1])


def ffmpeg_ebur128(path: Path) -> dict:
    """ffmpeg's own ebur128 summary (the timed command): integrated LUFS and true peak (1 decimal)."""
    proc = subprocess.run([ffmpeg_exe(), "-nostats", "-hide_banner", "-i", str(path), "-filter_complex",
                           "ebur128=peak=true", "-f", "null", "-"], capture_output=True, text=True, check=True)
    summary = proc.stderr[proc.stderr.rindex("Summary:"):]
    return {"lufs": float(re.search(r"I:\s+(-?[\d.]+|-inf) LUFS", summary).group(1)),
            "dbtp": float(re.search(r"Peak:\s+(-?[\d.]+|-inf) dBFS", summary).group(1))}


def ffmpeg_ebur128_precise(path: Path, work: Path) -> float | None:
    """The integrated loudness to 3 decimals (ebur128 metadata of the last frame); untimed."""
    meta = work / "r128.txt"
    graph = f"ebur128=metadata=1,ametadata=mode=print:key=lavfi.r128.I:file={meta}"
    subprocess.run([ffmpeg_exe(), "-nostats", "-hide_banner", "-loglevel", "error", "-i", str(path),
                    "-filter_complex", graph, "-f", "null", "-"], capture_output=True, check=True)
    values = re.findall(r"lavfi\.r128\.I=(-?[\d.]+)", meta.read_text())
    meta.unlink()
    return float(values[-1]) if values else None


# --- the project's meters over a file ------------------------------------------------------------

def project_meter(path: Path) -> dict:
    import soundfile as sf
    from audio import master, mixer
    block = getattr(mixer, "BLOCK_SAMPLES", 1 << 17)
    with sf.SoundFile(str(path)) as f:
        loud, peak = master.LoudnessMeter(f.samplerate, f.channels), master.TruePeakMeter(f.channels)
        for x in f.blocks(blocksize=block, dtype="float64", always_2d=True):
            loud.add(x)
            peak.add(x)
    return {"lufs": loud.integrated_lufs(), "dbtp": peak.dbtp()}


# --- child process for memory and scaling ----------------------------------------------------------

def child_main(minutes: float, out_dir: str, result_path: str):
    import resource
    out = Path(out_dir)
    seconds, cpu, manifest = render_ambience(minutes, out)
    result = {"render_s": seconds, "render_cpu_s": cpu, "timings": manifest.get("timings", {}),
              "measured": manifest.get("measured", {}),
              "self_maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}
    Path(result_path).write_text(json.dumps(result))


def run_child(minutes: float, work: Path) -> dict:
    """Render ``minutes`` of ambience in a fresh interpreter; its own peak RSS from wait4's rusage
    (the same ru_maxrss as RUSAGE_CHILDREN, but for exactly this child)."""
    out = Path(tempfile.mkdtemp(prefix=f"child-{minutes:g}-", dir=work))
    result_path, log_path = out / "result.json", out / "child.log"
    with open(log_path, "wb") as logf:
        p = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--_child", str(minutes), str(out),
                              str(result_path)], stdout=logf, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
    try:
        if p.returncode != 0:
            raise RuntimeError(f"child render of {minutes:g} min failed ({p.returncode}):\n"
                               + log_path.read_text(errors="replace")[-3000:])
        result = json.loads(result_path.read_text())
        result["maxrss_mb"] = usage.ru_maxrss / 1024  # kB on Linux
        return result
    finally:
        shutil.rmtree(out, ignore_errors=True)


# --- the rows ----------------------------------------------------------------------------------------

class Bench:
    def __init__(self, args, work: Path):
        self.args, self.work = args, work
        self.slow = 1 if args.quick else 3
        self.fast = 2 if args.quick else 5
        self.rows: list[tuple] = []  # (row, label, value, target, status)
        self.raw: dict = {}
        self.bed_wav: Path | None = None
        self.cold: dict = {}  # score stem -> (median cold seconds, warm cache dir, median cold CPU seconds)

    def add(self, row, label, value, target="", status=""):
        self.rows.append((str(row), label, value, target, status))

    @staticmethod
    def verdict(ok):
        return "n/a" if ok is None else ("met" if ok else "NOT MET")

    # 1 -------------------------------------------------------------------------------------------
    def row1_bed(self):
        out = self.work / "bed"
        seconds = BED_MINUTES * 60
        proj, ff, timings, measured, proj_cpu, ff_cpu = [], [], [], None, [], []
        mastered, mastered_report = [], None
        for i in range(max(self.slow, self.fast)):  # interleaved, so both see the same machine state
            if i < self.slow:
                t, cpu, manifest = render_ambience(BED_MINUTES, out)
                proj.append(t)
                proj_cpu.append(cpu)
                timings.append(manifest.get("timings", {}))
                measured = manifest.get("measured", {})
                log(f"row 1: piece bed {t:.2f} s")
                t, _, mastered_report = measure(ffmpeg_bed_mastered, self.work / "ffmpeg-bed-mastered.wav", seconds)
                mastered.append(t)
                log(f"row 1: ffmpeg bed + loudnorm {t:.2f} s")
            if i < self.fast:
                t, cpu, _ = measure(ffmpeg_bed, self.work / "ffmpeg-bed.wav", seconds)
                ff.append(t)
                ff_cpu.append(cpu)
                log(f"row 1: ffmpeg bed {t:.2f} s")
        self.bed_wav = out / "bed.wav"
        p, f = median(proj), median(ff)
        ratio = p / f
        self.add(1, f"bed {BED_MINUTES} min: piece render (mix+master+WAV)", f"{p:.2f} s")
        self.add("", f"bed {BED_MINUTES} min: ffmpeg lavfi to WAV", f"{f:.2f} s")
        self.add("", "ratio piece / ffmpeg", f"{ratio:.2f}x", "<= 1.0", self.verdict(ratio <= 1.0))
        pc, fc = median(proj_cpu), median(ff_cpu)
        self.add("", "  (CPU time piece | ffmpeg, ratio)", f"{pc:.2f} | {fc:.2f} s, {pc / fc:.2f}x")
        keys = list(dict.fromkeys(k for t in timings for k in t))  # the manifest's order
        split = " / ".join(f"{median([t[k] for t in timings if k in t]):.2f}" for k in keys)
        names = "/".join(k.removesuffix("_s") for k in keys)
        self.add("", f"piece split {names}", f"{split} s")
        if measured:
            self.add("", "piece output (LUFS, dBTP, gain)",
                     f"{measured.get('loudness_lufs', float('nan')):.2f}, "
                     f"{measured.get('true_peak_dbtp', float('nan')):.2f}, {measured.get('gain_db', 0):+.1f} dB")
        fm = median(mastered)
        self.add("", "  like for like: ffmpeg lavfi + loudnorm, 2 passes", f"{fm:.2f} s")
        self.add("", "  ratio piece / ffmpeg mastered", f"{p / fm:.2f}x")
        checked = ffmpeg_ebur128(self.work / "ffmpeg-bed-mastered.wav")
        self.add("", "  ffmpeg mastered output (LUFS, dBTP by ebur128)",
                 f"{checked['lufs']:.2f}, {checked['dbtp']:.2f} ({mastered_report.get('normalization_type')})")
        (self.work / "ffmpeg-bed.wav").unlink(missing_ok=True)
        (self.work / "ffmpeg-bed-mastered.wav").unlink(missing_ok=True)
        self.raw["bed"] = {"piece_s": proj, "ffmpeg_s": ff, "piece_cpu_s": proj_cpu, "ffmpeg_cpu_s": ff_cpu,
                           "ffmpeg_mastered_s": mastered, "timings": timings, "measured": measured}

    # 2 -------------------------------------------------------------------------------------------
    def row2_seeds(self):
        for score_path in sorted((REPO / "scores").glob("*.toml")):
            stem = score_path.stem
            out = self.work / "seed-out"
            cold, warm, cold_split, warm_split, prep, cold_cpu, warm_cpu = [], [], [], [], [], [], []
            duration = synthesized = None
            cache_dir = None
            for i in range(self.slow):
                cache_dir = self.work / f"tts-{stem}-{i}"  # empty: every clip is synthesized
                t, manifest, cache, p, cpu = render_score(score_path, cache_dir, out)
                cold.append(t)
                prep.append(p)
                cold_cpu.append(cpu)
                cold_split.append(manifest.get("timings", {}))
                duration, synthesized = manifest["duration_s"], cache.synthesized
                log(f"row 2: {stem} cold {t:.2f} s ({cache.synthesized} clips synthesized)")
                if i < self.slow - 1:
                    shutil.rmtree(cache_dir, ignore_errors=True)
            for _ in range(self.slow):
                t, manifest, cache, _, cpu = render_score(score_path, cache_dir, out)
                warm.append(t)
                warm_cpu.append(cpu)
                warm_split.append(manifest.get("timings", {}))
                log(f"row 2: {stem} warm {t:.2f} s ({cache.synthesized} synthesized, {cache.hits} hits)")
            c, w = median(cold), median(warm)
            self.cold[stem] = (c, cache_dir, median(cold_cpu))
            self.add(2, f"{stem} ({duration:.0f} s of audio)", "")
            self.add("", "  cold render / audio duration", f"{100 * c / duration:.2f} % ({c:.1f} s, "
                     f"{synthesized} clips)", "<= 1 %", self.verdict(c / duration <= 0.01))
            self.add("", "  warm render / audio duration", f"{100 * w / duration:.2f} % ({w:.1f} s)")
            self.add("", "  (CPU time cold | warm)", f"{median(cold_cpu):.1f} | {median(warm_cpu):.1f} s")
            resolve_cold = median(prep)
            split = " / ".join(f"{median([s.get(k, 0) for s in cold_split]):.1f}"
                               for k in ("mix_s", "master_s", "export_s"))
            self.add("", "  cold: load+resolve(TTS) | mix/master/export", f"{resolve_cold:.1f} | {split} s")
            self.raw.setdefault("seeds", {})[stem] = {"duration_s": duration, "cold_s": cold, "warm_s": warm,
                                                      "cold_timings": cold_split, "warm_timings": warm_split,
                                                      "cold_load_resolve_s": prep,
                                                      "cold_cpu_s": cold_cpu, "warm_cpu_s": warm_cpu}

    # 3 -------------------------------------------------------------------------------------------
    def row3_edit(self):
        for score_path in sorted((REPO / "scores").glob("*.toml")):
            stem = score_path.stem
            out = self.work / "edit-out"
            if stem not in self.cold:  # row 2 not run: one cold render to warm a cache and to compare with
                cache_dir = self.work / f"tts-{stem}-edit"
                t, _, _, _, cpu = render_score(score_path, cache_dir, out)
                self.cold[stem] = (t, cache_dir, cpu)
            cold_s, cache_dir, cold_cpu = self.cold[stem]
            times, cpus, counts, whats = [], [], [], []
            for i in range(self.slow):
                edited, what = edit_copy(score_path, self.work / f"edit-{stem}-{i}", rate_step=5 + i)
                t, _, cache, _, cpu = render_score(edited, cache_dir, out)
                times.append(t)
                cpus.append(cpu)
                counts.append(cache.synthesized)
                whats.append(what)
                log(f"row 3: {stem} edit ({what}) {t:.2f} s, {cache.synthesized} synthesized")
            e, ec = median(times), median(cpus)
            rates = "/".join(w.split("->")[1].split(":")[0] for w in whats)
            self.add(3, f"{stem}: edit one cue's rate ({whats[0].split('->')[0]}->{rates})", "")
            self.add("", "  edit render / cold render", f"{100 * e / cold_s:.0f} % ({e:.1f} s / {cold_s:.1f} s)",
                     "<= 40 %", self.verdict(e / cold_s <= 0.40))
            self.add("", "  (CPU time edit / cold)", f"{100 * ec / cold_cpu:.0f} % ({ec:.1f} s / {cold_cpu:.1f} s)")
            self.add("", "  clips synthesized per edit", ",".join(map(str, counts)), "1",
                     self.verdict(all(n == 1 for n in counts)))
            self.raw.setdefault("edit", {})[stem] = {"edit_s": times, "cold_s": cold_s, "edit_cpu_s": cpus,
                                                     "cold_cpu_s": cold_cpu, "synthesized": counts, "edits": whats}

    # 4 -------------------------------------------------------------------------------------------
    def row4_loudness(self):
        if self.bed_wav is None or not self.bed_wav.exists():
            render_ambience(BED_MINUTES, self.work / "bed")
            self.bed_wav = self.work / "bed" / "bed.wav"
        proj, ff, pv, fv, proj_cpu, ff_cpu = [], [], None, None, [], []
        for _ in range(self.fast):
            t, cpu, pv = measure(project_meter, self.bed_wav)
            proj.append(t)
            proj_cpu.append(cpu)
            t, cpu, fv = measure(ffmpeg_ebur128, self.bed_wav)
            ff.append(t)
            ff_cpu.append(cpu)
            log(f"row 4: piece meters {proj[-1]:.2f} s, ffmpeg ebur128 {t:.2f} s")
        precise = ffmpeg_ebur128_precise(self.bed_wav, self.work)
        ref = precise if precise is not None else fv["lufs"]
        p, f = median(proj), median(ff)
        self.add(4, f"meter the {BED_MINUTES}-min WAV: piece LoudnessMeter+TruePeakMeter", f"{p:.2f} s")
        self.add("", "  ffmpeg ebur128=peak=true", f"{f:.2f} s")
        self.add("", "  ratio piece / ffmpeg", f"{p / f:.2f}x", "<= 1.5", self.verdict(p / f <= 1.5))
        pc, fc = median(proj_cpu), median(ff_cpu)
        self.add("", "  (CPU time piece | ffmpeg, ratio)", f"{pc:.2f} | {fc:.2f} s, {pc / fc:.2f}x")
        diff = abs(pv["lufs"] - ref)
        self.add("", "  integrated loudness piece | ffmpeg",
                 f"{pv['lufs']:.3f} | {ref:.3f} LUFS (diff {diff:.3f})", "<= 0.1 LU", self.verdict(diff <= 0.1))
        self.add("", "  true peak piece | ffmpeg", f"{pv['dbtp']:.2f} | {fv['dbtp']:.1f} dBTP")
        self.raw["loudness"] = {"piece_s": proj, "ffmpeg_s": ff, "piece_cpu_s": proj_cpu, "ffmpeg_cpu_s": ff_cpu, "piece": pv, "ffmpeg": fv, "ffmpeg_precise": precise}

    # 5 + 6 -------------------------------------------------------------------------------------------
    def rows56_children(self, want5: bool, want6: bool):
        short_m, long_m = QUICK_MEMORY_MINUTES if self.args.quick else MEMORY_MINUTES
        minutes = [m for m in SCALING_MINUTES if not (self.args.quick and m >= 60)]
        if not want6:
            minutes = [short_m, long_m]
        results = {}
        for m in minutes:
            # a 1-minute render takes seconds; the 30- and 60-minute ones get one repeat fewer
            # (their RSS does not vary between runs) to keep the whole bench near 15 minutes
            reps = self.fast if m <= 1 else self.slow if m <= 10 else max(1, self.slow - 1)
            results[m] = []
            for _ in range(reps):
                r = run_child(m, self.work)
                results[m].append(r)
                log(f"rows 5/6: {m} min in a fresh process: {r['render_s']:.2f} s, peak RSS {r['maxrss_mb']:.0f} MB")
        self.raw["children"] = results
        rss = {m: median([r["maxrss_mb"] for r in rs]) for m, rs in results.items()}
        if want5:
            r_short, r_long = rss[short_m], rss[long_m]
            ratio = r_long / r_short
            self.add(5, f"peak RSS, {short_m}-min ambience render (fresh process)", f"{r_short:.0f} MB")
            self.add("", f"peak RSS, {long_m}-min ambience render (fresh process)", f"{r_long:.0f} MB", "<= 400 MB",
                     self.verdict(r_long <= 400))
            self.add("", f"ratio {long_m}-min / {short_m}-min (memory stays flat)", f"{ratio:.3f}",
                     f"<= {MEMORY_RATIO}", self.verdict(ratio <= MEMORY_RATIO))
        if want6:
            per_min = {}
            for m, rs in results.items():
                t = median([r["render_s"] for r in rs])
                per_min[m] = t / m
                self.add(6 if m == minutes[0] else "", f"ambience {m:>2} min ({len(rs)} runs)",
                         f"{t:7.2f} s = {t / m:.3f} s per audio min (CPU {median([r['render_cpu_s'] for r in rs]) / m:.3f}), "
                f"RSS {rss[m]:.0f} MB")
            pts = [(m, median([r["render_s"] for r in rs])) for m, rs in results.items()]
            if len(pts) >= 2:  # least squares: time = fixed + per_minute * minutes
                mx, my = sum(m for m, _ in pts) / len(pts), sum(t for _, t in pts) / len(pts)
                slope = sum((m - mx) * (t - my) for m, t in pts) / sum((m - mx) ** 2 for m, _ in pts)
                self.add("", "fit: time = fixed + slope x minutes", f"{my - slope * mx:.2f} s + {slope:.3f} s/min")
            cpu_per_min = {m: median([r["render_cpu_s"] for r in rs]) / m for m, rs in results.items()}
            for label, values in (("wall", per_min), ("CPU", cpu_per_min)):
                judged = {m: v for m, v in values.items() if m >= 5}  # 1 min is dominated by fixed costs
                if len(judged) >= 2:
                    spread = max(judged.values()) / min(judged.values()) - 1
                    self.add("", f"per-minute spread of {label} time, >= 5 min (max/min - 1)",
                             f"{100 * spread:.1f} %", "flat (<= 15 %)", self.verdict(spread <= 0.15))


    # 7 + 8 -------------------------------------------------------------------------------------------
    def row7_speech(self):
        import speech_bench
        for engine in ("espeak", "piper"):
            runs = []
            for i in range(self.slow):
                runs.append(speech_bench.speak_cold(engine, self.work / f"tts-speech-{engine}-{i}"))
                log(f"row 7: {engine} cold {runs[-1]['wall_s']:.2f} s for {runs[-1]['speech_s']:.0f} s of speech "
                    f"(load {runs[-1]['load']})")
            x = median([r["x_real_time"] for r in runs])
            target, ok = (">= 20x", x >= 20) if engine == "piper" else ("", None)
            self.add(7 if engine == "espeak" else "", f"piece 1 speech, cold, {engine}: x real time "
                     f"({runs[0]['clips']} clips, {runs[0]['speech_s']:.0f} s)",
                     f"{x:.1f}x ({median([r['wall_s'] for r in runs]):.1f} s; load {', '.join(r['load'] for r in runs)})",
                     target, self.verdict(ok) if ok is not None else "")
            if engine == "piper":  # cold speech again, the voice graph kept from the last run (as in a user's cache)
                kept_runs = []
                for i in range(self.slow):
                    folder = self.work / f"tts-speech-{engine}-kept-{i}"
                    shutil.copytree(self.work / f"tts-speech-{engine}-{self.slow - 1}" / "models", folder / "models")
                    kept_runs.append(speech_bench.speak_cold(engine, folder))
                    log(f"row 7: {engine} cold speech, kept graph {kept_runs[-1]['wall_s']:.2f} s "
                        f"(load {kept_runs[-1]['load']})")
                kx = median([r["x_real_time"] for r in kept_runs])
                self.add("", "piece 1 speech, cold, piper, its voice graph kept from an earlier render",
                         f"{kx:.1f}x ({median([r['wall_s'] for r in kept_runs]):.1f} s; load "
                         f"{', '.join(r['load'] for r in kept_runs)}; CPU {median([r['cpu_s'] for r in kept_runs]):.1f} s)",
                         ">= 20x", self.verdict(kx >= 20))
                self.raw.setdefault("speech", {})["piper_kept_graph"] = kept_runs
            cpu = median([r["cpu_s"] for r in runs])
            self.add("", f"  (CPU: {cpu:.1f} s, this process and its speaking processes)",
                     f"{median([r['x_real_time_per_cpu_s'] for r in runs]):.1f}x real time per CPU second")
            self.raw.setdefault("speech", {})[engine] = runs
        self.row8_children = {}
        for engine in ("espeak", "piper"):
            out = self.work / f"speech-out-{engine}"
            r = speech_bench.render_child(engine, out, self.work / f"tts-render-{engine}")
            log(f"row 7: {engine} render in a fresh process {r['wall_s']:.1f} s, peak RSS tree {r['tree_peak_mb']:.0f} MB")
            self.row8_children[engine] = out
            self.raw.setdefault("speech_render", {})[engine] = r
            if engine == "piper":
                top = r["process_peaks_mb"]
                self.add("", f"Piper render of piece 1 (cold, {r['processes']} processes): peak RSS, largest process",
                         f"{top[0]:.0f} MB (each: {', '.join(f'{m:.0f}' for m in top)})", "<= 700 MB",
                         self.verdict(top[0] <= 700))
                self.add("", "Piper render of piece 1: peak RSS, the whole process tree at once",
                         f"{r['tree_peak_mb']:.0f} MB", "<= 700 MB",
                         self.verdict(r["tree_peak_mb"] <= 700))
            else:
                self.add("", "espeak render of piece 1 (cold): peak RSS, process tree",
                         f"{r['tree_peak_mb']:.0f} MB ({r['processes']} processes)")

    def row8_intelligibility(self):
        import speech_bench
        if not getattr(self, "row8_children", None):
            self.row8_children = {}
            for engine in ("espeak", "piper"):
                out = self.work / f"speech-out-{engine}"
                speech_bench.render_child(engine, out, self.work / f"tts-render-{engine}")
                self.row8_children[engine] = out
        stems = {}
        for engine, out in self.row8_children.items():
            name = speech_bench.SCORES[engine].stem
            manifest = json.loads((out / f"{name}.json").read_text())
            stems[engine] = (manifest, str(out / f"{name}.stem-voice.wav"))
        load_before = speech_bench.load()
        results = speech_bench.recognise_both(stems)
        for engine, r in results.items():
            target, ok = ("<= 35 %", r["wer"] <= 0.35) if engine == "piper" else ("", None)
            self.add(8 if engine == "espeak" else "", f"word error rate, pocketsphinx on piece 1's voice stem, {engine}",
                     f"{100 * r['wer']:.1f} % ({r['errors']}/{r['words']} words; load {load_before})",
                     target, self.verdict(ok) if ok is not None else "")
        self.raw["intelligibility"] = results


def edit_copy(score_path: Path, folder: Path, rate_step: int) -> tuple[Path, str]:
    """Copy a score and its text into ``folder`` (text beside it, the score's `text` pointed at it) and
    change the rate of its first [[cue]] (adding one if no cue sets it). Returns (path, description)."""
    folder.mkdir(parents=True)
    raw = score_path.read_text(encoding="utf-8")
    doc = tomllib.loads(raw)
    src_text = (score_path.parent / doc["piece"]["text"]).resolve()
    shutil.copyfile(src_text, folder / src_text.name)

    lines = raw.splitlines(keepends=True)
    header = None
    cue_seen = 0
    text_done = rate_done = False
    first_cue_at = None
    for i, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith("["):
            header = stripped
            if header == "[[cue]]":
                cue_seen += 1
                if cue_seen == 1:
                    first_cue_at = i
            continue
        if header == "[piece]" and not text_done and re.match(r"text\s*=", stripped):
            lines[i] = f"text = {json.dumps(src_text.name)}\n"
            text_done = True
        if header == "[[cue]]" and cue_seen == 1 and not rate_done:
            m = re.match(r"rate\s*=\s*(\d+)", stripped)
            if m:
                old = int(m.group(1))
                new = old + rate_step if old + rate_step <= 450 else old - rate_step
                lines[i] = f"rate = {new}\n"
                rate_done = True
    if not rate_done:  # the first cue keeps the voice's rate: give it its own
        old = int(doc.get("voice", {}).get("rate", 150))
        new = old + rate_step if old + rate_step <= 450 else old - rate_step
        lines.insert(first_cue_at + 1, f"rate = {new}\n")
    if not text_done or first_cue_at is None:
        raise RuntimeError(f"{score_path}: cannot make an edited copy (no [piece] text or no [[cue]])")
    path = folder / score_path.name
    path.write_text("".join(lines), encoding="utf-8")
    match = tomllib.loads(path.read_text(encoding="utf-8"))["cue"][0]["match"]
    return path, f"rate {old}->{new}: {match!r}"


# --- the report --------------------------------------------------------------------------------------

def machine() -> list[str]:
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        nproc = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    except OSError:
        nproc = str(len(os.sched_getaffinity(0)))
    from importlib.metadata import version
    libs = []
    for pkg in ("numpy", "scipy", "soundfile"):
        try:
            libs.append(f"{pkg} {version(pkg)}")
        except Exception:
            pass
    try:
        ff = subprocess.run([ffmpeg_exe(), "-version"], capture_output=True, text=True).stdout.split("\n")[0]
        ff = " ".join(ff.split()[:3])
    except Exception:
        ff = "ffmpeg unavailable"
    try:
        load = "load average %.2f %.2f %.2f" % os.getloadavg()
    except OSError:
        load = "load average unknown"
    return [f"machine: nproc {nproc}, CPU {cpu}, {os.cpu_count()} logical CPUs; at start {load} "
            "(other processes running skew every figure)",
            f"python:  {platform.python_implementation()} {platform.python_version()} ({sys.executable}); "
            + ", ".join(libs) + f"; {ff}"]


def print_table(rows, header_lines):
    cols = ("#", "measurement", "value", "target", "status")
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(cols)]
    line = "  ".join("-" * w for w in widths)
    for h in header_lines:
        print(h)
    print()
    print("  ".join(c.ljust(w) for c, w in zip(cols, widths)))
    print(line)
    for r in rows:
        if r[0] and r is not rows[0]:
            print(line)
        print("  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip())
    print(line)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer repeats, 30-minute renders at most")
    ap.add_argument("--rows", default="1,2,3,4,5,6,7,8", help="rows to run, e.g. 1,4 (default: all)")
    ap.add_argument("--json", type=Path, help="also write every raw measurement to this file")
    ap.add_argument("--_child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args._child:
        child_main(float(args._child[0]), args._child[1], args._child[2])
        return 0

    want = {int(x) for x in args.rows.split(",") if x.strip()}
    started = time.perf_counter()
    header = [f"piece benchmark, {time.strftime('%Y-%m-%d %H:%M')}, "
              f"{'--quick' if args.quick else 'full'} run; figures are medians"] + machine()
    for h in header:
        log(h)
    from audio.speech.engine import get_engine
    get_engine("espeak").version  # load espeak-ng once, outside every timing (a process start pays it once)
    with tempfile.TemporaryDirectory(prefix="piece-bench-") as tmp:
        b = Bench(args, Path(tmp))
        header.append(f"repeats: {b.slow} for slow figures, {b.fast} for fast ones; temp dir {tmp}")
        steps = [(1, b.row1_bed), (2, b.row2_seeds), (3, b.row3_edit), (4, b.row4_loudness)]
        for row, fn in steps:
            if row in want:
                log(f"row {row} ...")
                fn()
        if want & {5, 6}:
            log("rows 5/6 ...")
            b.rows56_children(5 in want, 6 in want)
        for row, fn in ((7, b.row7_speech), (8, b.row8_intelligibility)):
            if row in want:
                log(f"row {row} ...")
                fn()
        rows, raw = b.rows, b.raw
    total = time.perf_counter() - started
    load = "%.2f %.2f %.2f" % os.getloadavg()
    header.append(f"bench run time: {total / 60:.1f} min; load average at the end {load}")
    print_table(rows, header)
    missed, current, context = [], "", ""
    for r in rows:  # carry the row number and its heading down to the indented sub-lines
        current = r[0] or current
        if not r[1].startswith(" "):
            context = r[1].split(" (")[0].split(":")[0] if r[0] else context
        if r[4] == "NOT MET":
            where = f"{context}: " if r[1].startswith(" ") else ""
            missed.append(f"row {current}: {where}{r[1].strip()} = {r[2]} (target {r[3]})")
    if missed:
        print("\ntargets not met:")
        for m in missed:
            print(f"  - {m}")
    if args.json:
        args.json.write_text(json.dumps({"header": header, "rows": rows, "raw": raw}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
