"""Files that are not regular files: a named pipe, a device, a symlink loop, wherever a file is read.

Each is refused at once with one clear line (a named pipe would block ``open`` forever, /dev/zero
never ends). A test that would block runs in a thread with a generous time limit, so a regression
fails instead of hanging the run."""

import contextlib
import logging
import os
import subprocess
import sys
import threading

import pytest
from click.testing import CliRunner
from conftest import REPO, write_score

from audio import info, manifest, score
from audio.cli import main
from audio.errors import RenderError, ScoreError
from audio.files import cover, reading

TIME_LIMIT_S = 20  # a hang fails after this; the refusals take milliseconds
BODY = '[piece]\ntitle = "Odd files"\ntext = "TEXT"\nsample_rate = 22050\n'
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00\x00\x00\x01" * 2 + b"\x08\x02\x00\x00\x00" + b"\0" * 16


@pytest.fixture
def fifo(tmp_path):
    """A named pipe maker; a reader still blocked on one (a regression) is let go at the end."""
    made = []

    def make(name):
        path = tmp_path / name
        os.mkfifo(path)
        made.append(path)
        return path
    yield make
    for path in made:
        with contextlib.suppress(OSError):  # ENXIO: nobody is reading it, as it should be
            os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))


def within_time_limit(fn, *args):
    """``fn(*args)``'s result (or its exception), failing the test if it does not return in time."""
    out = {}

    def run():
        try:
            out["value"] = fn(*args)
        except BaseException as e:  # handed to the test
            out["error"] = e
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(TIME_LIMIT_S)
    assert not thread.is_alive(), f"{fn.__name__}{args} still blocked after {TIME_LIMIT_S} s"
    if "error" in out:
        raise out["error"]
    return out["value"]


def test_a_named_pipe_as_the_text_is_refused(tmp_path, fifo):
    path = write_score(tmp_path, BODY, "")
    (tmp_path / "piece.txt").unlink()
    fifo("piece.txt")
    with pytest.raises(ScoreError, match=r"piece\.text: cannot read text file .*piece\.txt: it is a named pipe"):
        within_time_limit(score.load, path)


def test_a_named_pipe_as_the_score_is_refused(fifo):
    with pytest.raises(ScoreError, match=r"x\.toml: cannot read score file: it is a named pipe"):
        within_time_limit(score.load, fifo("x.toml"))


def test_a_named_pipe_as_the_cover_is_refused_at_load_and_when_read(tmp_path, fifo):
    path = write_score(tmp_path, BODY + 'cover = "cover.png"\n', "Hello.")
    fifo("cover.png")
    with pytest.raises(ScoreError, match=r"piece\.cover: cannot read the cover image .*: it is a named pipe"):
        within_time_limit(score.load, path)
    with pytest.raises(RenderError, match=r"cover\.png: cannot read the cover image: it is a named pipe"):
        within_time_limit(cover.read_image, tmp_path / "cover.png")


def test_a_named_pipe_as_a_sample_is_refused(tmp_path, fifo):
    fifo("loop.wav")
    path = write_score(tmp_path, BODY + '[[layer]]\nname = "s"\nsource = "sample"\nparams = {path = "loop.wav"}\n',
                       "Hello.")
    with pytest.raises(ScoreError, match=r'layer "s"\.params\.path: ".*loop\.wav" cannot be read: it is a named pipe'):
        within_time_limit(score.load, path)


def test_a_named_pipe_in_the_speech_cache_is_spoken_again_and_replaced(tmp_path, fifo):
    from audio.speech.cache import ClipCache
    from audio.speech.engine import VoiceSettings
    cache, settings = ClipCache(tmp_path / "tts"), VoiceSettings("en-us", 150, 50, 1.0)
    entry = cache.path("Hello.", settings)
    entry.parent.mkdir(parents=True)
    os.mkfifo(entry)
    warned = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: warned.append(record.getMessage())
    logger = logging.getLogger("audio.speech.cache")  # its own: the command line's (-q) stops caplog's
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING)
    try:
        clip = within_time_limit(cache.get, "Hello.", settings)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    assert clip.samples.size > 1000 and cache.synthesized == 1
    assert any("is damaged (it is a named pipe" in w for w in warned), warned
    assert entry.is_file()  # the pipe was replaced by the entry


