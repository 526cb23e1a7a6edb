"""A photo's way through the server, against the floor under it.

The floor of a request is its JPEG's decode (as the app decodes it, at the reduced
scale it asks for) plus the hot dog network's inference, both in-process and timed in
this run. For a 512-px photo and a 12-megapixel phone photo (2.7 MB) this measures, at
concurrency 1, the median of:
- `predict_bytes` in-process (the floor plus resizing);
- the request through gunicorn (our gunicorn.conf.py, one worker) as a multipart form,
  sent by wrk (a Python client would add its own milliseconds), and its ratio to the
  floor (target: 1.15x at most);
- the same body sent to bench/echo_app.py's apps, served the same way: two that do no
  photo work, a bare WSGI app (gunicorn and the socket) and a stock Flask view reading
  the multipart field (adds Flask and Werkzeug's parser, which the app no longer uses:
  webapp.form_parser); and a bare WSGI app running the hot dog model's `predict_bytes`
  (no Flask, no tokens, no metrics): the best any app served this way could do, and
  its ratio to the floor;
and profiles the app's own path (Flask's test client, no socket) for the 12 MP photo:
where its time goes, by function, per request.

    .venv/bin/python -m bench.body
"""

from __future__ import annotations

import cProfile
import pstats
import statistics
import tempfile
from pathlib import Path

from bench.common import report, timed
from bench.http_load import multipart, wrk
from classifier.intake import decode_image, draft_size, fit_to_input
from tests import images
from tests.browser.helpers import twelve_megapixels
from tests.servers import gunicorn

ROUNDS = 40
URL = "/api/v1/classify?model=hotdog"  # wrk's requests go to the default model: hotdog


def p50(samples: list[float]) -> float:
    return round(statistics.median(samples), 2)


def in_process(photo: bytes, model) -> dict:
    size = model.input_size
    decode = p50(timed(lambda _: decode_image(photo, draft_size=draft_size(size)), ROUNDS))
    pixels = fit_to_input(decode_image(photo, draft_size=draft_size(size)), size)
    inference = p50(timed(lambda _: model.predict_pixels(pixels), ROUNDS))
    return {"decode_ms": decode, "inference_ms": inference, "floor_ms": round(decode + inference, 2),
            "predict_bytes_ms": p50(timed(lambda _: model.predict_bytes(photo), ROUNDS))}


#: What answers the photos through gunicorn: the app, and the apps of bench/echo_app.py.
SERVED = {"gunicorn_ms": "app:app", "flask_form_ms": "bench.echo_app:form",
          "wsgi_body_ms": "bench.echo_app:raw", "wsgi_model_ms": "bench.echo_app:bare_model"}


def through_gunicorn(photos: dict[str, bytes], seconds: int = 8) -> dict:
    """Median latency of each photo sent to each of `SERVED`, one connection of wrk for
    `seconds`."""
    result: dict[str, dict] = {kind: {} for kind in photos}
    with tempfile.TemporaryDirectory() as folder:
        for column, target in SERVED.items():
            with gunicorn(target, workers=1) as server:
                server.wait_ready(workers=1, timeout=60)
                for kind, photo in photos.items():
                    body = Path(folder) / "photo.body"
                    body.write_bytes(multipart("photo.jpg", photo))
                    wrk(server.base, [body], 1, 2)  # warm-up
                    measured = wrk(server.base, [body], 1, seconds)
                    assert measured["errors"] == 0, measured
                    result[kind][column] = measured["p50_ms"]
    return result


def app_profile(photo: bytes, client, top: int = 8) -> list[dict]:
    """The functions the app's own path spends most time in, ms per request."""
    def post():
        client.post(URL, data=photo, content_type="image/jpeg").get_data()

    for _ in range(3):
        post()
    profile = cProfile.Profile()
    profile.enable()
    for _ in range(ROUNDS):
        post()
    profile.disable()
    stats = pstats.Stats(profile).stats
    rows = sorted(((value[2], key) for key, value in stats.items()), reverse=True)[:top]
    return [{"function": f"{name} ({file.rsplit('/', 1)[-1]}:{line})", "ms": round(1000 * t / ROUNDS, 2)}
            for t, (file, line, name) in rows]


def run() -> dict:
    from app import create_app
    from webapp.classify import registry

    app = create_app()
    with app.app_context():
        model = registry().models["hotdog"]
    photos = {"512 px": images.jpeg(512, 384, seed=1), "12 MP": twelve_megapixels()}
    result = {"photos": {kind: {"bytes": len(photo), **in_process(photo, model)}
                         for kind, photo in photos.items()}}
    for kind, timings in through_gunicorn(photos).items():
        entry = result["photos"][kind]
        entry.update(timings)
        entry["ratio"] = round(timings["gunicorn_ms"] / entry["floor_ms"], 2)
        entry["best_flask_ratio"] = round((entry["floor_ms"] + timings["flask_form_ms"]) /
                                          entry["floor_ms"], 2)
        entry["bare_model_ratio"] = round(timings["wsgi_model_ms"] / entry["floor_ms"], 2)
    result["profile_12mp"] = app_profile(photos["12 MP"], app.test_client())
    return result


def markdown(result: dict) -> str:
    lines = ["Concurrency 1, median of 40; floor = decode + inference in-process, this run.", "",
             "| photo | size | decode | inference | floor | predict_bytes | through gunicorn |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for kind, p in result["photos"].items():
        lines.append(f"| {kind} | {p['bytes'] / 1e6:.2f} MB | {p['decode_ms']} ms | {p['inference_ms']} ms | "
                     f"{p['floor_ms']} ms | {p['predict_bytes_ms']} ms | {p['gunicorn_ms']} ms "
                     f"(**{p['ratio']}x**) |")
    lines += ["", "The same bodies to apps that do no photo work (bench/echo_app.py), served the "
              "same way: what the server alone costs, and the ratio floor + a stock Flask "
              "form would give (the app parses forms its own way, webapp.form_parser):", "",
              "| photo | WSGI, body read | stock Flask, multipart field read | stock Flask ratio |",
              "|---|---:|---:|---:|"]
    for kind, p in result["photos"].items():
        lines.append(f"| {kind} | {p['wsgi_body_ms']} ms | {p['flask_form_ms']} ms | "
                     f"{p['best_flask_ratio']}x |")
    lines += ["", "The hot dog model's `predict_bytes` behind a bare WSGI callable (no Flask, "
              "tokens or metrics), served the same way: the best any app could do here.", "",
              "| photo | bare WSGI + model | its ratio to the floor |", "|---|---:|---:|"]
    lines += [f"| {kind} | {p['wsgi_model_ms']} ms | **{p['bare_model_ratio']}x** |"
              for kind, p in result["photos"].items()]
    lines += ["", "Where the app's own path (test client, 12 MP, raw body) spends its time, "
              "by function (total time), per request:", "", "| function | ms |", "|---|---:|"]
    lines += [f"| `{row['function']}` | {row['ms']} |" for row in result["profile_12mp"]]
    return "\n".join(lines)


if __name__ == "__main__":
    report("body", run(), markdown)
