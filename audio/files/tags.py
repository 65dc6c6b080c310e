"""Tags, covers and chapters inside audio files, read and written: ID3v2.3, Vorbis comments, MP4
atoms, WAV INFO.

Writers edit a file in place (the caller runs them on the temporary file before the atomic
rename). ``tags`` is a mapping with the optional keys of ``TAG_KEYS`` (a missing or empty value is
skipped). ``chapters`` are objects with ``.title``, ``.start_s`` and ``.end_s``. ``cover`` is a PNG
or JPEG file, or None. Readers take the tag object mutagen or a RIFF chunk gives and return a
``Found``. Failures to read or write a file raise RenderError naming the file; impossible
argument values raise ValueError naming the value.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
import struct
from dataclasses import dataclass
from pathlib import Path

from audio.clock import clock
from audio.errors import RenderError
from audio.files.cover import CoverImage, read_image

TAG_KEYS = ("title", "artist", "album", "year", "comment", "genre")
# Where each tag lives per container, in order of preference when reading; the first is written.
ID3_FRAMES = {"title": ("TIT2",), "artist": ("TPE1",), "album": ("TALB",), "year": ("TDRC", "TYER"),
              "comment": ("COMM", "TXXX:comment", "TXXX:COMMENT"), "genre": ("TCON",)}
VORBIS_FIELDS = {"title": ("TITLE",), "artist": ("ARTIST",), "album": ("ALBUM",), "year": ("DATE", "YEAR"),
                 "comment": ("COMMENT", "DESCRIPTION"), "genre": ("GENRE",)}
WAV_INFO = {"title": (b"INAM", "title"), "artist": (b"IART", "artist"), "album": (b"IPRD", "album"),
            "year": (b"ICRD", "date"), "comment": (b"ICMT", "comment"),
            "genre": (b"IGNR", "genre")}  # tag → (RIFF INFO id, soundfile's name for it)
FRONT_COVER = 3  # APIC / FLAC picture type "Cover (front)"
YEAR_PATTERN = re.compile(r"\d{4}(-\d{2}(-\d{2})?)?")
ID3_TOC_ENTRIES = 255  # a CTOC frame's entry count is one byte (ID3v2 Chapter Frame Addendum)
VORBIS_CHAPTER_KEY = re.compile(r"CHAPTER\d+(NAME|URL)?", re.IGNORECASE)
VORBIS_CHAPTER = re.compile(r"CHAPTER(\d+)")
CHAPTER_TIME = re.compile(r"(?:(\d+):)?(\d+):(\d+(?:\.\d*)?)")
UINT32_MAX = 0xFFFF_FFFF


@dataclass(frozen=True)
class Cover:
    """An embedded front cover: its size and mime type."""

    bytes: int
    mime: str | None


@dataclass(frozen=True)
class Mark:
    """A chapter as a file holds it; ``end_s`` None when it runs to the end of the audio."""

    title: str
    start_s: float
    end_s: float | None


@dataclass(frozen=True)
class Found:
    """What a file's tag holds: every key of ``TAG_KEYS`` (None when absent), cover, chapters."""

    tags: dict
    cover: Cover | None = None
    chapters: tuple = ()  # Mark
    warnings: tuple = ()


# ---------------------------------------------------------------- shared helpers

def tag_values(tags) -> dict:
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


def empty_tags() -> dict:
    """Every known tag key with no value."""
    return {key: None for key in TAG_KEYS}


def front_cover(pictures: list) -> Cover | None:
    """The front cover (picture type 3) of embedded pictures, else the first; None for none."""
    if not pictures:
        return None
    front = next((p for p in pictures if p.type == FRONT_COVER), pictures[0])
    return Cover(len(front.data), front.mime or None)


# ---------------------------------------------------------------- MP3: ID3v2.3

def id3_encoding(text: str) -> int:
    """ID3v2.3 text encoding: 0 (ISO-8859-1) when the text fits, else 1 (UTF-16 with BOM)."""
    try:
        text.encode("latin-1")
        return 0
    except UnicodeEncodeError:
        return 1


