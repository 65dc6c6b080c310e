"""Metadata written into finished audio files: ID3v2.3 for MP3, Vorbis comments for FLAC/Ogg, WAV loops.

Each writer edits the file in place; the caller runs it on the temporary file before the atomic
rename. ``tags`` is a dict with the optional keys title, artist, album, year, comment, genre
(a missing or empty value is skipped). ``chapters`` are objects with ``.title``, ``.start_s`` and
``.end_s``. ``cover`` is a PNG or JPEG file, or None. Failures to read or write a file raise
RenderError naming the file; impossible argument values raise ValueError naming the value.
"""

from __future__ import annotations

import base64
import math
import re
import struct
from pathlib import Path

from audio.errors import RenderError

TAG_KEYS = ("title", "artist", "album", "year", "comment", "genre")
VORBIS_FIELDS = {"title": "TITLE", "artist": "ARTIST", "album": "ALBUM", "year": "DATE",
                 "comment": "COMMENT", "genre": "GENRE"}
FRONT_COVER = 3  # APIC / FLAC picture type "Cover (front)"
YEAR_PATTERN = re.compile(r"\d{4}(-\d{2}(-\d{2})?)?")
VORBIS_CHAPTER_KEY = re.compile(r"CHAPTER\d+(NAME|URL)?", re.IGNORECASE)
UINT32_MAX = 0xFFFF_FFFF


# ---------------------------------------------------------------- shared helpers

def tag_values(tags: dict) -> dict:
    """The non-empty tag values as stripped strings, keyed by the known keys; the year validated.

    Raises ValueError for a year that is not ``YYYY``, ``YYYY-MM`` or ``YYYY-MM-DD``.
    """
    values = {}
    for key in TAG_KEYS:
        value = (tags or {}).get(key)
        text = "" if value is None else str(value).strip()
        if text:
            values[key] = text
    if "year" in values and not YEAR_PATTERN.fullmatch(values["year"]):
        raise ValueError(f"tag year must be YYYY, YYYY-MM or YYYY-MM-DD, got {values['year']!r}")
    return values


def chapter_times_ms(chapters) -> list[tuple[str, int, int]]:
    """Chapters as ``(title, start_ms, end_ms)`` in ascending start order.

    Raises ValueError naming the chapter for a non-finite, negative or reversed time, or one past
    the 32-bit millisecond range of an ID3 CHAP frame (about 49 days).
    """
    out = []
    for ch in sorted(chapters or (), key=lambda c: (c.start_s, c.end_s)):
        start_s, end_s = float(ch.start_s), float(ch.end_s)
        if not (math.isfinite(start_s) and math.isfinite(end_s) and 0 <= start_s <= end_s):
            raise ValueError(f"chapter {ch.title!r}: times must be finite with 0 <= start_s <= end_s, "
                             f"got start_s={start_s!r}, end_s={end_s!r}")
        start_ms, end_ms = int(round(start_s * 1000)), int(round(end_s * 1000))
        if end_ms > UINT32_MAX - 1:
            raise ValueError(f"chapter {ch.title!r}: end_s={end_s!r} is past the 32-bit millisecond range")
        out.append((str(ch.title or "").strip(), start_ms, end_ms))
    return out


def read_cover(cover: Path) -> bytes:
    """The cover file's bytes; RenderError naming the file when it cannot be read."""
    try:
        return Path(cover).read_bytes()
    except OSError as e:
        raise RenderError(f"{cover}: cannot read the cover image: {e.strerror or e}") from e


def png_info(data: bytes) -> tuple[int, int, int, int]:
    """``(width, height, bits per pixel, palette colours)`` from a PNG's IHDR and PLTE (PNG spec 11.2)."""
    width, height, bit_depth, colour_type = struct.unpack(">IIBB", data[16:26])
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}.get(colour_type, 0)
    colours, pos = 0, 8
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if kind == b"PLTE":
            colours = length // 3
        if kind in (b"PLTE", b"IDAT", b"IEND"):
            break
        pos += 12 + length
    return width, height, bit_depth * channels, colours


