"""Labelled photo folders: finding, splitting and reading them (no TensorFlow here).

A data folder holds one sub-folder per class (`train/hotdog/*.jpg`,
`train/not_hotdog/*.jpg`, ...). Photos are read through `classifier.intake`, the
same code that serves predictions, so training sees exactly the pixels that
serving will.
"""

from __future__ import annotations

import fnmatch
import logging
import random
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from classifier.intake import IMAGE_SUFFIXES, ImageError, load_pixels

log = logging.getLogger(__name__)

# A photo's own id inside its file name: a number, "(12)", or a hex hash.
_ID_WORD = re.compile(r"\(?\d+\)?|[0-9a-f]{2,}")


class DataError(ValueError):
    """A data folder that cannot be trained or evaluated on, with the reason."""


@dataclass(frozen=True)
class Example:
    path: Path
    label: int

    @property
    def source(self) -> str:
        return source_of(self.path)


def source_of(path: Path) -> str:
    """The origin prefix kept in a file name: `dtu_food_(12).jpg` -> `dtu_food`,
    `seefood_3.jpg` -> `seefood`, `vnmenu2_0bc5a.jpg` -> `vnmenu2`: trailing words that
    look like ids (numbers, hex hashes) are dropped. Lets reports break results down
    by where photos came from."""
    words = Path(path).stem.split("_")
    while words and _ID_WORD.fullmatch(words[-1]):
        words.pop()
    return "_".join(words) or "unknown"


def image_files(folder: Path) -> list[Path]:
    """Image files under `folder`, recursively, sorted so runs are reproducible."""
    return sorted(p for p in Path(folder).rglob("*")
                  if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
                  and not p.name.startswith("."))


def scan_classes(data_dir: str | Path) -> tuple[list[str], list[Example]]:
    """Class names (sorted sub-folder names) and every photo in them."""
    folders = _class_folders(Path(data_dir))
    classes = list(folders)
    if len(classes) < 2:
        raise DataError(f"{data_dir} needs at least two class sub-folders, found "
                        f"{len(classes)}: {classes}")
    examples = []
    for index, (name, files) in enumerate(folders.items()):
        if not files:
            raise DataError(f"class {name!r} in {data_dir} has no images")
        examples += [Example(path, index) for path in files]
    return classes, examples


