"""The upload page in a real browser: on a laptop and a phone screen, with JavaScript on
(ES modules) and off (the plain form), every model and all of them at once."""

from __future__ import annotations

import json
import time

import pytest
from PIL import Image, ImageOps

from tests import images
from tests.conftest import SHIPPED_MODELS, require_shared

from .helpers import (
    LAPTOP,
    PHONE,
    PHOTO_MODELS,
    first_answer,
    in_viewport,
    page_of,
    photo_file,
    shot,
    wait_until,
)

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["laptop", "phone"])
def test_the_answer_comes_into_view(browser, server, tmp_path, viewport):
    context = browser.new_context(viewport=viewport, has_touch=viewport is PHONE)
    try:
        errors = []
        page = page_of(context, errors)
        page.goto(server + "/")
        page.set_input_files("#image-input", str(photo_file(tmp_path)))
        verdict = first_answer(page).locator(".verdict")
        deadline = time.monotonic() + 5
        while not in_viewport(page, verdict) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert in_viewport(page, verdict), verdict.bounding_box()
        words = verdict.inner_text()
        assert words in ("Hotdog!", "Not hotdog!") or words.startswith("Not sure")
        assert page.locator("#results .progress-bar").count() == 2
        card = page.locator("#results .result").first.inner_text()
        assert "hotdog, version" in card  # the model and its version are shown
        shot(page, f"answer-in-view-{viewport['width']}")
        assert not errors, errors  # no CSP violations or script errors
    finally:
        context.close()


# Records, in the page, where the first verdict of the next answer sits: 0.8 s after it
# appears and 2 s after (the photo long loaded), and where "Looking…" was in its card.
WATCH_THE_VERDICT = """() => {
  window.verdictSeen = null;
  const top = (node) => node.getBoundingClientRect().top
                        - node.closest(".result").getBoundingClientRect().top;
  new MutationObserver((changes, observer) => {
    const looking = document.querySelector("#results .result .verdict");
    if (looking && window.lookingAt === undefined) window.lookingAt = top(looking);
    const verdict = document.querySelector("#results .answer .verdict");
    if (!verdict) return;
    observer.disconnect();
    const seen = window.verdictSeen = { inCard: top(verdict) };
    const where = () => { const box = verdict.getBoundingClientRect(); return [box.top, box.bottom]; };
    setTimeout(() => { seen.after800 = where(); }, 800);
    setTimeout(() => { seen.after2000 = where(); seen.photoHeight = document.querySelector(
      "#results .photo-stage").getBoundingClientRect().height; }, 2000);
  }).observe(document.getElementById("results"), { childList: true, subtree: true });
}"""


@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["laptop", "phone"])
def test_the_verdict_sits_high_whatever_the_photos_shape(browser, server, tmp_path, viewport):
    """Issue #31: a tall photo that loaded after the page scrolled pushed the verdict
    to the bottom edge. Now the photo's box has its size before the photo loads and,
    on a laptop, the verdict sits beside it: 0.8 s after it appears, the verdict is in
    the upper part of the screen (its middle above 80 % of the height), at the very
    place "Looking…" was, the same for a tall and a wide photo, in every run."""
    hot_dog = Image.open(require_shared("datasets", "hotdog", "test", "hotdog", "dtu_hotdog_(10).jpg"))
    places = set()
    for shape in [(600, 1600), (1600, 600)] * 2:
        path = tmp_path / f"hotdog-{shape[0]}x{shape[1]}.jpg"
        ImageOps.fit(hot_dog.convert("RGB"), shape).save(path, quality=90)
        context = browser.new_context(viewport=viewport, has_touch=viewport is PHONE)
        try:
            page = page_of(context)
            page.goto(server + "/")
            page.evaluate(WATCH_THE_VERDICT)
            page.set_input_files("#image-input", str(path))
            assert first_answer(page).locator(".verdict").inner_text() == "Hotdog!"
            wait_until(page, "window.verdictSeen && window.verdictSeen.after2000 !== undefined", 10)
            seen = page.evaluate("window.verdictSeen")
            for moment in ("after800", "after2000"):
                top, bottom = seen[moment]
                assert top >= 0 and (top + bottom) / 2 <= 0.8 * viewport["height"], (shape, moment, seen)
            assert seen["inCard"] == page.evaluate("window.lookingAt"), seen  # where "Looking…" was
            places.add((seen["inCard"], seen["photoHeight"]))
            shot(page, f"verdict-{viewport['width']}-{shape[0]}x{shape[1]}")
        finally:
            context.close()
    assert len(places) == 1, places  # whatever the photo's shape


