"""The `piece` command line. The only module that prints, exits or draws progress."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import signal
import sys
import time
from pathlib import Path

import click

from audio import __version__
from audio.errors import PieceError

log = logging.getLogger("audio")


class _Handler(logging.Handler):
    def emit(self, record):
        prefix = "Warning: " if record.levelno >= logging.WARNING else ""
        click.echo(prefix + record.getMessage(), err=True)


def _setup_logging(verbose: int, quiet: bool):
    log.handlers[:] = [_Handler()]
    log.setLevel(logging.ERROR if quiet else logging.INFO if verbose else logging.WARNING)
    log.propagate = False


def _bar(enabled: bool, length: int, label: str):
    if not enabled:
        return contextlib.nullcontext(None)
    return click.progressbar(length=length, label=label, file=sys.stderr, show_eta=True)


def _formats(value):
    if not value:
        return None
    from audio.score import FORMATS
    names = tuple(v.strip().lower() for v in value.split(",") if v.strip())
    for n in names:
        if n not in FORMATS:
            raise click.BadParameter(f"unknown format {n!r}; known: {', '.join(FORMATS)}")
    return names


DURATION_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0}


def _duration(value):
    """Seconds from "2h", "90m", "45s", "1:30:00" or plain seconds."""
    if value is None:
        return None
    unit = value[-1:].lower()
    if unit in DURATION_UNITS:
        try:
            return float(value[:-1]) * DURATION_UNITS[unit]
        except ValueError:
            raise click.BadParameter(f"expected e.g. 2h, 90m, 45s or [h:]mm:ss, got {value!r}") from None
    return _clock(value)


def _clock(value):
    """Seconds from "80", "80.5", "1:20" or "1:02:03.5"."""
    if value is None:
        return None
    try:
        parts = [float(p) for p in value.split(":")]
    except ValueError:
        raise click.BadParameter(f"expected seconds or [h:]mm:ss, got {value!r}") from None
    if len(parts) > 3 or any(p < 0 for p in parts):
        raise click.BadParameter(f"expected seconds or [h:]mm:ss, got {value!r}")
    seconds = 0.0
    for p in parts:
        seconds = seconds * 60 + p
    return seconds


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="piece")
def main():
    """Render a text and a score into a finished audio piece."""


class _Terminated(BaseException):
    """SIGTERM, raised in the main thread so every `finally` cleans up as for Ctrl-C."""


def _on_sigterm(signum, frame):
    raise _Terminated()


def _run(fn):
    """Run a command body; a PieceError becomes one `Error:` line and its exit code."""
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return fn()
    except PieceError as e:
        click.echo(f"Error: {e}", err=True)
        sys.exit(e.exit_code)
    except (KeyboardInterrupt, _Terminated) as e:
        click.echo("Interrupted: earlier outputs are left as they were.", err=True)
        sys.exit(143 if isinstance(e, _Terminated) else 130)
    finally:
        signal.signal(signal.SIGTERM, previous)


@main.command()
@click.argument("scores", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("output"),
              show_default=True, help="Folder for the rendered files.")
@click.option("--format", "formats", help="Comma-separated formats (wav,flac,mp3,ogg); overrides the score.")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), envvar="PIECE_CACHE_DIR",
              help="Speech clip cache, spoken and voiced (default ~/.cache/piece, or $PIECE_CACHE_DIR).")
@click.option("--preset", type=click.Choice(["podcast", "podcast-mono", "broadcast", "streaming"]),
              help="Loudness preset; the score's explicit master keys still win.")
@click.option("--mp3", "mp3_mode", metavar="MODE", help="MP3 mode: cbr192, cbr128, vbr0 .. vbr9.")
@click.option("--stems", is_flag=True, help="Also write the voice and each layer as float WAV stems that sum to the mix.")
@click.option("--loop", "seamless", is_flag=True, default=None,
              help="Make the file loop without a seam (WAV/FLAC/OGG/Opus; MP3 is refused).")
@click.option("--duration", metavar="LENGTH", help="Long form: render this long (2h, 90m, 1:30:00); the ambience goes on.")
@click.option("--picture", is_flag=True, help="Also draw NAME.png: waveform, timeline and spectrogram.")
@click.option("--from", "from_", metavar="TIME", help="Preview: start of the span to write ([h:]mm:ss or seconds).")
@click.option("--to", metavar="TIME", help="Preview: end of the span to write.")
@click.option("-q", "--quiet", is_flag=True, help="Print errors only.")
@click.option("-v", "--verbose", count=True, help="Print timings and details.")
def render(scores, out_dir, formats, cache_dir, preset, mp3_mode, stems, seamless, duration, picture, from_, to,
           quiet, verbose):
    """Render SCORES (TOML files) to audio, captions and a manifest.

    A manifest (NAME.json, written by an earlier render) in place of a score renders its plan
    again: the same audio, speech from the cache or spoken again from the recorded settings.

    With --from/--to, write only that span as NAME.preview.FORMAT: the same samples the full
    render has there (the whole piece is still mixed and measured for its loudness).
    """
    _setup_logging(verbose, quiet)
    fmts = _formats(formats)
    duration_s = _duration(duration)
    start_s, end_s = _clock(from_), _clock(to)
    if start_s is not None or end_s is not None:
        start_s = start_s or 0.0
        if end_s is not None and end_s <= start_s:
            raise click.BadParameter(f"--to ({to}) must be after --from ({from_})", param_hint="--to")

    def body():
        from audio import plan as plan_module
        from audio import render as render_module
        from audio import score as score_module
        from audio import script
        from audio.speech.cache import ClipCache
        cache = ClipCache(cache_dir / "tts" if cache_dir else None)
        show = sys.stderr.isatty() and not quiet
        for path in scores:
            t0 = time.perf_counter()
            cache.synthesized = cache.hits = cache.voiced_made = cache.voiced_hits = 0
            if path.suffix.lower() == ".json":  # a manifest: render its plan again
                for flag, given in (("--preset", preset), ("--loop", seamless), ("--duration", duration)):
                    if given:
                        raise click.BadParameter(f"{flag} changes the plan; it applies to a score, not to the "
                                                 f"manifest {path}", param_hint=flag)
                plan = plan_module.read_manifest(path)
                plan.master = dataclasses.replace(plan.master, mp3=mp3_mode or plan.master.mp3,
                                                  formats=fmts or plan.master.formats)
                score_module.check_master(plan.master, plan.loop, str(path))
            else:
                sc = score_module.with_options(score_module.load(path), preset=preset, mp3=mp3_mode,
                                               seamless=seamless or None, duration_s=duration_s, formats=fmts)
                n_sentences = len(script.parse(sc.text, sc.piece.title_line))
                with _bar(show, n_sentences, f"{sc.name}: speaking") as bar:
                    plan = plan_module.resolve(sc, cache, progress=None if bar is None else bar.update)
                for w in plan.warnings:
                    log.warning(w)
            span_s = None
            if start_s is not None:
                if start_s >= plan.duration_s:
                    raise click.BadParameter(f"{from_} is past the end of {plan.name} ({plan.duration_s:.1f} s)",
                                             param_hint="--from")
                span_s = (start_s, min(end_s or plan.duration_s, plan.duration_s))
            with _bar(show, plan.total_samples, f"{plan.name}: mixing") as bar:
                manifest = render_module.render(plan, cache, out_dir, progress=None if bar is None else bar.update,
                                                span_s=span_s, stems=stems, picture=picture)
            m = manifest["measured"]
            if not quiet:
                what = f"{span_s[0]:.1f}–{span_s[1]:.1f} s of {plan.duration_s:.1f} s" if span_s else \
                    f"{plan.duration_s:.1f} s"
                click.echo(f"{plan.name}: {what}, {m['loudness_lufs']:.1f} LUFS, "
                           f"{m['true_peak_dbtp']:.1f} dBTP → "
                           + ", ".join(Path(p).name for p in manifest["files"].values() if isinstance(p, str))
                           + f" ({time.perf_counter() - t0:.1f} s)")
            log.info("%s: %d clips synthesized, %d cache reads; %d clips put through effects, %d from the cache; "
                     "timings %s", plan.name, cache.synthesized, cache.hits, cache.voiced_made, cache.voiced_hits,
                     {k: round(v, 2) for k, v in manifest["timings"].items()})
    _run(body)


@main.command()
@click.argument("scores", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), envvar="PIECE_CACHE_DIR")
def validate(scores, cache_dir):
    """Check SCORES without rendering audio (speech is synthesized to learn its timing)."""
    _setup_logging(0, False)

    def body():
        from audio import plan as plan_module
        from audio import score as score_module
        from audio.speech.cache import ClipCache
        cache = ClipCache(cache_dir / "tts" if cache_dir else None)
        for path in scores:
            plan = plan_module.resolve(score_module.load(path), cache)
            for w in plan.warnings:
                log.warning(w)
            click.echo(f"{path}: ok ({len(plan.cues)} sentences, {len(plan.layers)} layers, "
                       f"{plan.duration_s:.1f} s)")
    _run(body)


@main.command()
@click.argument("score", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), envvar="PIECE_CACHE_DIR")
def plan(score, cache_dir):
    """Print the resolved timeline of SCORE: every sentence and layer with its times."""
    _setup_logging(0, False)

    def body():
        from audio import plan as plan_module
        from audio import score as score_module
        from audio.speech.cache import ClipCache
        p = plan_module.resolve(score_module.load(score), ClipCache(cache_dir / "tts" if cache_dir else None))
        click.echo(f"{p.name}: {p.duration_s:.2f} s at {p.sample_rate} Hz, {p.channels} channel(s)")
        for lp in p.layers:
            click.echo(f"  layer {lp.name!r:24} {lp.start_s:9.2f} → {lp.end_s:9.2f}  {lp.source} {lp.gain_db:+.1f} dB")
        for c in p.cues:
            click.echo(f"  {c.start_s:9.2f} → {c.end_s:9.2f}  {c.text}")
    _run(body)


@main.command()
@click.option("--lang", help="Only voices whose language starts with this (e.g. en).")
@click.option("--variants", is_flag=True, help="List the voice variants (append as +NAME).")
def voices(lang, variants):
    """List the voice ids usable in a score."""
    def body():
        from audio.speech.engine import engines
        if variants:
            click.echo("Variants (use as en-us+NAME):")
            click.echo("  " + " ".join(engines["espeak"].variants()))
            return
        for engine in engines.values():
            click.echo(f"# {engine.name}: {engine.version}; licence {engine.licence}")
            for v in engine.voices():
                if lang and not any(code.lower().startswith(lang.lower()) for code in v.languages):
                    continue
                licence = f"  licence: {v.licence}" if v.licence else ""
                click.echo(f"{engine.name:7} {', '.join(v.languages):24} {v.id:24} {v.rate_hz or '?':>5} Hz  "
                           f"{v.name}{licence}")
            if not engine.voices() and getattr(engine, "missing_note", None):
                click.echo(f"{engine.name:7} {engine.missing_note()}")
    _run(body)


def _list_table(entries, movable=lambda name: ()):
    """Generators or effects with their parameters, from the same table that validates them;
    parameters that can be envelopes are marked ~."""
    for entry in entries:
        click.echo(f"{entry.name}: {entry.doc}")
        for p in entry.params:
            rng = f" [{p.min:g}..{p.max:g}]" if p.min is not None and p.max is not None else ""
            choices = f" [{' | '.join(map(str, p.choices))}]" if p.choices else ""
            mark = "~" if p.name in movable(entry.name) else " "
            click.echo(f"  {mark} {p.name} = {p.default!r}{rng}{choices}  {p.doc}")
        click.echo()


@main.command()
def sources():
    """List the sound generators and their parameters (those marked ~ can be envelopes)."""
    from audio import sources as sources_module
    _list_table(sources_module.SOURCES.values(), sources_module.automatable)


@main.command()
def effects():
    """List the effects for [voice].effects, [[cue]].effects and [[layer]].effects."""
    from audio import effects as effects_module
    _list_table(effects_module.EFFECTS.values())


@main.command()
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("output"),
              show_default=True, help="Where a score's render is looked for.")
@click.option("--no-measure", is_flag=True, help="Skip decoding an audio file for its loudness and true peak.")
def info(path, out_dir, no_measure):
    """Describe an audio file (duration, loudness, true peak, tags, chapters, loop) or a score's render."""
    def body():
        from audio import info as info_module
        if path.suffix.lower() == ".toml":
            from audio import score as score_module
            sc = score_module.load(path)
            manifest = out_dir / f"{sc.name}.json"
            if not manifest.exists():
                raise PieceError(f"{path}: not rendered yet: {manifest} does not exist (run `piece render {path}`)")
            click.echo(info_module.table(info_module.describe_score(manifest)))
        else:
            click.echo(info_module.table(info_module.describe(path, measure=not no_measure)))
    _run(body)
