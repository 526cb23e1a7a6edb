"""The "Make a model" page: any visitor trains a model on their own photos and tries
it, leaving nothing on the server; the admin keeps one as a served model.

Training returns the fitted head inside a token signed with the app's secret key and
dated (like feedback tokens, `webapp.tokens`): the browser holds it and sends it with
each photo to try, so the server keeps no visitor's model, and a token older than
MADE_HEAD_TOKEN_HOURS, or made on another version of the base network or of the
networks whose features it also reads (`webapp.made.extra_models`), is refused.
Keeping it is the admin's (a logged-in session and its CSRF token): the same head is
installed as a model like those made through the API (`classifier.made_models`).
"""

from __future__ import annotations

import base64
import dataclasses
from pathlib import Path

import numpy as np
from flask import Blueprint, current_app, jsonify, render_template, request
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from classifier import made_models
from classifier.decode_cost import DecodeBudget
from classifier.head_training import Estimate, Head
from classifier.model import Model
from classifier.photo_archive import (
    ArchiveError,
    Photo,
    check_class_name,
    check_counts,
    check_distinct,
    class_photos,
)
from classifier.service import classify
from webapp import admin
from webapp.classify import decode_budget, registry
from webapp.errors import RequestError
from webapp.feedback import limiter
from webapp.made import ARCHIVE_FIELD, base_model, extra_models, summary, training_slot
from webapp.uploads import display_name, uploads_from_request

bp = Blueprint("make_page", __name__, url_prefix="/make")
SALT = "made head"


def training_limit() -> str:
    return current_app.config["MADE_MODEL_RATE_LIMIT"]


@bp.get("")
def page():
    networks = [model.name for model in (base_model(), *extra_models())]
    return render_template("make.html", networks=networks, logged_in=admin.logged_in(),
                           hours=current_app.config["MADE_HEAD_TOKEN_HOURS"])


@bp.post("/train")
@limiter.limit(training_limit)
def train():
    """Photos by class (the fields `class` in order, the photos of the n-th in `photos-n`,
    or a .zip in `archive`) to a trained head: its estimate and its signed token."""
    title = request.form.get("title", "").strip() or "My model"
    try:
        made_models.check_title(title)
        photos, budget = _sent_photos()
    except (ValueError, ArchiveError) as exc:
        raise RequestError(422, "bad_archive", str(exc)) from None
    base = base_model()
    with training_slot():
        trained = made_models.train(base, photos, budget, extra_models())
    return jsonify(token=_signer().dumps(_as_fields(title, base, trained)), title=title,
                   classes=trained.classes, photos=trained.per_class,
                   estimate={"accuracy": trained.estimate.accuracy, "folds": trained.estimate.folds,
                             "not_sure": trained.estimate.calibration,
                             "confusion_matrix": trained.estimate.confusion,
                             "wrong": [{"index": i, "photo": trained.names[i], "class": given,
                                        "predicted": predicted, "score": score}
                                       for i, given, predicted, score in trained.estimate.wrong]})


@bp.post("/classify")
def try_it():
    """The visitor's model (its token in `token`) on photos in `image`."""
    title, base, trained = _from_token(request.form.get("token"))
    calibrated = ({"calibration": made_models.calibration_card(base, trained.estimate)}
                  if trained.estimate.calibration else {})
    model = Model(base.network.path, trained.classes, name="yours", version="trying",
                  card={"title": title, **calibrated}, runtime=base.runtime, network=base.network,
                  head=(trained.head.kernel, trained.head.bias), max_pixels=base.max_pixels,
                  extras=[extra.network for extra in trained.extras])
    results = []
    for upload in uploads_from_request():
        answer = classify([model], upload.data, budget=decode_budget())["yours"]
        results.append({"filename": upload.filename, **answer.as_dict()})
    return jsonify(results=results)


@bp.post("/keep")
@admin.login_required
def keep():
    """Install the visitor's model for everyone (the admin only; the form's CSRF token)."""
    title, base, trained = _from_token(request.form.get("token"))
    name = request.form.get("name", "")
    try:
        made_models.check_name(name, title)
        card = made_models.install(Path(current_app.config["MODELS_DIR"]), base, trained,
                                   name=name, title=title,
                                   description=request.form.get("description", ""),
                                   made_by="admin", via="the Make a model page")
    except made_models.NameTaken:  # a ValueError too: caught first
        raise RequestError(409, "name_taken", f"A model called {name} is already served: "
                           "choose another name.") from None
    except ValueError as exc:
        raise RequestError(400, "bad_name", str(exc)) from None
    registry().refresh(every=0)
    return jsonify(model=summary(card)), 201


def _sent_photos() -> tuple[dict[str, list[Photo]], DecodeBudget]:
    """The photos by class, and the decoding work they may cost: by the bytes sent, which
    for a zip is its own size, not what its photos unpack to."""
    limit, work = current_app.config["MAX_CONTENT_LENGTH"], current_app.config["MADE_MODEL_DECODE_WORK"]
    upload = request.files.get(ARCHIVE_FIELD)
    if upload is not None:
        archive = upload.read()
        return class_photos(archive, max_file_bytes=limit), DecodeBudget(work, sent=len(archive))
    names = [name.strip() for name in request.form.getlist("class")]
    if len(set(names)) != len(names) or not all(names):
        raise ArchiveError("Give every class a name of its own.")
    for name in names:
        check_class_name(name)
    check_distinct(names)
    photos = {name: [Photo(f"{name}/{display_name(f.filename)}", f.read())
                     for f in request.files.getlist(f"photos-{index}")]
              for index, name in enumerate(names)}
    check_counts(photos)
    return photos, DecodeBudget(work)


def _signer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=SALT)


def _as_fields(title: str, base: Model, trained: made_models.Trained) -> dict:
    """What the token carries: the head (float16: half the size, answers unchanged to
    three decimals), the networks it reads and what a card needs."""
    kernel = base64.b64encode(trained.head.kernel.astype(np.float16).tobytes()).decode("ascii")
    return {"t": title, "base": [base.name, base.version],
            "x": [[extra.name, extra.version] for extra in trained.extras], "k": kernel,
            "b": trained.head.bias.tolist(), "c": trained.per_class,
            "e": dataclasses.asdict(trained.estimate), "n": trained.names, "d": trained.duration_s}


def _from_token(token) -> tuple[str, Model, made_models.Trained]:
    if not isinstance(token, str) or not token.isascii():
        raise RequestError(400, "bad_token", "Train the model first: its token is missing.")
    try:
        fields = _signer().loads(token, max_age=current_app.config["MADE_HEAD_TOKEN_HOURS"] * 3600)
    except SignatureExpired:
        raise RequestError(410, "token_expired", "This model is too old to try or keep: "
                           "train it again.") from None
    except BadSignature:
        raise RequestError(400, "bad_token", "This model was not trained here.") from None
    base, extras = base_model(), extra_models()
    read = [[extra.name, extra.version] for extra in extras]
    # .get: a token from before heads read extra networks names none (and is refused here).
    if fields["base"] != [base.name, base.version] or fields.get("x", []) != read:
        raise RequestError(410, "token_expired", "The networks this model was trained on have "
                           "changed since: train it again.")
    classes = len(fields["c"])
    kernel = np.frombuffer(base64.b64decode(fields["k"]), np.float16).astype(np.float32)
    head = Head(kernel.reshape(-1, classes), np.array(fields["b"], np.float32))
    estimate = Estimate(**fields["e"])
    return fields["t"], base, made_models.Trained(fields["c"], head, estimate, fields["n"], fields["d"],
                                                  tuple(extras))

