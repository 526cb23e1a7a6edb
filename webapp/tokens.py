"""Signed prediction tokens: each answer carries one, and feedback must present it.

The token holds what the server answered (model, version, verdict, scores) and the
SHA-256 of the photo, signed with the app's secret key, so feedback always refers
to a real answer and cannot be made up for photos nobody sent."""

from __future__ import annotations

import hashlib

from flask import current_app
from itsdangerous import BadSignature, URLSafeSerializer

from classifier.engine import Model, Prediction

SALT = "prediction"


class BadToken(ValueError):
    """A token that was not signed by this service."""


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=SALT)


def photo_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sign(model: Model, prediction: Prediction, digest: str) -> str:
    return _serializer().dumps({"m": model.name, "v": model.version, "l": prediction.label,
                                "s": dict(prediction.top[:5]), "h": digest})


def read(token: str) -> dict:
    """The signed answer: model, version, verdict, scores (best five), photo hash."""
    try:
        fields = _serializer().loads(token)
    except BadSignature:
        raise BadToken("The answer this feedback refers to was not given by this service.") from None
    return {"model": fields["m"], "version": fields["v"], "verdict": fields["l"],
            "scores": fields["s"], "photo_sha256": fields["h"]}