def add_photos(examples: list[Example], classes: list[str], items: Sequence[str], *,
               new_classes: bool) -> None:
    """Add the photos of `CLASS=PATH` items, in place: PATH is a folder (every image
    under it) or a glob of files (`.../not_hotdog/dtu_food_*`). With `new_classes`,
    a class not yet in `classes` is appended to it."""
    for item in items:
        name, sep, where = item.partition("=")
        if not sep or not name or not where:
            raise DataError(f"{item!r}: expected CLASS=FOLDER or CLASS=GLOB")
        if name not in classes:
            if not new_classes:
                raise DataError(f"{item}: {name!r} is not one of the classes {classes}")
            classes.append(name)
        files = image_files(Path(where)) if Path(where).is_dir() else sorted(
            p for p in Path(where).parent.glob(Path(where).name)
            if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if not files:
            raise DataError(f"{item}: no images at {where}")
        examples += [Example(path, classes.index(name)) for path in files]


def scan_labelled(data_dir: str | Path, classes: Sequence[str],
                  label_map: dict[str, str] | None = None) -> list[Example]:
    """Photos of a folder whose sub-folders are (or map onto) the given classes;
    e.g. evaluating a hot dog model on `pizza/test` with `pizza` -> `not_hotdog`."""
    label_map = label_map or {}
    examples = []
    for folder, files in _class_folders(Path(data_dir)).items():
        target = label_map.get(folder, folder)
        if target not in classes:
            raise DataError(f"sub-folder {folder!r} of {data_dir} is not one of the model's "
                            f"classes {list(classes)}; map it with --label-map {folder}=CLASS")
        examples += [Example(path, classes.index(target)) for path in files]
    if not examples:
        raise DataError(f"{data_dir} has no images")
    return examples


def _class_folders(data_dir: Path) -> dict[str, list[Path]]:
    if not data_dir.is_dir():
        raise DataError(f"{data_dir} is not a folder")
    return {p.name: image_files(p) for p in sorted(data_dir.iterdir())
            if p.is_dir() and not p.name.startswith(".")}


def read_name_list(path: str | Path) -> set[str]:
    """File names, one a line; `#` starts a comment (the reason for excluding it)."""
    names = set()
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        name = line.split("#", 1)[0].strip()
        if name:
            names.add(name)
    return names


def split_off(examples: Sequence[Example], fraction: float, seed: int,
              where: Callable[[Example], bool] = lambda e: True
              ) -> tuple[list[Example], list[Example]]:
    """Move a seeded `fraction` of the examples matching `where` into a second list,
    stratified by class and source so both halves keep the same mix."""
    if not 0 <= fraction < 1:
        raise DataError(f"a split fraction must be in [0, 1), got {fraction}")
    groups: dict[tuple[int, str], list[int]] = defaultdict(list)
    for index, example in enumerate(examples):
        if where(example):
            groups[(example.label, example.source)].append(index)
    rng = random.Random(seed)
    chosen: set[int] = set()
    for key in sorted(groups):
        members = groups[key]
        rng.shuffle(members)
        chosen.update(members[:round(len(members) * fraction)])
    kept = [e for i, e in enumerate(examples) if i not in chosen]
    taken = [e for i, e in enumerate(examples) if i in chosen]
    return kept, taken


def matches(patterns: Iterable[str]) -> Callable[[Example], bool]:
    patterns = list(patterns)
    return lambda example: any(fnmatch.fnmatch(example.path.name, p) for p in patterns)


def only_matching(examples: Sequence[Example], patterns: Sequence[str]) -> list[Example]:
    """The examples whose file names match any of `patterns` (all of them if none given)."""
    if not patterns:
        return list(examples)
    keep = matches(patterns)
    return [e for e in examples if keep(e)]


def counts(examples: Sequence[Example], classes: Sequence[str]) -> dict:
    """Photo counts per class and per file-name source (never machine paths)."""
    per_class = Counter(classes[e.label] for e in examples)
    per_source = Counter(e.source for e in examples)
    return {"total": len(examples),
            "per_class": {name: per_class[name] for name in classes},
            "per_source": dict(sorted(per_source.items()))}


def load_arrays(examples: Sequence[Example], size: tuple[int, int],
                progress: Callable[[Iterable], Iterable] = iter
                ) -> tuple[np.ndarray, np.ndarray, list[Example], list[tuple[Path, str]]]:
    """Read every photo to uint8 pixels. Unreadable files are skipped, logged and returned
    so the caller can count them; returns (pixels, labels, kept examples, skipped)."""
    width, height = size
    pixels = np.empty((len(examples), height, width, 3), np.uint8)
    kept, skipped = [], []
    for example in progress(examples):
        try:
            pixels[len(kept)] = load_pixels(example.path.read_bytes(), size)
        except (ImageError, OSError) as exc:
            log.warning("skipping unreadable %s: %s", example.path.name, exc)
            skipped.append((example.path, str(exc)))
            continue
        kept.append(example)
    labels = np.array([e.label for e in kept], np.int64)
    return pixels[:len(kept)], labels, kept, skipped


def describe_location(path: Path, shared_root: Path | None) -> str:
    """A data folder as it may appear in a model card: relative to the shared data
    root when it lies inside it, otherwise just its last two parts."""
    path = Path(path).resolve()
    if shared_root is not None:
        try:
            return str(path.relative_to(Path(shared_root).resolve()))
        except ValueError:
            pass
    return "/".join(path.parts[-2:])
