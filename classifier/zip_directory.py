"""Zip archives opened after a bounded look at their central directory.

`zipfile` decodes each entry's "extra" field when it opens an archive, and Python
3.11.7 does it in time quadratic in the field's records: entries with 65 KB of empty
records took 0.5 s for a 2 MB archive, about 5 s for one of 20 MB, before any check
of ours could run. Zip tools write a few dozen bytes of extra fields an entry
(timestamps, Unicode names, Zip64 sizes), so the directory is walked here first, with
`struct`, and an archive with an entry's extra field over MAX_EXTRA_BYTES, or more
entries than its caller takes, is refused as a damaged one (`zipfile.BadZipFile`).
"""

from __future__ import annotations

import io
import os
import struct
import zipfile
from typing import BinaryIO

#: Most bytes of one entry's extra field.
MAX_EXTRA_BYTES = 1024
_END = b"PK\x05\x06"
_END64_LOCATOR = b"PK\x06\x07"
_ENTRY = b"PK\x01\x02"
_END_SIZE, _LOCATOR_SIZE, _ENTRY_SIZE = 22, 20, 46
_LONGEST_COMMENT = 0xFFFF


def open_zip(file: str | os.PathLike | BinaryIO, *, max_entries: int | None = None) -> zipfile.ZipFile:
    """`zipfile.ZipFile(file)` once its directory passes `check_directory`."""
    if isinstance(file, (str, os.PathLike)):
        with open(file, "rb") as handle:
            check_directory(handle, max_entries)
    else:
        check_directory(file, max_entries)
        file.seek(0)
    return zipfile.ZipFile(file)


def check_directory(handle: BinaryIO, max_entries: int | None = None) -> None:
    """Raises `zipfile.BadZipFile` for an entry with an extra field over
    MAX_EXTRA_BYTES or for more than `max_entries` entries. A directory that cannot be
    found or walked is left to zipfile, which says what is wrong with it."""
    directory = _central_directory(handle)
    position = entries = 0
    while directory.startswith(_ENTRY, position) and position + _ENTRY_SIZE <= len(directory):
        name, extra, comment = struct.unpack_from("<HHH", directory, position + 28)
        if extra > MAX_EXTRA_BYTES:
            raise zipfile.BadZipFile(f"an entry carries {extra:,} bytes of extra fields (zip tools "
                                     f"write a few dozen; at most {MAX_EXTRA_BYTES:,} are read)")
        entries += 1
        if max_entries is not None and entries > max_entries:
            raise zipfile.BadZipFile(f"more than {max_entries:,} entries")
        position += _ENTRY_SIZE + name + extra + comment


def _central_directory(handle: BinaryIO) -> bytes:
    """The central directory's bytes, found as zipfile finds it (b"" if it cannot be)."""
    size = handle.seek(0, io.SEEK_END)
    tail_start = max(0, size - _END_SIZE - _LONGEST_COMMENT)
    handle.seek(tail_start)
    tail = handle.read()
    at = tail.rfind(_END)
    if at < 0 or at + _END_SIZE > len(tail):
        return b""
    end = tail_start + at
    length = struct.unpack_from("<I", tail, at + 12)[0]
    if at >= _LOCATOR_SIZE and tail.startswith(_END64_LOCATOR, at - _LOCATOR_SIZE):
        end64 = struct.unpack_from("<Q", tail, at - _LOCATOR_SIZE + 8)[0]
        handle.seek(end64)
        record = handle.read(56)
        if len(record) < 56:
            return b""
        length = struct.unpack_from("<Q", record, 40)[0]
        end = end64
    start = end - length  # where it is, whatever the recorded offset (data prepended)
    if start < 0 or length > size:
        return b""
    handle.seek(start)
    return handle.read(length)
