"""Batch classification against the machine's ceiling, local engine and Ray.

The ceiling for a set of photos is cores x (1 / the single-thread time to decode and
classify one photo), measured here in-process on every photo of ../shared/datasets
(about 7,000): no engine can beat it on this machine. Then `python -m classifier.batch`
runs over the same photos with the local engine (a process per core) and with
`--engine ray` (a local Ray instance), timed from the command's start to its exit,
and the two outputs are compared row by row. Ray's fixed cost (start-up before the
first photo) is measured on a ten-photo job and reported apart.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import time
from pathlib import Path

from bench.common import ROOT, report
from classifier.settings import machine_description

MODEL = "hotdog"


def photos() -> list[str]:
    from classifier.batch.sources import expand
    from classifier.settings import shared_dir

    datasets = shared_dir() / "datasets"
    return [item.path for item in expand([str(datasets / name) for name in ("hotdog", "pizza", "phototype")])
            if item.path.lower().endswith((".jpg", ".jpeg", ".png"))]


def single_thread_seconds(paths: list[str], variant: str) -> float:
    from classifier.model import Model

    model = Model.from_directory(ROOT / "models" / MODEL, variant=variant)
    total = 0.0
    for path in paths:
        data = Path(path).read_bytes()  # reading is not part of decode-and-classify
        started = time.perf_counter()
        model.predict_bytes(data)
        total += time.perf_counter() - started
    return total


def run_batch(list_file: str, out: str, variant: str, engine: str = "local") -> float:
    command = [sys.executable, "-m", "classifier.batch", list_file, "--model", MODEL,
               "--out", out, "--engine", engine, "--variant", variant]
    started = time.monotonic()
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True,
                   env={**os.environ, "RAY_AUTH_MODE": "disabled"})
    return time.monotonic() - started


def rows(path: str) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def main() -> None:
    from classifier.model import Model

    work = ROOT / "bench" / "results" / "tmp"
    work.mkdir(parents=True, exist_ok=True)
    paths = photos()
    listing = work / "photos.txt"
    listing.write_text("\n".join(paths) + "\n")
    # The file the batch command will run: the faster here, chosen once for all runs.
    variant = Model.from_directory(ROOT / "models" / MODEL).runtime.variant
    cores = len(os.sched_getaffinity(0))
    single = single_thread_seconds(paths, variant)
    ceiling = cores * len(paths) / single
    local_seconds = run_batch(str(listing), str(work / "local.csv"), variant)
    small = work / "ten.txt"
    small.write_text("\n".join(paths[:10]) + "\n")
    ray_fixed = run_batch(str(small), str(work / "ray-ten.csv"), variant, "ray")
    ray_seconds = run_batch(str(listing), str(work / "ray.csv"), variant, "ray")
    local_rows, ray_rows = rows(str(work / "local.csv")), rows(str(work / "ray.csv"))
    result = {
        "cpu": machine_description(), "cores": cores, "photos": len(paths),
        "model": MODEL, "variant": variant,
        "single_thread_ms_per_photo": round(1000 * single / len(paths), 3),
        "ceiling_photos_per_s": round(ceiling, 1),
        "local": {"seconds": round(local_seconds, 2), "photos_per_s": round(len(paths) / local_seconds, 1),
                  "of_ceiling": round(len(paths) / local_seconds / ceiling, 3)},
        "ray": {"seconds": round(ray_seconds, 2), "photos_per_s": round(len(paths) / ray_seconds, 1),
                "of_ceiling": round(len(paths) / ray_seconds / ceiling, 3),
                "ten_photo_job_seconds": round(ray_fixed, 2)},
        "identical_rows": local_rows == ray_rows, "rows": len(local_rows),
    }
    # Ray pays its fixed cost once; past it, each photo costs 1 / its rate. It is worth
    # it on one machine only when that beats the local engine: say so from the figures.
    local_rate, ray_rate = result["local"]["photos_per_s"], result["ray"]["photos_per_s"]
    result["ray"]["worth_it_on_one_machine"] = ray_rate > local_rate
    report("batch", result, to_markdown)


def to_markdown(result: dict) -> str:
    local, ray = result["local"], result["ray"]
    return "\n".join([
        f"{result['cores']} cores; {result['photos']} photos of ../shared/datasets; "
        f"model {result['model']} ({result['variant']})", "",
        f"- single thread, decode and classify: {result['single_thread_ms_per_photo']:.2f} ms a photo; "
        f"ceiling **{result['ceiling_photos_per_s']:.1f} photos/s**",
        f"- local engine: {local['seconds']:.1f} s, {local['photos_per_s']:.1f} photos/s = "
        f"**{100 * local['of_ceiling']:.0f} %** of the ceiling (target >= 85 %)",
        f"- Ray engine (local instance): {ray['seconds']:.1f} s, {ray['photos_per_s']:.1f} photos/s = "
        f"**{100 * ray['of_ceiling']:.0f} %** of the ceiling (target >= 50 %); a ten-photo job takes "
        f"{ray['ten_photo_job_seconds']:.1f} s (its fixed cost)",
        f"- identical rows, local and Ray: **{result['identical_rows']}** ({result['rows']} rows)"])


if __name__ == "__main__":
    main()
