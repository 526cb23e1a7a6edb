"""Feedback on answers: "right" or "wrong, it is X", from the page (with or without
JavaScript) and from the API. Each answer carries a signed token (`webapp.tokens`)
that the feedback must present. By default only the verdict, scores, correction,
model version and the photo's hash are stored; the photo itself only when the
person ticks the consent box, and then re-encoded so no EXIF data is kept."""

from __future__ import annotations

import base64
import binascii
import json

from flask import Blueprint, current_app, jsonify, render_template, request
from flask_limiter import Limiter
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from classifier.encoded import image_bytes
from classifier.intake import ImageError, decode_image
from webapp import metrics, tokens
from webapp.classify import registry
from webapp.clients import client_key
from webapp.db import Feedback, db
from webapp.errors import RequestError

api = Blueprint("feedback_api", __name__, url_prefix="/api/v1")
page = Blueprint("feedback_page", __name__)
limiter = Limiter(key_func=client_key)
#: The most bytes of feedback sent as JSON: a token and three short fields need 1 KB.
MAX_JSON_BYTES = 16 * 1024


def feedback_limit() -> str:
    return current_app.config["FEEDBACK_RATE_LIMIT"]


@api.post("/feedback")
@limiter.shared_limit(feedback_limit, scope="feedback")
def feedback_api():
    """Tell us whether an answer was right.
    ---
    post:
      summary: Feedback on an answer
      description: >
        `token` is the `feedback_token` of a result from /api/v1/classify. Send
        `correct` true or false, and with false the right class in `correction`.
        The photo is stored only with `consent` true, and then it must be sent again
        (multipart field `image`); its EXIF data is removed. Each token is taken once,
        within 24 hours of the answer (NOTHOTDOG_FEEDBACK_TOKEN_HOURS). Rate-limited per client.
      requestBody:
        content:
          application/json:
            schema: FeedbackRequest
          multipart/form-data:
            schema: FeedbackRequest
      responses:
        201: {description: "Stored. With consent, `photo_stored` false and a `photo_note` say the photo was not kept (as many shared photos wait for review as the server keeps).", content: {application/json: {schema: FeedbackStored}}}
        400: {description: "Missing or invalid fields (`bad_request`, `bad_correction`, `missing_image`), a body that is not a JSON object or form, a token this service did not sign (`bad_token`), or a photo that is not the one answered (`wrong_photo`)", content: {application/json: {schema: Error}}}
        409: {description: "`token_used`: feedback with this token was already stored", content: {application/json: {schema: Error}}}
        410: {description: "`token_expired`: the answer is older than feedback is taken (24 hours by default)", content: {application/json: {schema: Error}}}
        429: {description: Too much feedback from this client, content: {application/json: {schema: Error}}}
    """
    fields = _api_fields()
    photo = request.files.get("image")
    stored, photo_note = record(fields, photo.read() if photo else None,
                                consent=_boolean(fields.get("consent", False), "consent"))
    return jsonify(id=stored.id, photo_stored=stored.has_photo,
                   **({"photo_note": photo_note} if photo_note else {})), 201


@page.post("/feedback")
@limiter.shared_limit(feedback_limit, scope="feedback")
def feedback_form():
    """The no-JavaScript path: the result page's form, answered with a thank-you page."""
    consent = request.form.get("consent") == "on"
    # The page holds the photo only as the preview it shows, which its token vouches for.
    photo = data_uri_bytes(request.form.get("preview", "")) if consent else None
    stored, photo_note = record(request.form, photo, consent=consent)
    return render_template("thanks.html", feedback=stored, photo_note=photo_note), 201


def _api_fields():
    """The API's fields: a JSON object, or form fields. Anything else is refused here,
    so that no JSON value (a list, a string, deep nesting) reaches the checks below. A
    JSON body is read up to MAX_JSON_BYTES: 20 MB of `[{},{},...]` parsed held 0.5 GB."""
    if not request.is_json:
        return request.form
    body = request.stream.read(MAX_JSON_BYTES + 1)
    if len(body) > MAX_JSON_BYTES:
        raise RequestError(413, "payload_too_large", f"Feedback in JSON is a few fields: at most "
                           f"{MAX_JSON_BYTES // 1024} KB (a photo goes in a multipart form).")
    try:
        fields = json.loads(body)
    except (ValueError, RecursionError):  # not JSON, or nested deeper than the parser goes
        fields = None
    if not isinstance(fields, dict):
        raise RequestError(400, "bad_request", "Send the feedback as a JSON object, such as "
                           '{"token": "...", "correct": true}, or as form fields.')
    return fields


