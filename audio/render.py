"""Render a plan to finished files, pass by pass.

Pass 1 mixes into a temporary float file (and one per stem) while metering its loudness and
keeping its true-peak envelope. A seamless loop then gets its end crossfaded into its start.
Mastering writes the float master on the loudness target (``master.target``); every format, the
captions, the manifest and (if asked) stems and a picture are made from it.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from audio import audibility, export, heap, loop, manifest, mixer, outputs
from audio.beside import Beside
from audio.errors import RenderError
from audio.files import diskspace, staging
from audio.files.floatfile import FloatFile
from audio.master import LoudnessMeter, target
from audio.plan import Plan
from audio.score import written_channels
from audio.speech.cache import ClipCache

log = logging.getLogger(__name__)

heap.keep_freed_blocks_in_the_heap()


@dataclass(frozen=True)
class _Mixed:
    """Pass 1's mix (and stems) on disk, with what mastering needs to know of it."""

    mix: FloatFile
    stems: dict  # name → FloatFile; empty unless stems were asked for
    envelope: target.Envelope
    step_power: list  # the mix's K-weighted power per 100 ms, ``offset`` removed
    offset: np.ndarray  # per channel, removed before mastering (a loop's DC)
    heard: audibility.Audibility  # how the voice and each layer sit in the mix