def test_the_page_runs_as_modules(context, server):
    """One small module per concern, loaded as ES modules from this site (the CSP allows
    no inline script), each of them well under the size of the old single script."""
    page = page_of(context)
    loaded = []
    page.on("response", lambda response: loaded.append(response) if response.url.endswith(".js") else None)
    page.goto(server + "/")
    page.locator("#drop-zone").wait_for(state="visible", timeout=5_000)  # the script ran
    assert page.locator("script[type=module]").count() == 1
    assert page.locator("script:not([src])").count() == 0
    names = sorted(response.url.rsplit("/", 1)[1] for response in loaded)
    assert {"app.js", "api.js", "answers.js", "camera.js", "history.js", "shrink.js"} <= set(names), names
    for response in loaded:
        assert "javascript" in response.headers["content-type"], response.url
        assert response.body().count(b"\n") < 400, response.url


def test_choose_then_press_gives_an_answer_and_nothing_chosen_says_so(context, server, tmp_path):
    page = page_of(context)
    page.goto(server + "/")
    page.click("#ask")
    message = page.locator("#form-message .alert")
    message.wait_for(timeout=5_000)
    assert message.is_visible() and message.inner_text() == "Choose a photo first."
    page.set_input_files("#image-input", str(photo_file(tmp_path)))
    first_answer(page)
    page.click("#ask")  # what most people do next: ask again (now with the model chosen)
    wait_until(page, "document.querySelectorAll('#results .answer').length === 2", 20)
    page.click("#model-pizza + label")
    page.click("#ask")
    wait_until(page, "document.querySelectorAll('#results .answer').length === 3", 20)
    assert page.locator("#results .answer").first.get_attribute("data-model") == "pizza"


def test_several_photos_keep_their_order_and_equal_heights(context, server, tmp_path):
    page = page_of(context)
    page.goto(server + "/")
    files = [photo_file(tmp_path, f"p{i}.jpg", images.jpeg(300 + 40 * i, 200 + 90 * i, seed=i))
             for i in range(3)]
    page.set_input_files("#image-input", [str(f) for f in files])
    wait_until(page, "document.querySelectorAll('#results .answer').length === 3", 20)
    names = page.locator("#results .result .text-truncate").all_inner_texts()
    assert names == ["p0.jpg", "p1.jpg", "p2.jpg"]
    heights = {round(b["height"]) for b in
               (c.bounding_box() for c in page.locator("#results .result").all()[:2])}
    assert len(heights) == 1  # cards side by side are equally tall


def test_results_can_be_cleared(context, server, tmp_path):
    page = page_of(context)
    page.goto(server + "/")
    page.set_input_files("#image-input", str(photo_file(tmp_path)))
    first_answer(page)
    page.click("#clear-results")
    assert page.locator("#results .result").count() == 0


def test_each_model_on_the_page_and_all_at_once(context, server, tmp_path):
    page = page_of(context)
    page.goto(server + "/")
    photo = photo_file(tmp_path)
    for name in PHOTO_MODELS:
        page.click(f"#model-{name} + label")
        page.set_input_files("#image-input", str(photo))
        wait_until(page, f"document.querySelector('#results .answer')?.dataset.model === '{name}'", 20)
        bars = page.locator("#results .batch").first.locator(".progress-bar").count()
        assert bars == (5 if name == "imagenet" else len(json.loads(
            (SHIPPED_MODELS / name / "model_card.json").read_text())["classes"]))
    page.click("#model-all + label")
    page.set_input_files("#image-input", str(photo))
    wait_until(page, "document.querySelectorAll('#results .batch')[0]"
               ".querySelectorAll('.answer').length === 4", 20)
    answered = page.locator("#results .batch").first.locator(".answer").evaluate_all(
        "nodes => nodes.map(n => n.dataset.model)")
    assert sorted(answered) == sorted(PHOTO_MODELS)
    page.reload()
    assert page.locator("#model-all").is_checked()  # the choice is remembered
    shot(page, "all-models")


@pytest.mark.parametrize("name", [*PHOTO_MODELS, "all"])
def test_each_model_without_javascript(no_js, server, tmp_path, name):
    page = no_js.new_page()
    page.goto(server + "/")
    assert not page.is_visible("#drop-zone")
    page.click(f"#model-{name} + label")  # the radio itself is hidden behind its label
    assert page.locator(f"#model-{name}").is_checked()
    page.set_input_files("#image-input", str(photo_file(tmp_path)))
    with page.expect_navigation():
        page.click("button[type=submit]")
    answered = page.locator(".answer").evaluate_all("nodes => nodes.map(n => n.dataset.model)")
    assert sorted(answered) == (sorted(PHOTO_MODELS) if name == "all" else [name])
    assert page.locator("img.result-photo").evaluate("img => img.naturalWidth") > 0
    page.click("details.why summary")
    assert page.locator(".heat").first.is_visible()  # "why?" works without a script
    if name == "hotdog":
        shot(page, "upload-without-javascript")
