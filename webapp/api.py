"""The JSON API: classify photos, list models, health and readiness.

The YAML after `---` in each docstring is the operation's OpenAPI description,
collected by apispec into /api/v1/openapi.json.
"""

from __future__ import annotations

import time

from flask import Blueprint, current_app, jsonify

from webapp.classify import classify_uploads, model_for_request, registry
from webapp.uploads import uploads_from_request

bp = Blueprint("api", __name__, url_prefix="/api/v1")
health = Blueprint("health", __name__)


@bp.post("/classify")
def classify():
    """Classify one or several photos.
    ---
    post:
      summary: Classify photos
      description: >
        Send photos as multipart/form-data in the field `image` (repeat it for
        several), or one photo as the raw request body with an `image/*` type.
      parameters:
        - {in: query, name: model, schema: {type: string}, required: false,
           description: "Model name (default: hotdog). See GET /api/v1/models."}
      requestBody:
        content:
          multipart/form-data:
            schema:
              type: object
              properties:
                image: {type: array, items: {type: string, format: binary}}
              required: [image]
          image/*:
            schema: {type: string, format: binary}
      responses:
        200:
          description: One result per photo, in the order sent.
          content: {application/json: {schema: ClassifyResponse}}
        400: {description: "No photo, empty file, too many files, unknown model", content: {application/json: {schema: Error}}}
        413: {description: Upload larger than the limit, content: {application/json: {schema: Error}}}
        415: {description: Not an image in an accepted format, content: {application/json: {schema: Error}}}
        422: {description: "Damaged image, or too many pixels", content: {application/json: {schema: Error}}}
    """
    started = time.perf_counter()
    model = model_for_request()
    results = classify_uploads(model, uploads_from_request())
    return jsonify(model=model.describe(),
                   results=[{"filename": upload.filename, **prediction.as_dict()}
                            for upload, prediction in results],
                   elapsed_ms=round((time.perf_counter() - started) * 1000, 2))


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
                   models=[reg.get(name).card for name in reg.names()])


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
    reg, failures = registry(), {}
    for name in reg.names():
        model = reg.get(name)
        try:
            model.predict_pixels(model.blank_input())
        except Exception as exc:  # readiness reports any failure instead of raising it
            current_app.logger.exception("model %s is not ready", name)
            failures[name] = str(exc)
    if failures:
        return jsonify(status="unavailable", failures=failures), 503
    return jsonify(status="ready", models=reg.names())