def jpeg_info(data: bytes) -> tuple[int, int, int, int]:
    """``(width, height, bits per pixel, 0)`` from a JPEG's start-of-frame segment (ITU T.81 B.2.2).

    Raises ValueError when no start-of-frame segment is found.
    """
    sof = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            raise ValueError(f"no JPEG marker at byte {pos}")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0x01, 0xD8) or 0xD0 <= marker <= 0xD7:  # markers without a length
            pos += 2
            continue
        (length,) = struct.unpack(">H", data[pos + 2:pos + 4])
        if marker in sof and pos + 10 <= len(data):
            precision, height, width, components = struct.unpack(">BHHB", data[pos + 4:pos + 10])
            return width, height, precision * components, 0
        pos += 2 + length
    raise ValueError("no JPEG start-of-frame segment")


def image_info(data: bytes, cover: Path) -> dict:
    """Mime type and geometry of a cover image, told from its bytes (not its name).

    Raises RenderError naming the file when it is neither a PNG nor a readable JPEG.
    """
    try:
        if data.startswith(b"\x89PNG\r\n\x1a\n") and data[12:16] == b"IHDR":
            mime, geometry = "image/png", png_info(data)
        elif data.startswith(b"\xff\xd8\xff"):
            mime, geometry = "image/jpeg", jpeg_info(data)
        else:
            raise ValueError(f"it starts with {data[:8]!r}")
    except (ValueError, struct.error) as e:
        raise RenderError(f"{cover}: the cover must be a PNG or JPEG image ({e})") from None
    width, height, depth, colours = geometry
    return {"mime": mime, "width": width, "height": height, "depth": depth, "colors": colours}


# ---------------------------------------------------------------- MP3: ID3v2.3

def id3_encoding(text: str) -> int:
    """ID3v2.3 text encoding: 0 (ISO-8859-1) when the text fits, else 1 (UTF-16 with BOM)."""
    try:
        text.encode("latin-1")
        return 0
    except UnicodeEncodeError:
        return 1


def write_mp3_tags(path, tags: dict, chapters, cover: Path | None = None):
    """Write an ID3v2.3 tag into an MP3 file in place (id3.org ID3v2.3.0 and Chapter Frame Addendum).

    Frames: TIT2 title, TPE1 artist, TALB album, TYER year (written as TDRC and converted by
    mutagen's ``update_to_v23``, which also yields TDAT for a full date), COMM comment (language
    ``eng``, empty description), TCON genre, APIC front cover (mime told from the image bytes).
    Chapters become CHAP frames ``chp0``, ``chp1``, … (start/end in ms, byte offsets unused =
    0xFFFFFFFF, one TIT2 sub-frame each) listed in order by one CTOC ``toc`` frame flagged
    top-level and ordered. Earlier CHAP/CTOC frames (and APIC, when a cover is given) are replaced.
    """
    from mutagen import MutagenError
    from mutagen.id3 import (APIC, CHAP, COMM, CTOC, ID3, TALB, TCON, TDRC, TIT2, TPE1, CTOCFlags,
                             ID3NoHeaderError)

    path = Path(path)
    values = tag_values(tags)
    times = chapter_times_ms(chapters)
    picture = None
    if cover is not None:
        data = read_cover(cover)
        picture = APIC(encoding=0, mime=image_info(data, cover)["mime"], type=FRONT_COVER,
                       desc="Cover", data=data)
    frames = {"title": TIT2, "artist": TPE1, "album": TALB, "genre": TCON, "year": TDRC}
    try:
        try:
            id3 = ID3(path)
        except ID3NoHeaderError:
            id3 = ID3()
        for key, frame in frames.items():
            if key in values:
                id3.setall(frame.__name__, [frame(encoding=id3_encoding(values[key]), text=[values[key]])])
        if "comment" in values:
            id3.delall("COMM")
            id3.add(COMM(encoding=id3_encoding(values["comment"]), lang="eng", desc="",
                         text=[values["comment"]]))
        if picture is not None:
            id3.delall("APIC")
            id3.add(picture)
        id3.delall("CHAP")
        id3.delall("CTOC")
        ids = [f"chp{i}" for i in range(len(times))]
        for element_id, (title, start_ms, end_ms) in zip(ids, times):
            subs = [TIT2(encoding=id3_encoding(title), text=[title])] if title else []
            id3.add(CHAP(element_id=element_id, start_time=start_ms, end_time=end_ms,
                         start_offset=UINT32_MAX, end_offset=UINT32_MAX, sub_frames=subs))
        if ids:
            id3.add(CTOC(element_id="toc", flags=CTOCFlags.TOP_LEVEL | CTOCFlags.ORDERED,
                         child_element_ids=ids, sub_frames=[]))
        id3.update_to_v23()
        id3.save(path, v2_version=3)
    except (MutagenError, OSError) as e:
        raise RenderError(f"{path}: could not write the ID3 tag: {e}") from e


