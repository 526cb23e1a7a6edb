"""The server's own share of a request, for bench/body.py: two apps that take an upload
as ours does and answer a few bytes of JSON, with no photo work at all.

- `raw`: a bare WSGI callable reading the body in one call: gunicorn and the socket.
- `form`: a stock Flask view reading the multipart field `image`: adds Flask and
  Werkzeug's multipart parser (which the app replaced: webapp.form_parser).

Served by the same gunicorn.conf.py as the app, their latency is what no change to our
code can remove from a request's time.
"""

from __future__ import annotations

import json

from flask import Flask, request


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
