"""Describe finished audio: what a file is, how loud it measures, its tags, chapters and loops.

``describe`` reads any file the project writes (WAV, FLAC, MP3, Ogg Vorbis, Ogg Opus, M4A,
M4B), telling the format from the file's first bytes, not its name. Loudness and true peak are measured by
decoding the whole file block by block with the project's own meters (``audio.master``):
WAV and FLAC through soundfile, the lossy formats through the bundled ffmpeg writing raw float32
to a pipe. Memory stays flat for any length. ``describe_score`` summarises a render's JSON
manifest; ``table`` prints either as a two-column text table.

Every failure raises RenderError naming the file and the reason (a broken manifest, ScoreError);
a file that is not what it reads raises InputError (exit 2, bad input).
"""

from __future__ import annotations

import math
from dataclasses import asdict
from pathlib import Path

import numpy as np

from audio import manifest
from audio.clock import clock
from audio.errors import InputError
from audio.files import ffmpeg, reading, riff
from audio.files import tags as file_tags
from audio.files.fsname import sndfile_name

BLOCK_FRAMES = 1 << 16  # frames decoded per block: ~1.5 s at 44.1 kHz, 1 MiB of float64 stereo
OPUS_DECODE_RATE_HZ = 48000  # Opus always decodes at 48 kHz (RFC 7845 5.1)
DESCRIBE_KEYS = ("path", "format", "codec", "subtype", "sample_rate_hz", "channels", "n_frames", "duration_s",
                 "bit_depth", "bitrate_kbps", "bitrate_mode", "file_bytes", "loudness_lufs", "true_peak_dbtp",
                 "tags", "cover", "chapters", "loops", "warnings")
SUBTYPE_BITS = {"PCM_S8": 8, "PCM_U8": 8, "PCM_16": 16, "PCM_24": 24, "PCM_32": 32, "FLOAT": 32,
                "DOUBLE": 64, "ULAW": 8, "ALAW": 8}
KEY_COLUMN_CHARS = 30  # the table's key column; a longer key pushes its own value right
ITEM_LABEL_CHARS = 24  # a chapter or layer title longer than this is cut with an ellipsis


# ---------------------------------------------------------------- what kind of file

