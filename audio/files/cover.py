"""A cover image: its bytes, and its type and geometry told from its content (PNG or JPEG)."""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path

from audio.errors import RenderError, score_error
from audio.files import reading


APPLE_SIDE_PX = (1400, 3000)  # Apple Podcasts artwork: square, 1400 to 3000 px a side, JPEG or PNG in RGB
PNG_COLOUR_TYPES = {0: "grey", 2: "rgb", 3: "palette", 4: "grey+alpha", 6: "rgba"}  # PNG spec 11.2.2
JPEG_COMPONENTS = {1: "grey", 3: "rgb", 4: "cmyk"}  # YCbCr decodes to RGB
PNG_HEADER_BYTES = 33  # signature, then the IHDR chunk: length, type, 13 bytes of data, CRC (PNG spec 5.2, 11.2.2)
MAX_COVER_BYTES = 16_000_000  # FLAC keeps the picture in one metadata block, of under 16 MiB (24-bit length)
MAX_COVER_PIXELS = 36_000_000  # a cover is decoded whole to check it: 6,000 × 6,000 px at most


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
        return image_of(data)
    except ValueError as e:
        raise RenderError(f"{path}: the cover must be a PNG or JPEG image ({e})") from None


def image_of(data: bytes) -> CoverImage:
    """The image ``data`` holds, from its headers. Raises ValueError saying why it is not a PNG or JPEG."""
    try:
        if data.startswith(b"\x89PNG\r\n\x1a\n"):
            if data[12:16] != b"IHDR":
                raise ValueError("a PNG signature, but no IHDR header after it")
            if len(data) < PNG_HEADER_BYTES:
                raise ValueError("its IHDR header is cut short")
            return CoverImage(data, "image/png", *png_info(data))
        if data.startswith(b"\xff\xd8\xff"):
            return CoverImage(data, "image/jpeg", *jpeg_info(data))
    except struct.error:
        raise ValueError("its header is cut short") from None
    raise ValueError(f"it starts with {data[:8]!r}")


def check_cover(data: bytes, file, where, path="") -> CoverImage:
    """The cover image in ``data`` (read from ``path``), checked as a score's key: at most
    MAX_COVER_BYTES, a PNG or JPEG of at most MAX_COVER_PIXELS that decodes whole (a truncated or
    damaged image is refused here, not when it is embedded after the mix).

    Raises ScoreError naming ``file``, ``where``, the cover and the rule it breaks."""
    name = f"{path} " if path else ""
    if len(data) > MAX_COVER_BYTES:
        raise score_error(file, where, f"the cover image {name}is {len(data):,} bytes; the limit is "
                          f"{MAX_COVER_BYTES:,} bytes (FLAC holds a picture of under 16 MiB)")
    try:
        image = image_of(data)
    except ValueError as e:
        raise score_error(file, where, f"the cover image {name}is not a PNG or JPEG image ({e})") from None
    if image.width * image.height > MAX_COVER_PIXELS:
        raise score_error(file, where, f"the cover image {name}is {image.width} × {image.height} px; the limit is "
                          f"{MAX_COVER_PIXELS:,} pixels (e.g. 6000 × 6000)")
    problem = (png_data_problem(data, image) if image.mime == "image/png" else "") or _decode_problem(data)
    if problem:
        kind = "PNG" if image.mime == "image/png" else "JPEG"
        raise score_error(file, where, f"the cover image {name}is a damaged {kind}: {problem}")
    return image


ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))


def png_data_problem(data: bytes, image: CoverImage) -> str:
    """Why a PNG's image data is not the size its IHDR gives (PNG spec 7.2, 8.2), or "" when it is.

    The IDAT chunks are inflated in pieces and only counted: memory stays small for any image."""
    interlaced = data[28] == 1
    passes = ADAM7 if interlaced else ((0, 0, 1, 1),)
    expected = 0
    for x0, y0, dx, dy in passes:
        columns, rows = -(-(image.width - x0) // dx), -(-(image.height - y0) // dy)
        if columns > 0 and rows > 0:
            expected += rows * (1 + -(-columns * image.depth // 8))  # a filter byte, then the row's pixels
    inflate, inflated, pos = zlib.decompressobj(), 0, 8
    try:
        while pos + 8 <= len(data):
            length, kind = struct.unpack(">I4s", data[pos:pos + 8])
            if kind == b"IDAT":
                chunk = data[pos + 8:pos + 8 + length]
                while chunk and inflated <= expected:
                    inflated += len(inflate.decompress(chunk, 1 << 20))
                    chunk = inflate.unconsumed_tail
            if kind == b"IEND":
                break
            pos += 12 + length
    except zlib.error as e:
        return f"its image data does not inflate ({e})"
    if inflated != expected:
        return f"its image data holds {inflated:,} bytes, not the {expected:,} its header gives"
    return ""


def _decode_problem(data: bytes) -> str:
    """Why the image in ``data`` does not decode whole (checksums, truncation), or "" when it does."""
    from PIL import Image  # loaded only for a score with a cover

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the pixel limit above is this check's guard, not Pillow's warning
            with Image.open(io.BytesIO(data)) as image:
                image.verify()  # chunk checksums and order (PNG)
            with Image.open(io.BytesIO(data)) as image:
                image.load()  # every pixel: a truncated or damaged image data stream fails here
    except Image.UnidentifiedImageError:
        return "its headers are damaged or cut short"
    except Exception as e:  # noqa: BLE001 - Pillow reports damage as OSError, SyntaxError, ValueError, …
        return str(e) or type(e).__name__
    return ""


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
