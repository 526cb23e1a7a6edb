"""What the page and the API share: which model a request means, and running it."""

from __future__ import annotations

from flask import current_app, request

from classifier.engine import Model, ModelRegistry, Prediction
from classifier.intake import ImageError
from webapp.errors import RequestError
from webapp.uploads import Upload

EXTENSION = "classifier"


def registry() -> ModelRegistry:
    return current_app.extensions[EXTENSION]


def model_for_request() -> Model:
    """The model named by the `model` query or form field, else the default."""
    name = request.args.get("model") or (
        request.form.get("model") if request.mimetype == "multipart/form-data" else None)
    reg = registry()
    try:
        return reg.get(name)
    except KeyError:
        raise RequestError(400, "unknown_model", f"There is no model called {name!r}; "
                           f"available: {', '.join(reg.names())}.") from None


def classify_uploads(model: Model, uploads: list[Upload]) -> list[tuple[Upload, Prediction]]:
    """Predict every upload; the first bad one fails the request, naming the file."""
    results = []
    for upload in uploads:
        try:
            results.append((upload, model.predict_bytes(upload.data)))
        except ImageError as exc:
            if len(uploads) > 1:
                exc.message = f"{upload.filename}: {exc.message}"
            raise
    return results
