"""Signed prediction tokens: each answer carries one, and feedback must present it.

The token holds what the server answered (model, version, verdict, scores), the
SHA-256 of the photo and a random id, signed with the app's secret key and dated, so
feedback always refers to a real answer, cannot be made up for photos nobody sent,
and is taken for a limited time (FEEDBACK_TOKEN_HOURS). Any instance sharing the key
reads any instance's tokens; that each is used only once is the database's job (the
random id is unique among stored feedback, `webapp.feedback`)."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from flask import current_app
from itsdangerous import BadSignature, URLSafeTimedSerializer

from classifier.model import Model, Prediction

SALT = "prediction"
#: Longest token accepted: real ones are a few hundred characters (five ImageNet labels: under 400).
MAX_LENGTH = 2048


class BadToken(ValueError):
    """A token that was not signed by this service."""


class ExpiredToken(ValueError):
    """A token signed by this service, longer ago than feedback is taken."""


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=SALT)


def photo_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sign(model: Model, prediction: Prediction, digest: str) -> str:
    # 96 random bits: ids of different answers never collide, so a clash is a reuse.
    return _serializer().dumps({"m": model.name, "v": model.version, "l": prediction.label,
                                "s": dict(prediction.top[:5]), "h": digest,
                                "j": secrets.token_urlsafe(12)})


def with_preview(token: str, preview_digest: str) -> str:
    """The same answer (same id), also vouching for the preview the result page shows:
    the no-JavaScript form can only send that preview back, not the original."""
    fields = _serializer().loads(token)
    return _serializer().dumps({**fields, "p": preview_digest})


def read(token) -> dict:
    """The signed answer: model, version, verdict, scores (best five), the photo's hash
    (and the result page's preview's, if it has one), and its id."""
    if not isinstance(token, str) or not token.isascii() or not 0 < len(token) <= MAX_LENGTH:
        # Checked first: the signer would choke on text that is not ASCII.
        raise BadToken("Send the answer's feedback_token as `token`.")
    try:
        fields, signed_at = _serializer().loads(token, return_timestamp=True)
    except BadSignature:
        raise BadToken("The answer this feedback refers to was not given by this service.") from None
    hours = current_app.config["FEEDBACK_TOKEN_HOURS"]
    # Measured here rather than by the serializer's max_age, which also refuses a token
    # dated a moment ahead: one signed by a host whose clock runs a little fast.
    if dt.datetime.now(dt.UTC) - signed_at > dt.timedelta(hours=hours):
        raise ExpiredToken(f"This answer is more than {hours} hours old: feedback on it is "
                           "closed. Classify the photo again.")
    return {"model": fields["m"], "version": fields["v"], "verdict": fields["l"],
            "scores": fields["s"], "photo_sha256": fields["h"], "preview_sha256": fields.get("p"),
            "token_id": fields["j"]}
