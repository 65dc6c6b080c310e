"""The `piece` command line. The only module that prints, exits or draws progress."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import signal
import sys
import time
from pathlib import Path

import click

from audio import __version__
from audio.errors import PieceError, ScoreError, printable, score_error

log = logging.getLogger("audio")


class _Handler(logging.Handler):
    def emit(self, record):
        prefix = "Warning: " if record.levelno >= logging.WARNING else ""
        click.echo(prefix + printable(record.getMessage()), err=True)


def _setup_logging(verbose: int, quiet: bool):
    log.handlers[:] = [_Handler()]
    log.setLevel(logging.ERROR if quiet else logging.INFO if verbose else logging.WARNING)
    log.propagate = False


def _bar(enabled: bool, length: int, label: str):
    if not enabled:
        return contextlib.nullcontext(None)
    return click.progressbar(length=length, label=label, file=sys.stderr, show_eta=True)


def _non_negative(text: str) -> float | None:
    try:
        x = float(text)
    except ValueError:
        return None
    return x if math.isfinite(x) and x >= 0 else None


class Clock(click.ParamType):
    """A time in seconds from "80", "80.5", "1:20" or "1:02:03.5"."""

    name = "time"
    expected = "seconds or [h:]mm:ss"

    def seconds(self, text: str) -> float | None:
        parts = [_non_negative(p) for p in text.split(":")]
        if len(parts) > 3 or None in parts:
            return None
        seconds = 0.0
        for p in parts:
            seconds = seconds * 60 + p
        return seconds if math.isfinite(seconds) else None

    def convert(self, value, param, ctx):
        if isinstance(value, float):
            return value
        seconds = self.seconds(value)
        if seconds is None:
            self.fail(f"expected {self.expected}, got {value!r}", param, ctx)
        return seconds


class Duration(Clock):
    """A length in seconds from "2h", "90m", "45s", "1:30:00" or plain seconds."""

    name = "length"
    expected = "e.g. 2h, 90m, 45s or [h:]mm:ss"
    UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0}

    def seconds(self, text: str) -> float | None:
        unit = text[-1:].lower()
        if unit not in self.UNITS:
            return super().seconds(text)
        number = _non_negative(text[:-1])
        seconds = math.nan if number is None else number * self.UNITS[unit]
        return seconds if math.isfinite(seconds) else None


class FormatList(click.ParamType):
    """Output formats from "wav,mp3" (case and spaces ignored, each once)."""

    name = "formats"

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        from audio.schema import suggest
        from audio.score import FORMATS
        names = tuple(dict.fromkeys(v.strip().lower() for v in value.split(",") if v.strip()))
        if not names:
            self.fail(f"expected formats such as wav,mp3, got {value!r}", param, ctx)
        for n in names:
            if n not in FORMATS:
                self.fail(f"unknown format {n!r}{suggest(n, FORMATS)} (known: {', '.join(FORMATS)})", param, ctx)
        return names


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="piece")
def main():
    """Render a text and a score into a finished audio piece."""
    _standard_streams()
    if getattr(sys.stdout, "errors", None) == "strict" and hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(errors="backslashreplace")  # a file name that is not UTF-8 prints as stderr shows it


def _standard_streams():
    """Started with stdin, stdout or stderr closed (`2>&-`, as under some daemons): /dev/null in their
    place, so messages go nowhere and no file the render opens takes descriptor 0, 1 or 2 (where a
    library's or ffmpeg's messages would land in it)."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
    for name in ("stdout", "stderr"):
        if getattr(sys, name) is None:
            setattr(sys, name, open(os.devnull, "w"))


class _Terminated(BaseException):
    """SIGTERM or SIGHUP, raised in the main thread so every `finally` cleans up as for Ctrl-C."""

    def __init__(self, signum=signal.SIGTERM):
        super().__init__(signum)
        self.signum = signum


_STOPS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)  # Ctrl-C, kill, a closed terminal


def _on_sigterm(signum, frame):
    """The first stop: cleanup begins; another stop while it runs (Ctrl-C twice), or while the
    process exits, is ignored: the cleanup goes on and the command exits as it ends."""
    _ignore_stops()
    if signum == signal.SIGINT:
        raise KeyboardInterrupt()
    raise _Terminated(signum)


def _ignore_stops():
    for s in _STOPS:  # SIG_IGN, not a Python handler: Python's exit puts those back to the default
        signal.signal(s, signal.SIG_IGN)


