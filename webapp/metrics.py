"""Prometheus metrics at /metrics: request latency per route, predictions per model
and label, feedback received, and the model versions loaded.

No label takes a value a client chooses: latency is labelled by route template (the
app's own table), and a request that matches no route, or uses a method its route
does not take, only counts by status; so invented paths and methods cannot make
new series without bound.

Under gunicorn every worker is a process of its own, so the counts live in
prometheus-client's multiprocess files (PROMETHEUS_MULTIPROC_DIR, which
gunicorn.conf.py prepares) and /metrics adds up all workers; a single process
(flask run, tests) uses the ordinary in-memory registry.
"""

from __future__ import annotations

import os
import time

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
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        from prometheus_client import REGISTRY as registry
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)
