"""Write every output and cache entry atomically: a temporary name beside it, then one rename.

A file is written under ``.NAME.PID.RANDOM.part`` in its final folder and flushed to disk. It is
then renamed into place at once, or, for a render's outputs, held in a ``Staged`` set and renamed
with the others at the end, with Ctrl-C and SIGTERM held back for those few renames: an
interrupted render leaves the previous set of files, never a mix of old and new, and no partial
file behind. A render's work folder and temporary names carry its process id, so ``clean_stale``
can tell what a killed render left from what a running one still uses.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import tempfile
from pathlib import Path

STALE_RE = re.compile(r"^\.(?P<base>.+)\.(?P<pid>\d+)\.[^.]+(\.part)?$")


class Staged:
    """One render's finished files, each complete on disk under its temporary name, waiting to be
    renamed into place together."""

    def __init__(self):
        self.pending: dict[Path, Path] = {}  # final path: temporary path

    def temporary(self, final: Path) -> Path:
        """Where a staged file can be read before the commit."""
        return self.pending[Path(final)]

    def commit(self):
        """Rename every staged file into place; Ctrl-C, SIGTERM and SIGHUP wait until the last is done."""
        blockable = hasattr(signal, "pthread_sigmask")
        if blockable:
            held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM, signal.SIGHUP})
        try:
            for final, tmp in list(self.pending.items()):
                os.replace(tmp, final)
                del self.pending[final]
        finally:
            if blockable:
                signal.pthread_sigmask(signal.SIG_SETMASK, held)

    def discard(self):
        """Remove every staged file that was not committed (the render failed or was stopped)."""
        for tmp in self.pending.values():
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        self.pending.clear()


@contextlib.contextmanager
def atomic_path(final: Path, staged: Staged | None = None, fsync: bool = True):
    """Yield a temporary path beside ``final`` to write; when the block ends without an error,
    flush it to disk (unless ``fsync`` is false) and rename it into place, or leave the rename to
    ``staged.commit()``. On an error the temporary file is removed and ``final`` is untouched."""
    final = Path(final)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.{os.getpid()}.", suffix=".part", dir=final.parent)
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
            staged.pending[final] = Path(tmp)
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
    """A temporary folder for one render, named so a later render can tell whether it was abandoned."""
    return Path(tempfile.mkdtemp(prefix=f".{stem}.{os.getpid()}.", dir=out_dir))


def clean_stale(out_dir: Path, stem: str) -> list[str]:
    """Remove temporary files and folders that a killed render of ``stem`` left behind (its process is
    gone); a render still running keeps its own. Returns the names removed."""
    removed = []
    for entry in out_dir.iterdir():
        m = STALE_RE.match(entry.name)
        if not m or not m["base"].startswith(stem) or _alive(int(m["pid"])):
            continue
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry.name)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def safe_name(name: str, fallback: str) -> str:
    """``name`` made safe for a file name (runs of other characters become one ``-``), so it can
    never leave its folder; ``fallback`` when nothing is left."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip(".-") or fallback
