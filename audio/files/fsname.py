"""File names as libsndfile takes them. soundfile encodes a str name as strict UTF-8, so a name
holding bytes that are not UTF-8 (which Python keeps as lone surrogates) is handed over as bytes."""

from __future__ import annotations

import os


def sndfile_name(path) -> str | bytes:
    name = os.fspath(path)
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(name)
    return name
