"""RIFF WAVE chunks: walk them, and read and write the ``smpl`` loop chunk.

Layouts from Multimedia Programming Interface and Data Specifications 1.0 (RIFF, and the MMA
sampler chunk) and EBU Tech 3306 (RF64's ``ds64`` sizes). Reading tolerates what it can (an RF64
file, a last chunk cut short); writing refuses anything but a whole RIFF WAVE file.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from audio.errors import RenderError

SMPL_HEADER = struct.Struct("<9I")  # manufacturer … sampler data size: 36 bytes
SMPL_LOOP = struct.Struct("<6I")  # cue point id, type, start, end, fraction, play count: 24 bytes
LOOP_TYPES = {0: "forward", 1: "alternating", 2: "backward"}
MIDI_UNITY_NOTE = 60
UINT32_MAX = 0xFFFF_FFFF


@dataclass(frozen=True)
class Chunk:
    """One chunk: its four-byte id, where its 8-byte header starts, and its data's size."""

    id: bytes
    start: int
    size: int

    @property
    def data_start(self) -> int:
        return self.start + 8

    @property
    def end(self) -> int:
        """Where the next chunk starts: chunks are word-aligned, an odd size is followed by a pad byte."""
        return self.data_start + self.size + (self.size & 1)


@dataclass(frozen=True)
class Loop:
    """A ``smpl`` loop: first and last frame (inclusive), play count (0 = forever), direction."""

    start_frame: int
    end_frame: int
    play_count: int = 0
    type: str = "forward"


def walk(f) -> tuple[bytes, list[Chunk], list[str]]:
    """The form (``RIFF``, ``RF64`` or ``BW64``), the chunks of an open WAVE file, and warnings.

    In an RF64/BW64 file a size of 0xFFFFFFFF is taken from the ``ds64`` chunk. A chunk that runs
    past the end of the file ends the walk with a warning (its size is cut to what is there): the
    audio before it may still be readable. Raises RenderError naming the file when it is not a
    WAVE file.
    """
    file_len = f.seek(0, 2)
    f.seek(0)
    head = f.read(12)
    if len(head) < 12 or head[:4] not in (b"RIFF", b"RF64", b"BW64") or head[8:12] != b"WAVE":
        raise RenderError(f"{f.name}: not a RIFF WAVE file (it starts with {head[:12]!r})")
    chunks, warnings, ds64_sizes = [], [], {}
    pos = 12
    while pos + 8 <= file_len:
        f.seek(pos)
        chunk_id, size = struct.unpack("<4sI", f.read(8))
        if chunk_id == b"ds64" and size >= 24:
            _, ds64_sizes[b"data"], _ = struct.unpack("<QQQ", f.read(24))
        if size == UINT32_MAX and chunk_id in ds64_sizes:
            size = ds64_sizes[chunk_id]
        if pos + 8 + size > file_len:
            warnings.append(f"chunk {chunk_id.decode('latin-1')!r} at byte {pos} claims {size} bytes, "
                            f"past the end of the {file_len}-byte file")
            chunks.append(Chunk(chunk_id, pos, file_len - pos - 8))
            break
        chunk = Chunk(chunk_id, pos, size)
        chunks.append(chunk)
        pos = chunk.end
    return head[:4], chunks, warnings


def read_chunks(path: Path) -> tuple[list[Chunk], list[str]]:
    """The chunks of a WAVE file, and warnings (see ``walk``)."""
    with open(path, "rb") as f:
        _, chunks, warnings = walk(f)
    return chunks, warnings


def read_data(path: Path, chunk: Chunk) -> bytes:
    """A chunk's data."""
    with open(path, "rb") as f:
        f.seek(chunk.data_start)
        return f.read(chunk.size)


def parse_smpl(data: bytes) -> tuple[list[Loop], list[str]]:
    """The loops of a ``smpl`` chunk's data, and warnings.

    A chunk shorter than its loop count says yields the loops that fit and a warning.
    """
    if len(data) < SMPL_HEADER.size:
        return [], [f"'smpl' chunk of {len(data)} bytes, shorter than its {SMPL_HEADER.size}-byte header"]
    n_claimed = SMPL_HEADER.unpack_from(data)[7]
    n_fit = (len(data) - SMPL_HEADER.size) // SMPL_LOOP.size
    warnings = [f"'smpl' chunk claims {n_claimed} loops but holds {n_fit}"] if n_fit < n_claimed else []
    loops = []
    for i in range(min(n_claimed, n_fit)):
        _, kind, start, end, _, play_count = SMPL_LOOP.unpack_from(data, SMPL_HEADER.size + i * SMPL_LOOP.size)
        loops.append(Loop(start, end, play_count, LOOP_TYPES.get(kind, f"type {kind}")))
    return loops, warnings