def write_id3(path, tags, chapters, cover: Path | None = None):
    """Write an ID3v2.3 tag into an MP3 file in place (id3.org ID3v2.3.0 and Chapter Frame Addendum).

    Frames: TIT2 title, TPE1 artist, TALB album, TYER year (written as TDRC and converted by
    mutagen's ``update_to_v23``, which also yields TDAT for a full date), COMM comment (language
    ``eng``, empty description), TCON genre, APIC front cover (mime told from the image bytes).
    Chapters become CHAP frames ``chp0``, ``chp1``, … (start/end in ms, byte offsets unused =
    0xFFFFFFFF, one TIT2 sub-frame each) listed in order by one CTOC ``toc`` frame flagged
    top-level and ordered. A CTOC counts its entries in one byte: past 255 chapters, ``toc`` lists
    ordered CTOCs ``toc0``, ``toc1``, … ("Chapters 1–255", …) of 255 chapters each, as the
    addendum's nested tables allow. Earlier CHAP/CTOC frames (and APIC, when a cover is given) are
    replaced.
    """
    from mutagen import MutagenError
    from mutagen import id3 as id3_frames
    from mutagen.id3 import APIC, CHAP, COMM, CTOC, ID3, TIT2, CTOCFlags, ID3NoHeaderError

    path = Path(path)
    values = tag_values(tags)
    times = chapter_times_ms(chapters)
    picture = None
    if cover is not None:
        image = read_image(cover)
        picture = APIC(encoding=0, mime=image.mime, type=FRONT_COVER, desc="Cover", data=image.data)
    try:
        try:
            id3 = ID3(path)
        except ID3NoHeaderError:
            id3 = ID3()
        for key, value in values.items():
            if key == "comment":
                id3.delall("COMM")
                id3.add(COMM(encoding=id3_encoding(value), lang="eng", desc="", text=[value]))
            else:
                name = ID3_FRAMES[key][0]
                id3.setall(name, [getattr(id3_frames, name)(encoding=id3_encoding(value), text=[value])])
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
        if len(ids) > ID3_TOC_ENTRIES:  # nested tables of contents, each listing at most 255
            groups = [ids[i:i + ID3_TOC_ENTRIES] for i in range(0, len(ids), ID3_TOC_ENTRIES)]
            tables = [f"toc{k}" for k in range(len(groups))]
            for k, (table, group) in enumerate(zip(tables, groups)):
                first = k * ID3_TOC_ENTRIES + 1
                label = f"Chapters {first}–{first + len(group) - 1}"
                id3.add(CTOC(element_id=table, flags=CTOCFlags.ORDERED, child_element_ids=group,
                             sub_frames=[TIT2(encoding=id3_encoding(label), text=[label])]))
            ids = tables
        if ids:
            id3.add(CTOC(element_id="toc", flags=CTOCFlags.TOP_LEVEL | CTOCFlags.ORDERED,
                         child_element_ids=ids, sub_frames=[]))
        id3.update_to_v23()
        id3.save(path, v2_version=3)
        chap_frames_in_time_order(path)
    except (MutagenError, OSError) as e:
        raise RenderError(f"{path}: could not write the ID3 tag: {e}") from e


def chap_frames_in_time_order(path: Path):
    """Put the CHAP frames of a file's ID3v2.3 tag in start-time order, in the places they hold.

    mutagen stores frames by size, but readers such as ffmpeg list chapters in the order of their
    frames, whatever the CTOC says. ID3v2.3 frame headers (id3.org ID3v2.3.0, 3.3) are a 4-byte id,
    a 4-byte big-endian size and 2 flag bytes; a CHAP frame starts with its element id (ending in a
    NUL) and its start time in ms. A tag with header flags (unsynchronised, extended) is left as is.
    """
    with open(path, "r+b") as f:
        header = f.read(10)
        if header[:4] != b"ID3\x03" or header[5] != 0:
            return
        size = sum((b & 0x7F) << (7 * (3 - i)) for i, b in enumerate(header[6:10]))  # syncsafe
        body = f.read(size)
        frames, pos = [], 0
        while pos + 10 <= len(body) and body[pos] != 0:
            (length,) = struct.unpack(">I", body[pos + 4:pos + 8])
            frames.append(body[pos:pos + 10 + length])
            pos += 10 + length

        def start_ms(frame: bytes) -> int:
            at = frame.index(b"\0", 10) + 1
            return struct.unpack(">I", frame[at:at + 4])[0]
        in_order = iter(sorted((fr for fr in frames if fr[:4] == b"CHAP"), key=start_ms))
        f.seek(10)
        f.write(b"".join(next(in_order) if fr[:4] == b"CHAP" else fr for fr in frames))


def toc_order(top, tocs, chaps) -> list[str]:
    """The chapter ids a table of contents lists, with those of the tables nested in it in their
    places (each table once, however the file links them)."""
    by_id = {toc.element_id: toc for toc in tocs}
    order, seen, stack = [], {top.element_id}, [iter(top.child_element_ids)]
    while stack:
        element_id = next(stack[-1], None)
        if element_id is None:
            stack.pop()
        elif element_id in chaps:
            order.append(element_id)
        elif element_id in by_id and element_id not in seen:
            seen.add(element_id)
            stack.append(iter(by_id[element_id].child_element_ids))
    return order


