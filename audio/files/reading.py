"""Reading a file the user names: a regular file only, opened without blocking, read to a limit.

A named pipe would block ``open`` or ``read`` forever and a device (``/dev/zero``) never ends, so
every file is opened with O_NONBLOCK and checked with fstat before a byte is read. The errors are
OSErrors whose ``strerror`` says what is wrong, so a caller's ``except OSError`` reports them.
"""

from __future__ import annotations

import errno
import os
import stat


class Refused(OSError):
    """A file not read: ``strerror`` (and the message) says why."""

    def __str__(self):
        return self.strerror


class NotRegularFile(Refused):
    """The path is a pipe, a device or a socket, not a regular file (a folder: IsADirectoryError)."""


class TooLarge(Refused):
    """The file is over the size limit of what it is read as."""

    def __init__(self, size_bytes: int, limit_bytes: int):
        super().__init__(errno.EFBIG, f"it is {size_bytes} bytes; the limit is {limit_bytes} bytes")
        self.size_bytes, self.limit_bytes = size_bytes, limit_bytes


KINDS = ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a character device"),
         (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def open_regular(path, mode: str = "rb"):
    """``path`` opened for reading as a binary file object; NotRegularFile unless it is a regular file."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
        if not stat.S_ISREG(st.st_mode):
            kind = next((name for test, name in KINDS if test(st.st_mode)), "not a regular file")
            raise NotRegularFile(errno.EINVAL, f"it is {kind}, not a regular file")
        return os.fdopen(fd, mode)
    except BaseException:
        os.close(fd)
        raise


def check_regular(path):
    """NotRegularFile (or the OSError of opening it) unless ``path`` is a regular file one can read."""
    with open_regular(path):
        pass


def read_bytes(path, limit_bytes: int) -> bytes:
    """The whole of a regular file of at most ``limit_bytes`` bytes; TooLarge over it."""
    with open_regular(path) as f:
        size = os.fstat(f.fileno()).st_size
        if size > limit_bytes:
            raise TooLarge(size, limit_bytes)
        data = f.read(limit_bytes + 1)  # a file growing as it is read stops at the limit too
    if len(data) > limit_bytes:
        raise TooLarge(len(data), limit_bytes)
    return data