def _run(fn):
    """Run a command body; a PieceError becomes one `Error:` line and its exit code. A stop (Ctrl-C,
    SIGTERM, SIGHUP) cleans up and exits 128 + the signal's number, with one line."""
    previous = {s: signal.signal(s, _on_sigterm) for s in _STOPS}
    stopped = False
    try:
        return fn()
    except PieceError as e:
        click.echo(f"Error: {printable(str(e))}", err=True)
        sys.exit(e.exit_code)
    except click.ClickException as e:  # a usage error, shown by click: its text escaped as ours is
        e.message = printable(e.message)
        raise
    except (KeyboardInterrupt, _Terminated) as e:
        stopped = True  # stops stay ignored: one during the exit's own cleanup (atexit) is no traceback
        _ignore_stops()
        click.echo("Interrupted: earlier outputs are left as they were.", err=True)
        sys.exit(128 + (e.signum if isinstance(e, _Terminated) else signal.SIGINT))
    finally:
        if not stopped:
            for s, handler in previous.items():
                signal.signal(s, handler)


def _cache_dir_option(f):
    return click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), envvar="PIECE_CACHE_DIR",
                        help="Speech clip cache, spoken and voiced (default ~/.cache/piece, or $PIECE_CACHE_DIR).")(f)


def _render_options(f):
    """The options of `render` and `watch`."""
    options = [
        click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("output"),
                     show_default=True, help="Folder for the rendered files, relative to the current folder."),
        click.option("--format", "fmts", type=FormatList(),
                     help="Comma-separated formats (wav,flac,mp3,ogg,opus,m4a,m4b); overrides the score."),
        _cache_dir_option,
        click.option("--preset", type=click.Choice(["podcast", "podcast-mono", "broadcast", "streaming"]),
                     help="Make this deliverable: podcast (-16 LUFS, two channels), podcast-mono (a mono mix, "
                          "written as two identical channels), broadcast (-23 LUFS), streaming (-14 LUFS); "
                          "it replaces the score's loudness, ceiling and channels, with a warning."),
        click.option("--mp3", "mp3_mode", metavar="MODE",
                     help="MP3 mode: cbr32 .. cbr320 (constant kbit/s) or vbr0 .. vbr9 (LAME quality, 0 best)."),
        click.option("--stems", is_flag=True,
                     help="Also write the voice and each layer as float WAV stems that sum to the mix."),
        click.option("--loop", "seamless", is_flag=True, default=None,
                     help="Make the file loop without a seam (WAV/FLAC/OGG/Opus; MP3, M4A and M4B are refused)."),
        click.option("--duration", "duration_s", type=Duration(), metavar="LENGTH",
                     help="Long form: render this long (2h, 90m, 1:30:00); the ambience goes on."),
        click.option("--picture", is_flag=True, help="Also draw NAME.png: waveform, timeline and spectrogram, "
                     "from the WAV or FLAC (one of them must be among the formats)."),
        click.option("--from", "start_s", type=Clock(), metavar="TIME",
                     help="Preview: start of the span to write ([h:]mm:ss or seconds)."),
        click.option("--to", "end_s", type=Clock(), metavar="TIME", help="Preview: end of the span to write."),
        click.option("-q", "--quiet", is_flag=True, help="Print errors only."),
        click.option("-v", "--verbose", count=True, help="Print timings and details."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


@dataclasses.dataclass(frozen=True)
class _Request:
    """What `render` or `watch` was asked to make of each score."""

    out_dir: Path
    fmts: tuple | None
    preset: str | None
    mp3_mode: str | None
    stems: bool
    seamless: bool | None
    duration_s: float | None
    picture: bool
    start_s: float | None
    end_s: float | None
    quiet: bool


def _request(out_dir, fmts, preset, mp3_mode, stems, seamless, duration_s, picture, start_s, end_s, quiet,
             verbose) -> _Request:
    _setup_logging(verbose, quiet)
    if start_s is not None or end_s is not None:
        start_s = start_s or 0.0
        if end_s is not None and end_s <= start_s:
            raise click.BadParameter(f"{end_s:g} s is not after --from ({start_s:g} s)", param_hint="--to")
    return _Request(out_dir, fmts, preset, mp3_mode, stems, seamless, duration_s, picture, start_s, end_s, quiet)


class _Phases:
    """One progress bar per phase of a render (mixing, mastering, writing files), each to its total."""

    def __init__(self, name: str):
        self.name, self.phase, self.bar = name, None, None

    def __call__(self, phase: str, n: int, total: int):
        if phase != self.phase:
            self.close()
            self.phase = phase
            self.bar = click.progressbar(length=total, label=f"{self.name}: {phase}", file=sys.stderr,
                                         show_eta=True).__enter__()
        self.bar.update(n)

    def close(self):
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


def _check_picture(request: _Request, formats: tuple, file: str):
    """--picture draws from the written WAV or FLAC: refused before any work when neither is written."""
    from audio import outputs
    if request.picture and not outputs.can_draw_picture(formats):
        given = "--format" if request.fmts else "master.formats"
        raise score_error(file, "--picture", f"the picture is drawn from the WAV or FLAC, and {given} gives "
                          f"{','.join(formats)}; add wav or flac (e.g. --format {','.join(formats)},flac)")


def _render_one(path: Path, request: _Request, cache):
    """Render one score (or a manifest's plan) and print its line: length, loudness, true peak, the
    files and their sizes."""
    from audio import export, info
    from audio import manifest as manifest_module
    from audio import outputs
    from audio import plan as plan_module
    from audio import render as render_module
    from audio import score as score_module
    show = sys.stderr.isatty() and not request.quiet
    t0 = time.perf_counter()
    cache.synthesized = cache.hits = cache.voiced_made = cache.voiced_hits = 0
    if path.suffix.lower() == ".json":  # a manifest: render its plan again
        for flag, given in (("--preset", request.preset), ("--loop", request.seamless),
                            ("--duration", request.duration_s)):
            if given:
                raise click.BadParameter(f"{flag} changes the plan; it applies to a score, not to the "
                                         f"manifest {path}", param_hint=flag)
        plan = manifest_module.read_plan(path)
        plan.master = dataclasses.replace(plan.master, mp3=request.mp3_mode or plan.master.mp3,
                                          formats=request.fmts or plan.master.formats)
        score_module.check_master(plan.master, plan.loop, str(path))
        layers = [(f"layers[{i}]", lp.name) for i, lp in enumerate(plan.layers)]
        outputs.check_layer_names(layers, str(path))
        _check_outputs(request, plan.name, plan.master.formats, layers, outputs.plan_inputs(plan), str(path))
        _check_picture(request, plan.master.formats, str(path))
    else:
        sc = score_module.with_options(score_module.load(path), preset=request.preset, mp3=request.mp3_mode,
                                       seamless=request.seamless or None, duration_s=request.duration_s,
                                       formats=request.fmts)
        _check_outputs(request, sc.name, sc.master.formats, [(la.where, la.name) for la in sc.layers],
                       outputs.score_inputs(sc), str(path))
        _check_picture(request, sc.master.formats, str(path))
        n_sentences = len(plan_module.sentences_of(sc))
        with _bar(show, n_sentences, f"{sc.name}: speaking") as bar:
            plan = plan_module.resolve(sc, cache, progress=None if bar is None else bar.update)
        for w in plan.warnings:
            log.warning(w)
    span_s = None
    if request.start_s is not None:
        if request.start_s >= plan.duration_s:
            raise click.BadParameter(f"{request.start_s:g} s is past the end of {plan.name} ({plan.duration_s:.1f} s)",
                                     param_hint="--from")
        span_s = (request.start_s, min(request.end_s or plan.duration_s, plan.duration_s))
    phases = _Phases(plan.name) if show else None
    try:
        manifest = render_module.render(plan, cache, request.out_dir, progress=phases, span_s=span_s,
                                        stems=request.stems, picture=request.picture)
    finally:
        if phases:
            phases.close()
    m = manifest["measured"]
    files = {kind: Path(f) for kind, f in manifest["files"].items() if isinstance(f, str)}
    sizes = {kind: f.stat().st_size for kind, f in files.items() if kind in export.FORMATS}  # the audio's
    if not request.quiet:
        what = f"{span_s[0]:.1f}–{span_s[1]:.1f} s of {plan.duration_s:.1f} s" if span_s else \
            f"{plan.duration_s:.1f} s"
        click.echo(f"{plan.name}: {what}, {m['loudness_lufs']:.1f} LUFS, {m['true_peak_dbtp']:.1f} dBTP → "
                   + ", ".join(f.name + (f" ({info.size_text(sizes[kind])})" if kind in sizes else "")
                               for kind, f in files.items())
                   + f" ({time.perf_counter() - t0:.1f} s)")
    if sizes.get("mp3", 0) > export.PODCAST_MAX_BYTES:
        fits = export.mp3_mode_that_fits(m["duration_s"])
        log.warning(f"{plan.name}: the MP3 is {info.size_text(sizes['mp3'])}, over the "
                    f"{info.size_text(export.PODCAST_MAX_BYTES)} many podcast hosts take; "
                    + (f"--mp3 {fits} fits" if fits else "no MP3 mode fits: split the piece"))
    log.info("%s: %d clips synthesized, %d cache reads; %d clips put through effects, %d from the cache; "
             "timings %s", plan.name, cache.synthesized, cache.hits, cache.voiced_made, cache.voiced_hits,
             {k: round(v, 2) for k, v in manifest["timings"].items()})


def _check_outputs(request: _Request, name: str, formats, layers: list, inputs: list, file: str):
    """Before any audio work: the stems' names are their own, and no output replaces a file the
    piece reads or stands where a folder is."""
    from audio import outputs
    if request.stems and request.start_s is None:
        outputs.check_stem_names(layers, file)
    paths = outputs.planned(request.out_dir, name, formats, [n for _, n in layers],
                            preview=request.start_s is not None, stems=request.stems, picture=request.picture)
    outputs.check(paths, inputs, file)


def _check_names_differ(scores):
    """Two scores of one name would write the same files, the second over the first: refuse before
    rendering either."""
    from audio import manifest as manifest_module
    from audio.files.staging import safe_name
    seen = {}
    for path in scores:
        if path.suffix.lower() == ".json":
            try:
                name = manifest_module.read(path).get("name")
            except PieceError:
                continue  # its render says what is wrong with it
        else:
            name = safe_name(path.stem, "piece")
        if not isinstance(name, str):
            continue
        if name in seen:
            first = seen[name]
            what = "is given twice" if first.resolve() == path.resolve() else \
                f'writes the same files as {first}, given before it (both are named "{name}")'
            raise ScoreError(f"{what}; render scores of one name into different folders (-o), one command each",
                             path)
        seen[name] = path


def _clip_cache(cache_dir):
    from audio.speech.cache import ClipCache
    return ClipCache(cache_dir / "tts" if cache_dir else None)


@main.command()
@click.argument("scores", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@_render_options
def render(scores, cache_dir, **options):
    """Render SCORES (TOML files) to audio, captions and a manifest.

    A manifest (NAME.json, written by an earlier render) in place of a score renders its plan
    again: the same audio, speech from the cache or spoken again from the recorded settings.

    With --from/--to, write only that span as NAME.preview.FORMAT: the same samples the full
    render has there (the whole piece is still mixed and measured for its loudness).
    """
    request = _request(**options)

    def body():
        _check_names_differ(scores)
        cache = _clip_cache(cache_dir)
        for path in scores:
            _render_one(path, request, cache)
    _run(body)


@main.command()
@click.argument("score", type=click.Path(dir_okay=False, path_type=Path))
@_render_options
def watch(score, cache_dir, **options):
    """Render SCORE, then again each time it, its text, cover or samples are saved (Ctrl-C stops).

    Takes the options of `render`: with --from/--to each save renders only that preview span.
    An error is printed and the watch goes on, waiting for the next save.
    """
    from audio import watch as watch_module
    request = _request(**options)

    def body():
        cache = _clip_cache(cache_dir)
        while True:
            files = watch_module.files_of(score)
            before = watch_module.stamps(files)
            try:
                _render_one(score, request, cache)
            except PieceError as e:
                click.echo(f"Error: {printable(str(e))}", err=True)
            if not request.quiet:
                click.echo(f"Watching {', '.join(f.name for f in files)}; Ctrl-C stops.", err=True)
            watch_module.wait_for_change(files, before)
    _run(body)


@main.command()
@click.argument("name", required=False)
@click.option("--example", metavar="PIECE",
              help="Start from a piece that ships with piece (the-permanent-thing, the-loss-landscape-has-teeth; "
                   "the leading the- may be left out).")
@click.option("-d", "--dir", "folder", type=click.Path(file_okay=False, path_type=Path), default=Path("."),
              show_default=True, help="Folder to write NAME.toml and NAME.txt into.")
def new(name, example, folder):
    """Write NAME.toml, a commented score, and NAME.txt, its text, to start a piece from.

    Then `piece render NAME.toml` (or `piece watch NAME.toml`). Existing files are never overwritten.
    """
    def body():
        from audio import examples
        if name is None and example is None:
            raise click.UsageError("give a NAME for the new piece, or --example PIECE")
        written = examples.write_new(name or examples.find(example), folder, example)
        click.echo("Wrote " + " and ".join(str(p) for p in written) + f"; next: piece render {written[0]}")
    _run(body)


@main.command()
@click.argument("scores", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@_cache_dir_option
def validate(scores, cache_dir):
    """Check SCORES without rendering audio (speech is synthesized to learn its timing)."""
    _setup_logging(0, False)

    def body():
        from audio import plan as plan_module
        from audio import score as score_module
        cache = _clip_cache(cache_dir)
        for path in scores:
            plan = plan_module.resolve(score_module.load(path), cache)
            for w in plan.warnings:
                log.warning(w)
            click.echo(f"{path}: ok ({len(plan.cues)} sentences, {len(plan.layers)} layers, "
                       f"{plan.duration_s:.1f} s)")
    _run(body)


@main.command()
@click.argument("score", type=click.Path(dir_okay=False, path_type=Path))
@_cache_dir_option
def plan(score, cache_dir):
    """Print the resolved timeline of SCORE: every sentence and layer with its times."""
    _setup_logging(0, False)

    def body():
        from audio import plan as plan_module
        from audio import score as score_module
        p = plan_module.resolve(score_module.load(score), _clip_cache(cache_dir))
        click.echo(f"{p.name}: {p.duration_s:.2f} s at {p.sample_rate} Hz, {p.channels} channel(s)")
        for lp in p.layers:
            click.echo(f"  layer {lp.name!r:24} {lp.start_s:9.2f} → {lp.end_s:9.2f}  {lp.source} {lp.gain_db:+.1f} dB")
        for c in p.cues:
            click.echo(f"  {c.start_s:9.2f} → {c.end_s:9.2f}  {c.text}")
    _run(body)


@main.command()
@click.argument("text")
@click.option("--voice", "voice_name", metavar="VOICE", help="Voice to speak in (as [voice].name takes it); "
              "default the score's, else en-us.")
@click.option("--score", "score_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Speak through this score: its voice, [[speaker]] labels and [[say]] entries.")
@click.option("-o", "--out", "out_path", type=click.Path(dir_okay=False, path_type=Path), default=Path("say.wav"),
              show_default=True, help="The WAV file to write.")
@_cache_dir_option
def say(text, voice_name, score_path, out_path, cache_dir):
    """Speak TEXT to a WAV file; print what the engine is handed and its phonemes.

    With --score, TEXT is read as the score reads its text: its [[say]] entries (those whose `in`
    TEXT matches), the reading rules, and "NAME:" labels of its speakers.
    """
    def body():
        from audio import audition
        from audio import score as score_module
        from audio.speech.cache import ClipCache
        sc = score_module.load(score_path) if score_path else None
        said = audition.audition(text, ClipCache(cache_dir / "tts" if cache_dir else None), sc, voice_name)
        for s in said:
            who = f"{s.speaker}: " if s.speaker else ""
            click.echo(f"{who}{s.text}")
            if s.spoken != s.text:
                click.echo(f"  spoken:   {s.spoken}")
            click.echo(f"  phonemes: {s.phonemes}")
        length_s = audition.write_wav(out_path, said, sc.pauses.sentence if sc else audition.DEFAULT_PAUSE_S)
        click.echo(f"→ {out_path} ({length_s:.1f} s)")
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
        every = [v for engine in engines.values() for v in engine.voices()]
        matches = [v for v in every if not lang or any(code.lower().startswith(lang.lower()) for code in v.languages)]
        if not matches:
            from audio.schema import suggest
            codes = sorted({code for v in every for code in v.languages})
            raise click.BadParameter(f"no voice speaks a language starting with {lang!r}{suggest(lang, codes)} "
                                     "(`piece voices` lists them all)", param_hint="--lang")
        for engine in engines.values():
            click.echo(f"# {engine.name}: {engine.version}; licence {engine.licence}")
            for v in engine.voices():
                if v not in matches:
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
    from audio.schema import show_value
    for entry in entries:
        click.echo(f"{entry.name}: {entry.doc}")
        for p in entry.params:
            rng = f" [{p.min:g}..{p.max:g}]" if p.min is not None and p.max is not None else ""
            choices = f" [{' | '.join(map(str, p.choices))}]" if p.choices else ""
            mark = "~" if p.name in movable(entry.name) else " "
            click.echo(f"  {mark} {p.name} = {show_value(p.default)}{rng}{choices}  {p.doc}")
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
              show_default=True, help="Where a score's render is looked for, relative to the current folder.")
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
