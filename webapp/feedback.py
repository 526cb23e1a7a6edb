"""Feedback on answers: "right" or "wrong, it is X", from the page (with or without
JavaScript) and from the API. Each answer carries a signed token (`webapp.tokens`)
that the feedback must present. By default only the verdict, scores, correction,
model version and the photo's hash are stored; the photo itself only when the
person ticks the consent box, and then re-encoded so no EXIF data is kept."""

from __future__ import annotations

import base64
import binascii
import io

from flask import Blueprint, current_app, jsonify, render_template, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from sqlalchemy.exc import SQLAlchemyError

from classifier.intake import ImageError, decode_image
from webapp import metrics, tokens
from webapp.classify import registry
from webapp.db import Feedback, db
from webapp.errors import RequestError

api = Blueprint("feedback_api", __name__, url_prefix="/api/v1")
page = Blueprint("feedback_page", __name__)
limiter = Limiter(key_func=get_remote_address)


def feedback_limit() -> str:
    return current_app.config["FEEDBACK_RATE_LIMIT"]


@api.post("/feedback")
@limiter.limit(feedback_limit)
def feedback_api():
    """Tell us whether an answer was right.
    ---
    post:
      summary: Feedback on an answer
      description: >
        `token` is the `feedback_token` of a result from /api/v1/classify. Send
        `correct` true or false, and with false the right class in `correction`.
        The photo is stored only with `consent` true, and then it must be sent again
        (multipart field `image`); its EXIF data is removed. Rate-limited per client.
      requestBody:
        content:
          application/json:
            schema: FeedbackRequest
          multipart/form-data:
            schema: FeedbackRequest
      responses:
        201: {description: Stored., content: {application/json: {schema: FeedbackStored}}}
        400: {description: "Missing or invalid fields, or an unsigned token", content: {application/json: {schema: Error}}}
        429: {description: Too much feedback from this client, content: {application/json: {schema: Error}}}
    """
    fields = request.get_json(silent=True) if request.is_json else request.form
    if fields is None:
        raise RequestError(400, "bad_request", "Send the feedback as JSON or as form fields.")
    photo = request.files.get("image")
    stored = record(fields, photo.read() if photo else None,
                    consent=_boolean(fields.get("consent", False), "consent"), check_hash=True)
    return jsonify(id=stored.id, photo_stored=stored.has_photo), 201


@page.post("/feedback")
@limiter.limit(feedback_limit)
def feedback_form():
    """The no-JavaScript path: the result page's form, answered with a thank-you page."""
    consent = request.form.get("consent") == "on"
    # The page holds the photo only as the preview it shows (already re-encoded).
    photo = _data_uri_bytes(request.form.get("preview", "")) if consent else None
    stored = record(request.form, photo, consent=consent, check_hash=False)
    return render_template("thanks.html", feedback=stored), 201


def record(fields, photo: bytes | None, *, consent: bool, check_hash: bool) -> Feedback:
    """Check the fields against the signed answer and store them; the photo only
    with consent (and, with `check_hash`, only if it is the photo that was answered)."""
    try:
        answer = tokens.read(str(fields.get("token", "")))
    except tokens.BadToken as exc:
        raise RequestError(400, "bad_token", str(exc)) from None
    correct = _boolean(fields.get("correct"), "correct")
    correction = fields.get("correction") or None
    model = registry().models.get(answer["model"])
    classes = model.labels if model else []
    if not correct and correction is None and len(classes) == 2:  # wrong: the other one
        correction = next(label for label in classes if label != answer["verdict"])
    if not correct and correction not in classes:
        raise RequestError(400, "bad_correction", "Say which class the photo really shows: "
                           f"one of {', '.join(classes)}." if classes else
                           "The model this answer came from is no longer served.")
    kept = None
    if consent:
        if photo is None:
            raise RequestError(400, "missing_image", "To share the photo, send it in the field 'image'.")
        if check_hash and tokens.photo_hash(photo) != answer["photo_sha256"]:
            raise RequestError(400, "wrong_photo", "This is not the photo the answer was about.")
        kept = _without_metadata(photo)
    entry = Feedback(model_name=answer["model"], model_version=answer["version"],
                     verdict=answer["verdict"], scores=answer["scores"], correct=correct,
                     correction=None if correct else correction,
                     photo_sha256=answer["photo_sha256"], has_photo=kept is not None,
                     photo_jpeg=kept, status="new")
    try:
        db.session.add(entry)
        db.session.commit()
    except SQLAlchemyError:
        db.session.rollback()
        current_app.logger.exception("could not store feedback")
        raise RequestError(503, "database_unavailable",
                           "Feedback cannot be stored right now; please try again later.") from None
    metrics.feedback_received(entry.model_name, correct)
    return entry


def _without_metadata(photo: bytes) -> bytes:
    """The photo re-encoded as a JPEG of at most FEEDBACK_PHOTO_SIZE pixels: a new
    file with no EXIF, XMP or ICC data from the original."""
    try:
        image = decode_image(photo, max_pixels=current_app.config["MAX_IMAGE_PIXELS"])
    except ImageError as exc:
        raise RequestError(400, exc.code, exc.message) from None
    side = current_app.config["FEEDBACK_PHOTO_SIZE"]
    image.thumbnail((side, side))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def _boolean(value, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if str(value).lower() in ("true", "yes", "on", "1"):
        return True
    if str(value).lower() in ("false", "no", "off", "0", ""):
        return False
    raise RequestError(400, "bad_request", f"{name} must be true or false.")


def _data_uri_bytes(uri: str) -> bytes | None:
    prefix = "data:image/jpeg;base64,"
    if not uri.startswith(prefix):
        return None
    try:
        return base64.b64decode(uri[len(prefix):], validate=True)
    except (binascii.Error, ValueError):
        return None
