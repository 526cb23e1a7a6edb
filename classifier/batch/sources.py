"""What a batch job reads: folders (recursive), globs, zip / tar archives and files
that list one path a line, flattened into `Item`s in a stable order."""

from __future__ import annotations

import glob
import tarfile
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

#: Separates an archive from the member inside it in an item's path.
MEMBER = "!"
IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff", ".heic", ".heif"})


@dataclass(frozen=True)
class Item:
    """One file to classify. `data` is set for archive members (read by whoever
    expands the sources); a plain file is read by the worker that classifies it."""

    path: str
    data: bytes | None = None

    def read(self) -> bytes:
        return self.data if self.data is not None else Path(self.path).read_bytes()


class SourceError(ValueError):
    """A source that names nothing readable."""


def expand(sources: Iterable[str]) -> Iterator[Item]:
    """Every file the sources name, each once, in the order given (sorted within a
    folder, glob or archive)."""
    seen: set[str] = set()
    for source in sources:
        for item in _expand_one(source):
            if item.path not in seen:
                seen.add(item.path)
                yield item


def _expand_one(source: str) -> Iterator[Item]:
    path = Path(source)
    if any(ch in source for ch in "*?["):
        matches = sorted(glob.glob(source, recursive=True))
        if not matches:
            raise SourceError(f"{source}: the pattern matches nothing")
        for match in matches:
            yield from _files(Path(match))
    elif path.is_dir():
        yield from _files(path)
    elif not path.is_file():
        raise SourceError(f"{source}: no such file or folder")
    elif path.suffix.lower() in IMAGE_SUFFIXES:
        yield Item(str(path))
    elif zipfile.is_zipfile(path):
        yield from _zip_members(path)
    elif _is_tar(path):
        yield from _tar_members(path)
    else:
        yield from _listed(path)


def _files(path: Path) -> Iterator[Item]:
    """A file, or every file under a folder (hidden ones aside)."""
    if path.is_file():
        yield Item(str(path))
        return
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        if not any(part.startswith(".") for part in file.relative_to(path).parts):
            yield Item(str(file))


def _zip_members(path: Path) -> Iterator[Item]:
    with zipfile.ZipFile(path) as archive:
        for info in sorted(archive.infolist(), key=lambda i: i.filename):
            if not info.is_dir():
                yield Item(f"{path}{MEMBER}{info.filename}", archive.read(info))


def _tar_members(path: Path) -> Iterator[Item]:
    with tarfile.open(path) as archive:
        members = sorted((m for m in archive.getmembers() if m.isfile()), key=lambda m: m.name)
        for member in members:
            handle = archive.extractfile(member)
            yield Item(f"{path}{MEMBER}{member.name}", handle.read() if handle else b"")


def _is_tar(path: Path) -> bool:
    try:
        return tarfile.is_tarfile(path)
    except OSError:
        return False


def _listed(path: Path) -> Iterator[Item]:
    """A text file of paths, one a line (blank lines and '#' comments skipped);
    relative paths are taken from the list's own folder."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise SourceError(f"{path}: neither an image, an archive nor a list of paths") from None
    for line in lines:
        entry = line.split("#", 1)[0].strip()
        if entry:
            listed = Path(entry) if Path(entry).is_absolute() else path.parent / entry
            yield Item(str(listed))