def test_a_named_pipe_given_to_info_or_as_a_manifest_is_refused(fifo):
    with pytest.raises(RenderError, match=r"f\.wav: cannot read the file: it is a named pipe"):
        within_time_limit(info.sniff, fifo("f.wav"))
    with pytest.raises(ScoreError, match=r"f\.json: cannot read the manifest: it is a named pipe"):
        within_time_limit(manifest.read, fifo("f.json"))


def test_dev_zero_as_text_score_or_cover_is_refused_without_reading_it(tmp_path):
    with pytest.raises(ScoreError, match=r"/dev/zero: cannot read score file: it is a character device"):
        within_time_limit(score.load, "/dev/zero")
    text = write_score(tmp_path, BODY.replace("TEXT", "/dev/zero"), "")
    with pytest.raises(ScoreError, match=r"piece\.text: cannot read text file /dev/zero: it is a character device"):
        within_time_limit(score.load, text)
    image = write_score(tmp_path, BODY + 'cover = "/dev/zero"\n', "Hello.", name="cover")
    with pytest.raises(ScoreError, match=r"piece\.cover: cannot read the cover image /dev/zero: it is a character"):
        within_time_limit(score.load, image)


def test_a_named_pipe_as_the_text_is_one_error_line_from_the_command(tmp_path, fifo):
    path = write_score(tmp_path, BODY, "")
    (tmp_path / "piece.txt").unlink()
    fifo("piece.txt")
    proc = subprocess.run([sys.executable, "-m", "audio", "validate", str(path)], cwd=REPO, capture_output=True,
                          text=True, timeout=TIME_LIMIT_S)
    assert proc.returncode == 2
    assert proc.stderr.startswith("Error: ") and proc.stderr.count("\n") == 1 and "named pipe" in proc.stderr


@pytest.mark.parametrize("what", ["text", "sample"])
def test_a_symlink_loop_as_the_text_or_a_sample_is_one_error_line(tmp_path, what):
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    if what == "text":
        path = write_score(tmp_path, BODY.replace("TEXT", "a"), "")
    else:
        path = write_score(tmp_path, BODY + '[[layer]]\nname = "s"\nsource = "sample"\nparams = {path = "a"}\n',
                           "Hello.")
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 2, result.output
    assert result.output.startswith("Error: ") and result.output.count("\n") == 1
    assert "Too many levels of symbolic links" in result.output


def test_a_score_over_its_size_limit_is_refused(tmp_path):
    path = tmp_path / "big.toml"
    path.write_bytes(b"#" * (score.MAX_SCORE_BYTES + 1))
    with pytest.raises(ScoreError, match=rf"big\.toml: the score file is {score.MAX_SCORE_BYTES + 1} bytes; "
                                         rf"the limit is {score.MAX_SCORE_BYTES} bytes"):
        score.load(path)


def test_a_cover_over_its_limit_is_refused_at_load_without_reading_it(tmp_path):
    with open(tmp_path / "cover.png", "wb") as f:
        f.write(PNG)
        f.truncate(cover.MAX_COVER_BYTES + 1)  # sparse: nothing past the header is written
    assert cover.MAX_COVER_BYTES == 16_000_000
    path = write_score(tmp_path, BODY + 'cover = "cover.png"\n', "Hello.")
    with pytest.raises(ScoreError, match=rf"piece\.cover: the cover image .* is {cover.MAX_COVER_BYTES + 1:,} bytes; "
                                         rf"the limit is {cover.MAX_COVER_BYTES:,} bytes"):
        score.load(path)
    with pytest.raises(RenderError, match=rf"the limit is {cover.MAX_COVER_BYTES} bytes"):
        cover.read_image(tmp_path / "cover.png")


def test_a_manifest_over_its_size_limit_is_refused_without_reading_it(tmp_path):
    with open(tmp_path / "x.json", "wb") as f:
        f.truncate(manifest.MAX_MANIFEST_BYTES + 1)
    with pytest.raises(ScoreError, match=rf"the limit is {manifest.MAX_MANIFEST_BYTES} bytes"):
        manifest.read(tmp_path / "x.json")


def test_the_reader_takes_a_regular_file_to_its_limit(tmp_path):
    (tmp_path / "f").write_bytes(b"12345")
    assert reading.read_bytes(tmp_path / "f", 5) == b"12345"
    with pytest.raises(reading.TooLarge):
        reading.read_bytes(tmp_path / "f", 4)
    with pytest.raises(IsADirectoryError):
        reading.read_bytes(tmp_path, 5)