def render(plan: Plan, cache: ClipCache, out_dir: Path, formats=None, progress=None, span_s=None,
           stems=False, picture=False) -> dict:
    """Render ``plan`` into ``out_dir``; return the manifest.

    ``progress(phase, n, total)`` reports work as it is done: ``n`` more of ``total`` in each phase,
    in order "mixing" (samples), "mastering" (samples; "mastering, try 2" and on when the loudness
    search needs another pass) and "writing files" (files).

    ``span_s`` (start, end in seconds) renders a preview: the whole piece is mixed and measured, so
    the span's samples are exactly those of the full render there, but only the span is written,
    as NAME.preview.FORMAT, with no captions or manifest.
    """
    out_dir = Path(out_dir)
    formats = _check_request(plan, out_dir, formats, picture)
    sr, ch = plan.sample_rate, plan.channels
    out_ch = written_channels(plan.master.preset, ch)  # a podcast's mono mix is written twice
    timings = {}
    need = diskspace.estimate_bytes(plan, formats, stems, out_ch)
    diskspace.check_free(out_dir, *need)
    work = staging.work_dir(out_dir, plan.name)
    staged = staging.Staged(work)
    try:
        t0 = time.perf_counter()
        mixed = _mix(plan, cache, work, stems, progress)
        if plan.loop.seamless:
            mixed = _make_seamless(mixed, plan)
        timings["mix_s"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        span = None
        if span_s is not None:
            frames = mixed.mix.frames
            span = (min(round(span_s[0] * sr), frames), min(round(span_s[1] * sr), frames))
        master_wav = work / "master.wav"
        mastered = target.master_to_target(mixed.mix, mixed.envelope, mixed.step_power, sr, plan.master,
                                           lambda: export.FloatWriter(master_wav, sr, out_ch), mixed.offset, span,
                                           plan.score or plan.name, copies=out_ch // ch,
                                           progress=_mastering_progress(progress, mixed.mix.frames))
        timings["master_s"] = time.perf_counter() - t0

        result = _export(plan, out_dir, formats, picture, mixed, master_wav, mastered, span, staged, timings,
                         progress)
        staged.commit()  # every file into place at once: an interrupted render leaves the earlier set
    except OSError as e:
        raise diskspace.no_space(e, out_dir, sum(need), _left_as_they_were(staged)) or RenderError(
            f"{e.filename or out_dir}: cannot write: {e.strerror}; {_left_as_they_were(staged)}") from None
    finally:
        staged.discard()
        staging.remove_work_dir(work)
    return result


def _left_as_they_were(staged: staging.Staged) -> str:
    """What a failed render did to the earlier outputs: nothing, unless a rename failed after others."""
    if not staged.committed:
        return "earlier outputs are left as they were"
    return (f"{staged.committed} of {staged.committed + len(staged.pending)} outputs were already replaced, "
            "the others are left as they were")


def _check_request(plan: Plan, out_dir: Path, formats, picture: bool) -> tuple:
    """Make sure the outputs can be written (folder, formats for a loop, a picture's source), sweep
    what an interrupted render left; return the formats to write."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RenderError(f"{out_dir}: cannot create the output folder: {e.strerror}") from None
    if not os.access(out_dir, os.W_OK | os.X_OK):
        raise RenderError(f"{out_dir}: the output folder is not writable; earlier outputs are left as they were")
    for name in staging.clean_stale(out_dir, plan.name):
        log.warning("removed %s, left behind by an interrupted render", out_dir / name)
    formats = tuple(formats or plan.master.formats)
    for fmt in formats:
        if plan.loop.seamless and not export.FORMATS[fmt].loops:
            raise RenderError(f"{plan.name}: {fmt} cannot loop without a gap (the encoder pads the start and end); "
                              "choose wav, flac, ogg or opus for a loop")
    if picture and not outputs.can_draw_picture(formats):
        raise RenderError(f"{plan.name}: a picture is drawn from the WAV or FLAC; add one of them to the formats")
    return formats


def _mix(plan: Plan, cache: ClipCache, work: Path, stems: bool, progress) -> _Mixed:
    """Pass 1: mix block by block into float files; beside the mixer, on the other core, meter the
    mix, write it and keep its true-peak envelope (a loop's is made afterwards, from the loop)."""
    ch = plan.channels
    mix = FloatFile(work / "mix.f32", ch)
    envelope = target.Envelope(mix, work)
    meter = LoudnessMeter(plan.sample_rate, ch)
    heard = audibility.Audibility(plan)
    stem_files = {}

    def keep(block):
        meter.add(block)
        mix.append(block)
        if not plan.loop.seamless:
            envelope.add(block)

    with Beside(keep) as beside, Beside(heard.add) as listener:
        for parts in mixer.render_parts(plan, cache, split=True):
            block = sum(parts.values())
            beside.put(block)
            listener.put(parts)
            if stems:
                for name, x in parts.items():
                    if name not in stem_files:
                        stem_files[name] = FloatFile(work / f"stem-{len(stem_files)}.f32", ch)
                    stem_files[name].append(x)
            if progress:
                progress("mixing", block.shape[0], plan.total_samples)
    envelope.finish()
    for f in [mix, *stem_files.values()]:
        f.close_writing()
    return _Mixed(mix, stem_files, envelope, meter.step_power, np.zeros(ch), heard)


def _mastering_progress(progress, frames: int):
    """The mastering passes' progress(attempt, n) as the render's phases."""
    if progress is None:
        return None
    return lambda attempt, n: progress("mastering" if attempt == 1 else f"mastering, try {attempt}", n, frames)


def _make_seamless(mixed: _Mixed, plan: Plan) -> _Mixed:
    """The loop pass: the mix's and each stem's end crossfaded into their start; the loop metered
    again without its DC."""
    loop.make_seamless([mixed.mix, *mixed.stems.values()], round(plan.loop.crossfade_s * plan.sample_rate))
    offset = loop.dc_offset(mixed.mix)
    meter = LoudnessMeter(plan.sample_rate, plan.channels)
    for block in mixed.mix.blocks(mixer.BLOCK_SAMPLES):
        meter.add(block - offset)
    return replace(mixed, step_power=meter.step_power, offset=offset)


def _export(plan: Plan, out_dir: Path, formats: tuple, picture: bool, mixed: _Mixed, master_wav: Path,
            mastered: target.MasterResult, span, staged: staging.Staged, timings: dict, progress=None) -> dict:
    """Every format from the float master, and stems; for a whole piece also the captions, the
    picture and the manifest, which is returned."""
    sr = plan.sample_rate
    seamless = plan.loop.seamless
    t0 = time.perf_counter()
    delivery = export.Delivery.from_plan(plan, first_sample=span[0] if span else 0,
                                         loop_samples=mixed.mix.frames if seamless else 0)
    stem = plan.name if span is None else f"{plan.name}.preview"
    done = None if progress is None else lambda: progress("writing files", 1, len(formats))
    written = export.write_formats(master_wav, out_dir, stem, formats, delivery, staged, done)
    if span is None and mixed.stems:
        written["stems"] = _write_stems(mixed.stems, out_dir, plan, delivery.channels, mastered.gain_db, seamless,
                                        staged)
    timings["export_s"] = time.perf_counter() - t0

    measured = manifest.Measured(mastered.mix_lufs, mastered.gain_db, mastered.loudness_lufs,
                                 mastered.true_peak_dbtp, mixed.mix.frames / sr, delivery.channels)
    if span is not None:
        return {"files": written, "span_s": [span[0] / sr, span[1] / sr], "measured": asdict(measured),
                "timings": timings}
    written.update(export.write_captions(out_dir, plan.name, plan.cues, plan.chapters, plan.title,
                                         plan.author or "Narrator", staged))
    heard = mixed.heard.report(mastered.gain_db)
    heard["warnings"] = audibility.warnings(heard, plan.score or plan.name)  # here, not among the plan's
    for w in heard["warnings"]:
        log.warning(w)
    json_path, png = out_dir / f"{plan.name}.json", out_dir / f"{plan.name}.png"
    written["json"] = str(json_path)
    if picture:
        written["png"] = str(png)
    result = manifest.build(plan, written, measured, timings, heard)
    if picture:
        from audio import picture as picture_module
        drawn_from = staged.temporary(written.get("wav") or written["flac"])
        picture_module.draw(manifest.overview(result), drawn_from, png, staged=staged)
    manifest.write(json_path, result, staged)
    return result


def _write_stems(stems: dict, out_dir: Path, plan: Plan, channels: int, gain_db: float, seamless: bool,
                 staged: staging.Staged) -> dict:
    """Each stem as float WAV of the mix's written ``channels``, with the master's gain and no
    limiter: together they sum to the mix (before the limiter; a loop's stems each lose their own
    DC, as the mix lost theirs together)."""
    gain = 10 ** (gain_db / 20)
    written = {}
    for name, f in stems.items():
        final = outputs.stem_path(out_dir, plan.name, name)
        offset = loop.dc_offset(f) if seamless else 0.0
        with staging.atomic_path(final, staged) as tmp:
            writer = export.FloatWriter(tmp, plan.sample_rate, channels)
            try:
                for block in f.blocks(mixer.BLOCK_SAMPLES):
                    writer.write((block - offset) * gain)
            finally:
                writer.close()
        written[name] = str(final)
    return written
