"""The drawing page: digits traced on the canvas are read while they are drawn, its
errors are in plain words (as on the upload page), and without JavaScript it says what
it needs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import require_shared

from .helpers import LEAKS, page_of, shot, wait_until

pytestmark = pytest.mark.slow


def draw_digit(page, digit: np.ndarray) -> None:
    """Traced as strokes: a pointer path along each run of ink, row by row (28 x 28)."""
    box = page.locator("#pad").bounding_box()
    scale = box["width"] / 28
    for y in range(28):
        xs = np.flatnonzero(digit[y] > 100)
        if not len(xs):
            continue
        runs = np.split(xs, np.flatnonzero(np.diff(xs) > 1) + 1)
        for run in runs:
            top = box["y"] + (y + 0.5) * scale
            page.mouse.move(box["x"] + (run[0] + 0.5) * scale, top)
            page.mouse.down()
            page.mouse.move(box["x"] + (run[-1] + 0.5) * scale, top, steps=3)
            page.mouse.up()


def test_drawing_digits_on_the_canvas(context, server):
    digits = np.load(require_shared("datasets", "digits", "mnist.npz"))
    errors = []
    page = page_of(context, errors)
    page.goto(server + "/draw")
    for index in range(6):
        digit, label = digits["x_test"][index], str(digits["y_test"][index])
        page.click("#clear")
        draw_digit(page, digit)
        wait_until(page, f"document.getElementById('digit-answer').textContent === '{label}'", 10)
        assert page.locator("#model-input").get_attribute("src").startswith("data:image/png")
    shot(page, "draw")
    assert not errors, errors  # no CSP violations or script errors


def a_stroke(page) -> None:
    box = page.locator("#pad").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + 40)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] - 40, steps=5)
    page.mouse.up()


CLASSIFY = "**/api/v1/classify**"
STATUS = "document.getElementById('digit-status').textContent"
FOR_PROGRAMMERS = "form field 'image': cannot identify image file (PIL)"


def api_error(code: str):
    """A route handler answering as the API does when it refuses a drawing."""
    body = json.dumps({"error": {"code": code, "message": FOR_PROGRAMMERS}})
    return lambda route: route.fulfill(status=422, body=body, content_type="application/json")


def test_drawing_errors_are_in_plain_words(context, server):
    """The same plain words as the upload page (webapp/present.py), never the API's own
    message; offline, the drawing is kept."""
    page = page_of(context)
    page.goto(server + "/draw")
    for code, words in [("no_digit", "No digit found: the picture looks blank."),
                        ("too_many_requests", "You sent a lot in a short time."),
                        ("something_new", "Something went wrong on our side.")]:
        page.route(CLASSIFY, api_error(code))
        page.click("#clear")
        a_stroke(page)
        wait_until(page, f"{STATUS}.startsWith({json.dumps(words)})", 10)
        status = page.locator("#digit-status").inner_text()
        assert not any(leak in status for leak in LEAKS), status
        page.unroute(CLASSIFY)
    page.route(CLASSIFY, lambda route: route.abort())
    a_stroke(page)
    wait_until(page, f"{STATUS}.includes('could not be reached')", 10)
    assert "your drawing is kept" in page.locator("#digit-status").inner_text()


def test_drawing_page_without_javascript_says_what_it_needs(no_js, server):
    page = no_js.new_page()
    page.goto(server + "/draw")
    assert "Drawing needs JavaScript" in page.content()
    assert page.locator("a[href='/?model=digits']").count() == 1
