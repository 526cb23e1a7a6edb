"""The photos of a model to make, from an uploaded .zip: one folder per class, the
layout `training.train` reads (optionally all inside one top folder).

The zip is untrusted and held in memory: its directory is checked against the caps
before any member is read (the number of photos and classes, each member's declared
size, their total), and each member is then read as batch jobs read one
(`classifier.batch.sources.read_zip_member`: capped, so a lying header cannot make it
larger), counting the total again. Anything wrong is an `ArchiveError` whose message
says what to fix.
"""

from __future__ import annotations

import io
import posixpath
import unicodedata
import zipfile
from collections import Counter
from dataclasses import dataclass

from classifier.batch.sources import ItemError, read_zip_member
from classifier.intake import IMAGE_SUFFIXES
from classifier.zip_directory import TooManyEntries, open_zip

#: Fewest photos of a class: under it, neither the head nor its estimate mean much.
MIN_PER_CLASS = 5
#: Most classes and photos of one model made here. Features of 30 photos and their
#: mirrors took 0.6 s (bench/results/made_model.md), so 200 take about 4 s, plus about
#: 30 ms each to decode a 12 MP phone JPEG (bench/results/hostile.md's weights), on a
#: 2-core AMD EPYC: well within gunicorn's 30 s timeout for a request.
MAX_CLASSES = 20
MAX_PHOTOS = 200
#: Most bytes the photos may unpack to, together. Photos barely compress, so a real
#: archive within the 20 MB upload limit unpacks to little more than that; an archive of
#: zeros unpacks to a thousand times its size, and all of it would be held at once.
MAX_TOTAL_BYTES = 100 * 1024 * 1024
#: Most entries of the archive's directory: its photos, their folders, and what zip
#: tools add beside them (macOS adds a resource fork a photo).
MAX_ENTRIES = 5 * MAX_PHOTOS
#: Longest class name (a folder's name), as the page shows it on one line.
MAX_CLASS_NAME = 60
#: Names a zip tool adds that are not photos: macOS's resource forks, hidden files.
_IGNORED_PARTS = ("__MACOSX",)


class ArchiveError(ValueError):
    """An archive that cannot be a model's photos; the message says why."""


@dataclass(frozen=True)
class Photo:
    name: str  # its path in the archive, for messages and the "wrong" list
    data: bytes


def class_photos(data: bytes, *, max_file_bytes: int) -> dict[str, list[Photo]]:
    """The archive's photos by class (folder name), classes sorted by name, photos
    by path. Files that are not photos by their suffix are skipped."""
    try:
        archive = open_zip(io.BytesIO(data), max_entries=MAX_ENTRIES)
        infos = archive.infolist()
    except TooManyEntries:
        raise ArchiveError(f"The archive holds more than {MAX_ENTRIES:,} files and folders: a model "
                           f"takes at most {MAX_PHOTOS} photos.") from None
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ArchiveError(f"This is not a readable .zip archive ({exc}).") from None
    photos = [info for info in infos if _is_photo(info)]
    twice = next((name for name, count in Counter(info.filename for info in photos).items()
                  if count > 1), None)
    if twice is not None:
        raise ArchiveError(f"The archive holds {twice} more than once: each photo counts once.")
    by_class = _by_class(photos)
    check_counts(by_class)
    for info in photos:
        if info.file_size > max_file_bytes:
            raise ArchiveError(f"{info.filename} is {info.file_size:,} bytes, over the limit of "
                               f"{max_file_bytes:,} for one photo.")
    _check_total(sum(info.file_size for info in photos))
    read: dict[str, list[Photo]] = {}
    total = 0
    for label, members in sorted(by_class.items()):
        for info in members:
            photo = Photo(info.filename, _read(archive, info, max_file_bytes))
            total += len(photo.data)
            _check_total(total)  # declared sizes can lie
            read.setdefault(label, []).append(photo)
    return read


