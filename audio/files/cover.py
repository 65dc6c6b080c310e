"""A cover image: its bytes, and its type and geometry told from its content (PNG or JPEG)."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from audio.errors import RenderError
from audio.files import reading


MAX_COVER_BYTES = 16 * 1024 * 1024  # a cover is read whole and embedded in every file's tags
APPLE_SIDE_PX = (1400, 3000)  # Apple Podcasts artwork: square, 1400 to 3000 px a side, JPEG or PNG in RGB
PNG_COLOUR_TYPES = {0: "grey", 2: "rgb", 3: "palette", 4: "grey+alpha", 6: "rgba"}  # PNG spec 11.2.2
JPEG_COMPONENTS = {1: "grey", 3: "rgb", 4: "cmyk"}  # YCbCr decodes to RGB


@dataclass(frozen=True)
class CoverImage:
    data: bytes
    mime: str
    width: int
    height: int
    depth: int  # bits per pixel
    colours: int  # palette entries; 0 without a palette
    model: str  # colour model: rgb, rgba, grey, grey+alpha, palette, cmyk


def apple_problems(image: CoverImage) -> list[str]:
    """How a cover misses Apple Podcasts' artwork rules, each with its numbers; empty when it meets them."""
    problems = []
    if image.width != image.height:
        problems.append(f"{image.width}×{image.height} px is not square")
    low, high = APPLE_SIDE_PX
    off = [side for side in (image.width, image.height) if not low <= side <= high]
    if off:
        problems.append(f"{off[0]} px is outside {low}–{high} px a side")
    if image.model not in ("rgb", "rgba"):
        problems.append(f"its colours are {image.model}, not RGB")
    return problems


def read_image(path: Path) -> CoverImage:
    """The cover at ``path``, its type told from its bytes (not its name).

    Raises RenderError naming the file when it cannot be read or is neither a PNG nor a readable JPEG.
    """
    try:
        data = reading.read_bytes(path, MAX_COVER_BYTES)
    except OSError as e:
        raise RenderError(f"{path}: cannot read the cover image: {e.strerror or e}") from e
    try:
        if data.startswith(b"\x89PNG\r\n\x1a\n") and data[12:16] == b"IHDR":
            mime, geometry = "image/png", png_info(data)
        elif data.startswith(b"\xff\xd8\xff"):
            mime, geometry = "image/jpeg", jpeg_info(data)
        else:
            raise ValueError(f"it starts with {data[:8]!r}")
    except (ValueError, struct.error) as e:
        raise RenderError(f"{path}: the cover must be a PNG or JPEG image ({e})") from None
    return CoverImage(data, mime, *geometry)


def png_info(data: bytes) -> tuple[int, int, int, int, str]:
    """``(width, height, bits per pixel, palette colours, colour model)`` from a PNG's IHDR and PLTE
    (PNG spec 11.2)."""
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
    return width, height, bit_depth * channels, colours, PNG_COLOUR_TYPES.get(colour_type, "unknown")


def jpeg_info(data: bytes) -> tuple[int, int, int, int, str]:
    """``(width, height, bits per pixel, 0, colour model)`` from a JPEG's start-of-frame segment
    (ITU T.81 B.2.2).

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
            return width, height, precision * components, 0, JPEG_COMPONENTS.get(components, "unknown")
        pos += 2 + length
    raise ValueError("no JPEG start-of-frame segment")
