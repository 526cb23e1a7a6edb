"""The upload page without JavaScript: the form, the result page, errors on the page."""

from __future__ import annotations

import io
import re
from dataclasses import replace

from tests import images
from webapp.classify import EXTENSION


def test_index_has_an_accessible_upload_form(client):
    page = client.get("/").get_data(as_text=True)
    assert 'enctype="multipart/form-data"' in page
    for input_id in ("image-input", "camera-input"):
        assert f'<label for="{input_id}"' in page
        assert re.search(rf'<input[^>]*id="{input_id}"[^>]*name="image"', page)
    assert 'accept="image/*"' in page and "capture=" in page and "multiple" in page
    assert 'aria-live="polite"' in page


def test_page_assets_are_served_locally(client):
    page = client.get("/").get_data(as_text=True)
    sources = re.findall(r'(?:href|src)="([^"]+)"', page)
    assert sources and all(s.startswith("/") for s in sources), sources
    for source in sources:
        if source.endswith((".css", ".js")):
            assert client.get(source).status_code == 200, source
    assert "<script>" not in page and " style=" not in page  # the CSP forbids inline code


def test_form_post_shows_verdict_photo_and_score_bars(client):
    response = client.post("/", data={"image": (io.BytesIO(images.jpeg()), "lunch.jpg")})
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    sure = r'<p class="h4 verdict text-(success|danger)">(Hotdog!|Not hotdog!)</p>'
    unsure = r'<p class="h4 verdict verdict-unsure">Not sure. Maybe (hotdog|not hotdog) \(\d+ %\)</p>'
    assert re.search(sure, page) or re.search(unsure, page)
    assert 'src="data:image/jpeg;base64,' in page and 'alt="Your photo lunch.jpg"' in page
    bars = re.findall(r'class="progress-bar w-pct-(\d+)', page)
    assert len(bars) == 2 and 97 <= sum(map(int, bars)) <= 103


def test_form_post_with_several_photos(client):
    files = [(io.BytesIO(images.jpeg(seed=i)), f"{i}.jpg") for i in range(3)]
    page = client.post("/", data={"image": files}).get_data(as_text=True)
    assert page.count('class="card shadow-sm result ') == 3


def test_form_post_without_a_photo_explains_on_the_page(client):
    response = client.post("/", data={"image": (io.BytesIO(b""), "")})
    assert response.status_code == 400
    assert "Choose a photo first." in response.get_data(as_text=True)


def test_browser_errors_are_pages_not_json(client):
    response = client.get("/no-such-page", headers={"Accept": "text/html"})
    assert response.status_code == 404 and response.mimetype == "text/html"
    assert "There is nothing at this address." in response.get_data(as_text=True)


def test_models_are_offered_by_purpose_with_the_default_chosen(client):
    page = client.get("/").get_data(as_text=True)
    radios = re.findall(r'<input class="btn-check" type="radio" name="model" id="model-([a-z0-9_]+)"', page)
    assert radios[0] == "hotdog" and {"pizza", "phototype", "imagenet", "digits", "all"} <= set(radios)
    assert re.search(r'id="model-hotdog"[^>]*checked', page)
    assert "Everything at once" in page and "Is it a hot dog?" in page  # titles, not folder names
    assert re.search(r'id="model-pizza"[^>]*checked', client.get("/?model=pizza").get_data(as_text=True))


def test_form_post_with_a_many_class_model_shows_ranked_bars(client):
    page = client.post("/", data={"model": "imagenet", "image": (io.BytesIO(images.jpeg()), "a.jpg")}
                       ).get_data(as_text=True)
    assert len(re.findall(r'class="progress-bar w-pct-', page)) == 5
    assert re.search(r'<p class="h4 verdict text-primary">[^<!]+</p>', page)


def test_form_post_asking_every_model(client):
    page = client.post("/", data={"model": "all", "image": (io.BytesIO(images.jpeg()), "a.jpg")}
                       ).get_data(as_text=True)
    answered = re.findall(r'<section class="answer" data-model="([a-z0-9_]+)"', page)
    assert set(answered) == {"hotdog", "pizza", "phototype", "imagenet"}
    assert "Every model&#39;s answer" in page or "Every model's answer" in page


def test_each_model_has_a_page_with_its_card(client):
    for name in ("hotdog", "pizza", "phototype", "imagenet", "digits"):
        response = client.get(f"/models/{name}")
        assert response.status_code == 200, name
        page = response.get_data(as_text=True)
        assert ("Reproduce it" in page and "Confusion matrix" in page) or name == "imagenet"
        assert "Intended use" in page and "Limitations" in page, name
        for plot in re.findall(r'src="(/models/[^"]+\.png)"', page):
            assert client.get(plot).mimetype == "image/png"
    assert client.get("/models/nope").status_code == 404
    assert client.get("/models/hotdog/model_card.png").status_code == 404  # only listed plots


def test_a_model_page_says_which_file_its_figures_are_of_and_which_runs_here(app, client, monkeypatch):
    """A card's figures are one file's (its metrics_variant); the server runs the file
    it timed fastest, which may be another: the page says which, and whether they are
    the same, never "the way the server runs it" when it does not."""
    pizza = app.extensions[EXTENSION].models["pizza"]
    for variant in ("int8", "float16"):
        monkeypatch.setattr(pizza, "runtime", replace(pizza.runtime, variant=variant,
                                                      file=f"model_{variant}.tflite"))
        page = client.get("/models/pizza").get_data(as_text=True)
        note = " ".join(re.sub(r"<[^>]+>", "", re.search(
            r'id="measured-variant">(.*?)</p>', page, re.S)[1]).split())
        assert note.startswith("Measured with the int8 file (model_int8.tflite)"), note
        if variant == "int8":
            assert note.endswith("the one this server runs."), note
        else:
            assert "This server runs another file, the float16 one (model_float16.tflite), which " \
                   "scored 96.85 % on the same photos where the int8 file scored 96.37 %" in note, note
        assert "the way the server runs it" not in page
        runs_here = re.findall(r"<tr><td>([a-z0-9]+)</td>(?:(?!</tr>).)*runs here", page)
        assert runs_here == [variant]


def test_models_are_described_in_words_not_class_names(client):
    """The picker and each model's page describe a model in words, not in the class
    names a developer gave it ("a hot dog (hotdog) or anything else (not_hotdog)")."""
    index = client.get("/").get_data(as_text=True)
    for name in ("hotdog", "pizza", "phototype", "imagenet", "digits"):
        page = client.get(f"/models/{name}").get_data(as_text=True)
        lead = re.search(r'<p class="lead">(.*?)</p>', page, re.S)[1]
        assert lead in index
        assert not re.search(r"\([a-z]+_[a-z_]+\)|\((hotdog|pizza)\)", lead), lead
