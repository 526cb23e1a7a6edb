"""The server's own share of a request, for bench/body.py and bench/http_load.py: apps
that take an upload as ours does and answer a few bytes of JSON.

- `raw`: a bare WSGI callable reading the body in one call: gunicorn and the socket.
- `form`: a stock Flask view reading the multipart field `image`: adds Flask and
  Werkzeug's multipart parser (which the app replaced: webapp.form_parser).
- `bare_model`: a bare WSGI callable giving the photo to the app's own hot dog model
  (`Model.predict_bytes`: the intake's checks, decode, resize, inference), with no
  Flask, routing, limits, tokens or metrics around it.

Served by the same gunicorn.conf.py as the app, the first two measure what no change
to our code can remove from a request's time, and `bare_model` the best any app on
this server could do with our model: a bar the app cannot reach served this way is a
bar for the server, not for the app.
"""

from __future__ import annotations

import functools
import json

from flask import Flask, request
from werkzeug.http import parse_options_header


def raw(environ, start_response):
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = json.dumps({"bytes": len(environ["wsgi.input"].read(length))}).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]


form = Flask(__name__)


@form.post("/api/v1/classify")
def classify():
    return {"bytes": len(request.files["image"].read())}


@form.get("/readyz")
def ready():
    return "ready"


@functools.cache
def _hotdog_model():
    """The hot dog model as the app loads it (variant, threads, interpreter pool), once
    per worker: gunicorn.conf.py does not preload, so each worker builds its own."""
    from webapp import create_app
    from webapp.classify import registry

    app = create_app()
    with app.app_context():
        return registry().models["hotdog"]


def bare_model(environ, start_response):
    from webapp.form_parser import split_parts

    if environ["PATH_INFO"] == "/readyz":
        _hotdog_model()
        return _json(start_response, {"ready": True})
    body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    mimetype, options = parse_options_header(environ.get("CONTENT_TYPE", ""))
    if mimetype == "multipart/form-data":
        body = next(data for headers, data in split_parts(body, options["boundary"], 10)
                    if "filename" in headers.get("Content-Disposition", ""))
    return _json(start_response, _hotdog_model().predict_bytes(body).as_dict())


def _json(start_response, answer: dict):
    body = json.dumps(answer).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]
