"""Rebuild the golden render: golden.wav and golden.json, from golden.toml and the speech in speech.npz.

    .venv/bin/python tests/golden/rebuild.py           # render again, from the kept speech
    .venv/bin/python tests/golden/rebuild.py --speak   # speak the sentences again first, then render

Why it exists: tests/test_golden.py renders golden.toml afresh and compares it with golden.wav, so
any change in what the project does to sound (sources, effects, resampling, ducking, fades, the
mix, the loudness search, the limiter, dither, the WAV writer) fails that test, meant or not.

When to rebuild: only for a change that is meant to change the sound, once test_golden has failed
on it and the difference is understood. Listen to the new golden.wav beside the old one before
committing it, and say in the commit why the sound changed. A failure nobody meant is a bug, not
a reason to rebuild.

When to use --speak: only when the golden text or its voice settings change, or a new speech
engine is to be heard. The test never asks the engine: espeak-ng does not speak every sentence
the same way in every process, so the sentences are spoken once and kept in speech.npz (16-bit,
as the clip cache keeps them), and the render is made from that.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from audio import plan, render, score
from audio.speech.cache import ClipCache
from audio.speech.clip import Clip
from audio.speech.engine import VoiceSettings
from audio.speech.espeak import RATE_HZ as ENGINE_RATE_HZ

GOLDEN = Path(__file__).resolve().parent
SCORE = GOLDEN / "golden.toml"
SPEECH = GOLDEN / "speech.npz"
WAV = GOLDEN / "golden.wav"
RECORD = GOLDEN / "golden.json"  # the levels the golden render measured, and what made it


def speech_key(text: str, settings: VoiceSettings) -> str:
    return json.dumps({"text": text, **dataclasses.asdict(settings)}, sort_keys=True)


class StoredSpeech(ClipCache):
    """A clip cache that serves the golden sentences from ``clips`` and never speaks. Voiced clips
    (speech through its effects) are made as usual, in ``folder``."""

    def __init__(self, clips: dict[str, Clip], folder: Path):
        super().__init__(folder)
        self.clips = clips

    def get(self, text: str, settings: VoiceSettings) -> Clip:
        try:
            return self.clips[speech_key(text, settings)]
        except KeyError:
            raise KeyError(f"{text!r} ({settings.describe()}) is not in {SPEECH.name}: the golden text or voice "
                           "changed; rebuild with --speak") from None


class _Recorder(ClipCache):
    """A clip cache that keeps every clip it hands out (spoken now: its folder starts empty)."""

    def __init__(self, folder: Path):
        super().__init__(folder)
        self.clips: dict[str, Clip] = {}

    def get(self, text: str, settings: VoiceSettings) -> Clip:
        clip = self.clips[speech_key(text, settings)] = super().get(text, settings)
        return clip


def write_speech(path: Path, clips: dict[str, Clip]):
    arrays = {"rate_hz": np.array(ENGINE_RATE_HZ)}
    for i, (key, clip) in enumerate(clips.items()):
        arrays[f"key{i}"] = np.array(key)
        arrays[f"pcm{i}"] = np.clip(np.round(clip.samples * 32768.0), -32768, 32767).astype("<i2")
        arrays[f"words{i}"] = np.array([w for w, _ in clip.words], dtype=str)
        arrays[f"starts{i}"] = np.array([pos for _, pos in clip.words], dtype=np.int64)
    np.savez_compressed(path, **arrays)


def read_speech(path: Path) -> dict[str, Clip]:
    with np.load(path, allow_pickle=False) as data:
        if int(data["rate_hz"]) != ENGINE_RATE_HZ:
            raise ValueError(f"{path.name} holds speech at {int(data['rate_hz'])} Hz, the engine speaks at "
                             f"{ENGINE_RATE_HZ} Hz: rebuild with --speak")
        n = sum(name.startswith("key") for name in data.files)
        return {str(data[f"key{i}"]): Clip(data[f"pcm{i}"].astype(np.float32) / 32768.0, ENGINE_RATE_HZ,
                                           tuple(zip(data[f"words{i}"].tolist(), data[f"starts{i}"].tolist())))
                for i in range(n)}


def render_golden(out_dir: Path) -> dict:
    """Render golden.toml into ``out_dir`` (as out_dir/golden.wav) from the kept speech; the manifest."""
    with tempfile.TemporaryDirectory(prefix="piece-golden-voiced-") as voiced:
        speech = StoredSpeech(read_speech(SPEECH), Path(voiced))
        return render.render(plan.resolve(score.load(SCORE), speech), speech, out_dir)


def speak(folder: Path) -> dict[str, Clip]:
    """Every sentence of golden.toml, spoken now by the engine."""
    recorder = _Recorder(folder)
    plan.resolve(score.load(SCORE), recorder)
    return recorder.clips


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--speak", action="store_true", help="speak the sentences again into speech.npz first")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="piece-golden-") as tmp:
        if args.speak:
            write_speech(SPEECH, speak(Path(tmp) / "tts"))
        manifest = render_golden(Path(tmp) / "out")
        shutil.copyfile(Path(tmp) / "out" / "golden.wav", WAV)
    record = {"rebuilt": time.strftime("%Y-%m-%d"), "measured": manifest["measured"], "versions": manifest["versions"]}
    RECORD.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    m = manifest["measured"]
    print(f"{WAV}: {m['duration_s']:.2f} s, {m['loudness_lufs']:.2f} LUFS, {m['true_peak_dbtp']:.2f} dBTP, "
          f"{WAV.stat().st_size // 1024} kB; {RECORD.name} and {SPEECH.name} beside it")
    return 0


if __name__ == "__main__":
    sys.exit(main())
