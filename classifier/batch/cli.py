"""Classify folders, globs, archives and lists of photos in bulk.

    python -m classifier.batch SOURCE... [--model NAME] --out FILE
        [--engine local|ray] [--resume] [--review SHEET.html] [--max-file-bytes N]

Every file gets a row (path, label, score, not_sure, error, error_message, model,
model_version, and the scores), written as CSV, JSON Lines or Parquet after the
output's extension. A bad file gets the API's error code, or one of the batch's own
(file_too_large, not_a_regular_file, damaged_member, encrypted_member,
truncated_archive), and the run goes on. Files are read by the workers, at most
--max-file-bytes each, so memory stays bounded whatever the sources hold.
Ctrl-C leaves a valid file; `--resume` skips what it already holds. The local
engine runs a process per core; `--engine ray` runs the same job on Ray Data
(a local instance, or the cluster RAY_ADDRESS names; pip install -r
requirements-ray.txt).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from classifier.batch import outputs, review
from classifier.batch.outputs import shown
from classifier.batch.sources import SourceError, expand
from classifier.model import Model

log = logging.getLogger("classifier.batch")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    from classifier.settings import MAX_UPLOAD_BYTES, PROJECT_ROOT

    p = argparse.ArgumentParser(prog="python -m classifier.batch",
                                description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("sources", nargs="+", metavar="SOURCE",
                   help="folder, glob, .zip / .tar(.gz) archive, or a file listing one path a line")
    p.add_argument("--model", default=os.environ.get("NOTHOTDOG_DEFAULT_MODEL", "hotdog"))
    p.add_argument("--out", type=Path, required=True, help="output file: .csv, .jsonl or .parquet")
    p.add_argument("--engine", choices=("local", "ray"), default="local")
    p.add_argument("--workers", type=int,
                   help="processes (local) or actors (ray); default: one per core")
    p.add_argument("--resume", action="store_true", help="keep the rows --out already holds")
    p.add_argument("--review", type=Path, metavar="SHEET.html",
                   help="also write a contact sheet of the least confident predictions")
    p.add_argument("--review-count", type=int, default=60)
    p.add_argument("--models-dir", type=Path,
                   default=Path(os.environ.get("NOTHOTDOG_MODELS_DIR", PROJECT_ROOT / "models")))
    p.add_argument("--variant", default=os.environ.get("NOTHOTDOG_MODEL_VARIANT", "auto"),
                   help="model file to run: auto (the faster here), int8 or float16")
    p.add_argument("--max-file-bytes", type=_positive, default=MAX_UPLOAD_BYTES,
                   help="larger files get file_too_large, unread "
                        "(default: $NOTHOTDOG_MAX_UPLOAD_BYTES, the web app's upload limit)")
    return p.parse_args(argv)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError(text)
    return value


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    from tqdm import tqdm

    if not (args.models_dir / args.model).is_dir():
        print(f"error: no model {args.model!r} in {args.models_dir}", file=sys.stderr)
        return 2
    model = Model.from_directory(args.models_dir / args.model, variant=args.variant)
    try:
        items = list(expand(args.sources))  # names only: each file is read by a worker
        writer = outputs.Writer(args.out, outputs.columns(model), resume=args.resume)
    except (SourceError, outputs.OutputError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if writer.done:  # a resumed run finishes with the file the first part was made with
        files = model.card["files"]["variants"]
        earlier = next((v for v, f in files.items() if f == writer.done[0]["model_file"]), None)
        if earlier is None or writer.done[0]["model_version"] != model.version:
            writer.close()
            print(f"error: {args.out} was written by another version of {args.model}; "
                  "cannot resume it", file=sys.stderr)
            return 2
        model = Model.from_directory(args.models_dir / args.model, variant=earlier)
    variant = model.runtime.variant  # workers run the file chosen here, not their own timing
    done = writer.done_paths()
    todo = [item for item in items if shown(item.path) not in done]
    print(f"{len(items)} files; {len(items) - len(todo)} already in {args.out}; "
          f"{len(todo)} to classify with {model.name} {model.version} "
          f"({model.runtime.file}) on the {args.engine} engine", file=sys.stderr)
    if args.engine == "ray":
        from classifier.batch import ray_engine as engine
    else:
        from classifier.batch import local as engine

    rows = list(writer.done)
    started = time.monotonic()
    interrupted = False
    progress = tqdm(total=len(todo), unit="photo", file=sys.stderr, smoothing=0.1)
    try:
        chunks = engine.run(todo, args.models_dir, args.model, variant, args.max_file_bytes, args.workers)
        for chunk in chunks if todo else []:
            writer.write(chunk)
            rows += chunk
            progress.update(len(chunk))
    except KeyboardInterrupt:
        interrupted = True
    finally:
        progress.close()
        writer.close()
    elapsed = time.monotonic() - started
    summarise(rows, len(rows) - len(writer.done), elapsed)
    if args.review and rows:
        review.write(args.review, rows, items, args.review_count, args.max_file_bytes)
        print(f"contact sheet of the {min(args.review_count, len(rows))} least confident: "
              f"{args.review}", file=sys.stderr)
    if interrupted:
        print(f"interrupted: {args.out} holds {len(rows)} of {len(items)} rows; "
              "run again with --resume to finish", file=sys.stderr)
        return 130
    return 0


def summarise(rows: list[dict], new: int, elapsed: float) -> None:
    """Counts per label and per error, and the rate of this run."""
    labels = Counter(r["label"] for r in rows if not r["error"])
    errors = Counter(r["error"] for r in rows if r["error"])
    total = len(rows)
    print(f"\n{total} rows; this run classified {new} in {elapsed:.1f} s"
          + (f" ({new / elapsed:.1f} photos/s)" if elapsed > 0 and new else ""), file=sys.stderr)
    for label, count in labels.most_common():
        print(f"  {label:<24} {count:>8}  {100 * count / total:5.1f} %", file=sys.stderr)
    failed = sum(errors.values())
    print(f"  {'failed':<24} {failed:>8}  {100 * failed / max(total, 1):5.1f} %"
          + (" (" + ", ".join(f"{code} {n}" for code, n in errors.most_common()) + ")" if failed else ""),
          file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
