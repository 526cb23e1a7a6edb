"""TIFF directories read with a bound: a TIFF file's own, and the EXIF block a JPEG,
PNG, WebP or HEIC carries (a TIFF structure too).

Pillow parses a TIFF's first directory when it opens the file, in Python, and warned
once per odd entry; 65,000 entries (780 KB) cost about a second. A directory's entry
count is one 16-bit field (64-bit in BigTIFF), so what a file holds is known before
Pillow reads it. The EXIF orientation is the one entry the service needs from a
photo's metadata: it is looked up here, in a bounded scan of the first directory,
rather than by parsing (and rewriting) every tag as Pillow's exif_transpose does.
Damaged structures read as nothing: the decoder reports the damage it meets.
"""

from __future__ import annotations

import struct

#: The EXIF / TIFF tag of the orientation (1 upright, 2-8 turned or mirrored).
ORIENTATION_TAG = 0x0112
#: Entries a directory may hold: cameras and editors write a few dozen.
MAX_DIRECTORY_ENTRIES = 1_000
#: EXIF blocks begin with this in JPEG APP1 segments (and sometimes elsewhere).
EXIF_PREFIX = b"Exif\x00\x00"
#: How an orientation value is stored, by its entry's type: SHORT as the standard has
#: it, LONG as some writers do (Pillow honoured both).
_VALUE_FORMATS = {3: "H", 4: "I"}


def _layout(block: bytes) -> tuple[str, bool] | None:
    """(byte order, BigTIFF) of a TIFF header, or None."""
    head = block[:4]
    if head in (b"II*\x00", b"MM\x00*"):
        return ("<" if head[0] == 0x49 else ">"), False
    if head in (b"II+\x00", b"MM\x00+"):
        return ("<" if head[0] == 0x49 else ">"), True
    return None


def first_directory(block: bytes) -> tuple[str, bool, int, int] | None:
    """(byte order, BigTIFF, offset of the first entry, entry count) of the first
    directory of a TIFF structure, or None when there is none to read."""
    layout = _layout(block)
    if layout is None:
        return None
    order, big = layout
    try:
        if big:
            offset = struct.unpack_from(order + "Q", block, 8)[0]
            count = struct.unpack_from(order + "Q", block, offset)[0]
            return order, big, offset + 8, count
        offset = struct.unpack_from(order + "I", block, 4)[0]
        return order, big, offset + 2, struct.unpack_from(order + "H", block, offset)[0]
    except struct.error:  # the directory lies outside the block
        return None


def directory_entries(block: bytes) -> int:
    """How many entries the first directory of a TIFF structure says it holds (0 when
    it has none that can be read)."""
    directory = first_directory(block)
    return directory[3] if directory else 0


def exif_orientation(block: bytes) -> int:
    """The orientation (1-8) an EXIF block gives, 1 when it gives none, or none that
    can be read within the first MAX_DIRECTORY_ENTRIES entries of its first directory."""
    if block.startswith(EXIF_PREFIX):
        block = block[len(EXIF_PREFIX):]
    directory = first_directory(block)
    if directory is None:
        return 1
    order, big, first, count = directory
    size, value_at = (20, 12) if big else (12, 8)
    for index in range(min(count, MAX_DIRECTORY_ENTRIES)):
        entry = first + index * size
        try:
            tag, kind = struct.unpack_from(order + "HH", block, entry)
            if tag == ORIENTATION_TAG:
                value = (struct.unpack_from(order + _VALUE_FORMATS[kind], block, entry + value_at)[0]
                         if kind in _VALUE_FORMATS else 1)
                return value if 1 <= value <= 8 else 1
        except struct.error:  # the directory runs past the block's end
            return 1
    return 1
