"""Describe finished audio: what a file is, how loud it measures, its tags, chapters and loops.

``describe`` reads any file the project writes (WAV, FLAC, MP3, Ogg Vorbis, Ogg Opus), telling
the format from the file's first bytes, not its name. Loudness and true peak are measured by
decoding the whole file block by block with the project's own meters (``audio.master``):
WAV and FLAC through soundfile, the lossy formats through the bundled ffmpeg writing raw float32
to a pipe. Memory stays flat for any length. ``describe_score`` summarises a render's JSON
manifest; ``table`` prints either as a two-column text table.

Every failure raises RenderError naming the file and the reason.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import struct
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from audio.errors import RenderError

BLOCK_FRAMES = 1 << 16  # frames decoded per block: ~1.5 s at 44.1 kHz, 1 MiB of float64 stereo
OPUS_DECODE_RATE_HZ = 48000  # Opus always decodes at 48 kHz (RFC 7845 5.1)
TAG_KEYS = ("title", "artist", "album", "year", "comment", "genre")
DESCRIBE_KEYS = ("path", "format", "codec", "subtype", "sample_rate_hz", "channels", "n_frames", "duration_s",
                 "bit_depth", "bitrate_kbps", "bitrate_mode", "file_bytes", "loudness_lufs", "true_peak_dbtp",
                 "tags", "cover", "chapters", "loops", "warnings")

# Tag names per container, in order of preference: the first one present wins.
ID3_FRAMES = {"title": ("TIT2",), "artist": ("TPE1",), "album": ("TALB",), "year": ("TDRC", "TYER"),
              "comment": ("COMM", "TXXX:comment", "TXXX:COMMENT"), "genre": ("TCON",)}
VORBIS_FIELDS = {"title": ("TITLE",), "artist": ("ARTIST",), "album": ("ALBUM",), "year": ("DATE", "YEAR"),
                 "comment": ("COMMENT", "DESCRIPTION"), "genre": ("GENRE",)}
RIFF_INFO_FIELDS = {b"INAM": "title", b"IART": "artist", b"IPRD": "album", b"ICRD": "year",
                    b"ICMT": "comment", b"IGNR": "genre"}

SMPL_HEADER = struct.Struct("<9I")  # manufacturer … sampler data size: 36 bytes
SMPL_LOOP = struct.Struct("<6I")  # cue point id, type, start, end, fraction, play count: 24 bytes
SMPL_LOOP_TYPES = {0: "forward", 1: "alternating", 2: "backward"}

SUBTYPE_BITS = {"PCM_S8": 8, "PCM_U8": 8, "PCM_16": 16, "PCM_24": 24, "PCM_32": 32, "FLOAT": 32,
                "DOUBLE": 64, "ULAW": 8, "ALAW": 8}
VORBIS_CHAPTER = re.compile(r"CHAPTER(\d+)")
CHAPTER_TIME = re.compile(r"(?:(\d+):)?(\d+):(\d+(?:\.\d*)?)")
KEY_COLUMN_CHARS = 30  # the table's key column; a longer key pushes its own value right
ITEM_LABEL_CHARS = 24  # a chapter or layer title longer than this is cut with an ellipsis


# ---------------------------------------------------------------- what kind of file

def sniff(path: Path) -> str:
    """``"wav"``, ``"flac"``, ``"mp3"`` or ``"ogg"`` from the file's first bytes.

    Raises RenderError naming the file when it is missing, a folder, unreadable, empty, or none of
    these (an Ogg file is told apart into Vorbis and Opus later, by its first packet).
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except FileNotFoundError:
        raise RenderError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise RenderError(f"{path}: is a folder, not an audio file") from None
    except OSError as e:
        raise RenderError(f"{path}: cannot read the file: {e.strerror or e}") from None
    if not head:
        raise RenderError(f"{path}: the file is empty, not audio")
    if head[:4] in (b"RIFF", b"RF64", b"BW64") and head[8:12] == b"WAVE":
        return "wav"
    if head[:4] == b"fLaC":
        return "flac"
    if head[:4] == b"OggS":
        return "ogg"
    if head[:3] == b"ID3" or (len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "mp3"
    raise RenderError(f"{path}: not a WAV, FLAC, MP3, Ogg Vorbis or Ogg Opus file (it starts with {head[:8]!r})")


# ---------------------------------------------------------------- WAV: RIFF chunks

def riff_chunks(path: Path) -> tuple[list[tuple[bytes, int, int]], list[str]]:
    """The chunks of a RIFF/RF64 WAVE file as ``(id, data offset, data size)``, and warnings.

    Chunks are word-aligned (an odd-sized chunk is followed by a pad byte). In an RF64/BW64 file
    a size of 0xFFFFFFFF is taken from the ``ds64`` chunk (EBU Tech 3306). A chunk that runs past
    the end of the file ends the walk with a warning rather than an error: the audio before it may
    still be readable.
    """
    warnings = []
    chunks = []
    with open(path, "rb") as f:
        file_len = f.seek(0, 2)
        f.seek(0)
        head = f.read(12)
        if len(head) < 12 or head[:4] not in (b"RIFF", b"RF64", b"BW64") or head[8:12] != b"WAVE":
            raise RenderError(f"{path}: not a RIFF WAVE file (it starts with {head[:12]!r})")
        ds64_sizes = {}
        pos = 12
        while pos + 8 <= file_len:
            f.seek(pos)
            chunk_id, size = struct.unpack("<4sI", f.read(8))
            if chunk_id == b"ds64" and size >= 24:
                _, data_size, _ = struct.unpack("<QQQ", f.read(24))
                ds64_sizes[b"data"] = data_size
            if size == 0xFFFF_FFFF and chunk_id in ds64_sizes:
                size = ds64_sizes[chunk_id]
            if pos + 8 + size > file_len:
                warnings.append(f"chunk {chunk_id.decode('latin-1')!r} at byte {pos} claims {size} bytes, "
                                f"past the end of the {file_len}-byte file")
                chunks.append((chunk_id, pos + 8, file_len - pos - 8))
                break
            chunks.append((chunk_id, pos + 8, size))
            pos += 8 + size + (size & 1)
    return chunks, warnings


def read_chunk(path: Path, offset: int, size: int) -> bytes:
    """``size`` bytes of a file from ``offset``."""
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read(size)


def parse_smpl(data: bytes) -> tuple[list[dict], list[str]]:
    """The loops of a ``smpl`` chunk's data (MMA sampler chunk layout), and warnings.

    Each loop: ``start_frame``, ``end_frame`` (inclusive), ``play_count`` (0 = forever), ``type``.
    A chunk shorter than its loop count says yields the loops that fit and a warning.
    """
    if len(data) < SMPL_HEADER.size:
        return [], [f"'smpl' chunk of {len(data)} bytes, shorter than its {SMPL_HEADER.size}-byte header"]
    header = SMPL_HEADER.unpack_from(data)
    n_claimed = header[7]
    n_fit = (len(data) - SMPL_HEADER.size) // SMPL_LOOP.size
    warnings = []
    if n_fit < n_claimed:
        warnings.append(f"'smpl' chunk claims {n_claimed} loops but holds {n_fit}")
    loops = []
    for i in range(min(n_claimed, n_fit)):
        _, kind, start, end, _, play_count = SMPL_LOOP.unpack_from(data, SMPL_HEADER.size + i * SMPL_LOOP.size)
        loops.append({"start_frame": start, "end_frame": end, "play_count": play_count,
                      "type": SMPL_LOOP_TYPES.get(kind, f"type {kind}")})
    return loops, warnings


def parse_riff_info(data: bytes) -> dict:
    """Tags from the data of a ``LIST`` chunk of type ``INFO`` (INAM, IART, IPRD, ICRD, ICMT, IGNR)."""
    tags = {}
    if data[:4] != b"INFO":
        return tags
    pos = 4
    while pos + 8 <= len(data):
        sub_id, size = struct.unpack_from("<4sI", data, pos)
        value = data[pos + 8: pos + 8 + size].split(b"\x00", 1)[0]
        key = RIFF_INFO_FIELDS.get(sub_id)
        if key and value.strip():
            tags[key] = value.decode("utf-8", errors="replace").strip()
        pos += 8 + size + (size & 1)
    return tags


# ---------------------------------------------------------------- tags and chapters

def empty_tags() -> dict:
    """Every known tag key with no value."""
    return {key: None for key in TAG_KEYS}


def no_cover() -> dict:
    return {"present": False, "bytes": None, "mime": None}


def id3_tags(id3) -> tuple[dict, dict]:
    """Tags and cover from a mutagen ID3 tag (ID3v2.3 or 2.4)."""
    tags = empty_tags()
    if id3 is None:
        return tags, no_cover()
    for key, names in ID3_FRAMES.items():
        for name in names:
            frames = id3.getall(name) if ":" not in name else ([id3[name]] if name in id3 else [])
            if name == "COMM":  # prefer the comment with no description (the plain comment)
                frames = sorted(frames, key=lambda fr: fr.desc != "")
            texts = [str(t) for fr in frames for t in getattr(fr, "text", []) if str(t).strip()]
            if texts:
                tags[key] = texts[0].strip()
                break
    return tags, front_cover(id3.getall("APIC"))


def front_cover(pictures: list) -> dict:
    """The front cover (picture type 3) of embedded pictures, else the first; or no cover."""
    if not pictures:
        return no_cover()
    front = next((p for p in pictures if p.type == 3), pictures[0])
    return {"present": True, "bytes": len(front.data), "mime": front.mime or None}


def id3_chapters(id3) -> list[dict]:
    """Chapters from ID3 CHAP frames (ID3v2 Chapter Frame Addendum), in the order of the
    top-level CTOC frame when there is one, else by start time. An end time of 0xFFFFFFFF
    (unknown) is None."""
    if id3 is None:
        return []
    from mutagen.id3 import CTOCFlags

    chaps = {fr.element_id: fr for fr in id3.getall("CHAP")}
    tocs = id3.getall("CTOC")
    top = [toc for toc in tocs if toc.flags & CTOCFlags.TOP_LEVEL] or tocs[:1]
    order = [e for e in top[0].child_element_ids if e in chaps] if top else []
    order += sorted((e for e in chaps if e not in order), key=lambda e: chaps[e].start_time)
    out = []
    for element_id in order:
        fr = chaps[element_id]
        title_frames = fr.sub_frames.getall("TIT2")
        title = str(title_frames[0].text[0]) if title_frames and title_frames[0].text else ""
        end_s = None if fr.end_time == 0xFFFF_FFFF else fr.end_time / 1000
        out.append({"title": title, "start_s": fr.start_time / 1000, "end_s": end_s})
    return out


def vorbis_tags(comments, pictures=()) -> tuple[dict, dict]:
    """Tags and cover from Vorbis comments (FLAC, Ogg Vorbis, Ogg Opus) and FLAC picture blocks.

    In Ogg the cover is a base64 ``METADATA_BLOCK_PICTURE`` comment holding a FLAC picture block.
    """
    from mutagen.flac import Picture

    tags = empty_tags()
    fields = {}
    for key, value in (comments or []):
        fields.setdefault(key.upper(), []).append(value)
    for key, names in VORBIS_FIELDS.items():
        for name in names:
            values = [v.strip() for v in fields.get(name, []) if v.strip()]
            if values:
                tags[key] = values[0]
                break
    found = list(pictures)
    for encoded in fields.get("METADATA_BLOCK_PICTURE", []):
        try:
            found.append(Picture(base64.b64decode(encoded)))
        except (binascii.Error, ValueError, struct.error):
            continue
    return tags, front_cover(found)


def chapter_time_s(text: str) -> float | None:
    """Seconds from ``HH:MM:SS.mmm`` (or ``MM:SS.mmm``), or None when it is not such a time."""
    m = CHAPTER_TIME.fullmatch(text.strip())
    if not m:
        return None
    hours, minutes, seconds = m.groups()
    return int(hours or 0) * 3600 + int(minutes) * 60 + float(seconds)


def vorbis_chapters(comments) -> tuple[list[dict], list[str]]:
    """Chapters from ``CHAPTERnnn=HH:MM:SS.mmm`` / ``CHAPTERnnnNAME=…`` comments, and warnings.

    A chapter ends where the next begins; the last one's end is None (the end of the audio).
    """
    fields = {}
    for key, value in (comments or []):
        fields.setdefault(key.upper(), value)
    starts, warnings = [], []
    for key, value in fields.items():
        m = VORBIS_CHAPTER.fullmatch(key)
        if not m:
            continue
        start_s = chapter_time_s(value)
        if start_s is None:
            warnings.append(f"{key}={value!r} is not a HH:MM:SS.mmm time; chapter skipped")
            continue
        starts.append((start_s, int(m.group(1)), fields.get(f"{key}NAME", "")))
    starts.sort()
    out = []
    for i, (start_s, _, title) in enumerate(starts):
        end_s = starts[i + 1][0] if i + 1 < len(starts) else None
        out.append({"title": title, "start_s": start_s, "end_s": end_s})
    return out, warnings


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

    yield from sf.blocks(str(path), blocksize=block_frames, dtype="float64", always_2d=True)


def ffmpeg_exe() -> str:
    try:
        import imageio_ffmpeg
    except ImportError:
        raise RenderError("ffmpeg is missing: install the Python package imageio-ffmpeg") from None
    return imageio_ffmpeg.get_ffmpeg_exe()


def ffmpeg_blocks(path: Path, rate_hz: int, channels: int, block_frames: int = BLOCK_FRAMES):
    """Float64 blocks (n, channels) of any file ffmpeg decodes, read from a raw float32 pipe.

    ffmpeg is told the rate and channel count so the raw stream's layout is known. Raises
    RenderError naming the file with ffmpeg's message when decoding fails.
    """
    frame_bytes = 4 * channels
    cmd = [ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error", "-i", str(path), "-vn",
           "-f", "f32le", "-acodec", "pcm_f32le", "-ar", str(rate_hz), "-ac", str(channels), "-"]
    with tempfile.TemporaryFile() as err:
        try:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL)
        except OSError as e:
            raise RenderError(f"{path}: cannot start ffmpeg to decode it: {e.strerror or e}") from None
        try:
            rest = b""
            while True:
                data = proc.stdout.read(block_frames * frame_bytes)
                if not data:
                    break
                data = rest + data
                whole = len(data) // frame_bytes * frame_bytes
                rest = data[whole:]
                if whole:
                    yield np.frombuffer(data[:whole], dtype="<f4").reshape(-1, channels).astype(np.float64)
        finally:
            proc.stdout.close()
            if proc.poll() is None:
                proc.kill()
            code = proc.wait()
        if code != 0:
            err.seek(0)
            message = err.read().decode("utf-8", errors="replace").strip()[-400:]
            raise RenderError(f"{path}: ffmpeg could not decode the file (exit {code}): {message}")


