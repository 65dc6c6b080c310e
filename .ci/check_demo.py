"""Check what `make demo` rendered, with ffmpeg's ebur128 as the independent meter."""

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import imageio_ffmpeg


def ebur128(path):
    proc = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-nostats", "-hide_banner", "-i", str(path),
                           "-filter_complex", "ebur128=peak=true", "-f", "null", "-"],
                          capture_output=True, text=True, check=True)
    summary = proc.stderr[proc.stderr.rindex("Summary:"):]
    return (float(re.search(r"I:\s+(-?[\d.]+) LUFS", summary).group(1)),
            float(re.search(r"Peak:\s+(-?[\d.]+) dBFS", summary).group(1)))


def main(out_dir, *scores):
    failures = []
    print(f"{'file':40} {'duration s':>10} {'LUFS':>7} {'dBTP':>7}")
    for score_path in scores:
        name = Path(score_path).stem
        master = tomllib.loads(Path(score_path).read_text()).get("master", {})
        target, ceiling = master.get("loudness_lufs", -16.0), master.get("true_peak_dbtp", -1.0)
        manifest = json.loads((Path(out_dir) / f"{name}.json").read_text())
        for suffix in ("wav", "mp3"):
            path = Path(out_dir) / f"{name}.{suffix}"
            lufs, peak = ebur128(path)
            print(f"{path.name:40} {manifest['duration_s']:10.1f} {lufs:7.1f} {peak:7.1f}")
            if suffix == "wav" and (abs(lufs - target) > 0.5 or peak > ceiling):
                failures.append(f"{path}: {lufs} LUFS, {peak} dBTP; wanted {target}±0.5 LUFS, ≤ {ceiling} dBTP")
        srt = (Path(out_dir) / f"{name}.srt").read_text()
        blocks = [b.split("\n")[2:] for b in srt.strip().split("\n\n")]
        shown = " ".join(line for b in blocks for line in b).split()
        said = " ".join(c["text"] for c in manifest["cues"] if c["n_samples"] > 0).split()
        if shown != said:
            failures.append(f"{name}.srt: the captions do not show the spoken sentences word for word")
        if any(len(b) > 2 or any(len(line) > 42 for line in b) for b in blocks):
            failures.append(f"{name}.srt: a caption has more than 2 lines or a line of more than 42 characters")
    for f in failures:
        print("FAIL:", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
