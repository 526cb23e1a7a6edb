"""The Ray engine: the same job as a Ray Data pipeline, on a local Ray instance or
on the cluster `RAY_ADDRESS` names. Items (names, never bytes) become a dataset, a
pool of actors each holding one model (one LiteRT interpreter) and one `Reader` reads
and classifies them batch by batch with `classify_item`, and the rows come back in
input order to the same writer as the local engine's. Ray is in requirements-ray.txt
only: serving never installs it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import asdict, fields
from pathlib import Path

from classifier.batch.local import CHUNK, classify_item, load_model
from classifier.batch.sources import Item, Reader


class _Classifier:
    """A Ray Data actor: one model, loaded once, reading and classifying batches of items."""

    def __init__(self, models_dir: str, name: str, variant: str, max_bytes: int):
        self.model = load_model(Path(models_dir), name, variant)
        self.reader = Reader(max_bytes)

    def __call__(self, batch: dict) -> dict:
        columns = [batch[field.name] for field in fields(Item)]
        items = [Item(*map(_plain, values)) for values in zip(*columns, strict=True)]
        rows = [classify_item(self.model, self.reader, item) for item in items]
        return {key: [r[key] for r in rows] for key in rows[0]}


def _plain(value):
    """Arrow hands back NumPy scalars; items and writers want plain Python values."""
    return value.item() if hasattr(value, "item") else value


def run(items: list[Item], models_dir: Path, name: str, variant: str, max_bytes: int,
        workers: int | None = None) -> Iterator[list[dict]]:
    import ray

    started_here = not ray.is_initialized()
    if started_here:
        # RAY_ADDRESS, when set, makes this join an existing cluster instead.
        ray.init(include_dashboard=False, log_to_driver=False,
                 num_cpus=None if os.environ.get("RAY_ADDRESS") else len(os.sched_getaffinity(0)))
    try:
        yield from _rows(ray, items, models_dir, name, variant, max_bytes, workers)
    finally:
        if started_here:
            ray.shutdown()


def _rows(ray, items, models_dir, name, variant, max_bytes, workers) -> Iterator[list[dict]]:
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True  # rows in input order, like the local engine
    context.enable_progress_bars = False  # our own progress bar counts the rows
    actors = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
    # Enough blocks that every actor has work, each about a chunk of photos.
    blocks = max(1, min(len(items), max(actors, len(items) // CHUNK)))
    dataset = ray.data.from_items([asdict(item) for item in items], override_num_blocks=blocks)
    rows = dataset.map_batches(
        _Classifier, fn_constructor_args=(str(models_dir), name, variant, max_bytes), batch_size=CHUNK,
        compute=ray.data.ActorPoolStrategy(size=actors), num_cpus=1, batch_format="numpy")
    chunk: list[dict] = []
    for row in rows.iter_rows():
        chunk.append({key: _plain(value) for key, value in row.items()})
        if len(chunk) == CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
