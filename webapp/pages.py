"""The upload page. Works without JavaScript (form POST -> result page); with
JavaScript, static/js/app.js takes over and talks to the JSON API instead."""

from __future__ import annotations

import base64
import io

from flask import Blueprint, current_app, render_template

from classifier.intake import ImageError, decode_image
from webapp.classify import classify_uploads, model_for_request, registry
from webapp.errors import RequestError
from webapp.uploads import uploads_from_request

bp = Blueprint("pages", __name__)

PREVIEW_SIZE = (480, 480)  # the photo shown back on the result page


@bp.get("/")
def index():
    return render_template("index.html", models=registry().names(), default=registry().default)


@bp.post("/")
def classify_form():
    """The no-JavaScript path: classify, then show each photo with its score bars."""
    try:
        model = model_for_request()
        results = classify_uploads(model, uploads_from_request())
    except (RequestError, ImageError) as exc:
        return render_template("index.html", models=registry().names(),
                               default=registry().default, error=exc.message), exc.status
    shown = [{"filename": upload.filename, "preview": preview_data_uri(upload.data),
              **prediction.as_dict()} for upload, prediction in results]
    return render_template("result.html", model=model, results=shown,
                           positive=model.labels[0])


@bp.get("/api/docs")
def api_docs():
    from webapp.openapi import spec_for

    return render_template("api_docs.html", spec=spec_for(current_app))


def preview_data_uri(data: bytes) -> str:
    """A small JPEG of the upload, inline in the page: nothing is stored to serve it."""
    image = decode_image(data, max_pixels=current_app.config["MAX_IMAGE_PIXELS"],
                         draft_size=PREVIEW_SIZE)
    image.thumbnail(PREVIEW_SIZE)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