def sniff(path: Path) -> str:
    """``"wav"``, ``"flac"``, ``"mp3"``, ``"ogg"``, ``"m4a"`` or ``"m4b"`` (an MP4 of brand ``M4B``)
    from the file's first bytes.

    Raises RenderError naming the file when it is missing, a folder, unreadable, empty, or none of
    these (an Ogg file is told apart into Vorbis and Opus later, by its first packet).
    """
    path = Path(path)
    try:
        with reading.open_regular(path) as f:  # a named pipe or a device is refused, not waited on
            head = f.read(16)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a folder, not an audio file") from None
    except OSError as e:
        raise InputError(f"{path}: cannot read the file: {e.strerror or e}") from None
    if not head:
        raise InputError(f"{path}: the file is empty, not audio")
    if head[:4] in (b"RIFF", b"RF64", b"BW64") and head[8:12] == b"WAVE":
        return "wav"
    if head[:4] == b"fLaC":
        return "flac"
    if head[:4] == b"OggS":
        return "ogg"
    if head[:3] == b"ID3" or (len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "mp3"
    if head[4:8] == b"ftyp":
        return "m4b" if head[8:12] == b"M4B " else "m4a"
    raise InputError(f"{path}: not a WAV, FLAC, MP3, Ogg Vorbis, Ogg Opus, M4A or M4B file "
                      f"(it starts with {head[:8]!r})")


# ---------------------------------------------------------------- measuring

def measure_blocks(blocks, rate_hz: int, channels: int) -> dict:
    """Integrated loudness, true peak and frame count of an iterable of float blocks (n, channels)."""
    from audio.master import LoudnessMeter, TruePeakMeter

    loudness = LoudnessMeter(rate_hz, channels)
    peak = TruePeakMeter(channels)
    n_frames = 0
    for block in blocks:
        if block.shape[0] == 0:
            continue
        block = np.asarray(block, dtype=np.float64)
        loudness.add(block)
        peak.add(block)
        n_frames += block.shape[0]
    return {"loudness_lufs": loudness.integrated_lufs(), "true_peak_dbtp": peak.dbtp(), "n_frames": n_frames}


def soundfile_blocks(path: Path, block_frames: int = BLOCK_FRAMES):
    """Float64 blocks (n, channels) of a WAV or FLAC file, read one at a time."""
    import soundfile as sf

    yield from sf.blocks(sndfile_name(path), blocksize=block_frames, dtype="float64", always_2d=True)


# ---------------------------------------------------------------- per format

def describe_lossless(path: Path, kind: str) -> dict:
    """Stream facts, tags, chapters and loops of a WAV or FLAC file."""
    import soundfile as sf

    try:
        sfi = sf.info(sndfile_name(path))
    except (RuntimeError, sf.LibsndfileError) as e:
        raise InputError(f"{path}: not a readable {kind.upper()} file: {e}") from None
    bits = SUBTYPE_BITS.get(sfi.subtype)
    info = {"format": kind, "codec": "flac" if kind == "flac" else wav_codec(sfi.subtype),
            "subtype": sfi.subtype, "sample_rate_hz": sfi.samplerate, "channels": sfi.channels,
            "n_frames": sfi.frames, "duration_s": sfi.frames / sfi.samplerate, "bit_depth": bits,
            "bitrate_kbps": None, "bitrate_mode": "lossless"}
    loops = []
    if kind == "wav":
        if bits:
            info["bitrate_kbps"] = sfi.samplerate * sfi.channels * bits / 1000
        found, loops = wav_chunks(path)
    else:
        flac = load_mutagen(path, "flac")
        info["bitrate_kbps"] = round(flac.info.bitrate / 1000, 1) if flac.info.bitrate else None
        found = file_tags.read_vorbis(flac.tags, flac.pictures)
    return {**info, **tag_facts(found), "loops": loops}


def wav_chunks(path: Path) -> tuple[file_tags.Found, list[dict]]:
    """What a WAV's chunks hold: tags (the INFO list's, an ``id3 `` chunk's over them), cover and
    chapters (from the ``id3 `` chunk), warnings; and the ``smpl`` loops."""
    chunks, warnings = riff.read_chunks(path)
    values, loops = file_tags.empty_tags(), []
    for chunk in chunks:
        if chunk.id == b"smpl":
            found, more = riff.parse_smpl(riff.read_data(path, chunk))
            loops += [asdict(loop) for loop in found]
            warnings += more
        elif chunk.id == b"LIST":
            for key, value in file_tags.read_wav_info(riff.read_data(path, chunk)).items():
                values[key] = values[key] or value
    if not any(c.id in (b"id3 ", b"ID3 ") for c in chunks):
        return file_tags.Found(values, warnings=tuple(warnings)), loops
    id3 = file_tags.read_id3(load_mutagen(path, "wav").tags)
    values.update({k: v for k, v in id3.tags.items() if v})
    return file_tags.Found(values, id3.cover, id3.chapters, tuple(warnings)), loops


def tag_facts(found: file_tags.Found) -> dict:
    """``tags``, ``cover``, ``chapters`` and ``warnings`` as ``describe`` gives them."""
    cover = {"present": False, "bytes": None, "mime": None}
    if found.cover is not None:
        cover = {"present": True, "bytes": found.cover.bytes, "mime": found.cover.mime}
    return {"tags": found.tags, "cover": cover, "chapters": [asdict(mark) for mark in found.chapters],
            "warnings": list(found.warnings)}


def wav_codec(subtype: str) -> str:
    """A short codec name for a WAV subtype: ``pcm``, ``float``, ``ulaw``, …"""
    if subtype.startswith("PCM"):
        return "pcm"
    return {"FLOAT": "float", "DOUBLE": "float"}.get(subtype, subtype.lower())


def load_mutagen(path: Path, kind: str):
    """The mutagen object for a file of the given kind; RenderError naming the file if it fails."""
    from mutagen.flac import FLAC
    from mutagen.mp3 import MP3
    from mutagen.mp4 import MP4
    from mutagen.oggopus import OggOpus
    from mutagen.oggvorbis import OggVorbis
    from mutagen.wave import WAVE

    classes = {"wav": [WAVE], "flac": [FLAC], "mp3": [MP3], "ogg": [OggVorbis, OggOpus], "m4a": [MP4],
               "m4b": [MP4]}[kind]
    errors = []
    for cls in classes:
        try:
            return cls(str(path))
        except Exception as e:  # noqa: BLE001 — malformed files raise MutagenError, IndexError, struct.error, …
            errors.append(f"{cls.__name__}: {e or type(e).__name__}")
    what = "an Ogg Vorbis or Ogg Opus" if kind == "ogg" else f"a readable {kind.upper()}"
    raise InputError(f"{path}: not {what} file: {'; '.join(errors)}")


def describe_lossy(path: Path, kind: str) -> dict:
    """Stream facts, tags and chapters of an MP3, Ogg Vorbis, Ogg Opus, M4A or M4B file (header
    values: the duration is replaced by the decoded length when the file is measured)."""
    from mutagen.mp3 import BitrateMode
    from mutagen.oggopus import OggOpus

    audio = load_mutagen(path, kind)
    ai = audio.info
    if kind == "mp3":
        fmt, codec, rate_hz = "mp3", "mp3", ai.sample_rate
        mode = {BitrateMode.CBR: "CBR", BitrateMode.VBR: "VBR", BitrateMode.ABR: "ABR"}.get(ai.bitrate_mode)
    elif kind in ("m4a", "m4b"):
        fmt, codec, rate_hz, mode = kind, "aac" if ai.codec.startswith("mp4a") else ai.codec, ai.sample_rate, None
    elif isinstance(audio, OggOpus):
        fmt, codec, rate_hz, mode = "opus", "opus", OPUS_DECODE_RATE_HZ, "VBR"
    else:
        fmt, codec, rate_hz, mode = "ogg", "vorbis", ai.sample_rate, "VBR"
    duration_s = float(ai.length)
    info = {"format": fmt, "codec": codec, "subtype": None, "sample_rate_hz": rate_hz, "channels": ai.channels,
            "n_frames": round(duration_s * rate_hz), "duration_s": duration_s, "bit_depth": None,
            "bitrate_kbps": round(ai.bitrate / 1000, 1) if getattr(ai, "bitrate", 0) else None,
            "bitrate_mode": mode}
    if kind == "mp3":
        found = file_tags.read_id3(audio.tags)
    elif fmt in ("m4a", "m4b"):
        found = file_tags.read_mp4(audio)
    else:
        found = file_tags.read_vorbis(audio.tags)
    return {**info, **tag_facts(found), "loops": []}


# ---------------------------------------------------------------- public

def describe(path: Path, measure: bool = True) -> dict:
    """Everything known about one audio file the project writes.

    Keys: ``path``, ``format`` (wav, flac, mp3, ogg, opus, m4a, m4b), ``codec``, ``subtype`` (soundfile's,
    for WAV/FLAC), ``sample_rate_hz``, ``channels``, ``n_frames``, ``duration_s``, ``bit_depth`` (None for
    lossy), ``bitrate_kbps`` (PCM rate for WAV, average for FLAC and Opus, nominal for Vorbis,
    header for MP3), ``bitrate_mode``, ``file_bytes``, ``loudness_lufs`` and ``true_peak_dbtp``
    (BS.1770-4, None when ``measure`` is false; -inf for silence), ``tags`` (title, artist, album,
    year, comment, genre; None when absent), ``cover`` (present, bytes, mime), ``chapters`` (title,
    start_s, end_s), ``loops`` (a WAV's ``smpl`` loops: start_frame, end_frame, play_count, type),
    ``warnings`` (oddities that did not stop the reading).

    With ``measure``, the whole file is decoded: for the lossy formats ``n_frames`` and
    ``duration_s`` are then the decoded length (encoder delay and padding removed), which is exact,
    where the header's is an estimate. Raises RenderError naming the file for a missing, unreadable
    or non-audio file and for a decoding failure.
    """
    path = Path(path)
    kind = sniff(path)
    info = describe_lossless(path, kind) if kind in ("wav", "flac") else describe_lossy(path, kind)
    info = {"path": str(path), **info, "file_bytes": path.stat().st_size,
            "loudness_lufs": None, "true_peak_dbtp": None}
    if measure:
        rate_hz, channels = info["sample_rate_hz"], info["channels"]
        if kind in ("wav", "flac"):
            import soundfile as sf
            try:
                measured = measure_blocks(soundfile_blocks(path), rate_hz, channels)
            except (RuntimeError, sf.LibsndfileError) as e:
                raise InputError(f"{path}: cannot decode the {kind.upper()} audio: {e}") from None
            if measured["n_frames"] != info["n_frames"]:
                info["warnings"].append(f"decoded {measured['n_frames']} frames, the header says {info['n_frames']}")
        else:
            measured = measure_blocks(ffmpeg.decode_blocks(path, rate_hz, channels, BLOCK_FRAMES), rate_hz, channels)
            info["n_frames"] = measured["n_frames"]
            info["duration_s"] = measured["n_frames"] / rate_hz
        info["loudness_lufs"] = measured["loudness_lufs"]
        info["true_peak_dbtp"] = measured["true_peak_dbtp"]
    for chapter in info["chapters"]:  # an open-ended chapter runs to the end of the audio
        if chapter["end_s"] is None:
            chapter["end_s"] = max(chapter["start_s"], info["duration_s"])
    return {key: info[key] for key in DESCRIBE_KEYS}


def describe_score(manifest_path: Path) -> dict:
    """A summary of a render from its JSON manifest (``NAME.json``).

    Keys: ``manifest``, ``name``, ``title``, ``author``, ``duration_s``, ``sample_rate_hz``,
    ``channels``, ``cue_count``, ``speech_s`` (total length of the spoken sentences), ``layers``
    (name, source, start_s, end_s, gain_db, and from the audibility report: under_voice_db,
    heard_pct of its span), ``voice_to_bed_db`` and ``voice_to_bed_in_speech_db`` (None for a manifest
    without the report), ``loudness_lufs``, ``true_peak_dbtp``,
    ``target_lufs``, ``chapters`` (title, start_s, end_s; empty when the manifest has none),
    ``files`` (kind → path, exists, bytes; a stem's kind is ``stem NAME``; paths looked up beside
    the manifest, where a render writes them), ``warnings``. Raises ScoreError naming the file
    when it is missing, not JSON, or lacks a key a manifest always has.
    """
    manifest_path = Path(manifest_path)
    piece = manifest.overview(manifest.read(manifest_path), str(manifest_path))
    named = {}
    for kind, name in piece.files.items():
        if isinstance(name, dict):  # the stems, by layer
            named.update({f"stem {layer}": stem for layer, stem in name.items()})
        else:
            named[kind] = name
    files = {}
    for kind, name in named.items():
        where = Path(name) if Path(name).is_absolute() else manifest_path.parent / Path(name).name
        exists = where.is_file()
        files[kind] = {"path": str(where), "exists": exists, "bytes": where.stat().st_size if exists else None}
    return {
        "manifest": str(manifest_path),
        "name": piece.name,
        "title": piece.title,
        "author": piece.author,
        "duration_s": piece.duration_s,
        "sample_rate_hz": piece.sample_rate_hz,
        "channels": piece.channels,
        "cue_count": len(piece.cues),
        "speech_s": sum(max(0.0, c.end_s - c.start_s) for c in piece.cues),
        "layers": [asdict(layer) for layer in piece.layers],
        "voice_to_bed_db": piece.voice_to_bed_db,
        "voice_to_bed_in_speech_db": piece.voice_to_bed_in_speech_db,
        "loudness_lufs": piece.loudness_lufs,
        "true_peak_dbtp": piece.true_peak_dbtp,
        "target_lufs": piece.target_lufs,
        "chapters": [{"title": c.text, "start_s": c.start_s, "end_s": c.end_s} for c in piece.chapters],
        "files": files,
        "warnings": list(piece.warnings),
    }


# ---------------------------------------------------------------- text table

def size_text(n_bytes: int) -> str:
    """A file size as podcast hosts count it (1 MB = 1,000,000 bytes): "2.4 MB", "512 kB"."""
    if n_bytes >= 1e9:
        return f"{n_bytes / 1e9:.2f} GB"
    if n_bytes >= 1e6:
        return f"{n_bytes / 1e6:.1f} MB"
    return f"{n_bytes / 1e3:.0f} kB"


def format_value(key: str, value) -> str:
    """One value as text, by what its key says it is."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "-inf" if value < 0 else "inf"
        if key.endswith("_s"):
            return f"{value:.3f}" + (f" ({clock(value)})" if value >= 60 else "")
        if key.endswith(("_lufs", "_dbtp", "_db")):
            return f"{value:.1f}"
        if key.endswith("_kbps"):
            return f"{value:.1f}"
        return f"{value:.6g}"
    if isinstance(value, int) and key.endswith("bytes"):
        return f"{value:,} ({size_text(value)})"
    if isinstance(value, int) and key.endswith("frames"):
        return f"{value:,}"
    return " / ".join(str(value).splitlines()) if str(value) else '""'


def item_rows(key: str, items: list) -> list[tuple[str, str]]:
    """Indented rows for the entries of a list (chapters, layers, loops, warnings)."""
    rows = []
    for n, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            rows.append((f"  {n}", format_value(key, item)))
            continue
        label = item.get("title") if "title" in item else item.get("name")
        if label and len(label) > ITEM_LABEL_CHARS:
            label = label[: ITEM_LABEL_CHARS - 1].rstrip() + "…"
        label = f"  {n}" + (f". {label}" if label else "")
        parts = []
        if "start_s" in item or "end_s" in item:
            start, end = item.get("start_s"), item.get("end_s")
            parts.append(f"{clock(start) if start is not None else '?'} – {clock(end) if end is not None else '?'}")
        if "start_frame" in item:
            parts.append(f"frames {item['start_frame']:,} – {item['end_frame']:,}")
        for k, v in item.items():
            if k not in ("title", "name", "start_s", "end_s", "start_frame", "end_frame"):
                parts.append(f"{k} {format_value(k, v)}")
        rows.append((label, ", ".join(parts)))
    return rows


def table(info: dict) -> str:
    """A two-column text table (key, value) of a ``describe`` or ``describe_score`` result.

    Tags, files and other nested mappings, chapters, layers and loops are shown as indented rows
    under their key; the cover is one row (``yes, 12,345 bytes, image/png`` or ``no``), and so is
    each file of a manifest (``out/x.wav (1,234 bytes)`` or ``… (missing)``).
    """
    rows = []
    for key, value in info.items():
        if key == "cover" and isinstance(value, dict):
            rows.append((key, ", ".join(filter(None, ["yes", f"{value['bytes']:,} bytes", value.get("mime")]))
                         if value.get("present") else "no"))
        elif key == "files" and isinstance(value, dict):
            rows.append((key, ""))
            for kind, f in value.items():
                state = f"{f['bytes']:,} bytes, {size_text(f['bytes'])}" if f.get("exists") else "missing"
                rows.append((f"  {kind}", f"{f['path']} ({state})"))
        elif isinstance(value, dict):
            rows.append((key, ""))
            for k, v in value.items():
                if isinstance(v, dict):
                    v = ", ".join(f"{kk} {format_value(kk, vv)}" for kk, vv in v.items())
                rows.append((f"  {k}", format_value(k, v)))
        elif isinstance(value, list):
            rows.append((key, str(len(value)) if value else "none"))
            rows.extend(item_rows(key, value))
        else:
            rows.append((key, format_value(key, value)))
    width = min(KEY_COLUMN_CHARS, max(len(k) for k, _ in rows))
    return "\n".join(f"{k:<{width}}  {v}".rstrip() for k, v in rows) + "\n"