# ---------------------------------------------------------------- FLAC / Ogg: Vorbis comments

def vorbis_chapter_time(t_ms: int) -> str:
    """``HH:MM:SS.mmm`` as used by the Vorbis-comment chapter convention (``CHAPTER001=…``)."""
    h, rest = divmod(int(t_ms), 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}"


def flac_picture(data: bytes, cover: Path):
    """A FLAC METADATA_BLOCK_PICTURE (FLAC format spec) for a front cover."""
    from mutagen.flac import Picture

    info = image_info(data, cover)
    picture = Picture()
    picture.type = FRONT_COVER
    picture.mime = info["mime"]
    picture.desc = "Cover"
    picture.width, picture.height = info["width"], info["height"]
    picture.depth, picture.colors = info["depth"], info["colors"]
    picture.data = data
    return picture


def write_vorbis_tags(path, tags: dict, chapters, cover: Path | None = None):
    """Write Vorbis comments into a FLAC, Ogg Vorbis or Ogg Opus file in place.

    Fields TITLE, ARTIST, ALBUM, DATE, COMMENT, GENRE (Vorbis comment field recommendations).
    Chapters follow the de-facto Ogg/FLAC chapter convention: ``CHAPTER001=HH:MM:SS.mmm`` and
    ``CHAPTER001NAME=Title``, numbered from 1 with 3 digits, in start order; earlier CHAPTERnnn
    fields are removed first. The cover is a FLAC PICTURE block in FLAC, and in Ogg the same block
    base64-encoded in a ``METADATA_BLOCK_PICTURE`` comment (Xiph's Vorbis comment conventions).
    The container is told from the file's content, not its name.
    """
    import mutagen
    from mutagen import MutagenError
    from mutagen.flac import FLAC
    from mutagen.oggopus import OggOpus
    from mutagen.oggvorbis import OggVorbis

    path = Path(path)
    values = tag_values(tags)
    times = chapter_times_ms(chapters)
    picture = flac_picture(read_cover(cover), cover) if cover is not None else None
    try:
        audio = mutagen.File(path, options=[FLAC, OggVorbis, OggOpus])
        if audio is None:
            raise RenderError(f"{path}: not a FLAC, Ogg Vorbis or Ogg Opus file, cannot write Vorbis comments")
        if audio.tags is None:
            audio.add_tags()
        comments = audio.tags
        for key, field in VORBIS_FIELDS.items():
            if key in values:
                comments[field] = [values[key]]
        for key in {k for k, _ in comments if VORBIS_CHAPTER_KEY.fullmatch(k)}:
            del comments[key]
        for n, (title, start_ms, _) in enumerate(times, start=1):
            comments[f"CHAPTER{n:03d}"] = [vorbis_chapter_time(start_ms)]
            if title:
                comments[f"CHAPTER{n:03d}NAME"] = [title]
        if picture is not None:
            if isinstance(audio, FLAC):
                audio.clear_pictures()
                audio.add_picture(picture)
            else:
                comments["METADATA_BLOCK_PICTURE"] = [base64.b64encode(picture.write()).decode("ascii")]
        audio.save()
    except (MutagenError, OSError) as e:
        raise RenderError(f"{path}: could not write Vorbis comments: {e}") from e


