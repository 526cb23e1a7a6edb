"""Answers on the upload page: "not sure" on a close call (with and without JavaScript),
"Why?" (from the first request: no second inference), "Was this right?", and every
error in plain words."""

from __future__ import annotations

import pytest

from tests import images

from .helpers import LAPTOP, LEAKS, first_answer, page_of, photo_file

pytestmark = pytest.mark.slow


def test_a_close_call_says_not_sure(browser, no_js, unsure_server, tmp_path):
    page = browser.new_page(viewport=LAPTOP)
    try:
        page.goto(unsure_server + "/")
        page.set_input_files("#image-input", str(photo_file(tmp_path)))
        verdict = first_answer(page).locator(".verdict")
        assert verdict.inner_text().startswith("Not sure. Maybe ")
    finally:
        page.close()
    page = no_js.new_page()
    page.goto(unsure_server + "/")
    page.set_input_files("#image-input", str(photo_file(tmp_path)))
    with page.expect_navigation():
        page.click("button[type=submit]")
    assert page.locator(".verdict").first.inner_text().startswith("Not sure. Maybe ")


@pytest.mark.parametrize("model", ["hotdog", "all"])
def test_why_shows_where_the_model_looked_without_asking_again(context, server, uploads, tmp_path,
                                                               model):
    """The explanation comes with the answer (explain=grid on the one classify request:
    the grid, not the server's PNG of it); "Why?" draws and shows it."""
    page = page_of(context)
    page.goto(server + "/")
    page.click(f"#model-{model} + label")
    page.set_input_files("#image-input", str(photo_file(tmp_path)))
    first_answer(page)
    assert len(uploads.queries) == 1 and "explain=grid" in uploads.queries[0], uploads.queries
    page.click("#results .why-button")
    heat = page.locator("#results .heat").first
    heat.wait_for(state="visible", timeout=10_000)
    photo, layer = page.locator("#results .result-photo").first.bounding_box(), heat.bounding_box()
    assert abs(photo["width"] - layer["width"]) < 2 and abs(photo["height"] - layer["height"]) < 2
    assert heat.get_attribute("src").startswith("data:image/png")
    assert page.locator("#results .why-button").get_attribute("aria-pressed") == "true"
    page.click("#results .why-button")
    assert not heat.is_visible()
    page.click("#results .why-button")
    assert heat.is_visible() and page.locator("#results .heat").count() == 1
    assert len(uploads.queries) == 1, uploads.queries  # no second upload, no second inference


def test_feedback_from_the_page(context, server, tmp_path):
    page = page_of(context)
    page.goto(server + "/")
    page.set_input_files("#image-input", str(photo_file(tmp_path)))
    first_answer(page)
    page.click("#results .feedback >> text=No")
    page.locator("#results .feedback .text-success").wait_for(timeout=10_000)


BAD_FILES = {"empty.jpg": b"", "notes.jpg": b"definitely not a photo",
             "broken.jpg": images.truncated(images.jpeg()), "huge.png": images.png_bomb()}


def test_every_error_of_the_page_is_in_plain_words(context, no_js, server, tmp_path):
    page = page_of(context)
    page.goto(server + "/")
    seen = []
    for name, data in BAD_FILES.items():
        page.set_input_files("#image-input", str(photo_file(tmp_path, name, data)))
        alert = page.locator("#results .batch").first.locator(".alert-danger")
        alert.wait_for(timeout=15_000)
        seen.append(alert.inner_text())
    page.route("**/api/v1/classify**", lambda route: route.abort())
    page.set_input_files("#image-input", str(photo_file(tmp_path)))
    offline = page.locator("#results .batch").first.locator(".alert-danger")
    offline.wait_for(timeout=15_000)
    seen.append(offline.inner_text())
    assert "could not be reached" in seen[-1] and offline.locator("text=Try again").is_visible()
    page.unroute("**/api/v1/classify**")
    offline.locator("text=Try again").click()
    first_answer(page)
    # The same files without JavaScript: the page's own error message.
    plain = no_js.new_page()
    for name, data in BAD_FILES.items():
        plain.goto(server + "/")
        plain.set_input_files("#image-input", str(photo_file(tmp_path, name, data)))
        plain.click("button[type=submit]")
        seen.append(plain.locator("#form-error").inner_text())
    plain.goto(server + "/")
    plain.click("button[type=submit]")
    seen.append(plain.locator("#form-error").inner_text())
    assert len(seen) == 2 * len(BAD_FILES) + 2
    for message in seen:
        assert message and not any(leak in message for leak in LEAKS), message
