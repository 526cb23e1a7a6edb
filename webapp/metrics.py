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


def register(app: Flask, models) -> None:
    for model in models:
        MODELS.labels(model.name, model.version, model.runtime.file).set(1)

    @app.before_request
    def start_timer():
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