# ---------------------------------------------------------------- per format

def describe_lossless(path: Path, kind: str) -> dict:
    """Stream facts, tags, chapters and loops of a WAV or FLAC file."""
    import soundfile as sf

    try:
        sfi = sf.info(str(path))
    except (RuntimeError, sf.LibsndfileError) as e:
        raise RenderError(f"{path}: not a readable {kind.upper()} file: {e}") from None
    bits = SUBTYPE_BITS.get(sfi.subtype)
    info = {"format": kind, "codec": "flac" if kind == "flac" else wav_codec(sfi.subtype),
            "subtype": sfi.subtype, "sample_rate_hz": sfi.samplerate, "channels": sfi.channels,
            "n_frames": sfi.frames, "duration_s": sfi.frames / sfi.samplerate, "bit_depth": bits,
            "bitrate_kbps": None, "bitrate_mode": "lossless"}
    tags, cover, chapters, loops, warnings = empty_tags(), no_cover(), [], [], []
    if kind == "wav":
        if bits:
            info["bitrate_kbps"] = sfi.samplerate * sfi.channels * bits / 1000
        chunks, warnings = riff_chunks(path)
        for chunk_id, offset, size in chunks:
            if chunk_id == b"smpl":
                found, more = parse_smpl(read_chunk(path, offset, size))
                loops += found
                warnings += more
            elif chunk_id == b"LIST":
                for key, value in parse_riff_info(read_chunk(path, offset, size)).items():
                    tags[key] = tags[key] or value
        if any(cid in (b"id3 ", b"ID3 ") for cid, _, _ in chunks):
            id3 = load_mutagen(path, "wav").tags
            id3_values, cover = id3_tags(id3)
            tags.update({k: v for k, v in id3_values.items() if v})
            chapters = id3_chapters(id3)
    else:
        flac = load_mutagen(path, "flac")
        info["bitrate_kbps"] = round(flac.info.bitrate / 1000, 1) if flac.info.bitrate else None
        tags, cover = vorbis_tags(flac.tags, flac.pictures)
        chapters, warnings = vorbis_chapters(flac.tags)
    info.update({"tags": tags, "cover": cover, "chapters": chapters, "loops": loops, "warnings": warnings})
    return info


