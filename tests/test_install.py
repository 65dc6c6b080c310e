"""The project as a new user gets it: an sdist that holds its tests, a wheel built from that sdist,
installed (not editable), and `piece new` + `piece render` run from an empty folder outside the
project."""

import os
import shutil
import subprocess
import sys
import tarfile
import zipfile

import pytest
from conftest import REPO, ebur128

from audio import __version__

LEFT_OUT = shutil.ignore_patterns(".venv", ".git", "output", "build", "dist", "*.egg-info", "__pycache__",
                                  ".pytest_cache", ".hypothesis")
BUILD = [sys.executable, "-c", "import sys; from setuptools import build_meta as b; "
                               "print(getattr(b, sys.argv[1])(sys.argv[2]))"]


def run(args, **kwargs) -> str:
    proc = subprocess.run([str(a) for a in args], capture_output=True, text=True, **kwargs)
    assert proc.returncode == 0, f"{args}: {proc.stdout}{proc.stderr}"
    return proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A copy of the project as a checkout has it (links kept), to build from."""
    folder = tmp_path_factory.mktemp("source") / "piece"
    shutil.copytree(REPO, folder, symlinks=True, ignore=LEFT_OUT)
    return folder


def test_an_editable_install_is_a_path_line_without_a_warning(source, tmp_path):
    proc = subprocess.run(BUILD + ["build_editable", str(tmp_path)], cwd=source, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "Warning" not in proc.stderr and "careful" not in proc.stderr, proc.stderr  # what `make demo` printed
    with zipfile.ZipFile(tmp_path / proc.stdout.strip().splitlines()[-1]) as wheel:
        (pth,) = [n for n in wheel.namelist() if n.endswith(".pth")]
        assert wheel.read(pth).decode().strip() == str(source)


def test_a_wheel_from_the_sdist_starts_and_renders_a_piece_in_an_empty_folder(source, tmp_path):
    dist = tmp_path / "dist"
    sdist = run(BUILD + ["build_sdist", dist], cwd=source)
    root = f"piece-{__version__}"
    with tarfile.open(dist / sdist) as tar:
        names = set(tar.getnames())
        tar.extractall(tmp_path / "unpacked", filter="data")
    for needed in ("LICENSE", "tests/conftest.py", "tests/golden/golden.wav", "audio/examples/new.toml",
                   "audio/examples/scores/the-permanent-thing.toml", "audio/examples/seeds/the-permanent-thing.txt"):
        assert f"{root}/{needed}" in names, needed
    wheel = run(BUILD + ["build_wheel", dist], cwd=tmp_path / "unpacked" / root)
    site = tmp_path / "site"
    run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-compile", "--target", site,
         dist / wheel])

    empty = tmp_path / "empty"
    empty.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site)}
    assert run([sys.executable, "-c", "import audio; print(audio.__file__)"], cwd=empty, env=env).startswith(str(site))
    piece = site / "bin" / "piece"
    run([piece, "new", "first"], cwd=empty, env=env)
    run([piece, "render", "first.toml", "--format", "wav", "-q"], cwd=empty, env=env)
    assert ebur128(empty / "output" / "first.wav")["lufs"] == pytest.approx(-16.0, abs=0.5)
    run([piece, "new", "--example", "permanent-thing", "-d", "example"], cwd=empty, env=env)
    loaded = run([sys.executable, "-c", "from audio import score; print(score.load('example/the-permanent-thing.toml')"
                  ".piece.title)"], cwd=empty, env=env)
    assert loaded == "The Permanent Thing Is Not the One That Runs"


def test_piece_new_never_overwrites_a_file_and_names_the_examples(tmp_path):
    from click.testing import CliRunner

    from audio.cli import main
    runner = CliRunner()
    assert runner.invoke(main, ["new", "x", "-d", str(tmp_path)]).exit_code == 0
    score_text = (tmp_path / "x.toml").read_text()
    assert 'title = "X"' in score_text and 'text = "x.txt"' in score_text
    again = runner.invoke(main, ["new", "x", "-d", str(tmp_path)])
    assert again.exit_code == 1 and "x.toml already exists" in again.output
    assert (tmp_path / "x.toml").read_text() == score_text
    wrong = runner.invoke(main, ["new", "--example", "permanant", "-d", str(tmp_path)])
    assert wrong.exit_code == 1 and 'did you mean "permanent-thing"?' in wrong.output
    assert "the-loss-landscape-has-teeth" in wrong.output
    assert runner.invoke(main, ["new"]).exit_code == 2