def read_id3(id3) -> Found:
    """Tags, cover and chapters from a mutagen ID3 tag (ID3v2.3 or 2.4), or None for no tag.

    Chapters are the CHAP frames (ID3v2 Chapter Frame Addendum), in the order of the top-level
    CTOC frame when there is one, else by start time; an end time of 0xFFFFFFFF (unknown) is None.
    """
    if id3 is None:
        return Found(empty_tags())
    from mutagen.id3 import CTOCFlags

    tags = empty_tags()
    for key, names in ID3_FRAMES.items():
        for name in names:
            found = id3.getall(name) if ":" not in name else ([id3[name]] if name in id3 else [])
            if name == "COMM":  # prefer the comment with no description (the plain comment)
                found = sorted(found, key=lambda fr: fr.desc != "")
            texts = [str(t) for fr in found for t in getattr(fr, "text", []) if str(t).strip()]
            if texts:
                tags[key] = texts[0].strip()
                break
    chaps = {fr.element_id: fr for fr in id3.getall("CHAP")}
    tocs = id3.getall("CTOC")
    top = [toc for toc in tocs if toc.flags & CTOCFlags.TOP_LEVEL] or tocs[:1]
    order = toc_order(top[0], tocs, chaps) if top else []
    order += sorted((e for e in chaps if e not in order), key=lambda e: chaps[e].start_time)
    marks = []
    for element_id in order:
        fr = chaps[element_id]
        title_frames = fr.sub_frames.getall("TIT2")
        title = str(title_frames[0].text[0]) if title_frames and title_frames[0].text else ""
        end_s = None if fr.end_time == UINT32_MAX else fr.end_time / 1000
        marks.append(Mark(title, fr.start_time / 1000, end_s))
    return Found(tags, front_cover(id3.getall("APIC")), tuple(marks))


# ---------------------------------------------------------------- FLAC / Ogg: Vorbis comments

def flac_picture(image: CoverImage):
    """A FLAC METADATA_BLOCK_PICTURE (FLAC format spec) for a front cover."""
    from mutagen.flac import Picture

    picture = Picture()
    picture.type = FRONT_COVER
    picture.mime = image.mime
    picture.desc = "Cover"
    picture.width, picture.height = image.width, image.height
    picture.depth, picture.colors = image.depth, image.colours
    picture.data = image.data
    return picture


def write_vorbis(path, tags, chapters, cover: Path | None = None):
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
    picture = flac_picture(read_image(cover)) if cover is not None else None
    try:
        audio = mutagen.File(path, options=[FLAC, OggVorbis, OggOpus])
        if audio is None:
            raise RenderError(f"{path}: not a FLAC, Ogg Vorbis or Ogg Opus file, cannot write Vorbis comments")
        if audio.tags is None:
            audio.add_tags()
        comments = audio.tags
        for key, value in values.items():
            comments[VORBIS_FIELDS[key][0]] = [value]
        for key in {k for k, _ in comments if VORBIS_CHAPTER_KEY.fullmatch(k)}:
            del comments[key]
        for n, (title, start_ms, _) in enumerate(times, start=1):
            comments[f"CHAPTER{n:03d}"] = [clock(start_ms / 1000, hours_width=2)]
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


def read_vorbis(comments, pictures=()) -> Found:
    """Tags, cover and chapters from Vorbis comments (FLAC, Ogg Vorbis, Ogg Opus) and FLAC pictures.

    In Ogg the cover is a base64 ``METADATA_BLOCK_PICTURE`` comment holding a FLAC picture block.
    Chapters are ``CHAPTERnnn=HH:MM:SS.mmm`` / ``CHAPTERnnnNAME=…`` comments; a chapter ends where
    the next begins, the last one's end is None. A chapter time that cannot be read is a warning.
    """
    from mutagen.flac import Picture

    fields = {}
    for key, value in (comments or []):
        fields.setdefault(key.upper(), []).append(value)
    tags = empty_tags()
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
    starts, warnings = [], []
    for key, values in fields.items():
        m = VORBIS_CHAPTER.fullmatch(key)
        if not m:
            continue
        start_s = chapter_time_s(values[0])
        if start_s is None:
            warnings.append(f"{key}={values[0]!r} is not a HH:MM:SS.mmm time; chapter skipped")
            continue
        starts.append((start_s, int(m.group(1)), fields.get(f"{key}NAME", [""])[0]))
    starts.sort()
    ends = [start_s for start_s, _, _ in starts[1:]] + [None]
    marks = tuple(Mark(title, start_s, end_s) for (start_s, _, title), end_s in zip(starts, ends))
    return Found(tags, front_cover(found), marks, tuple(warnings))


