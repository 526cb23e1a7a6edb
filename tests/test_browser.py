"""A real browser (Debian's headless Chromium, driven by Playwright) uploads a photo
with JavaScript on and with it off; the verdict and score bars must appear.
Screenshots land in tests/artifacts/ for people to look at."""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from tests import images
from tests.servers import free_port

pytestmark = pytest.mark.slow

ARTIFACTS = Path(__file__).parent / "artifacts"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-quic", "--no-first-run",
                 "--disable-sync"]


def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        message = "Debian's chromium is not installed (make test installs it as root)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="module")
def server(app):
    port = free_port()
    httpd = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    httpd.shutdown()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True,
                                             args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture()
def photo(tmp_path):
    path = tmp_path / "lunch.jpg"
    path.write_bytes(images.jpeg(640, 480))
    return path


def test_upload_with_javascript(server, browser, photo):
    page = browser.new_page(viewport={"width": 1000, "height": 900})
    errors = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.goto(server + "/")
    assert page.is_visible("#drop-zone")  # the script ran (the CSP let it)
    page.set_input_files("#image-input", str(photo))  # classifies on change, no reload
    verdict = page.locator("#results .verdict").first
    verdict.filter(has_text="!").wait_for(timeout=15_000)
    assert verdict.inner_text() in ("Hotdog!", "Not hotdog!")
    assert page.locator("#results .progress-bar").count() == 2
    assert page.url.rstrip("/") == server  # still the same page
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "upload-with-javascript.png"), full_page=True)
    assert not errors, errors  # no CSP violations or script errors
    page.close()


def test_bad_file_with_javascript_shows_the_message(server, browser, tmp_path):
    bad = tmp_path / "notes.jpg"
    bad.write_bytes(b"definitely not a photo")
    page = browser.new_page()
    page.goto(server + "/")
    page.set_input_files("#image-input", str(bad))
    alert = page.locator("#results .alert-danger")
    alert.wait_for(timeout=15_000)
    assert "not an image" in alert.inner_text()
    page.close()


def test_upload_without_javascript(server, browser, photo):
    context = browser.new_context(java_script_enabled=False, viewport={"width": 1000, "height": 900})
    page = context.new_page()
    page.goto(server + "/")
    assert not page.is_visible("#drop-zone")  # hidden until the script reveals it
    page.set_input_files("#image-input", str(photo))
    with page.expect_navigation():
        page.click("button[type=submit]")
    assert page.locator(".verdict").inner_text() in ("Hotdog!", "Not hotdog!")
    assert page.locator(".progress-bar").count() == 2
    assert page.locator("img.result-photo").evaluate("img => img.naturalWidth") > 0
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "upload-without-javascript.png"), full_page=True)
    context.close()
