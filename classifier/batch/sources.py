"""What a batch job reads: folders (recursive), globs, zip / tar archives and files
that list one path a line, flattened into `Item`s in a stable order.

Listing reads no photo: an `Item` only names a file or an archive member, so a job of
any size is listed in little memory. A `Reader` (one per worker) reads the bytes, at
most the per-file limit of them, and turns whatever cannot be one photo (a device or
a FIFO named in a list, a huge, encrypted or damaged member) into an error code for
that file's row instead of an exception, a hang or an endless read."""

from __future__ import annotations

import lzma
import os
import re
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from classifier.intake import IMAGE_SUFFIXES
from classifier.zip_directory import open_zip

#: Separates an archive from the member inside it in an item's path.
MEMBER = "!"
#: Names that say "archive": such a file that does not open as one gets an error row
#: rather than being read as a list of paths.
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tgz", ".tar.gz", ".tbz2", ".tar.bz2", ".txz", ".tar.xz")
#: Longest line of a list of paths, far above any path (Linux allows 4096 bytes): a
#: longer line means the file is not a list, and is not read into memory whole.
MAX_LIST_LINE = 16 * 1024
#: What reading a damaged tar raises: tarfile's errors and those of the decompressor
#: under it (gzip's EOFError and OSError, bzip2's OSError, zlib's and lzma's own).
_TAR_ERRORS = (tarfile.TarError, EOFError, OSError, zlib.error, lzma.LZMAError,
               ValueError, IndexError)  # tarfile's, for odd sparse-file headers


@dataclass(frozen=True)
class Item:
    """One file to classify, named, not read: a plain file (`archive` empty) or entry
    `index` of an archive's listing. `error` and `message` are set when listing already
    found it broken (an archive cut short): that is its row."""

    path: str
    archive: str = ""
    index: int = -1
    error: str = ""
    message: str = ""

    @property
    def member(self) -> str:
        return self.path[len(self.archive) + len(MEMBER):]


class SourceError(ValueError):
    """A source that names nothing readable."""