def chapter_time_s(text: str) -> float | None:
    """Seconds from ``HH:MM:SS.mmm`` (or ``MM:SS.mmm``), or None when it is not such a time."""
    m = CHAPTER_TIME.fullmatch(text.strip())
    if not m:
        return None
    hours, minutes, seconds = m.groups()
    return int(hours or 0) * 3600 + int(minutes) * 60 + float(seconds)


# ---------------------------------------------------------------- MP4 (M4A, M4B): iTunes atoms, chapters

MP4_ATOMS = {"title": "\xa9nam", "artist": "\xa9ART", "album": "\xa9alb", "year": "\xa9day",
             "comment": "\xa9cmt", "genre": "\xa9gen"}
MP4_AUDIOBOOK = 2  # the "stik" media kind under which Apple files an audiobook
FFMETADATA_SPECIAL = re.compile(r"([=;#\\\n])")


def ffmetadata_chapters(chapters) -> str:
    """Chapters as an ffmetadata file (ffmpeg-formats, "Metadata": ``=``, ``;``, ``#``, ``\\`` and
    line breaks escaped with a backslash), for ffmpeg to write into an MP4 as a QuickTime chapter
    track, which Apple's players read, and a Nero ``chpl`` atom, which mutagen and others read."""
    lines = [";FFMETADATA1"]
    for title, start_ms, end_ms in chapter_times_ms(chapters):
        lines += ["[CHAPTER]", "TIMEBASE=1/1000", f"START={start_ms}", f"END={end_ms}",
                  "title=" + FFMETADATA_SPECIAL.sub(r"\\\1", title)]
    return "\n".join(lines) + "\n"


def write_mp4(path, tags, cover: Path | None = None, audiobook: bool = False):
    """Write iTunes metadata atoms into an M4A or M4B file in place: ``©nam`` title, ``©ART``
    artist, ``©alb`` album, ``©day`` year, ``©cmt`` comment, ``©gen`` genre, ``covr`` cover, and
    for an audiobook the media kind ``stik`` = 2. The chapters are ffmpeg's (``ffmetadata_chapters``)."""
    from mutagen import MutagenError
    from mutagen.mp4 import MP4, MP4Cover

    path = Path(path)
    values = tag_values(tags)
    image = read_image(cover) if cover is not None else None
    try:
        mp4 = MP4(path)
        if mp4.tags is None:
            mp4.add_tags()
        for key, value in values.items():
            mp4.tags[MP4_ATOMS[key]] = [value]
        if image is not None:
            kind = MP4Cover.FORMAT_PNG if image.mime == "image/png" else MP4Cover.FORMAT_JPEG
            mp4.tags["covr"] = [MP4Cover(image.data, kind)]
        if audiobook:
            mp4.tags["stik"] = [MP4_AUDIOBOOK]
        mp4.save()
    except (MutagenError, OSError) as e:
        raise RenderError(f"{path}: could not write the MP4 tags: {e}") from e


def read_mp4(mp4) -> Found:
    """Tags, cover and chapters of a mutagen MP4; a chapter ends where the next begins, the last
    one's end is None."""
    from mutagen.mp4 import MP4Cover

    atoms = mp4.tags or {}
    tags = empty_tags()
    for key, atom in MP4_ATOMS.items():
        values = [str(v).strip() for v in atoms.get(atom, []) if str(v).strip()]
        if values:
            tags[key] = values[0]
    cover = None
    if atoms.get("covr"):
        first = atoms["covr"][0]
        cover = Cover(len(first), "image/png" if first.imageformat == MP4Cover.FORMAT_PNG else "image/jpeg")
    starts = [(float(c.start), c.title) for c in (mp4.chapters or [])]
    ends = [start_s for start_s, _ in starts[1:]] + [None]
    return Found(tags, cover, tuple(Mark(title, start_s, end_s) for (start_s, title), end_s in zip(starts, ends)))


# ---------------------------------------------------------------- WAV: the LIST INFO chunk

def write_wav_info(sound_file, tags):
    """Set the tags on an open soundfile WAV, which writes them as a ``LIST`` ``INFO`` chunk."""
    for key, value in tag_values(tags).items():
        setattr(sound_file, WAV_INFO[key][1], value)


def read_wav_info(data: bytes) -> dict:
    """Tags from the data of a ``LIST`` chunk of type ``INFO`` (the keys found, stripped)."""
    keys = {riff_id: key for key, (riff_id, _) in WAV_INFO.items()}
    tags = {}
    if data[:4] != b"INFO":
        return tags
    pos = 4
    while pos + 8 <= len(data):
        sub_id, size = struct.unpack_from("<4sI", data, pos)
        value = data[pos + 8: pos + 8 + size].split(b"\x00", 1)[0]
        key = keys.get(sub_id)
        if key and value.strip():
            tags[key] = value.decode("utf-8", errors="replace").strip()
        pos += 8 + size + (size & 1)
    return tags
