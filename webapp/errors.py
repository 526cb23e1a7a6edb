"""One error shape for the whole service: JSON for API clients, a page for people.

API answers look like `{"error": {"code": "corrupt_image", "message": "..."}}`
with a 4xx status; nothing a client sends should ever produce a 5xx.
"""

from __future__ import annotations

import logging

from flask import Flask, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import ClientDisconnected, HTTPException, RequestEntityTooLarge

from classifier.intake import ImageError
from webapp import present

log = logging.getLogger(__name__)


class RequestError(Exception):
    """A request we understood but cannot serve, with a stable `code` for clients."""

    def __init__(self, status: int, code: str, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}


# Messages for the HTTP errors Werkzeug raises itself, in words a person understands.
_HTTP_MESSAGES = {
    400: ("bad_request", "The request could not be understood (malformed form data?)."),
    404: ("not_found", "There is nothing at this address."),
    405: ("method_not_allowed", "This address does not accept that method."),
    413: ("payload_too_large", "The upload is larger than the limit of {limit}."),
    401: ("unauthorized", "Log in first."),
    415: ("unsupported_media_type", "This kind of content is not accepted here."),
    429: ("too_many_requests", "Too many requests from you in a short time; please try again later."),
}


def wants_json() -> bool:
    """API paths (and the Make a model page's, which its script calls) always answer
    JSON; elsewhere, whoever prefers JSON over HTML gets it."""
    if request.path.startswith(("/api/", "/make/")):
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json"


def error_response(status: int, code: str, message: str):
    if wants_json():
        return jsonify(error={"code": code, "message": message}), status
    # People get the plain-words version where there is one (webapp.present).
    if code in present.PEOPLE_MESSAGES:
        message = present.for_people(code)
    return render_template("error.html", status=status, code=code, message=message), status


def describe_limit(size_bytes: int) -> str:
    return f"{size_bytes / (1024 * 1024):.0f} MB"


def register(app: Flask) -> None:
    @app.errorhandler(RequestError)
    def request_error(exc: RequestError):
        body, status = error_response(exc.status, exc.code, exc.message)
        return body, status, exc.headers

    @app.errorhandler(ImageError)
    def image_error(exc: ImageError):
        return error_response(exc.status, exc.code, exc.message)

    @app.errorhandler(CSRFError)
    def csrf_error(exc: CSRFError):
        return error_response(400, "csrf_failed", "This form has expired or did not come from "
                              "this site. Reload the page and try again.")

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        if isinstance(exc, RequestEntityTooLarge) and _within_size_limit(app):
            # Werkzeug's form parser also answers 413 to a form of more than
            # MAX_FORM_PARTS parts; for a small upload, that means too many photos.
            return error_response(400, "too_many_files", (
                f"The form has more than {app.config['MAX_FORM_PARTS']} parts; at most "
                f"{app.config['MAX_FILES_PER_REQUEST']} photos are accepted at once."))
        if isinstance(exc, ClientDisconnected):  # webapp.uploads.InMemoryRequest.stream
            return error_response(400, "bad_request", "The upload ended before the size it "
                                  "announced (its Content-Length): send it again.")
        code, message = _HTTP_MESSAGES.get(exc.code, ("http_error", exc.description))
        message = message.format(limit=describe_limit(app.config["MAX_CONTENT_LENGTH"]))
        return error_response(exc.code or 500, code, message)

    @app.errorhandler(Exception)
    def unexpected_error(exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal_error", "Something went wrong on our side.")


def _within_size_limit(app: Flask) -> bool:
    length = request.content_length
    return length is not None and length <= app.config["MAX_CONTENT_LENGTH"]