# ---------------------------------------------------------------- WAV: RIFF smpl chunk

SMPL_HEADER = struct.Struct("<9I")  # manufacturer … sampler data size: 36 bytes
SMPL_LOOP = struct.Struct("<6I")  # cue point id, type, start, end, fraction, play count: 24 bytes


def riff_chunks(f, file_len: int) -> list[tuple[bytes, int, int]]:
    """The chunks of a RIFF/WAVE file as ``(id, header offset, data size)``.

    Chunks are word-aligned: an odd-sized chunk is followed by one pad byte (RIFF, Multimedia
    Programming Interface and Data Specifications 1.0). A missing pad byte after the last chunk is
    tolerated. Raises RenderError naming the file for anything else that is not a RIFF WAVE file.
    """
    f.seek(0)
    head = f.read(12)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        kind = "RF64 (over 4 GiB)" if head[:4] in (b"RF64", b"BW64") else "not RIFF WAVE"
        raise RenderError(f"{f.name}: {kind}, expected a RIFF WAVE file, it starts with {head[:12]!r}")
    chunks, pos = [], 12
    while pos + 8 <= file_len:
        f.seek(pos)
        chunk_id, size = struct.unpack("<4sI", f.read(8))
        end = pos + 8 + size
        if end > file_len:
            raise RenderError(f"{f.name}: chunk {chunk_id!r} at byte {pos} claims {size} bytes, "
                              f"past the end of the {file_len}-byte file")
        chunks.append((chunk_id, pos, size))
        pos = end + (size & 1)
    return chunks