def wav_codec(subtype: str) -> str:
    """A short codec name for a WAV subtype: ``pcm``, ``float``, ``ulaw``, …"""
    if subtype.startswith("PCM"):
        return "pcm"
    return {"FLOAT": "float", "DOUBLE": "float"}.get(subtype, subtype.lower())


def load_mutagen(path: Path, kind: str):
    """The mutagen object for a file of the given kind; RenderError naming the file if it fails."""
    from mutagen.flac import FLAC
    from mutagen.mp3 import MP3
    from mutagen.oggopus import OggOpus
    from mutagen.oggvorbis import OggVorbis
    from mutagen.wave import WAVE

    classes = {"wav": [WAVE], "flac": [FLAC], "mp3": [MP3], "ogg": [OggVorbis, OggOpus]}[kind]
    errors = []
    for cls in classes:
        try:
            return cls(str(path))
        except Exception as e:  # noqa: BLE001 — malformed files raise MutagenError, IndexError, struct.error, …
            errors.append(f"{cls.__name__}: {e or type(e).__name__}")
    what = "an Ogg Vorbis or Ogg Opus" if kind == "ogg" else f"a readable {kind.upper()}"
    raise RenderError(f"{path}: not {what} file: {'; '.join(errors)}")


def describe_lossy(path: Path, kind: str) -> dict:
    """Stream facts, tags and chapters of an MP3, Ogg Vorbis or Ogg Opus file (header values:
    the duration is replaced by the decoded length when the file is measured)."""
    from mutagen.mp3 import BitrateMode
    from mutagen.oggopus import OggOpus

    audio = load_mutagen(path, kind)
    ai = audio.info
    if kind == "mp3":
        fmt, codec, rate_hz = "mp3", "mp3", ai.sample_rate
        mode = {BitrateMode.CBR: "CBR", BitrateMode.VBR: "VBR", BitrateMode.ABR: "ABR"}.get(ai.bitrate_mode)
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
        tags, cover = id3_tags(audio.tags)
        chapters, warnings = id3_chapters(audio.tags), []
    else:
        tags, cover = vorbis_tags(audio.tags)
        chapters, warnings = vorbis_chapters(audio.tags)
    info.update({"tags": tags, "cover": cover, "chapters": chapters, "loops": [], "warnings": warnings})
    return info