def record(fields, photo: bytes | None, *, consent: bool) -> tuple[Feedback, str | None]:
    """Check the fields against the signed answer and store them; the photo only with
    consent, and only if it is the photo that was answered (or the preview of it the
    result page showed). A token's second use is refused by the database (409).
    Returns the entry, and why a photo shared with consent was not kept (or None)."""
    answer = _signed_answer(fields.get("token"))
    correct = _boolean(fields.get("correct"), "correct")
    # A correction beside "right" contradicts it; the no-JS form may send one typed in vain.
    correction = None if correct else _correction(fields.get("correction"), answer)
    photo_note = PHOTO_STORE_FULL if consent and _photo_store_full() else None
    kept = _kept_photo(photo, answer) if consent and not photo_note else None
    entry = Feedback(model_name=answer["model"], model_version=answer["version"],
                     verdict=answer["verdict"], scores=answer["scores"], correct=correct,
                     correction=correction, photo_sha256=answer["photo_sha256"],
                     has_photo=kept is not None, photo_jpeg=kept, status="new",
                     token_id=answer["token_id"])
    _store(entry)
    metrics.feedback_received(entry.model_name, correct)
    return entry, photo_note


def _signed_answer(token) -> dict:
    try:
        return tokens.read(token)
    except tokens.BadToken as exc:
        raise RequestError(400, "bad_token", str(exc)) from None
    except tokens.ExpiredToken as exc:
        raise RequestError(410, "token_expired", str(exc)) from None


def _correction(value, answer: dict) -> str:
    """The class the person says the photo shows; for a two-class model, "wrong" is
    enough (it is the other one)."""
    model = registry().models.get(answer["model"])
    classes = model.labels if model else []
    if value in (None, "") and len(classes) == 2:
        return next(label for label in classes if label != answer["verdict"])
    if not isinstance(value, str) or value not in classes:
        raise RequestError(400, "bad_correction", "Say which class the photo really shows: "
                           f"one of {', '.join(classes)}." if classes else
                           "The model this answer came from is no longer served.")
    return value


def _photo_store_full() -> bool:
    """Whether FEEDBACK_PHOTOS_AWAITING_REVIEW shared photos wait for a moderator: the
    feedback is then kept without its photo (before any work on it). Hosts storing
    photos at the same moment may each pass the count: it bounds the store, give or
    take the requests in flight."""
    try:
        waiting = db.session.scalar(select(func.count()).select_from(Feedback).where(
            Feedback.has_photo, Feedback.status == "new"))
    except SQLAlchemyError:
        raise _database_unavailable() from None
    return waiting >= current_app.config["FEEDBACK_PHOTOS_AWAITING_REVIEW"]


PHOTO_STORE_FULL = ("Your photo itself was not kept: we hold as many shared photos as we can "
                    "review for now.")


def _kept_photo(photo: bytes | None, answer: dict) -> bytes:
    if photo is None:
        raise RequestError(400, "missing_image", "To share the photo, send it in the field 'image'.")
    if tokens.photo_hash(photo) not in (answer["photo_sha256"], answer["preview_sha256"]):
        raise RequestError(400, "wrong_photo", "This is not the photo the answer was about.")
    return _without_metadata(photo)


def _store(entry: Feedback) -> None:
    """Insert the feedback. Its token id is unique in the table, so of two uses of one
    token (even at the same moment, on two hosts) the database keeps exactly one."""
    try:
        db.session.add(entry)
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise RequestError(409, "token_used", "Feedback on this answer was already sent: "
                           "an answer takes feedback once.") from None
    except SQLAlchemyError:
        raise _database_unavailable() from None


def _database_unavailable() -> RequestError:
    db.session.rollback()
    current_app.logger.exception("could not store feedback")
    return RequestError(503, "database_unavailable",
                        "Feedback cannot be stored right now; please try again later.")


def _without_metadata(photo: bytes) -> bytes:
    """The photo re-encoded as a JPEG of at most FEEDBACK_PHOTO_SIZE pixels: a new
    file with no EXIF, XMP or ICC data from the original."""
    side = current_app.config["FEEDBACK_PHOTO_SIZE"]
    try:
        image = decode_image(photo, max_pixels=current_app.config["MAX_IMAGE_PIXELS"],
                             draft_size=(side, side))
    except ImageError as exc:
        raise RequestError(400, exc.code, exc.message) from None
    image.thumbnail((side, side))
    return image_bytes(image, "JPEG", quality=90)


def _boolean(value, name: str) -> bool:
    """A JSON boolean, or a form's word for one; nothing else (no guessing at lists)."""
    if isinstance(value, bool):
        return value
    word = value.lower() if isinstance(value, str) else None
    if word in ("true", "yes", "on", "1"):
        return True
    if word in ("false", "no", "off", "0", ""):
        return False
    raise RequestError(400, "bad_request", f"{name} must be true or false.")


def data_uri_bytes(uri: str) -> bytes | None:
    """The bytes of a JPEG data URI (the result page's preview); None for anything else."""
    prefix = "data:image/jpeg;base64,"
    if not uri.startswith(prefix):
        return None
    try:
        return base64.b64decode(uri[len(prefix):], validate=True)
    except (binascii.Error, ValueError):
        return None