class ItemError(Exception):
    """A file that cannot be read as one photo; `code` goes in its row's error column."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


def expand(sources: Iterable[str]) -> Iterator[Item]:
    """Every file the sources name, each once, in the order given (sorted within a
    folder, glob or zip; a tar in its own order, the only one it can be read in)."""
    seen: set[str] = set()
    for source in sources:
        try:
            for item in _expand_one(source):
                if item.path not in seen:
                    seen.add(item.path)
                    yield item
        except OSError as exc:
            raise SourceError(f"{source}: {exc.strerror or exc}") from None


def _expand_one(source: str) -> Iterator[Item]:
    path = Path(source)
    if any(ch in source for ch in "*?["):
        matches = _glob(source)
        if not matches:
            raise SourceError(f"{source}: the pattern matches nothing")
        for match in matches:
            yield from _files(Path(match))
    elif path.is_dir():
        yield from _files(path)
    elif not path.exists():
        raise SourceError(f"{source}: no such file or folder")
    elif not path.is_file():
        raise SourceError(f"{source}: not a regular file or folder")
    elif path.suffix.lower() in IMAGE_SUFFIXES:
        yield Item(str(path))
    elif zipfile.is_zipfile(path):
        yield from _zip_members(path)
    elif _is_tar(path):
        yield from _tar_members(path)
    elif path.name.lower().endswith(ARCHIVE_SUFFIXES):
        yield Item(str(path), error="truncated_archive",
                   message="not a readable zip or tar archive: cut short or damaged")
    else:
        yield from _listed(path)


def _glob(pattern: str) -> list[Path]:
    """The paths `pattern` matches, sorted, hidden ones aside. pathlib's `**` does not
    follow links to folders (glob.glob's does: two links to "." made it list 2^40
    paths), as a folder source does not."""
    parts = Path(pattern).parts
    fixed = next(index for index, part in enumerate(parts) if any(ch in part for ch in "*?["))
    base = Path(*parts[:fixed]) if fixed else Path()
    # `**` inside a name ("photos/**.jpg") means `*` to glob.glob; pathlib refuses it.
    rest = [re.sub(r"\*\*+", "*", part) if part != "**" else part for part in parts[fixed:]]
    # Hidden files and folders are left out, as glob.glob does, unless the pattern names them.
    hidden_asked = any(part.startswith(".") for part in rest)
    try:
        matches = list(base.glob(str(Path(*rest))))
    except ValueError as exc:  # a pattern pathlib cannot read
        raise SourceError(f"{pattern}: {exc}") from None
    return sorted(match for match in matches if hidden_asked or not any(
        part.startswith(".") for part in match.relative_to(base).parts))


def _files(path: Path) -> Iterator[Item]:
    """A file, or every file under a folder (hidden ones aside)."""
    if path.is_file():
        yield Item(str(path))
        return
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        if not any(part.startswith(".") for part in file.relative_to(path).parts):
            yield Item(str(file))


def _zip_members(path: Path) -> Iterator[Item]:
    try:
        with open_zip(path) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, ValueError) as exc:  # ValueError: a name not in UTF-8
        yield Item(str(path), error="truncated_archive", message=f"the zip directory is damaged: {exc}")
        return
    for index in sorted(range(len(infos)), key=lambda i: infos[i].filename):
        if not infos[index].is_dir():
            yield Item(f"{path}{MEMBER}{infos[index].filename}", str(path), index)


def _tar_members(path: Path) -> Iterator[Item]:
    """The files of a tar, in its order. One that cannot be read to its end yields the
    members before the damage, then a `truncated_archive` item for the archive."""
    try:
        with _open_tar(path) as archive:
            for index, info in enumerate(iter(archive.next, None)):
                archive.members.clear()  # tarfile keeps every member it passed: 100k held 80 MB
                if info.isfile():
                    yield Item(f"{path}{MEMBER}{info.name}", str(path), index)
    except _TAR_ERRORS as exc:
        yield Item(str(path), error="truncated_archive",
                   message=f"the archive is cut short or damaged here: {exc}")


def _is_tar(path: Path) -> bool:
    try:
        with _open_tar(path):
            return True
    except _TAR_ERRORS:
        return False


class _CheckedTarInfo(tarfile.TarInfo):
    """tarfile takes a cut-off or garbled header after the first for the archive's end and
    stops without a word; this makes it an error, so a truncated tar is reported.

    It also bounds the extended headers that come before a member (pax records, a GNU
    long name), which tarfile reads whole into memory: one over `MAX_EXTENDED_HEADER` is
    refused unread, and pax records are checked in one pass before tarfile's parser sees
    them. That parser, before Python 3.11.10 (CVE-2024-6232), takes time quadratic in a
    header of digits: 0.8 s for 20 KB, and each member may have one."""

    @classmethod
    def fromtarfile(cls, tarfile_):
        try:
            return super().fromtarfile(tarfile_)
        except tarfile.EOFHeaderError:  # the zero block that really ends an archive
            raise
        except tarfile.HeaderError as exc:
            raise tarfile.ReadError(f"damaged header: {exc}") from None

    def _proc_member(self, tarfile_):
        if self.type in _EXTENDED_HEADERS and self.size > MAX_EXTENDED_HEADER:
            raise tarfile.ReadError(f"an extended header of {self.size:,} bytes (at most "
                                    f"{MAX_EXTENDED_HEADER:,} are read)")
        return super()._proc_member(tarfile_)

    def _proc_pax(self, tarfile_):
        records = tarfile_.fileobj.read(self._block(self.size))
        if not _well_formed_pax(records, self.size):
            raise tarfile.ReadError("damaged header: pax records that are not LENGTH KEY=VALUE lines")
        stream = tarfile_.fileobj
        tarfile_.fileobj = _Replayed(records, stream)  # tarfile reads them again from there
        try:
            return super()._proc_pax(tarfile_)
        finally:
            tarfile_.fileobj = stream


#: Largest extended header read before a member: a path is at most 4 KB on Linux, and
#: a photo's extended attributes a few hundred bytes.
MAX_EXTENDED_HEADER = 64 * 1024
_EXTENDED_HEADERS = (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE,
                     tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK)
#: Longest run of digits in pax records: a length, a time with nanoseconds or a size
#: has at most 20 in a row.
_MAX_PAX_DIGITS = 32
_TOO_MANY_DIGITS = re.compile(rb"[0-9]{%d}" % (_MAX_PAX_DIGITS + 1))


def _well_formed_pax(records: bytes, size: int) -> bool:
    """Whether `records` (`size` bytes of pax records, then the block's padding) are
    "LENGTH KEYWORD=VALUE\n" lines that add up to `size`, with no long run of digits:
    then tarfile's regular expressions run in time linear in the header."""
    if _TOO_MANY_DIGITS.search(records):
        return False
    position = 0
    while position < size:
        space = records.find(b" ", position, position + _MAX_PAX_DIGITS + 1)
        if space <= position or not records[position:space].isdigit():
            return False
        end = position + int(records[position:space])
        if end > size or records[end - 1:end] != b"\n" or records.find(b"=", space + 2, end) < 0:
            return False
        position = end
    return True


class _Replayed:
    """A tar's file object that gives `data` (already read from it) back first: tarfile
    reads a checked header again from here, then the rest of the archive as before."""

    def __init__(self, data: bytes, fileobj):
        self._data, self._fileobj = data, fileobj

    def read(self, size: int = -1) -> bytes:
        if size < 0:
            data, self._data = self._data, b""
            return data + self._fileobj.read()
        data, self._data = self._data[:size], self._data[size:]
        return data + self._fileobj.read(size - len(data)) if len(data) < size else data

    def tell(self) -> int:
        return self._fileobj.tell() - len(self._data)

    def __getattr__(self, name):
        return getattr(self._fileobj, name)


def _open_tar(path: str | Path) -> tarfile.TarFile:
    """A tar, compressed or not. It is only ever read forward (next member, its data),
    which is all a gzip, bzip2 or xz tar allows cheaply; an uncompressed one skips a
    member by seeking. (Stream mode, "r|*", reads forward too but decompresses five
    times slower.)"""
    return tarfile.open(path, "r:*", tarinfo=_CheckedTarInfo)


def _listed(path: Path) -> Iterator[Item]:
    """A text file of paths, one a line (blank lines and '#' comments skipped);
    relative paths are taken from the list's own folder. Read a line at a time, each
    at most MAX_LIST_LINE bytes, so a huge or binary file costs no memory."""
    with path.open("rb") as handle:
        for number, raw in enumerate(iter(lambda: handle.readline(MAX_LIST_LINE + 1), b""), 1):
            try:
                if len(raw) > MAX_LIST_LINE or b"\0" in raw:
                    raise ValueError
                line = raw.decode("utf-8")
            except ValueError:
                raise SourceError(f"{path}: neither an image, an archive nor a list of paths "
                                  f"(line {number} is no path)") from None
            entry = line.split("#", 1)[0].strip()
            if entry:
                listed = Path(entry) if Path(entry).is_absolute() else path.parent / entry
                yield Item(str(listed))


class Reader:
    """Reads items' bytes for one worker, at most `limit` each.

    Only regular files are read: a device, FIFO, socket or folder named in a list is
    `not_a_regular_file` (never opened, so never a hang or an endless read). More than
    `limit` bytes is `file_too_large`, from the declared size or else from a read
    capped at limit + 1. An archive member that cannot be read is `encrypted_member`
    or `damaged_member` (an unsupported compression is named). The archive last read
    stays open: a worker is handed members in archive order, so it reads a compressed
    tar front to back once, not once per member."""

    def __init__(self, limit: int):
        self.limit = limit
        self._archive: _ZipMembers | _TarMembers | None = None

    def read(self, item: Item) -> bytes:
        if item.error:
            raise ItemError(item.error, item.message)
        if not item.archive:
            return _read_file(item.path, self.limit)
        if self._archive is None or not self._archive.can_read(item):
            self.close()
            self._archive = _open_members(item.archive)
        return self._archive.read(item, self.limit)

    def close(self) -> None:
        if self._archive is not None:
            self._archive.close()
            self._archive = None

    def __enter__(self) -> Reader:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def _read_file(path: str, limit: int) -> bytes:
    """The path is checked before opening (opening a device can act on it, opening a FIFO
    waits for a writer) and the descriptor after (in case the path was swapped)."""
    if not stat.S_ISREG(os.stat(path).st_mode):
        raise _not_regular()
    with open(os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY), "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise _not_regular()
        return _capped(handle, info.st_size, limit)


def _not_regular() -> ItemError:
    return ItemError("not_a_regular_file", "not a regular file (a folder, device, FIFO or socket)")


def _capped(handle: BinaryIO, declared: int, limit: int) -> bytes:
    """At most `limit` bytes: refused from the declared size when it is over, else from
    a read of limit + 1 (a size can lie: a growing file, a /proc file)."""
    if declared > limit:
        raise ItemError("file_too_large", f"{declared:,} bytes, over the limit of {limit:,}")
    data = handle.read(limit + 1)
    if len(data) > limit:
        raise ItemError("file_too_large", f"more than the limit of {limit:,} bytes")
    return data


def _open_members(path: str) -> _ZipMembers | _TarMembers:
    try:
        return _ZipMembers(path) if zipfile.is_zipfile(path) else _TarMembers(path)
    except (zipfile.BadZipFile, *_TAR_ERRORS) as exc:
        raise ItemError("damaged_member", f"the archive no longer opens: {exc}") from None


def _changed() -> ItemError:
    return ItemError("damaged_member", "no longer in the archive: it changed during the run")


def read_zip_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytes:
    """A zip member's bytes, at most `limit` (`_capped`: a lying header cannot make it
    larger). What cannot be read is an `ItemError`: `encrypted_member`, or
    `damaged_member` (a bad CRC, broken data, or a compression named that Python cannot
    read, such as deflate64)."""
    if info.flag_bits & 0x1:
        raise ItemError("encrypted_member", "encrypted: it needs a password")
    try:
        with archive.open(info) as handle:
            return _capped(handle, info.file_size, limit)
    except NotImplementedError:
        method = zipfile.compressor_names.get(info.compress_type, f"method {info.compress_type}")
        raise ItemError("damaged_member", f"compressed with {method}, which cannot be read here") from None
    except (zipfile.BadZipFile, EOFError, OSError, zlib.error, lzma.LZMAError) as exc:
        raise ItemError("damaged_member", str(exc)) from None


class _ZipMembers:
    """An open zip: any member, in any order, is one seek away."""

    def __init__(self, path: str):
        self.path = path
        self._zip = open_zip(path)
        self._infos = self._zip.infolist()

    def can_read(self, item: Item) -> bool:
        return item.archive == self.path

    def read(self, item: Item, limit: int) -> bytes:
        if not 0 <= item.index < len(self._infos) or self._infos[item.index].filename != item.member:
            raise _changed()
        return read_zip_member(self._zip, self._infos[item.index], limit)

    def close(self) -> None:
        self._zip.close()


class _TarMembers:
    """An open tar, read forward only: it can give a member at or after its position."""

    def __init__(self, path: str):
        self.path = path
        self._tar = _open_tar(path)
        self._next = 0  # index of the entry the stream is at
        self._broken = False

    def can_read(self, item: Item) -> bool:
        return item.archive == self.path and item.index >= self._next and not self._broken

    def read(self, item: Item, limit: int) -> bytes:
        try:
            info = None
            while self._next <= item.index:
                info = self._tar.next()
                self._tar.members.clear()  # as in `_tar_members`
                self._next += 1
                if info is None:
                    raise _changed()
            if info.name != item.member:
                raise _changed()
            return _capped(self._tar.extractfile(info), info.size, limit)
        except _TAR_ERRORS as exc:
            self._broken = True  # the stream is lost: the next member reopens the archive
            raise ItemError("damaged_member", str(exc)) from None

    def close(self) -> None:
        self._tar.close()
