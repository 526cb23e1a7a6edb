"""Models made through the API: `POST /api/v1/models` makes one from a .zip of photos
by class, `DELETE /api/v1/models/NAME` removes one (`classifier.made_models`).

Both take the admin password by HTTP Basic auth (any user name, recorded in the card
as who made the model). Wrong passwords wait out the same back-off as the login form
(`webapp.admin`). A browser that once answered the Basic prompt sends the password
with every request to the site, even one a foreign page makes it send, so requests
that say they come from another site (Sec-Fetch-Site, or Origin from older browsers) are refused.

Every worker serves a made model within a second or so: a hook before each request
lets the registry look for models made or removed in the folder (`ModelRegistry.refresh`).
"""

from __future__ import annotations

import fcntl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from flask import Blueprint, Flask, current_app, jsonify, request, url_for

from classifier import made_models
from classifier.decode_cost import DecodeBudget
from classifier.model import Model
from classifier.photo_archive import ArchiveError, class_photos
from webapp import admin
from webapp.classify import registry
from webapp.errors import RequestError
from webapp.feedback import limiter

bp = Blueprint("made", __name__, url_prefix="/api/v1")
ARCHIVE_FIELD = "archive"


def register(app: Flask) -> None:
    app.register_blueprint(bp)

    @app.before_request
    def pick_up_made_models():
        registry().refresh()


def _made_by() -> str:
    """The admin's user name from HTTP Basic auth, once the password is right; else a
    401 (or 429 while wrong passwords from this address wait)."""
    if _from_another_site():
        raise RequestError(403, "cross_site", "Models are made and removed from this site or "
                           "an API client, not from another site's page.")
    auth = request.authorization
    if auth is None or auth.type != "basic":
        raise _unauthorized()
    try:
        wait = admin.claim_attempt()
    except limiter.storage.base_exceptions:
        raise RequestError(503, "login_unavailable", "Logging in is not possible right now; "
                           "please try again in a minute.") from None
    if wait:
        raise RequestError(429, "too_many_requests", f"Too many wrong passwords from your "
                           f"address: try again in {wait} seconds.", {"Retry-After": str(wait)})
    right = admin.password_matches(auth.password or "")
    admin.attempt_judged(right)
    if not right:
        raise _unauthorized()
    return (auth.username or "admin")[:60]


def _from_another_site() -> bool:
    """Whether a browser sent this from another site's page, which could carry the admin's
    cached Basic credentials with a form needing no preflight. Told by Sec-Fetch-Site or,
    from a browser too old to send it (Safari before 16.4), by an Origin naming another
    host (or "null"); API clients send neither."""
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None:
        return site not in ("same-origin", "none")
    origin = request.headers.get("Origin")
    return origin is not None and urlsplit(origin).netloc != request.host


def _unauthorized() -> RequestError:
    return RequestError(401, "unauthorized", "Send the admin password by HTTP Basic auth "
                        "(any user name): curl -u admin:PASSWORD ...",
                        {"WWW-Authenticate": 'Basic realm="Not Hotdog models"'})


@bp.post("/models")
def make_model():
    """Make a model from photos by class, served at once by every worker.
    ---
    post:
      summary: Make a model from your photos
      description: >
        A .zip in the field `archive` holding one folder of photos per class (the
        layout `python -m training.train` reads; all inside one top folder is fine):
        at least 2 classes and 5 photos a class, at most 20 classes and 200 photos.
        The server fits a dense layer on the pooled features of the imagenet model's
        network and the hot dog model's (EfficientNet-Lite0 and MobileNetV2, each photo
        also mirrored), estimates its accuracy by cross-validation
        on the photos given, and serves it within seconds in every worker, also after
        a restart, like any model (`model=NAME`, `model=all`, feedback, `/models/NAME`).
        Needs the admin password by HTTP Basic auth (any user name; the card records it).
      security: [{adminPassword: []}]
      requestBody:
        content:
          multipart/form-data:
            schema:
              type: object
              required: [name, title, archive]
              properties:
                name: {type: string, pattern: "^[a-z0-9][a-z0-9_-]{0,39}$", description: "the model's name in URLs and `model=`"}
                title: {type: string, maxLength: 60, description: "what it tells, for people"}
                description: {type: string}
                archive: {type: string, format: binary, description: ".zip: one folder of photos per class"}
      responses:
        201:
          description: Made; served by every worker within seconds.
          content: {application/json: {schema: MadeModel}}
        400: {description: "A missing field (`missing_archive`, `bad_request`) or a name or title that cannot be used (`bad_name`)", content: {application/json: {schema: Error}}}
        401: {description: "No admin password, or a wrong one", content: {application/json: {schema: Error}}}
        403: {description: "`cross_site`: sent by another site's page", content: {application/json: {schema: Error}}}
        409: {description: "`name_taken`: a model of that name is served", content: {application/json: {schema: Error}}}
        413: {description: The upload is larger than the limit, content: {application/json: {schema: Error}}}
        415: {description: "`unsupported_media_type`: a photo in the archive is not an image in an accepted format (its name starts the message)", content: {application/json: {schema: Error}}}
        422: {description: "`bad_archive`: not a readable zip, fewer than 2 classes, too few or too many photos, a photo outside a class folder, an encrypted or damaged member; or a photo that cannot be decoded (`corrupt_image`, `image_too_large`, `decoding_too_costly`: its name starts the message)", content: {application/json: {schema: Error}}}
        429: {description: Too many wrong passwords from this address, content: {application/json: {schema: Error}}}
        503: {description: "`no_base_model`: the model whose network made models run on (imagenet, NOTHOTDOG_MADE_MODELS_BASE) is not served here; `busy`: another model is being made on this host (one at a time), retry after Retry-After seconds", content: {application/json: {schema: Error}}}
    """
    made_by = _made_by()
    name, title = request.form.get("name", ""), request.form.get("title", "")
    try:
        made_models.check_name(name, title)
    except ValueError as exc:
        raise RequestError(400, "bad_name", str(exc)) from None
    upload = request.files.get(ARCHIVE_FIELD)
    if upload is None:
        raise RequestError(400, "missing_archive", f"Send the photos as a .zip in the field "
                           f"'{ARCHIVE_FIELD}': one folder of photos per class.")
    reg = registry()
    if name in reg.models:
        raise _name_taken(name)
    archive = upload.read()
    try:
        photos = class_photos(archive, max_file_bytes=current_app.config["MAX_CONTENT_LENGTH"])
    except ArchiveError as exc:
        raise RequestError(422, "bad_archive", str(exc)) from None
    try:
        with training_slot():
            card = made_models.make(
                Path(current_app.config["MODELS_DIR"]), base_model(),
                name=name, title=title, description=request.form.get("description", ""),
                photos=photos, made_by=made_by,
                budget=DecodeBudget(current_app.config["MADE_MODEL_DECODE_WORK"], sent=len(archive)),
                extras=extra_models())
    except made_models.NameTaken:
        raise _name_taken(name) from None
    reg.refresh(every=0)  # this worker serves it from the next request on
    current_app.logger.info("model %s made by %s from %d photos", name, made_by, card["made"]["photos"])
    estimate = card["metrics"]["cross_validation"]
    return jsonify(model=summary(card), estimate={
        "accuracy": estimate["accuracy"], "photos": estimate["n"], "note": estimate["note"],
        "confusion_matrix": estimate["confusion_matrix"], "wrong": estimate["wrong"]}
    ), 201, {"Location": url_for("pages.model_page", name=name)}


