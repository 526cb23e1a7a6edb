"""Helpers for the browser tests (and bench/upload.py): the app served in a thread,
Chromium's flags, pages, photos, waiting, screenshots. Screenshots land in
tests/artifacts/ for people to look at."""

from __future__ import annotations

import io
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image
from werkzeug.serving import make_server

from tests import images
from tests.servers import free_port

ARTIFACTS = Path(__file__).parent.parent / "artifacts"
LAPTOP, PHONE = {"width": 1280, "height": 800}, {"width": 390, "height": 844}
PHOTO_MODELS = ("hotdog", "pizza", "phototype", "imagenet")
# What no message for people may contain: form-field names, library errors, tracebacks.
LEAKS = ("'image'", "form field", "Traceback", "bytes not processed", "cannot identify",
         "PIL", "Errno", "multipart", "truncated (")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-quic", "--no-first-run",
                 "--disable-sync", "--use-fake-ui-for-media-stream",
                 "--use-fake-device-for-media-stream"]


def serve(app):
    """`app` on a free loopback port, in a thread: (server, base address)."""
    port = free_port()
    httpd = make_server("127.0.0.1", port, app, threaded=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"http://127.0.0.1:{port}"


class ReceivedUploads:
    """WSGI middleware keeping every classify request as the server got it: its query
    string and body (what the page really sent; DevTools leaves some uploads' bodies out)."""

    def __init__(self, app):
        self.app, self.bodies, self.queries = app, [], []

    def clear(self) -> None:
        self.bodies.clear()
        self.queries.clear()

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO") == "/api/v1/classify" and environ["REQUEST_METHOD"] == "POST":
            body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
            self.bodies.append(body)
            self.queries.append(environ.get("QUERY_STRING", ""))
            environ["wsgi.input"] = io.BytesIO(body)
        return self.app(environ, start_response)


def page_of(context, errors=None):
    """A new page; with a list for `errors`, its console errors and script errors
    (CSP violations among them) are collected there."""
    page = context.new_page()
    if errors is not None:
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
    return page


def photo_file(tmp_path, name="lunch.jpg", data=None) -> Path:
    path = tmp_path / name
    path.write_bytes(data if data is not None else images.jpeg(640, 480))
    return path


def first_answer(page, timeout=20_000):
    answer = page.locator("#results .answer").first
    answer.wait_for(timeout=timeout)
    return answer


def wait_until(page, expression: str, timeout: float = 20) -> None:
    """Poll a JavaScript expression until it is true. (Playwright's wait_for_function
    evaluates strings with eval, which the page's CSP rightly forbids.)"""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise AssertionError(f"still false after {timeout} s: {expression}")
        time.sleep(0.05)


def in_viewport(page, locator) -> bool:
    box = locator.bounding_box()
    view = page.viewport_size
    return box is not None and box["y"] >= 0 and box["y"] + box["height"] <= view["height"]


def shot(page, name):
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


# -- phone photos ---------------------------------------------------------------------

TWELVE_MP = (4000, 3000)
NOISE_ROWS = 100  # rows of noise drawn at a time (see below)


def twelve_megapixels(seed=0, source=None) -> bytes:
    """A 4000 x 3000 JPEG with a phone photo's detail (noise costs bits, like real texture):
    Gaussian noise of 6 grey levels, truncated to whole levels. It is drawn a band of rows
    at a time into one small buffer (the very values of one 36-million-value draw): a
    fresh 290 MB array for each photo cost several times as much in page faults alone."""
    if source is None:
        base = Image.fromarray(images.photo_array(400, 300, seed=seed))
    else:
        base = Image.open(source).convert("RGB")
    pixels = np.array(base.resize(TWELVE_MP, Image.Resampling.BICUBIC))
    rng = np.random.default_rng(seed)
    noise = np.empty((NOISE_ROWS, *pixels.shape[1:]))
    for top in range(0, len(pixels), NOISE_ROWS):
        rows = pixels[top:top + NOISE_ROWS]
        band = noise[:len(rows)]
        rng.standard_normal(out=band)
        band *= 6
        rows[...] = np.clip(rows + band.astype(np.int16), 0, 255)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def answered_request_size(page, path, uploads) -> int:
    """Bytes of the request that carried the photo chosen, once it is answered."""
    count = page.locator("#results .answer").count()
    page.set_input_files("#image-input", str(path))
    wait_until(page, f"document.querySelectorAll('#results .answer').length > {count}", 60)
    return len(uploads.bodies[-1])


def received_jpeg(uploads) -> Image.Image:
    """The JPEG in the last request's multipart body."""
    body = uploads.bodies[-1]
    start = body.index(b"\xff\xd8")
    return Image.open(io.BytesIO(body[start:body.rindex(b"\xff\xd9") + 2]))