def smpl_chunk(loop_start_sample: int, loop_end_sample: int, sample_rate_hz: int) -> bytes:
    """A complete ``smpl`` chunk (id, size, 60 bytes of data) with one infinite forward loop.

    Manufacturer 0, product 0, sample period in ns (1e9 / rate), MIDI unity note 60, pitch
    fraction 0, SMPTE format 0, SMPTE offset 0, 1 loop, 0 bytes of sampler data; the loop: cue
    point id 0, type 0 (forward), start and end (sample frames, end inclusive), fraction 0, play
    count 0 (infinite).
    """
    period_ns = int(round(1e9 / sample_rate_hz))
    header = SMPL_HEADER.pack(0, 0, period_ns, MIDI_UNITY_NOTE, 0, 0, 0, 1, 0)
    loop = SMPL_LOOP.pack(0, 0, loop_start_sample, loop_end_sample, 0, 0)
    return struct.pack("<4sI", b"smpl", len(header + loop)) + header + loop


def wav_layout(f, chunks: list[Chunk]) -> tuple[int, int]:
    """Sample rate and frame count from the ``fmt `` and ``data`` chunks."""
    found = {c.id: c for c in chunks}
    if b"fmt " not in found or b"data" not in found:
        raise RenderError(f"{f.name}: WAV has no 'fmt ' or no 'data' chunk")
    f.seek(found[b"fmt "].data_start)
    _, _, rate_hz, _, block_bytes = struct.unpack("<HHIIH", f.read(14))
    if block_bytes == 0:
        raise RenderError(f"{f.name}: WAV 'fmt ' chunk has a block size of 0")
    return rate_hz, found[b"data"].size // block_bytes


def add_smpl_chunk(path, loop_start_sample: int, loop_end_sample: int, sample_rate_hz: int):
    """Append a ``smpl`` chunk marking one infinite forward loop to a WAV file, fixing the RIFF size.

    ``loop_end_sample`` is inclusive: a whole-file loop is ``0, n_frames - 1``. The chunk goes
    after the last chunk (after its pad byte), so the audio data is untouched. A ``smpl`` chunk
    that is already the file's last chunk is replaced; one elsewhere is an error.
    Raises ValueError naming the value for a loop outside the audio or a rate other than the file's,
    RenderError naming the file when it is not a whole RIFF WAVE file or cannot be written.
    """
    path = Path(path)
    for name, value in (("loop_start_sample", loop_start_sample), ("loop_end_sample", loop_end_sample),
                        ("sample_rate_hz", sample_rate_hz)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{name} must be a whole number, got {value!r}")
    try:
        with open(path, "r+b") as f:
            form, chunks, warnings = walk(f)
            if form != b"RIFF":
                raise RenderError(f"{path}: RF64 (over 4 GiB), expected a RIFF WAVE file")
            if warnings:
                raise RenderError(f"{path}: {warnings[0]}")
            rate_hz, n_frames = wav_layout(f, chunks)
            if sample_rate_hz != rate_hz:
                raise ValueError(f"sample_rate_hz={sample_rate_hz} but {path} is at {rate_hz} Hz")
            if not 0 <= loop_start_sample <= loop_end_sample < n_frames:
                raise ValueError(f"loop must satisfy 0 <= start <= end < {n_frames} (frames in "
                                 f"{path}), got start={loop_start_sample}, end={loop_end_sample}")
            if chunks[-1].id == b"smpl":
                append_at = chunks[-1].start
            elif any(c.id == b"smpl" for c in chunks):
                raise RenderError(f"{path}: already has a 'smpl' chunk before other chunks, not replacing it")
            else:
                append_at = chunks[-1].end
            chunk = smpl_chunk(loop_start_sample, loop_end_sample, sample_rate_hz)
            new_len = append_at + len(chunk)
            if new_len - 8 > UINT32_MAX:
                raise RenderError(f"{path}: adding a 'smpl' chunk would pass the 4 GiB RIFF limit")
            file_len = f.seek(0, 2)
            if file_len < append_at:  # the last chunk's pad byte was missing
                f.write(b"\x00" * (append_at - file_len))
            f.seek(append_at)
            f.write(chunk)
            f.truncate(new_len)
            f.seek(4)
            f.write(struct.pack("<I", new_len - 8))
    except OSError as e:
        raise RenderError(f"{path}: could not add the 'smpl' loop chunk: {e.strerror or e}") from e
