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

import os
import struct
import zipfile
from typing import BinaryIO

#: Most bytes of one entry's extra field.
MAX_EXTRA_BYTES = 1024
_ENTRY = b"PK\x01\x02"
_ENTRY_SIZE = 46


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
    MAX_EXTRA_BYTES, for more than `max_entries` entries, or for a directory that
    cannot be walked to its end. The directory is the one zipfile will read: found by
    zipfile's own end-record search, and placed as zipfile places it (data may be
    prepended to an archive), so that no layout zipfile accepts escapes the walk."""
    start, length = _central_directory(handle)
    handle.seek(start)
    directory = handle.read(length)
    position = entries = 0
    while position < length:  # as zipfile walks it
        if not directory.startswith(_ENTRY, position) or position + _ENTRY_SIZE > len(directory):
            raise zipfile.BadZipFile("the central directory is damaged")
        name, extra, comment = struct.unpack_from("<HHH", directory, position + 28)
        if extra > MAX_EXTRA_BYTES:
            raise zipfile.BadZipFile(f"an entry carries {extra:,} bytes of extra fields (zip tools "
                                     f"write a few dozen; at most {MAX_EXTRA_BYTES:,} are read)")
        entries += 1
        if max_entries is not None and entries > max_entries:
            raise TooManyEntries(f"more than {max_entries:,} files and folders")
        position += _ENTRY_SIZE + name + extra + comment


class TooManyEntries(zipfile.BadZipFile):
    """A readable archive holding more entries than its reader takes."""


def _central_directory(handle: BinaryIO) -> tuple[int, int]:
    """(offset, length) of the central directory, found as `zipfile.ZipFile` finds it
    (its own end-record reader, the same arithmetic): any other search can be led to
    another place than the one zipfile then parses."""
    try:
        end = zipfile._EndRecData(handle)
    except OSError:
        end = None
    if not end:
        raise zipfile.BadZipFile("File is not a zip file")
    length = end[zipfile._ECD_SIZE]
    start = end[zipfile._ECD_LOCATION] - length  # where it is, data prepended or not
    if end[zipfile._ECD_SIGNATURE] == zipfile.stringEndArchive64:
        start -= zipfile.sizeEndCentDir64 + zipfile.sizeEndCentDir64Locator
    if start < 0:
        raise zipfile.BadZipFile("Bad offset for central directory")
    return start, length