# ---------------------------------------------------------------- public

def describe(path: Path, measure: bool = True) -> dict:
    """Everything known about one audio file the project writes.

    Keys: ``path``, ``format`` (wav, flac, mp3, ogg, opus), ``codec``, ``subtype`` (soundfile's, for
    WAV/FLAC), ``sample_rate_hz``, ``channels``, ``n_frames``, ``duration_s``, ``bit_depth`` (None for
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
                raise RenderError(f"{path}: cannot decode the {kind.upper()} audio: {e}") from None
            if measured["n_frames"] != info["n_frames"]:
                info["warnings"].append(f"decoded {measured['n_frames']} frames, the header says {info['n_frames']}")
        else:
            measured = measure_blocks(ffmpeg_blocks(path, rate_hz, channels), rate_hz, channels)
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
    ``files`` (kind → path, exists, bytes; paths looked up beside the manifest,
    where a render writes them), ``warnings``. Raises RenderError naming the file when it is
    missing, not JSON, or lacks a key a manifest always has.
    """
    manifest_path = Path(manifest_path)
    try:
        text = manifest_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RenderError(f"{manifest_path}: no such manifest") from None
    except (OSError, UnicodeDecodeError) as e:
        raise RenderError(f"{manifest_path}: cannot read the manifest: {getattr(e, 'strerror', None) or e}") from None
    try:
        m = json.loads(text)
    except json.JSONDecodeError as e:
        raise RenderError(f"{manifest_path}: not a JSON manifest: {e.msg} at line {e.lineno}") from None
    if not isinstance(m, dict):
        raise RenderError(f"{manifest_path}: not a render manifest (the JSON is not an object)")
    missing = [k for k in ("duration_s", "sample_rate", "channels", "cues", "layers") if k not in m]
    if missing:
        raise RenderError(f"{manifest_path}: not a render manifest, it has no {', '.join(map(repr, missing))}")
    measured = m.get("measured") or {}
    heard = m.get("audibility") or {}
    heard_layers = {la.get("name"): la for la in heard.get("layers") or []}
    files = {}
    listed = dict(m.get("files") or {})
    for stem, name in (listed.pop("stems", None) or {}).items():  # a render with --stems: one row each
        listed[f"stem {stem}"] = name
    for kind, name in listed.items():
        where = Path(name) if Path(name).is_absolute() else manifest_path.parent / Path(name).name
        exists = where.is_file()
        files[kind] = {"path": str(where), "exists": exists, "bytes": where.stat().st_size if exists else None}
    return {
        "manifest": str(manifest_path),
        "name": m.get("name"),
        "title": m.get("title"),
        "author": m.get("author") or None,
        "duration_s": m["duration_s"],
        "sample_rate_hz": m["sample_rate"],
        "channels": m["channels"],
        "cue_count": len(m["cues"]),
        "speech_s": sum(max(0.0, c.get("end_s", 0) - c.get("start_s", 0)) for c in m["cues"]),
        "layers": [{"name": la.get("name"), "source": la.get("source"), "start_s": la.get("start_s"),
                    "end_s": la.get("end_s"), "gain_db": la.get("gain_db"), **_heard(heard_layers.get(la.get("name")))}
                   for la in m["layers"]],
        "voice_to_bed_db": heard.get("voice_to_bed_db"),
        "voice_to_bed_in_speech_db": heard.get("voice_to_bed_in_speech_db"),
        "loudness_lufs": measured.get("loudness_lufs"),
        "true_peak_dbtp": measured.get("true_peak_dbtp"),
        "target_lufs": (m.get("master") or {}).get("loudness_lufs"),
        "chapters": [{"title": c.get("title"), "start_s": c.get("start_s"), "end_s": c.get("end_s")}
                     for c in m.get("chapters") or []],
        "files": files,
        "warnings": list(m.get("warnings") or []) + list(heard.get("warnings") or []),
    }


def _heard(layer: dict | None) -> dict:
    """A layer's audibility, as the summary shows it: how far under the voice, how much of it is heard."""
    if not layer:
        return {}
    fraction = layer.get("heard_fraction")
    return {"under_voice_db": layer.get("under_voice_db"),
            "heard_pct": None if fraction is None else round(100.0 * fraction, 1)}


# ---------------------------------------------------------------- text table

def clock(t_s: float) -> str:
    """``M:SS.mmm`` or ``H:MM:SS.mmm``."""
    ms = int(round(t_s * 1000))
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h}:{m:02d}:{s:02d}.{ms:03d}" if h else f"{m}:{s:02d}.{ms:03d}"


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
    if isinstance(value, int) and key.endswith(("bytes", "frames")):
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
                state = f"{f['bytes']:,} bytes" if f.get("exists") else "missing"
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
