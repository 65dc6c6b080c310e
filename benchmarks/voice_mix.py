"""How the voice sits in the mix, measured on a render's stems: the same code for any render, so
figures before and after a change are comparable. See benchmarks/README.md.

    piece render scores/*.toml --stems --format wav -o DIR
    python benchmarks/voice_mix.py DIR [--json FILE]

For each NAME.json in DIR (with NAME.wav and its stems beside it):

- sentence loudness spread: BS.1770-4 loudness of each sentence on the voice stem (400 ms blocks,
  gated; a sentence under 400 ms is one block), less the gain_db the score asks for it; the std,
  the range and the sentences furthest out;
- limiter: its gain reduction, from the float master before limiting (the stems' sum, which carries
  the master's gain) against the written WAV, in 10 ms windows: the largest, and for how long
  it exceeds 1 and 3 dB;
- bed rise in gaps: the ducking layers' stems summed; in each gap between sentences, the power of
  its loudest 100 ms against the louder of the last half second of the sentence before and the
  first half second of the one after; the median and 90th percentile over gaps under 1 s, and over
  gaps of 1-2 s (a steady noise bed reads a little above 0 dB here even when nothing moves: the
  loudest of several short windows);
- clicks at sentence starts: the largest second difference of the voice stem in the first 2 ms of
  a sentence's sound over the median second difference of the 50 ms after (a hard edge is many
  times what the sound itself does; sentences whose effects include a glitch are left out: their
  damage is meant); how many reach CLICK_RATIO;
- voice-to-bed ratio and each layer's audibility: ``audio.audibility`` over the stems.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import sosfilt

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from audio.audibility import Audibility  # noqa: E402
from audio.master.meters import k_weighting_sos  # noqa: E402
from audio.plan import Plan  # noqa: E402

CLICK_RATIO = 5.0  # a start whose second difference is this many times what its sound then does clicks
SHORT_GAP_S = 1.0
WINDOW_S = 0.1  # the bed's level in a gap: its loudest 100 ms there
BLOCK = 1 << 17


def db(x):
    with np.errstate(divide="ignore"):
        return 10 * np.log10(x)


def sentence_lufs(k_power: np.ndarray, sr: int) -> float:
    """Gated loudness of one sentence from its K-weighted power per sample (channels summed)."""
    block, hop = round(0.4 * sr), round(0.1 * sr)
    if len(k_power) <= block:
        blocks = np.array([k_power.mean()])
    else:
        c = np.concatenate([[0.0], np.cumsum(k_power)])
        starts = np.arange(0, len(k_power) - block + 1, hop)
        blocks = (c[starts + block] - c[starts]) / block
    blocks = blocks[-0.691 + db(blocks) > -70]
    if blocks.size == 0:
        return -math.inf
    blocks = blocks[-0.691 + db(blocks) > -0.691 + db(blocks.mean()) - 10]
    return float(-0.691 + db(blocks.mean()))


def spread(manifest: dict, voice: np.ndarray, sr: int) -> dict:
    k = sosfilt(k_weighting_sos(sr), voice, axis=0)
    k_power = (k * k).sum(axis=1)
    base = manifest["cues"][0]["gain_db"] if manifest["cues"] else 0.0
    rows = []
    for c in manifest["cues"]:
        if c["n_samples"] <= 0:
            continue
        a = c["start_sample"]
        lufs = sentence_lufs(k_power[a: a + c["n_samples"]], sr)
        rows.append((lufs - (c["gain_db"] - base), c["start_s"], c["text"]))
    d = np.array([r[0] for r in rows])
    centre = float(np.median(d))
    worst = sorted(rows, key=lambda r: -abs(r[0] - centre))[:4]
    return {"std_db": float(d.std()), "range_db": float(d.max() - d.min()), "median_lufs": centre,
            "furthest": [{"at_s": round(t, 2), "off_db": round(v - centre, 2), "text": text[:40]}
                         for v, t, text in worst]}


def limiter(pre: np.ndarray, post: np.ndarray, sr: int) -> dict:
    w = round(0.01 * sr)
    n = min(len(pre), len(post)) // w * w
    p, q = pre[:n].reshape(-1, w, pre.shape[1]), post[:n].reshape(-1, w, post.shape[1])
    energy = (p * p).sum(axis=(1, 2))
    loud = energy / (w * pre.shape[1]) > 10 ** (-50 / 10)
    g = np.where(loud, (p * q).sum(axis=(1, 2)) / np.maximum(energy, 1e-30), 1.0)
    reduction = -20 * np.log10(np.clip(g, 1e-6, None))
    reduction[~loud] = 0.0
    i = int(np.argmax(reduction))
    return {"max_gr_db": float(reduction[i]), "at_s": round(i * w / sr, 2),
            "over_1db_s": float((reduction > 1).sum() * w / sr), "over_3db_s": float((reduction > 3).sum() * w / sr),
            "pre_peak_dbfs": float(20 * np.log10(np.abs(pre).max()))}


def gap_rises(manifest: dict, bed: np.ndarray, sr: int) -> dict:
    power = (bed * bed).sum(axis=1)
    c = np.concatenate([[0.0], np.cumsum(power)])

    def mean(a, b):
        return (c[b] - c[a]) / max(b - a, 1)

    cues = [x for x in manifest["cues"] if x["n_samples"] > 0]
    short, line = [], []
    for before, after in zip(cues, cues[1:]):
        end = before["start_sample"] + before["n_samples"]
        gap = after["start_sample"] - end
        if gap <= 0:
            continue
        # against the bed under the speech on both sides, so a bed that drifts by itself (a drone's
        # beating) across the gap does not read as a rise
        a = after["start_sample"]
        ref = max(mean(max(before["start_sample"], end - sr // 2), end), mean(a, a + min(after["n_samples"], sr // 2)))
        w = int(min(round(WINDOW_S * sr), gap))
        top = max((mean(a, a + w) for a in range(end, end + gap - w + 1, max(1, round(0.01 * sr)))), default=0.0)
        if ref <= 0 or top <= 0:
            continue
        rise = float(db(top / ref))
        (short if gap < SHORT_GAP_S * sr else line if gap < 2 * sr else []).append(rise)
    minutes = len(bed) / sr / 60

    def summary(xs):
        if not xs:
            return {"n": 0}
        return {"n": len(xs), "median_db": float(np.median(xs)), "p90_db": float(np.percentile(xs, 90)),
                "over_2db": int(sum(x > 2 for x in xs))}
    return {"short": summary(short), "line": summary(line),
            "rises_over_2db_per_min": (sum(x > 2 for x in short + line) / minutes) if minutes else 0.0}


def clicks(manifest: dict, voice: np.ndarray, sr: int) -> dict:
    x = voice.mean(axis=1)
    ratios = []
    for c in manifest["cues"]:
        if c["n_samples"] <= 0 or any(e.get("effect") == "glitch" for e in c.get("effects") or []):
            continue
        a = c["start_sample"]
        # where this sentence's sound begins: above -60 dBFS and 4x what the one before left ringing
        floor = max(1e-3, 4 * float(np.abs(x[max(0, a - round(0.005 * sr)): a]).max(initial=0.0)))
        loud = np.flatnonzero(np.abs(x[a: a + round(0.03 * sr)]) > floor)
        if loud.size == 0:
            continue
        first = a + int(loud[0])
        d2 = np.abs(np.diff(x[first - 2: first + round(0.052 * sr)], 2))
        edge = round(0.002 * sr)
        median = np.median(d2[edge:])
        if median > 0:
            ratios.append((float(d2[:edge].max() / median), c["start_s"], c["text"]))
    ratios.sort(reverse=True)
    return {"n": len(ratios), "clicks": sum(r >= CLICK_RATIO for r, _, _ in ratios),
            "max_ratio": ratios[0][0] if ratios else None, "median_ratio": float(np.median([r for r, _, _ in ratios])),
            "worst": [{"at_s": round(t, 2), "ratio": round(r, 1), "text": text[:30]} for r, t, text in ratios[:3]]}


def audibility(manifest: dict, stems: dict) -> dict:
    """audio.audibility over the stems (which carry the master's gain: reported at 0 dB)."""
    plan = Plan.from_dict(manifest)
    meter = Audibility(plan)
    files = {name: sf.SoundFile(path) for name, path in stems.items()}
    try:
        while True:
            parts = {name: f.read(BLOCK, dtype="float64", always_2d=True) for name, f in files.items()}
            if not len(next(iter(parts.values()))):
                break
            meter.add(parts)
    finally:
        for f in files.values():
            f.close()
    return meter.report(0.0)


def measure(manifest_path: Path) -> dict:
    manifest = json.loads(manifest_path.read_text())
    folder = manifest_path.parent
    stems = {name: folder / Path(p).name for name, p in manifest["files"]["stems"].items()}
    sr = manifest["sample_rate"]
    voice = sf.read(stems["voice"], always_2d=True)[0]
    pre = voice.copy()
    ducked = [la["name"] for la in manifest["layers"] if la["duck_db"] > 0]
    bed = np.zeros_like(voice)
    for la in manifest["layers"]:
        x = sf.read(stems[la["name"]], always_2d=True)[0]
        pre += x
        if la["name"] in ducked:
            bed += x
    post = sf.read(folder / f"{manifest['name']}.wav", always_2d=True)[0]
    return {"name": manifest["name"], "spread": spread(manifest, voice, sr), "limiter": limiter(pre, post, sr),
            "gaps": gap_rises(manifest, bed, sr), "clicks": clicks(manifest, voice, sr),
            "audibility": audibility(manifest, stems)}


def show(r: dict):
    s, li, g, c, a = r["spread"], r["limiter"], r["gaps"], r["clicks"], r["audibility"]
    print(f"== {r['name']}")
    print(f"sentence loudness spread   std {s['std_db']:.2f} dB, range {s['range_db']:.2f} dB "
          f"(median {s['median_lufs']:.1f} LUFS)")
    for w in s["furthest"]:
        print(f"    {w['off_db']:+6.2f} dB at {w['at_s']:7.2f} s  {w['text']}")
    print(f"limiter gain reduction     max {li['max_gr_db']:.2f} dB at {li['at_s']:.2f} s; "
          f"> 1 dB for {li['over_1db_s']:.2f} s, > 3 dB for {li['over_3db_s']:.2f} s; "
          f"peak before it {li['pre_peak_dbfs']:+.2f} dBFS")
    for label, key in (("bed rise, gaps < 1 s", "short"), ("bed rise, gaps 1-2 s", "line")):
        x = g[key]
        if x["n"]:
            print(f"{label:26} median {x['median_db']:+.2f} dB, p90 {x['p90_db']:+.2f} dB, "
                  f"> 2 dB in {x['over_2db']} of {x['n']}")
    print(f"{'':26} rises > 2 dB per minute: {g['rises_over_2db_per_min']:.1f}")
    print(f"clicks at sentence starts  {c['clicks']} of {c['n']} at >= {CLICK_RATIO:g}x; max {c['max_ratio']:.1f}x, "
          f"median {c['median_ratio']:.1f}x; worst " + ", ".join(f"{w['ratio']}x {w['text']!r}" for w in c["worst"]))
    print(f"voice to bed               {a['voice_to_bed_db']} dB over the piece, {a['voice_to_bed_in_speech_db']} dB "
          f"in speech (voice {a['voice_lufs']} LUFS, bed {a['bed_lufs']} LUFS)")
    print(f"{'layer':16} {'under voice':>11} {'in speech':>10} {'own band Hz':>12} {'margin':>7} {'heard':>6} "
          f"{'in speech':>9}")
    for la in a["layers"]:
        band = "-" if la["band_hz"] is None else f"{la['band_hz'][0]}-{la['band_hz'][1]}"
        hs = "-" if la["heard_in_speech_fraction"] is None else f"{100 * la['heard_in_speech_fraction']:.0f} %"

        def v(x):
            return "-" if x is None else f"{x:.1f}"
        print(f"{la['name'][:16]:16} {v(la['under_voice_db']):>11} {v(la['under_voice_in_speech_db']):>10} "
              f"{band:>12} {v(la['band_margin_db']):>7} {100 * la['heard_fraction']:5.0f} % {hs:>9}"
              + ("" if la["audible"] else "  INAUDIBLE"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    results = []
    for manifest in sorted(args.folder.glob("*.json")):
        doc = json.loads(manifest.read_text())
        if not isinstance(doc, dict) or "stems" not in doc.get("files", {}):
            continue  # captions, chapters, figures: not a render's manifest with stems
        r = measure(manifest)
        show(r)
        results.append(r)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
