"""What the browser tests share: one headless Chromium (Debian's, driven by Playwright)
and one server on the shipped models for the whole session, and a fresh browser
context (its own storage, nothing loaded from outside the server) for each test.
The helpers (pages, photos, the server in a thread) are in tests/browser/helpers.py."""

from __future__ import annotations

import json
import shutil

import pytest

from tests.conftest import SHIPPED_MODELS, ci_or_skip
from webapp import create_app

from .helpers import CHROMIUM_ARGS, LAPTOP, ReceivedUploads, serve


def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        ci_or_skip("Debian's chromium is not installed (make test installs it as root)")
    return path


@pytest.fixture(scope="session")
def received_uploads(app):
    return ReceivedUploads(app)


@pytest.fixture()
def uploads(received_uploads):
    """The classify requests of this test only."""
    received_uploads.clear()
    return received_uploads


@pytest.fixture(scope="session")
def server(received_uploads):
    """The app on the shipped models (tests/conftest.py's `app`), for every browser test."""
    httpd, base = serve(received_uploads)
    yield base
    httpd.shutdown()


@pytest.fixture(scope="session")
def unsure_server(tmp_path_factory):
    """The pizza model with its "not sure" level raised to 0.999 for every file: every
    answer is a close call."""
    models = tmp_path_factory.mktemp("unsure-models")
    shutil.copytree(SHIPPED_MODELS / "pizza", models / "pizza")
    card_path = models / "pizza" / "model_card.json"
    card = json.loads(card_path.read_text())
    for figures in card["calibration"]["variants"].values():
        figures["not_sure_below"] = 0.999
    card_path.write_text(json.dumps(card))
    httpd, base = serve(create_app({"TESTING": True, "MODELS_DIR": models, "DEFAULT_MODEL": "pizza"}))
    yield base
    httpd.shutdown()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True,
                                             args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture()
def context(browser, server):
    """A laptop-sized browser context of its own (empty storage) for one test."""
    context = browser.new_context(viewport=LAPTOP)
    # Nothing may load from outside this server (no CDN): such a request fails the test.
    outside = []
    context.route(lambda url: not url.startswith(server),
                  lambda route: (outside.append(route.request.url), route.abort()))
    yield context
    context.close()
    assert not outside, outside


@pytest.fixture()
def no_js(browser):
    """A browser context with JavaScript off: the plain form and its result page."""
    context = browser.new_context(java_script_enabled=False, viewport=LAPTOP)
    yield context
    context.close()
