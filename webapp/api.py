"""The JSON API: classify photos, list models, health and readiness.

The YAML after `---` in each docstring is the operation's OpenAPI description,
collected by apispec into /api/v1/openapi.json.
"""

from __future__ import annotations

import time

from flask import Blueprint, current_app, jsonify

from webapp.classify import (
    EXPLAIN_WITH_OVERLAY,
    classify_uploads,
    explain_requested,
    input_data_uri,
    models_for_request,
    registry,
    requested_field,
    top_k_for_request,
)
from webapp.uploads import uploads_from_request

bp = Blueprint("api", __name__, url_prefix="/api/v1")
health = Blueprint("health", __name__)


@bp.post("/classify")
def classify():
    """Classify one or several photos, with one model or all of them.
    ---
    post:
      summary: Classify photos
      description: >
        Send photos as multipart/form-data in the field `image` (repeat it for
        several), or one photo as the raw request body with an `image/*` or
        `application/octet-stream` content type. With `model=all`, every model
        answers for each photo (the photo is decoded once).
      parameters:
        - {in: query, name: model, schema: {type: string}, required: false,
           description: "Model name (default: hotdog), or `all`. See GET /api/v1/models."}
        - {in: query, name: top_k, schema: {type: integer, minimum: 1}, required: false,
           description: "How many classes to return, best first (default: every class up to 5)."}
        - {in: query, name: input, schema: {type: boolean}, required: false,
           description: "`true` adds `input`: the pixels the model saw, as a PNG data URI."}
        - {in: query, name: preview, schema: {type: boolean}, required: false,
           description: "`true` adds `preview`: the photo upright, at most 480 px, as a JPEG data URI (for formats a browser cannot show, such as HEIC)."}
        - {in: query, name: explain, schema: {type: string, enum: ["true", "grid"]}, required: false,
           description: "`true` adds `explanation`: where in the photo the model saw its answer (a grid of 0-1 values over the photo, and the same as a translucent PNG heat layer to lay over it); `grid`, the grid alone: the layer is most of the work (about 1 ms a model) and 19 KB a model, and a page can draw it from the grid."}
      requestBody:
        content:
          multipart/form-data:
            schema:
              type: object
              properties:
                image: {type: string, format: binary, description: "the photo; repeat the field for several"}
              required: [image]
          image/*:
            schema: {type: string, format: binary}
          application/octet-stream:
            schema: {type: string, format: binary}
      responses:
        200:
          description: >
            One result per photo, in the order sent. With `model=all`, the answer
            lists `models` and each result has every model's answer under `models`.
          content:
            application/json:
              schema:
                oneOf: [{$ref: "#/components/schemas/ClassifyResponse"}, {$ref: "#/components/schemas/ClassifyAllResponse"}]
        400: {description: "No photo, empty file, too many files, unknown model, bad top_k", content: {application/json: {schema: Error}}}
        413: {description: Upload larger than the limit, content: {application/json: {schema: Error}}}
        415: {description: Not an image in an accepted format, content: {application/json: {schema: Error}}}
        422: {description: "Damaged image, or too many pixels", content: {application/json: {schema: Error}}}
    """
    started = time.perf_counter()
    choice, top_k = models_for_request(), top_k_for_request()
    models = choice.models
    explain = explain_requested()
    with_preview = requested_field("preview") == "true"
    answers = classify_uploads(models, uploads_from_request(),
                               explain=[m.name for m in models] if explain else [],
                               overlays=explain == EXPLAIN_WITH_OVERLAY, previews=with_preview)
    elapsed_ms = round((time.perf_counter() - started) * 1000, 2)
    if choice.every:
        return jsonify(models=[m.describe() for m in models], elapsed_ms=elapsed_ms, results=[
            {"filename": a.upload.filename,
             "models": {m.name: a.answer(m, top_k) for m in models},
             **({"preview": a.preview} if with_preview else {})}
            for a in answers])
    (model,) = models
    with_input = requested_field("input") == "true"
    return jsonify(model=model.describe(), elapsed_ms=elapsed_ms, results=[
        {"filename": a.upload.filename,
         **a.answer(model, top_k),
         **({"input": input_data_uri(a.answers[model.name].pixels)} if with_input else {}),
         **({"preview": a.preview} if with_preview else {})}
        for a in answers])


@bp.get("/models")
def models():
    """List the models this server can use, with their model cards.
    ---
    get:
      summary: List models
      responses:
        200:
          description: The default model's name and every model card.
          content: {application/json: {schema: ModelList}}
    """
    reg = registry()
    return jsonify(default=reg.default,
                   models=[{**model.card, "runtime": model.runtime.as_dict()}
                           for model in map(reg.get, reg.names())])


@health.get("/healthz")
def healthz():
    """Liveness: the process answers.
    ---
    get:
      summary: Liveness probe
      responses: {200: {description: The process is up.}}
    """
    return jsonify(status="ok")


@health.get("/readyz")
def readyz():
    """Readiness: every model answers a prediction.
    ---
    get:
      summary: Readiness probe
      responses:
        200: {description: Every model predicts.}
        503: {description: A model failed; the body says which.}
    """
    # When this worker last ran every model, and what it answered: anyone may ask, and
    # a run costs 30-45 ms of CPU, so it runs at most once per READY_CHECK_SECONDS (a
    # load balancer checks about once a second).
    checked_at, answer = current_app.extensions.get(READY_CHECK, (-float("inf"), None))
    if time.monotonic() - checked_at >= current_app.config["READY_CHECK_SECONDS"]:
        answer = _check_every_model()
        current_app.extensions[READY_CHECK] = time.monotonic(), answer
    body, status = answer
    return jsonify(body), status


READY_CHECK = "nothotdog.ready_check"


def _check_every_model() -> tuple[dict, int]:
    reg, failures = registry(), {}
    for name in reg.names():
        model = reg.get(name)
        try:
            model.predict_pixels(model.blank_input())
        except Exception:  # readiness reports any failure instead of raising it
            current_app.logger.exception("model %s is not ready", name)
            failures[name] = "does not predict (the server log says why)"
    if failures:
        return {"status": "unavailable", "failures": failures}, 503
    return {"status": "ready", "models": reg.names()}, 200
