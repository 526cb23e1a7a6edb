"""Making a long-lived worker give memory back to the system once it is done with it.

glibc keeps freed memory for reuse instead of returning it, and it raises the size
above which it maps blocks of their own each time such a block is freed: after one
big photo, Pillow's 16 MB image blocks come from the heap and the worker keeps every
page of its largest request for the rest of its life."""

from __future__ import annotations

import ctypes
from functools import cache

#: mallopt's M_MMAP_THRESHOLD (glibc's malloc.h).
_M_MMAP_THRESHOLD = -3
#: Blocks from this size up get pages of their own, unmapped as soon as they are freed:
#: Pillow's 16 MB blocks of a large photo's pixels. Smaller ones come from the heap,
#: where their pages are reused: at 1 MB, a phone photo's 2.7 MB body and every array
#: made from it were fresh pages, faulted in at about 1 ms a MB (bench/results/body.md).
LARGE_BLOCK_BYTES = 8 * 1024 * 1024


@cache
def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc: the system's allocator decides
        return None


def release_free_memory() -> None:
    """Hand the heap that was freed (say, the interpreters of variants not chosen at
    start-up) back to the system now."""
    if _libc():
        _libc().malloc_trim(0)


def return_large_blocks_when_freed() -> None:
    """Fix glibc's threshold for blocks of their own at `LARGE_BLOCK_BYTES` (setting it
    turns off its growth), so a large photo's memory returns as soon as it is freed."""
    if _libc():
        _libc().mallopt(_M_MMAP_THRESHOLD, LARGE_BLOCK_BYTES)
