"""The disk a render needs: its work files and outputs estimated from the plan, checked against the
output folder's free space before any work, and a full disk while writing said in one line."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
from pathlib import Path

from audio.errors import RenderError

LOSSY_KBPS = {"ogg": 256, "opus": 160, "m4a": 160, "m4b": 160}  # above what their settings give
SMALL_FILES_BYTES = 4_000_000  # captions, manifest, picture, the true-peak envelope and some slack
NO_SPACE = "No space left on device"


def estimate_bytes(plan, formats, stems: bool, out_channels: int) -> tuple[int, int]:
    """(work files, outputs) in bytes of a render of ``plan``: the float mix (and stems) and the float
    master in the work folder, each output at its size (FLAC as WAV, a lossy one at its bit rate)."""
    frames, seconds = plan.total_samples, plan.total_samples / plan.sample_rate
    parts = 1 + len(plan.layers) if stems else 0  # the voice's stem and each layer's
    work = 4 * frames * (plan.channels * (1 + parts) + out_channels)
    outputs = 4 * frames * out_channels * parts
    for fmt in formats:
        if fmt in ("wav", "flac"):
            outputs += plan.master.bit_depth // 8 * frames * out_channels
        else:
            kbps = int(plan.master.mp3[3:]) if fmt == "mp3" and plan.master.mp3.startswith("cbr") else \
                320 if fmt == "mp3" else LOSSY_KBPS[fmt]
            outputs += round(kbps * 1000 / 8 * seconds)
    return work, outputs + SMALL_FILES_BYTES


def megabytes(n: int) -> str:
    return f"{max(n, 1_000_000) / 1e6:,.0f} MB"


def check_free(out_dir: Path, work_bytes: int, output_bytes: int):
    """Refuse, before any work, a render that cannot fit in the free space of the output folder
    (the work folder is inside it, and earlier outputs stay until the new ones replace them)."""
    free = shutil.disk_usage(out_dir).free
    if work_bytes + output_bytes > free:
        raise RenderError(f"{out_dir}: not enough free space: the render needs about "
                          f"{megabytes(work_bytes + output_bytes)} ({megabytes(work_bytes)} of work files, "
                          f"{megabytes(output_bytes)} of outputs) and {megabytes(free)} are free there")


def no_space(error: OSError, out_dir: Path, need_bytes: int,
             earlier: str = "earlier outputs are left as they were") -> RenderError | None:
    """The one line for a full disk met while writing, or None for another error; ``earlier`` says
    what became of the earlier outputs."""
    if error.errno != errno.ENOSPC:
        return None
    return RenderError(f"no space left on device writing {error.filename or out_dir} (about {megabytes(need_bytes)} "
                       f"needed in {out_dir}); {earlier}")


def full(path) -> OSError:
    """The error of a full disk while writing ``path``."""
    return OSError(errno.ENOSPC, NO_SPACE, str(path))


def _sndfile_detail(sound_file) -> str:
    """libsndfile's own message for a file's last error ("System error : No space left on device."),
    which soundfile's exception leaves out."""
    import soundfile as sf
    try:
        return sf._ffi.string(sf._snd.sf_strerror(sound_file._file)).decode("utf-8", "replace")
    except Exception:  # noqa: BLE001 - a closed file, another soundfile: no detail
        return ""


@contextlib.contextmanager
def sndfile_writing(sound_file, path):
    """Writes to a soundfile.SoundFile: a full disk (libsndfile's "System error.") is raised as
    OSError(ENOSPC) naming ``path``, and an OSError of a full disk names it too."""
    import soundfile as sf
    try:
        yield
    except sf.LibsndfileError as e:
        if NO_SPACE in _sndfile_detail(sound_file):
            raise full(path) from e
        raise
    except OSError as e:
        if e.errno == errno.ENOSPC and not e.filename:
            raise full(path) from e
        raise


def named(error: OSError, path) -> OSError:
    """``error`` naming ``path`` if it names no file (a write to an open file names none)."""
    if not error.filename:
        error.filename = os.fspath(path)
    return error
