"""Prometheus metrics at /metrics: request latency per route, predictions per model
and label, feedback received, and the model versions loaded.

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
MODELS = Gauge("nothotdog_model_info", "Models loaded (1), by name, version and file served",
               ["model", "version", "file"], multiprocess_mode="liveall")


def register(app: Flask, models) -> None:
    for model in models:
        MODELS.labels(model.name, model.version, model.runtime["file"]).set(1)

    @app.before_request
    def start_timer():
        g.request_started = time.perf_counter()

    @app.after_request
    def observe(response):
        started = g.pop("request_started", None)
        if started is not None:
            route = request.url_rule.rule if request.url_rule else "unmatched"
            REQUEST_SECONDS.labels(route, request.method, str(response.status_code)).observe(
                time.perf_counter() - started)
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