def _check_total(unpacked: int) -> None:
    if unpacked > MAX_TOTAL_BYTES:
        raise ArchiveError(f"The photos unpack to more than {MAX_TOTAL_BYTES // 2**20} MB together: "
                           "send fewer, or smaller ones.")


def _is_photo(info: zipfile.ZipInfo) -> bool:
    parts = info.filename.split("/")
    return (not info.is_dir() and posixpath.splitext(info.filename)[1].lower() in IMAGE_SUFFIXES
            and not any(part.startswith(".") or part in _IGNORED_PARTS for part in parts))


def _by_class(photos: list[zipfile.ZipInfo]) -> dict[str, list[zipfile.ZipInfo]]:
    """Photos by the folder just above them; all in one top folder is allowed too."""
    paths = [info.filename.strip("/").split("/") for info in photos]
    if paths and all(len(p) == 3 for p in paths) and len({p[0] for p in paths}) == 1:
        paths = [p[1:] for p in paths]  # my_photos/CLASS/photo.jpg
    by_class: dict[str, list[zipfile.ZipInfo]] = {}
    for info, parts in zip(photos, paths, strict=True):
        if len(parts) != 2:
            raise ArchiveError(f"{info.filename} is not in a class folder: the archive must hold "
                               "one folder of photos per class (CLASS/photo.jpg), nothing deeper.")
        check_class_name(parts[0], "folder name")
        by_class.setdefault(parts[0], []).append(info)
    check_distinct(list(by_class))
    return {label: sorted(members, key=lambda i: i.filename) for label, members in by_class.items()}


def check_class_name(name: str, what: str = "name") -> None:
    """Refuses a class name that cannot be a label: too long or not printable (a line
    break would split labels.txt), or a path rather than a name (feedback exports
    write photos into a folder named by their class). Checked before anything is built
    from it: every photo's name starts with its class, and a signed token carries them all."""
    if (not name.isprintable() or not 0 < len(name) <= MAX_CLASS_NAME or name != name.strip()
            or any(ch in name for ch in "/\\") or name in (".", "..")):
        raise ArchiveError(f"The {what} {name[:MAX_CLASS_NAME]!r} cannot be a class name: "
                           f"1 to {MAX_CLASS_NAME} printable characters, no slashes, not . or .., "
                           "no spaces at either end.")


def check_distinct(names: list[str]) -> None:
    """Refuses class names that differ only in case or in how their letters are
    encoded ("Cat" and "cat", "café" in its two Unicode forms): people would take them
    for one class."""
    seen: dict[str, str] = {}
    for name in names:
        key = unicodedata.normalize("NFC", name).casefold()
        if key in seen:
            raise ArchiveError(f"The classes {seen[key]!r} and {name!r} differ only in case or "
                               "accents' encoding: give them names that tell them apart.")
        seen[key] = name


def check_counts(by_class: dict[str, list]) -> None:
    """Refuses photos by class that are too few or too many for a model."""
    if len(by_class) < 2:
        raise ArchiveError(f"A model needs at least two classes: one folder of photos each "
                           f"(found {len(by_class)}).")
    if len(by_class) > MAX_CLASSES:
        raise ArchiveError(f"{len(by_class)} classes: at most {MAX_CLASSES} are taken.")
    total = sum(map(len, by_class.values()))
    if total > MAX_PHOTOS:
        raise ArchiveError(f"{total} photos: at most {MAX_PHOTOS} are taken.")
    few = {label: len(members) for label, members in by_class.items() if len(members) < MIN_PER_CLASS}
    if few:
        listed = ", ".join(f"{label} has {count}" for label, count in sorted(few.items()))
        raise ArchiveError(f"Each class needs at least {MIN_PER_CLASS} photos: {listed}.")


def _read(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytes:
    try:
        return read_zip_member(archive, info, limit)
    except ItemError as exc:
        raise ArchiveError(f"{info.filename}: {exc.message}.") from None