@bp.delete("/models/<name>")
def remove_model(name: str):
    """Remove a model made through the API, from every worker.
    ---
    delete:
      summary: Remove a model you made
      description: Shipped models cannot be removed (403). Needs the admin password by HTTP Basic auth.
      security: [{adminPassword: []}]
      parameters:
        - {in: path, name: name, required: true, schema: {type: string}}
      responses:
        204: {description: Removed; every worker stops serving it within seconds.}
        401: {description: "No admin password, or a wrong one", content: {application/json: {schema: Error}}}
        403: {description: "`shipped_model`: a shipped model, which is not removed this way; `cross_site`", content: {application/json: {schema: Error}}}
        404: {description: "`unknown_model`: no model of that name", content: {application/json: {schema: Error}}}
    """
    made_by = _made_by()
    try:
        made_models.remove(Path(current_app.config["MODELS_DIR"]), name)
    except KeyError:
        raise RequestError(404, "unknown_model", f"There is no model called {name[:40]!r}.") from None
    except made_models.NotMadeHere:
        raise RequestError(403, "shipped_model", f"{name} is a shipped model: only models made "
                           "through the API can be removed.") from None
    registry().refresh(every=0)
    current_app.logger.info("model %s removed by %s", name, made_by)
    return "", 204


@contextmanager
def training_slot() -> Iterator[None]:
    """Held while a model is trained: one at a time on this host, whichever worker or
    thread asks (a lock file in the instance folder), so however many visitors make
    models, training takes at most one core and leaves the others to answering
    photos. A request waits up to MADE_MODEL_WAIT_SECONDS for it (about one training),
    then gets a 503 to retry."""
    deadline = time.monotonic() + current_app.config["MADE_MODEL_WAIT_SECONDS"]
    with open(Path(current_app.instance_path) / "making-a-model.lock", "a") as lock:
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise RequestError(503, "busy", "Other models are being made on this server "
                                       "right now: try again in a few seconds.",
                                       {"Retry-After": "5"}) from None
                time.sleep(TRAINING_POLL_SECONDS)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


#: How often a request waiting for the training slot looks again.
TRAINING_POLL_SECONDS = 0.05


def base_model() -> Model:
    """The model whose network made models are heads on (MADE_MODELS_BASE)."""
    name = current_app.config["MADE_MODELS_BASE"]
    model = registry().models.get(name)
    if model is None or not model.has_features or model.head is not None:
        raise RequestError(503, "no_base_model", f"Models cannot be made here: the model {name} "
                           "(whose network they are made on) is not served.")
    return model


def extra_models() -> list[Model]:
    """The served models among MADE_MODELS_EXTRA_FEATURES whose networks' pooled features
    a made model's head reads after the base's: each runs its own network (not a head on
    another's), with a feature map, at the base's input size. One not served is left out."""
    base, models = base_model(), registry().models
    chosen = [models.get(name) for name in current_app.config["MADE_MODELS_EXTRA_FEATURES"]]
    return [model for model in chosen if model is not None and model.head is None and model.has_features
            and not model.reads_digits and model.input_size == base.input_size]


def summary(card: dict) -> dict:
    """What the API says about a made model: enough to use it and to judge it."""
    return {"name": card["name"], "title": card["title"], "version": card["version"],
            "description": card["description"], "classes": card["classes"],
            "photos": card["training"]["data"]["train"]["per_class"],
            "accuracy": card["metrics"]["cross_validation"]["accuracy"], "made": card["made"]}


def _name_taken(name: str) -> RequestError:
    return RequestError(409, "name_taken", f"A model called {name} is already served: "
                        "choose another name, or remove that one first.")
