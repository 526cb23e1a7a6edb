"""The "Make a model" page in Chromium (issue #30, item 1): classes of photos, Train,
the estimate, trying it on a new photo, and, logged in as the admin, keeping it for
everyone. Its own server on a models folder of its own: nothing lands in models/."""

from __future__ import annotations

import base64

import pytest
import requests

from tests.test_made_models import PASSWORD, made_app, models_folder, tinted

from .helpers import LAPTOP, page_of, serve, wait_until


@pytest.fixture(scope="module")
def make_server(tmp_path_factory):
    root = tmp_path_factory.mktemp("browser-made")
    app = made_app(models_folder(root / "models"), root / "db.sqlite")
    app.config["SESSION_COOKIE_SECURE"] = False  # plain http on the loopback
    httpd, base = serve(app)
    yield base
    httpd.shutdown()


def test_make_try_and_keep_a_model(browser, make_server, tmp_path):
    colours = {"red": (250, 30, 30), "blue": (30, 30, 250)}
    files = {}
    for name, colour in colours.items():
        files[name] = []
        for i in range(6):
            path = tmp_path / f"{name}{i}.jpg"
            path.write_bytes(tinted(colour, 50 * len(files) + i))
            files[name].append(str(path))
    context = browser.new_context(viewport=LAPTOP)
    errors: list[str] = []
    page = page_of(context, errors)
    page.goto(make_server + "/make")
    page.fill("#make-title", "Red or blue?")
    for index, name in enumerate(colours):
        card = page.locator(".make-class").nth(index)
        card.locator("input.form-control").fill(name)
        card.locator("input[type=file]").first.set_input_files(files[name])
    page.click("#make-train")
    page.locator("#make-result").wait_for(state="visible", timeout=30_000)
    assert "100 %" in page.inner_text("#make-accuracy")
    assert page.locator("#make-confusion tr").count() == 3

    trial = tmp_path / "new.jpg"
    trial.write_bytes(tinted(colours["blue"], 999))
    page.set_input_files("#make-try", str(trial))
    page.locator(".make-answer").wait_for(timeout=20_000)
    assert "blue" in page.inner_text("#make-answers")

    page.goto(make_server + "/admin/login")
    page.fill("input[name=password]", PASSWORD)
    page.press("input[name=password]", "Enter")
    page.wait_for_url("**/admin/**")
    page.goto(make_server + "/make")  # the model waited in this browser
    page.locator("#make-result").wait_for(state="visible")
    page.fill("#make-name", "tints")
    page.click("#make-keep")
    wait_until(page, "document.getElementById('make-keep-form').textContent.includes('Kept')")
    listed = requests.get(make_server + "/api/v1/models", timeout=30).json()["models"]
    assert "tints" in {model["name"] for model in listed}
    assert not errors, errors
    context.close()
    auth = "Basic " + base64.b64encode(f"admin:{PASSWORD}".encode()).decode()
    assert requests.delete(make_server + "/api/v1/models/tints", headers={"Authorization": auth},
                           timeout=30).status_code == 204
