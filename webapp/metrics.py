"""Prometheus metrics at /metrics: request latency per route, predictions per model
and label, feedback received, and the model versions loaded.

No label takes a value a client chooses: latency is labelled by route template (the
app's own table), and a request that matches no route, or uses a method its route
does not take, only counts by status; so invented paths and methods cannot make
new series without bound.

Under gunicorn every worker is a process of its own, so the counts live in
prometheus-client's multiprocess files (PROMETHEUS_MULTIPROC_DIR, which
gunicorn.conf.py prepares) and /metrics adds up all workers; a single process
(flask run, tests) uses the ordinary in-memory registry. A dead worker's counts must
stay (counters never go back), but not its files: every replaced worker left two,
and /metrics read them all, so each new worker folds those of dead workers into one
archive file per kind (`fold_dead_workers`).
"""

from __future__ import annotations

import fcntl
import os
import re
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from flask import Blueprint, Flask, Response, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.metrics_core import Metric
from prometheus_client.mmap_dict import MmapedDict, mmap_key

bp = Blueprint("metrics", __name__)

REQUEST_SECONDS = Histogram("nothotdog_request_seconds", "Time to answer a request, by route",
                            ["route", "method", "status"],
                            buckets=(.005, .01, .02, .04, .08, .16, .32, .64, 1.28, 2.56, 5.12))
PREDICTIONS = Counter("nothotdog_predictions_total", "Answers given, by model and label",
                      ["model", "label"])
FEEDBACK = Counter("nothotdog_feedback_total", "Feedback received, by model and whether "
                   "the answer was right", ["model", "correct"])
UNROUTED = Counter("nothotdog_unrouted_requests_total", "Requests that matched no route "
                   "or used a method the route does not take (404, 405), by status", ["status"])
MODELS = Gauge("nothotdog_model_info", "Models loaded (1), by name, version and file served",
               ["model", "version", "file"], multiprocess_mode="liveall")


class ModelsShown:
    """Keeps `nothotdog_model_info` to the models `registry` serves, made ones included:
    a model made or removed (the registry swaps its dict) shows at the next request.
    A model gone is set to 0 rather than removed: multiprocess files keep a series."""

    def __init__(self, registry):
        self.registry, self.seen, self.shown = registry, None, set()

    def update(self) -> None:
        if self.registry.models is self.seen:
            return
        self.seen = self.registry.models
        current = {(m.name, m.version, m.runtime.file) for m in self.seen.values()}
        for labels in self.shown - current:
            MODELS.labels(*labels).set(0)
        for labels in current:
            MODELS.labels(*labels).set(1)
        self.shown = current


def register(app: Flask, registry) -> None:
    shown = ModelsShown(registry)

    @app.before_request
    def start_timer():
        shown.update()
        g.request_started = time.perf_counter()

    @app.after_request
    def observe(response):
        started = g.pop("request_started", None)
        if started is None:
            return response
        if request.url_rule is None:
            UNROUTED.labels(str(response.status_code)).inc()
        else:  # the method is one the rule accepts: bounded by the route table
            REQUEST_SECONDS.labels(request.url_rule.rule, request.method,
                                   str(response.status_code)).observe(time.perf_counter() - started)
        return response

    app.register_blueprint(bp)


def predicted(model: str, label: str) -> None:
    PREDICTIONS.labels(model, label).inc()


def feedback_received(model: str, correct: bool) -> None:
    FEEDBACK.labels(model, str(correct).lower()).inc()


@bp.get("/metrics")
def metrics():
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not folder:
        from prometheus_client import REGISTRY
        return Response(generate_latest(REGISTRY), mimetype=CONTENT_TYPE_LATEST)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    with _folding_lock(folder, fcntl.LOCK_SH):  # no worker's counts read twice, or missed
        return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)


# -- a dead worker's files ------------------------------------------------------------

#: The kinds of multiprocess files that outlive their worker (gauges here are "live":
#: prometheus-client's mark_process_dead deletes them).
LASTING_KINDS = ("counter", "histogram")
#: Held shared by a scrape, exclusively while a dead worker's files are folded.
FOLDING_LOCK = ".folding.lock"


def fold_dead_workers(folder: str) -> list[int]:
    """Add the counters and histograms of every dead worker into `KIND_archive.db` and
    delete their files (prometheus-client reads the kind from a file's name, and for
    these kinds nothing else from it); returns their process ids. The sums are the same
    before and after: a scrape waits for the fold, so it sees a dead worker's counts
    once, in its file or in the archive. Run by each new worker (gunicorn.conf.py), so
    the folder holds the live workers' files, the archives and little else."""
    with _folding_lock(folder, fcntl.LOCK_EX):
        dead = sorted({pid for kind in LASTING_KINDS for pid in _file_pids(folder, kind)
                       if not _alive(pid)})
        for kind in LASTING_KINDS:
            files = [os.path.join(folder, f"{kind}_{pid}.db") for pid in dead]
            files = [path for path in files if os.path.exists(path)]
            if not files:
                continue
            archive = os.path.join(folder, f"{kind}_archive.db")
            sources = [archive, *files] if os.path.exists(archive) else files
            # Unaccumulated: histogram buckets stay per bucket, as the files keep them.
            merged = multiprocess.MultiProcessCollector.merge(sources, accumulate=False)
            draft = f"{archive}.partial"  # not *.db: no scrape reads it
            _write_values(draft, merged)
            os.replace(draft, archive)
            for path in files:
                os.remove(path)
    return dead


def _file_pids(folder: str, kind: str) -> list[int]:
    """The process ids of the `kind` files in `folder` (not the archive's)."""
    named = (re.fullmatch(rf"{kind}_(\d+)\.db", name) for name in os.listdir(folder))
    return [int(match[1]) for match in named if match]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process of that number: alive
        pass
    return True


def _write_values(path: str, metrics: Iterable[Metric]) -> None:
    values = MmapedDict(path)
    try:
        for metric in metrics:
            for sample in metric.samples:
                key = mmap_key(metric.name, sample.name, list(sample.labels),
                               list(sample.labels.values()), metric.documentation)
                values.write_value(key, sample.value, 0.0)
    finally:
        values.close()


@contextmanager
def _folding_lock(folder: str, operation: int) -> Iterator[None]:
    with open(os.path.join(folder, FOLDING_LOCK), "a") as lock:
        fcntl.flock(lock, operation)
        yield
