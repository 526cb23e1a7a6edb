"""A model made through the API on a real server (gunicorn, 2 workers, every shipped
model): the bars of issue #30.

- 40 real photos (Seefood: 20 hot dogs, 20 other dishes) in a zip, to the 201;
- from the 201 until every worker lists it (40 requests in a row that all list it:
  a worker missed by 40 random picks out of two is a 1-in-10^12 chance);
- RSS growth of the larger worker per made model (10 made, each used in each worker);
- after a restart it is still served; DELETE, until no worker lists it.

Needs ../shared.  .venv/bin/python -m bench.made_model_http
"""

from __future__ import annotations

import io
import os
import shutil
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import requests

from bench.common import ROOT
from classifier.settings import machine_description, shared_dir
from tests import images
from tests.servers import gunicorn

PASSWORD = "bench password"
AUTH = ("bench", PASSWORD)
IN_A_ROW = 40


def photo_zip(per_class: int) -> bytes:
    root = shared_dir() / "datasets" / "hotdog" / "train"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zipped:
        for label in ("hotdog", "not_hotdog"):
            for path in sorted((root / label).glob("seefood_*"))[:per_class]:
                zipped.write(path, f"{label}/{path.name}")
    return buffer.getvalue()


def listed(base: str, name: str) -> bool:
    return name in {m["name"] for m in requests.get(base + "/api/v1/models", timeout=30).json()["models"]}


def until_every_worker(base: str, name: str, present: bool) -> float:
    """Seconds until IN_A_ROW requests in a row agree that `name` is (not) listed."""
    started, streak = time.perf_counter(), 0
    while streak < IN_A_ROW:
        streak = streak + 1 if listed(base, name) == present else 0
        if time.perf_counter() - started > 60:
            raise RuntimeError(f"{name} still {'missing' if present else 'listed'} after 60 s")
    return time.perf_counter() - started


def worker_rss_mb(server) -> float:
    return max(worker.memory_info().rss for worker in server.workers()) / 2**20


def use_everywhere(base: str, names: list[str]) -> None:
    photo = images.jpeg(512, 384)
    for _ in range(6):  # both workers, most likely several times each
        for name in names:
            requests.post(f"{base}/api/v1/classify?model={name}",
                          files={"image": ("p.jpg", photo)}, timeout=30).raise_for_status()


def main() -> int:
    if not (shared_dir() / "datasets" / "hotdog").is_dir():
        print("../shared is missing", file=sys.stderr)
        return 1
    folder = Path(tempfile.mkdtemp(prefix="made-bench-"))
    for model in (ROOT / "models").iterdir():
        if model.is_dir():
            (folder / model.name).symlink_to(model.resolve(), target_is_directory=True)
    env = {"NOTHOTDOG_MODELS_DIR": str(folder), "NOTHOTDOG_ADMIN_PASSWORD": PASSWORD,
           "DATABASE_URL": f"sqlite:///{folder / 'db.sqlite'}"}
    data = photo_zip(20)
    try:
        with gunicorn(env=env) as server:
            server.wait_ready(workers=2)
            use_everywhere(server.base, ["hotdog", "imagenet", "phototype", "pizza"])
            before = worker_rss_mb(server)
            started = time.perf_counter()
            made = requests.post(server.base + "/api/v1/models", auth=AUTH, timeout=60, data={
                "name": "seefood", "title": "Hot dog or not?"}, files={"archive": ("p.zip", data)})
            made_s = time.perf_counter() - started
            assert made.status_code == 201, made.text
            everywhere_s = until_every_worker(server.base, "seefood", True)
            names = ["seefood"]
            for i in range(9):
                small = requests.post(server.base + "/api/v1/models", auth=AUTH, timeout=60, data={
                    "name": f"more{i}", "title": "Hot dog or not?"}, files={"archive": ("p.zip", data)})
                assert small.status_code == 201, small.text
                names.append(f"more{i}")
            until_every_worker(server.base, names[-1], True)
            use_everywhere(server.base, names)
            after = worker_rss_mb(server)
        with gunicorn(env=env) as server:
            server.wait_ready(workers=2)
            restarted = listed(server.base, "seefood")
            for name in names:
                assert requests.delete(f"{server.base}/api/v1/models/{name}", auth=AUTH,
                                       timeout=30).status_code == 204
            gone_s = until_every_worker(server.base, "seefood", False)
    finally:
        shutil.rmtree(folder)
    estimate = made.json()["estimate"]
    print(f"# A model made through the API, on {machine_description()} "
          f"({os.cpu_count()} cores, gunicorn 2 workers, every shipped model)\n")
    print(f"- 40 Seefood photos (20 a class, {len(data) / 2**20:.1f} MB zip) to the 201: **{made_s:.1f} s** "
          f"(estimated accuracy {estimate['accuracy']:.1%})")
    print(f"- from the 201 until {IN_A_ROW} requests in a row list it: **{everywhere_s:.2f} s**")
    print(f"- larger worker's RSS: {before:.0f} MB before, {after:.0f} MB with 10 made models used: "
          f"**{(after - before) / 10:.2f} MB a model**")
    print(f"- served after a restart: **{restarted}**; after DELETE, until {IN_A_ROW} requests in "
          f"a row no longer list it: **{gone_s:.2f} s**")
    return 0


if __name__ == "__main__":
    sys.exit(main())
