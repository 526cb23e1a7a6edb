"""The local engine: a process per core, each with its own model, interpreter and
`Reader`, fed chunks of items in input order: a worker reads the files it classifies,
so the parent never holds a photo. Classifying one item is `classify_item`, which the
Ray engine uses too, so both give identical rows."""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from classifier.batch import outputs
from classifier.batch.sources import Item, ItemError, Reader
from classifier.intake import ImageError
from classifier.model import Model
from classifier.service import classify

log = logging.getLogger(__name__)

#: Items sent to a worker at once: large enough that the hand-over costs little,
#: small enough that the output (and the progress bar) moves every second or so.
CHUNK = 32

_model: Model | None = None  # the worker process's own model
_reader: Reader | None = None  # and its own reader


def load_model(models_dir: Path, name: str, variant: str) -> Model:
    return Model.from_directory(Path(models_dir) / name, variant=variant, pool_size=1)


def classify_item(model: Model, reader: Reader, item: Item) -> dict:
    """One row for one file: its prediction, or the API's error code for a bad file."""
    try:
        data = reader.read(item)
    except ItemError as exc:
        return outputs.row(model, item.path, error=(exc.code, exc.message))
    except OSError as exc:
        return outputs.row(model, item.path, error=("unreadable_file", exc.strerror or str(exc)))
    try:
        return outputs.row(model, item.path, classify([model], data)[model.name])
    except ImageError as exc:
        return outputs.row(model, item.path, error=(exc.code, exc.message))
    except Exception as exc:  # a decoder's own bug on one odd file must not end the run
        log.exception("%s: unexpected error", item.path)
        return outputs.row(model, item.path, error=("internal_error", f"{type(exc).__name__}: {exc}"[:200]))


def run(items: list[Item], models_dir: Path, name: str, variant: str, max_bytes: int,
        workers: int | None = None) -> Iterator[list[dict]]:
    """Rows for every item, a chunk at a time, in input order; no file read beyond
    `max_bytes`."""
    workers = workers or len(os.sched_getaffinity(0))
    chunks = [items[i:i + CHUNK] for i in range(0, len(items), CHUNK)]
    with ProcessPoolExecutor(workers, initializer=_start_worker,
                             initargs=(models_dir, name, variant, max_bytes)) as pool:
        try:
            yield from pool.map(_classify_chunk, chunks)
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise


def _start_worker(models_dir: Path, name: str, variant: str, max_bytes: int) -> None:
    global _model, _reader
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    _model = load_model(models_dir, name, variant)
    _reader = Reader(max_bytes)


def _classify_chunk(chunk: Iterable[Item]) -> list[dict]:
    return [classify_item(_model, _reader, item) for item in chunk]
