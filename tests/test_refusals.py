"""Refused at load, in one printable line, with exit status 2: damaged or oversized covers, a
picture nothing is drawn from, pauses past the length limit, tables and names given as nothing;
said, not silently done: a format written at another sample rate. A score saved with a BOM loads."""

import struct
import subprocess
import time
import zlib

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner
from conftest import ffmpeg, write_score

from audio import export, plan, score
from audio.cli import main
from audio.errors import ScoreError, printable
from audio.files import cover
from audio.speech.cache import ClipCache

BODY = """
[piece]
title = "Refusals"
text = "TEXT"
sample_rate = 22050
{piece}

[pauses]
lead_in = 0.2
tail = 0.2

[master]
formats = ["wav"]
{rest}
"""
TEXT = "One short line.\n"


def body(piece="", rest=""):
    return BODY.format(piece=piece, rest=rest)


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def png_bytes(width=8, height=8, interlace=0) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = (b"\x00" + bytes([40, 90, 160]) * width) * height
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, interlace))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


@pytest.fixture(scope="module")
def jpeg_bytes(tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("jpeg") / "c.jpg"
    subprocess.run([ffmpeg(), "-v", "error", "-f", "lavfi", "-i", "color=c=red:s=64x48", "-frames:v", "1", str(path)],
                   check=True)
    return path.read_bytes()


# ---------------------------------------------------------------- covers, checked at load

def damaged_covers(jpeg: bytes) -> dict:
    good = png_bytes(64, 64)
    return {
        "png header then garbage": good[:8] + b"garbage " * 40,
        "png cut in its header": good[:30],
        "png cut in its IHDR data": good[:26],
        "png cut in its image data": good[:len(good) // 2],
        "png without its IEND": good[:-12],
        "png image data damaged": good[:45] + bytes([good[45] ^ 0xFF]) + good[46:],
        "png ihdr larger than its data": png_bytes(64, 64).replace(struct.pack(">II", 64, 64),
                                                                   struct.pack(">II", 64, 128), 1),
        "jpeg header then garbage": jpeg[:3] + b"garbage " * 40,
        "jpeg cut short": jpeg[:len(jpeg) // 2],
    }


@pytest.mark.parametrize("kind", ["png header then garbage", "png cut in its header", "png cut in its IHDR data",
                                  "png cut in its image data", "png without its IEND", "png image data damaged",
                                  "png ihdr larger than its data", "jpeg header then garbage", "jpeg cut short"])
def test_a_damaged_cover_is_refused_by_validate_naming_piece_cover(tmp_path, jpeg_bytes, kind):
    (tmp_path / "c.png").write_bytes(damaged_covers(jpeg_bytes)[kind])
    path = write_score(tmp_path, body('cover = "c.png"'), TEXT)
    t0 = time.perf_counter()
    result = run("validate", path)
    assert result.exit_code == 2, result.output
    assert "piece.cover: the cover image" in result.output and "c.png" in result.output, result.output
    assert time.perf_counter() - t0 < 5


def test_a_cover_over_the_limit_is_refused_at_load_and_nothing_is_written(tmp_path):
    (tmp_path / "c.png").write_bytes(png_bytes() + b"\0" * cover.MAX_COVER_BYTES)
    path = write_score(tmp_path, body('cover = "c.png"'), TEXT)
    result = run("render", path, "-o", tmp_path / "out", "--format", "flac")
    assert result.exit_code == 2, result.output
    assert "piece.cover" in result.output and f"the limit is {cover.MAX_COVER_BYTES:,} bytes" in result.output
    assert ".part" not in result.output and not (tmp_path / "out").exists()


def test_a_cover_of_too_many_pixels_is_refused_before_it_is_decoded(tmp_path):
    data = png_bytes(8, 8).replace(struct.pack(">II", 8, 8), struct.pack(">II", 20000, 20000), 1)
    with pytest.raises(ScoreError, match=f"20000 × 20000 px; the limit is {cover.MAX_COVER_PIXELS:,} pixels"):
        cover.check_cover(data, "x.toml", "piece.cover", "c.png")


@pytest.mark.parametrize("kind", ["rgb", "interlaced", "jpeg"])
def test_a_whole_cover_passes_and_embeds(tmp_path, jpeg_bytes, kind):
    data = {"rgb": png_bytes(33, 17), "interlaced": png_bytes(33, 17, interlace=1), "jpeg": jpeg_bytes}[kind]
    if kind == "interlaced":
        from PIL import Image
        import io
        buf = io.BytesIO()
        Image.new("RGBA", (37, 29), (1, 2, 3, 4)).save(buf, "PNG", interlace=1)
        data = buf.getvalue()
    image = cover.check_cover(data, "x.toml", "piece.cover")
    assert image.width > 0
    (tmp_path / "c.png").write_bytes(data)
    sc = score.load(write_score(tmp_path, body('cover = "c.png"'), TEXT))
    assert sc.piece.cover


# ---------------------------------------------------------------- --picture without a WAV or FLAC

@pytest.mark.parametrize("where", ["--format", "master.formats"])
def test_a_picture_without_a_wav_or_flac_is_refused_before_any_speech(tmp_path, where):
    cache = tmp_path / "cache"
    if where == "--format":
        path = write_score(tmp_path, body(), TEXT)
        result = run("render", path, "-o", tmp_path / "out", "--format", "mp3", "--picture", "--cache-dir", cache)
    else:
        path = write_score(tmp_path, body().replace('formats = ["wav"]', 'formats = ["mp3", "ogg"]'), TEXT)
        result = run("render", path, "-o", tmp_path / "out", "--picture", "--cache-dir", cache)
    assert result.exit_code == 2, result.output
    assert f"{path}: --picture: the picture is drawn from the WAV or FLAC, and {where} gives" in result.output
    assert not (tmp_path / "out").exists() and not cache.exists()


# ---------------------------------------------------------------- every pause in the length estimate

PAUSED_TEXT = "".join(f"Sentence number {i}.\n" for i in range(13))


@pytest.mark.parametrize("pause", ["pause_before", "pause_after", "break"])
def test_pauses_past_twelve_hours_are_refused_before_a_word_is_spoken(tmp_path, pause):
    if pause == "break":
        text, cues = PAUSED_TEXT.replace(".\n", '. <break time="3600s"/> Then.\n'), ""
    else:
        text = PAUSED_TEXT
        cues = "".join(f'[[cue]]\nmatch = "Sentence number {i}."\n{pause} = 3600.0\n' for i in range(13))
    sc = score.load(write_score(tmp_path, body(rest=cues), text))
    cache = ClipCache(tmp_path / "cache")
    t0 = time.perf_counter()
    over = r"would last at least 1[23]\.\d h \(1[23]\.0 h of it pauses\); the limit is 12 h"
    with pytest.raises(ScoreError, match=over):
        plan.resolve(sc, cache)
    assert cache.synthesized == cache.hits == 0 and time.perf_counter() - t0 < 2


def test_the_estimate_takes_each_sentences_own_rate(tmp_path, monkeypatch):
    """90,000 words are over 12 hours at 80 words a minute, not at a span's 450: the estimate lets
    the piece go on to be spoken (here a stand-in for the speaking, which would take minutes)."""
    text = "".join(f"Line {i} " + "word " * 8 + "end.\n" for i in range(9000))
    span = '[voice]\nrate = 80\n[[span]]\nfrom = "Line 0 word"\nto = "Line 8999 word"\nrate = 450\n'
    sc = score.load(write_score(tmp_path, body(rest=span), text))

    class Spoken(Exception):
        pass

    def speak(*args):
        raise Spoken()
    monkeypatch.setattr(plan, "_speak", speak)
    with pytest.raises(Spoken):
        plan.resolve(sc, ClipCache(tmp_path / "cache"))


# ---------------------------------------------------------------- nothing given as a table or a name

@pytest.mark.parametrize("value, shown", [("[]", "[] (a list)"), ('""', '"" (a string)'),
                                          ("0", "0 (a whole number)"), ("false", "false (a boolean)")])
def test_layer_params_that_are_not_a_table_are_refused(tmp_path, value, shown):
    layer = f'[[layer]]\nname = "a"\nsource = "noise"\nparams = {value}\n'
    result = run("validate", write_score(tmp_path, body(rest=layer), TEXT))
    assert result.exit_code == 2, result.output
    assert 'layer "a".params: must be a table of the generator\'s parameters' in result.output
    assert f"got {shown}" in result.output


@pytest.mark.parametrize("name", ['""', '"   "'])
def test_an_empty_layer_name_is_refused(tmp_path, name):
    layer = f'[[layer]]\nname = {name}\nsource = "noise"\n'
    result = run("validate", write_score(tmp_path, body(rest=layer), TEXT))
    assert result.exit_code == 2 and "layer[0].name: must name the layer" in result.output, result.output


@pytest.mark.parametrize("formats", ["", ",,,", " , "])
def test_a_format_list_of_nothing_is_refused(tmp_path, formats):
    path = write_score(tmp_path, body(), TEXT)
    result = CliRunner().invoke(main, ["render", str(path), "-o", str(tmp_path / "out"), "--format", formats])
    assert result.exit_code == 2 and "expected formats such as wav,mp3" in result.output, result.output
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------- sample rates an encoder changes

@pytest.mark.parametrize("fmt, rate, written", [("mp3", 88200, 48000), ("mp3", 96000, 48000),
                                                ("opus", 22050, 48000), ("opus", 44100, 48000),
                                                ("m4a", 30000, 32000)])
def test_a_format_written_at_another_rate_is_a_warning(tmp_path, fmt, rate, written):
    sc = score.load(write_score(tmp_path, body().replace("sample_rate = 22050", f"sample_rate = {rate}")
                                .replace('formats = ["wav"]', f'formats = ["wav", "{fmt}"]'), TEXT))
    p = plan.resolve(sc, ClipCache())
    said = [w for w in p.warnings if "piece.sample_rate" in w]
    assert len(said) == 1 and f"the {fmt} file is written at {written} Hz, not {rate} Hz (" in said[0], p.warnings


def test_no_rate_warning_when_every_format_keeps_the_rate(tmp_path):
    sc = score.load(write_score(tmp_path, body().replace('formats = ["wav"]', 'formats = ["wav", "mp3", "m4a"]'),
                                TEXT))
    assert not [w for w in plan.resolve(sc, ClipCache()).warnings if "sample_rate" in w]


@pytest.mark.parametrize("rate", [22050, 28000, 46050, 88200])
def test_the_rates_said_are_the_rates_the_encoders_write(tmp_path, rate):
    master = tmp_path / "m.wav"
    sf.write(str(master), np.zeros((rate // 10, 1), dtype=np.float32), rate)
    for fmt in ("mp3", "opus", "m4a"):
        out = tmp_path / f"o{export.FORMATS[fmt].suffix}"
        subprocess.run([ffmpeg(), "-v", "error", "-y", "-i", str(master), *export.FORMATS[fmt].codec_args,
                        "-f", export.FORMATS[fmt].muxer, str(out)], check=True)
        probe = subprocess.run([ffmpeg(), "-hide_banner", "-i", str(out)], capture_output=True, text=True).stderr
        assert f"{export.written_rate_hz(fmt, rate)} Hz" in probe, (fmt, rate, probe)


# ---------------------------------------------------------------- a BOM; characters a terminal acts on

def test_a_score_saved_with_a_bom_loads_as_without_one(tmp_path):
    path = write_score(tmp_path, body(), TEXT)
    plain = score.load(path)
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert score.load(path).piece == plain.piece


HIDDEN = "\u202e\x9b"


@pytest.mark.parametrize("where", ["key", "value", "warning"])
def test_characters_a_terminal_acts_on_are_escaped_in_every_message(tmp_path, where):
    if where == "key":
        text_body = body(f'"evil{HIDDEN}2J" = 1')
    elif where == "value":
        text_body = body(rest=f'[[layer]]\nname = "a"\nsource = "noise{HIDDEN}"\n')
    else:  # a warning naming the layer
        text_body = body(rest=f'[[layer]]\nname = "a{HIDDEN}"\nsource = "noise"\nend = 900.0\n')
    result = CliRunner().invoke(main, ["validate", str(write_score(tmp_path, text_body, TEXT))])
    assert result.exit_code == (0 if where == "warning" else 2), result.output
    assert "\u202e" not in result.stderr and "\x9b" not in result.stderr, repr(result.stderr)
    assert r"\u202e\x9b" in result.stderr, result.stderr
    assert ("Warning: " if where == "warning" else "Error: ") in result.stderr


def test_a_usage_error_naming_a_file_escapes_it_too(tmp_path):
    result = CliRunner().invoke(main, ["render", str(tmp_path / f"a{HIDDEN}.json"), "--preset", "podcast"])
    assert result.exit_code == 2 and "--preset changes the plan" in result.stderr, result.output
    assert "\u202e" not in result.stderr and "\x9b" not in result.stderr and r"a\u202e\x9b.json" in result.stderr


def test_printable_escapes_only_what_does_not_print():
    assert printable("naïve 日本 שלום 🎧 a\u00a0b") == "naïve 日本 שלום 🎧 a\u00a0b"
    assert printable("a\nb\tc\x1b[2J\u2028\u200b\ue000\udcff") == r"a\nb\tc\x1b[2J\u2028\u200b\ue000\udcff"