def wav_layout(f, chunks) -> dict:
    """Sample rate, block size and frame count from the ``fmt `` and ``data`` chunks."""
    found = {cid: (pos, size) for cid, pos, size in chunks}
    if b"fmt " not in found or b"data" not in found:
        raise RenderError(f"{f.name}: WAV has no 'fmt ' or no 'data' chunk")
    f.seek(found[b"fmt "][0] + 8)
    _, _, rate_hz, _, block_bytes = struct.unpack("<HHIIH", f.read(14))
    if block_bytes == 0:
        raise RenderError(f"{f.name}: WAV 'fmt ' chunk has a block size of 0")
    return {"rate_hz": rate_hz, "n_frames": found[b"data"][1] // block_bytes}


def smpl_chunk(loop_start_sample: int, loop_end_sample: int, sample_rate_hz: int) -> bytes:
    """A complete ``smpl`` chunk (id, size, 60 bytes of data) with one infinite forward loop.

    Multimedia Programming Interface and Data Specifications 1.0 / MMA sampler chunk: manufacturer
    0, product 0, sample period in ns (1e9 / rate), MIDI unity note 60, pitch fraction 0, SMPTE
    format 0, SMPTE offset 0, 1 loop, 0 bytes of sampler data; the loop: cue point id 0, type 0
    (forward), start and end (sample frames, end inclusive), fraction 0, play count 0 (infinite).
    """
    period_ns = int(round(1e9 / sample_rate_hz))
    header = SMPL_HEADER.pack(0, 0, period_ns, 60, 0, 0, 0, 1, 0)
    loop = SMPL_LOOP.pack(0, 0, loop_start_sample, loop_end_sample, 0, 0)
    data = header + loop
    return struct.pack("<4sI", b"smpl", len(data)) + data


def add_smpl_chunk(path, loop_start_sample: int, loop_end_sample: int, sample_rate_hz: int):
    """Append a ``smpl`` chunk marking one infinite forward loop to a WAV file, fixing the RIFF size.

    ``loop_end_sample`` is inclusive: a whole-file loop is ``0, n_frames - 1``. The chunk goes
    after the last chunk (after its pad byte), so the audio data is untouched. A ``smpl`` chunk
    that is already the file's last chunk is replaced; one elsewhere is an error.
    Raises ValueError naming the value for a loop outside the audio or a rate other than the file's,
    RenderError naming the file when it is not a RIFF WAVE file or cannot be written.
    """
    path = Path(path)
    for name, value in (("loop_start_sample", loop_start_sample), ("loop_end_sample", loop_end_sample),
                        ("sample_rate_hz", sample_rate_hz)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{name} must be a whole number, got {value!r}")
    try:
        with open(path, "r+b") as f:
            file_len = f.seek(0, 2)
            chunks = riff_chunks(f, file_len)
            layout = wav_layout(f, chunks)
            if sample_rate_hz != layout["rate_hz"]:
                raise ValueError(f"sample_rate_hz={sample_rate_hz} but {path} is at {layout['rate_hz']} Hz")
            if not 0 <= loop_start_sample <= loop_end_sample < layout["n_frames"]:
                raise ValueError(f"loop must satisfy 0 <= start <= end < {layout['n_frames']} (frames in "
                                 f"{path}), got start={loop_start_sample}, end={loop_end_sample}")
            cid, pos, size = chunks[-1]
            if cid == b"smpl":
                append_at = pos
            elif any(c == b"smpl" for c, _, _ in chunks):
                raise RenderError(f"{path}: already has a 'smpl' chunk before other chunks, not replacing it")
            else:
                append_at = pos + 8 + size + (size & 1)
            chunk = smpl_chunk(loop_start_sample, loop_end_sample, sample_rate_hz)
            new_len = append_at + len(chunk)
            if new_len - 8 > UINT32_MAX:
                raise RenderError(f"{path}: adding a 'smpl' chunk would pass the 4 GiB RIFF limit")
            if file_len < append_at:  # the last chunk's pad byte was missing
                f.seek(file_len)
                f.write(b"\x00" * (append_at - file_len))
            f.seek(append_at)
            f.write(chunk)
            f.truncate(new_len)
            f.seek(4)
            f.write(struct.pack("<I", new_len - 8))
    except OSError as e:
        raise RenderError(f"{path}: could not add the 'smpl' loop chunk: {e.strerror or e}") from e


def read_smpl_chunk(path) -> dict | None:
    """The first loop of a WAV file's ``smpl`` chunk, or None when there is no chunk or no loop.

    Returns ``{"start", "end", "play_count", "type", "sample_period_ns"}`` (layout as in
    ``smpl_chunk``). Raises RenderError naming the file when it is not a readable RIFF WAVE file
    or the chunk is shorter than its loop count says.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            file_len = f.seek(0, 2)
            for cid, pos, size in riff_chunks(f, file_len):
                if cid != b"smpl":
                    continue
                f.seek(pos + 8)
                data = f.read(size)
                if size < SMPL_HEADER.size:
                    raise RenderError(f"{path}: 'smpl' chunk of {size} bytes, "
                                      f"expected at least {SMPL_HEADER.size}")
                header = SMPL_HEADER.unpack(data[:SMPL_HEADER.size])
                if header[7] == 0:
                    return None
                if size < SMPL_HEADER.size + SMPL_LOOP.size:
                    raise RenderError(f"{path}: 'smpl' chunk of {size} bytes claims {header[7]} loops")
                _, kind, start, end, _, play_count = SMPL_LOOP.unpack(
                    data[SMPL_HEADER.size:SMPL_HEADER.size + SMPL_LOOP.size])
                return {"start": start, "end": end, "play_count": play_count, "type": kind,
                        "sample_period_ns": header[2]}
    except OSError as e:
        raise RenderError(f"{path}: could not read the WAV file: {e.strerror or e}") from e
    return None
