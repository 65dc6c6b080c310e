"""Write every output and cache entry atomically: a temporary name beside it, then one rename.

A file is written under ``.NAME.PID.RANDOM.part`` in its final folder and flushed to disk. It is
then renamed into place at once, or, for a render's outputs, held in a ``Staged`` set and renamed
with the others at the end, with Ctrl-C and SIGTERM held back for those few renames: an
interrupted render leaves the previous set of files, never a mix of old and new, and no partial
file behind. Every target is checked before the first rename, so a set that cannot all go into
place leaves every earlier file as it was.

A render's work folder is ``.STEM.PID.TOKEN`` (TOKEN: 16 random hex digits) with a marker file
in it that names the stem, the process and the token; the render's staged files are
``.NAME.PID.TOKEN.RANDOM.part``. ``clean_stale`` removes only what a marker proves a killed render
of that stem made (its process gone): never a folder or file it did not write, whatever its name.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import shutil
import signal
import stat
import tempfile
import threading
from pathlib import Path

MARKER = "piece-render"  # in a render's work folder: the proof the folder and its staged files are ours
MARKER_MAX_BYTES = 512
TOKEN_RE = re.compile(r"(?P<pid>[1-9][0-9]{0,9})\.(?P<random>[0-9a-f]{16})")  # "PID.RANDOM" of a work folder


class Staged:
    """One render's finished files, each complete on disk under its temporary name, waiting to be
    renamed into place together."""

    def __init__(self, work: Path | None = None):
        self.pending: dict[Path, Path] = {}  # final path: temporary path
        self.committed = 0  # renamed into place so far
        self.discarded = False  # after discard(), a file finished late (a writer thread a stop left running) is removed
        self._lock = threading.Lock()
        self.token = _token_of(work) if work is not None else None  # the work folder's, in every temporary name

    def temporary(self, final: Path) -> Path:
        """Where a staged file can be read before the commit."""
        return self.pending[Path(final)]

    def commit(self):
        """Rename every staged file into place; Ctrl-C, SIGTERM and SIGHUP wait until the last is done.

        Every target is checked first: one that cannot be replaced (a folder in its place) raises
        IsADirectoryError before any file is renamed."""
        for final in self.pending:
            with contextlib.suppress(FileNotFoundError):
                if stat.S_ISDIR(os.lstat(final).st_mode):
                    raise IsADirectoryError(errno.EISDIR, "a folder is in the way of the output", str(final))
        with _signals_held():
            for final, tmp in list(self.pending.items()):
                os.replace(tmp, final)
                del self.pending[final]
                self.committed += 1

    def add(self, final: Path, tmp: Path):
        """Hold ``tmp``, complete on disk, for ``final``; once the set is discarded, remove it instead."""
        with self._lock:
            if not self.discarded:
                self.pending[final] = tmp
                return
        with contextlib.suppress(OSError):
            os.unlink(tmp)

    def discard(self):
        """Remove every staged file that was not committed (the render failed or was stopped), and
        any finished later: a stop can leave a writer thread running until the process exits."""
        with self._lock:
            self.discarded = True
            for tmp in self.pending.values():
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
            self.pending.clear()


HELD_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


@contextlib.contextmanager
def _signals_held():
    """Ctrl-C, SIGTERM and SIGHUP arriving inside the block take effect when it ends.

    Blocking the signals (pthread_sigmask) would hold them back in this thread only: the kernel
    hands a process signal to any thread that has it unblocked (espeak-ng's, BLAS's), and Python
    then runs the handler in the main thread at once. So the handlers are swapped for ones that
    only take note, and what was noted is raised again once the old handlers are back."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    noted: list[int] = []
    old = {sig: signal.signal(sig, lambda signum, frame: noted.append(signum)) for sig in HELD_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
        for sig in dict.fromkeys(noted):
            signal.raise_signal(sig)


@contextlib.contextmanager
def atomic_path(final: Path, staged: Staged | None = None, fsync: bool = True):
    """Yield a temporary path beside ``final`` to write; when the block ends without an error,
    flush it to disk (unless ``fsync`` is false) and rename it into place, or leave the rename to
    ``staged.commit()``. On an error the temporary file is removed and ``final`` is untouched."""
    final = Path(final)
    if staged is not None and final in staged.pending:
        raise ValueError(f"{final} is staged twice in one set")
    mine = staged.token if staged is not None and staged.token else str(os.getpid())
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.{mine}.", suffix=".part", dir=final.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        if fsync:
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes files private; outputs are ordinary files
        if staged is None:
            os.replace(tmp, final)
        else:
            staged.add(final, Path(tmp))
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_with(final: Path, write, staged: Staged | None = None, fsync: bool = True):
    """Write ``final`` atomically by calling ``write(f)`` on the temporary file, open in binary."""
    with atomic_path(final, staged, fsync) as tmp, open(tmp, "wb") as f:
        write(f)


def write_text(final: Path, text: str, staged: Staged | None = None):
    """Write ``text`` (UTF-8) to ``final`` atomically."""
    write_with(final, lambda f: f.write(text.encode("utf-8")), staged)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def work_dir(out_dir: Path, stem: str) -> Path:
    """A temporary folder for one render, ``.STEM.PID.TOKEN``, with the marker that lets a later
    render tell it was this program's, and whether it was abandoned (its process gone)."""
    while True:
        token = f"{os.getpid()}.{secrets.token_hex(8)}"
        work = Path(out_dir) / f".{stem}.{token}"
        try:
            os.mkdir(work, 0o700)
        except FileExistsError:
            continue
        break
    try:
        with open(work / MARKER, "x", encoding="utf-8") as f:
            f.write(_marker_text(stem, token))
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return work


def remove_work_dir(work: Path):
    """Remove a render's work folder, its marker last: a removal cut short leaves a folder that
    is still provably ours, for the next render to sweep."""
    with contextlib.suppress(OSError):
        for entry in os.scandir(work):
            if entry.name == MARKER:
                continue
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
    with contextlib.suppress(OSError):
        os.unlink(work / MARKER)
    with contextlib.suppress(OSError):
        os.rmdir(work)


def clean_stale(out_dir: Path, stem: str) -> list[str]:
    """Remove what a killed render of ``stem`` left behind: a work folder whose marker proves it
    ours and whose process is gone, and the staged files that carry its token. Nothing else is
    touched: not another stem's files, not a folder or file without our marker, not what a
    running render still uses. Returns the names removed."""
    removed = []
    entries = sorted(os.listdir(out_dir))
    for name in entries:
        token = _abandoned_token(Path(out_dir) / name, stem)
        if token is None:
            continue
        staged = re.compile(rf"\.{re.escape(stem)}\..+\.{re.escape(token)}\.[A-Za-z0-9_]+\.part")
        for other in entries:
            path = Path(out_dir) / other
            if staged.fullmatch(other) and _is_file(path):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                removed.append(other)
        remove_work_dir(Path(out_dir) / name)
        removed.append(name)
    return removed


def _token_of(work: Path) -> str | None:
    """"PID.RANDOM" of a work folder's name."""
    m = TOKEN_RE.search(Path(work).name)
    return m.group() if m and Path(work).name.endswith(m.group()) else None


def _marker_text(stem: str, token: str) -> str:
    return f"a piece render's work folder\nstem {stem}\ntoken {token}\n"


def _abandoned_token(path: Path, stem: str) -> str | None:
    """The token of ``path`` if it is a work folder of ``stem`` that this program made (its marker
    says so) and whose render is gone; else None."""
    prefix = f".{stem}."
    m = TOKEN_RE.fullmatch(path.name[len(prefix):]) if path.name.startswith(prefix) else None
    if m is None:
        return None
    try:
        if not stat.S_ISDIR(os.lstat(path).st_mode) or not _is_file(path / MARKER) \
                or os.lstat(path / MARKER).st_size > MARKER_MAX_BYTES:
            return None
        with open(path / MARKER, encoding="utf-8", errors="replace") as f:
            if f.read(MARKER_MAX_BYTES + 1) != _marker_text(stem, m.group()):
                return None
    except OSError:
        return None
    return None if _alive(int(m["pid"])) else m.group()


def _is_file(path: Path) -> bool:
    """A regular file itself, not a link to one."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OverflowError, ValueError):  # not a process id this system can have
        return False
    except PermissionError:
        return True
    return True


def safe_name(name: str, fallback: str) -> str:
    """``name`` made safe for a file name (runs of other characters become one ``-``), so it can
    never leave its folder; ``fallback`` when nothing is left."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip(".-") or fallback
