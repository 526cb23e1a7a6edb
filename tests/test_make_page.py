"""The "Make a model" page's routes (issue #30, item 1): a visitor trains and tries a
model that lives in a signed token in their browser, nothing on the server; only a
logged-in admin keeps one as a served model."""

from __future__ import annotations

import fcntl
import io
import re
import time

import numpy as np
import pytest

from classifier import made_models, photo_archive
from classifier.head_training import Estimate, Head
from tests import images
from tests.conftest import close_database
from tests.test_made_models import PASSWORD, archive, leftovers, made_app, models_folder, remove, tinted
from webapp import make_page

HTTPS = "https://localhost"  # session cookies are Secure
FROM_SITE = {"Referer": HTTPS + "/"}
JSON = {"Accept": "application/json"}  # as the page's script asks: errors as JSON


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return models_folder(tmp_path_factory.mktemp("page") / "models")


@pytest.fixture(scope="module")
def app(folder, tmp_path_factory):
    app = made_app(folder, tmp_path_factory.mktemp("page-db") / "db.sqlite")
    app.config["MADE_MODEL_RATE_LIMIT"] = "100 per minute"
    yield app
    close_database(app)


@pytest.fixture()
def web(app):
    return app.test_client()


def photos_by_class(counts: dict[str, int]) -> dict:
    colours = [(250, 30, 30), (30, 30, 250)]
    data = {"title": "Red or blue?", "class": list(counts)}
    for index, (_, count) in enumerate(counts.items()):
        data[f"photos-{index}"] = [(io.BytesIO(tinted(colours[index], 10 * index + i)), f"{i}.jpg")
                                   for i in range(count)]
    return data


def trained(web, data=None) -> dict:
    response = web.post("/make/train", headers=JSON, data=data or photos_by_class({"red": 6, "blue": 6}))
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_the_page_is_there(web):
    page = web.get("/make").get_data(as_text=True)
    assert 'id="make-form"' in page and "js/make.js" in page
    assert "the imagenet and hotdog models" in page  # the networks whose features it reads
    assert web.get("/static/js/make.js").status_code == 200


def test_a_visitor_trains_and_tries_a_model_and_nothing_stays(web, folder):
    made = trained(web)
    assert made["classes"] == ["red", "blue"] and made["photos"] == {"red": 6, "blue": 6}
    assert made["estimate"]["accuracy"] == 1.0 and made["estimate"]["wrong"] == []
    assert leftovers(folder) == []  # the model is the token, held by the browser
    answer = web.post("/make/classify", data={"token": made["token"],
                                              "image": (io.BytesIO(tinted((30, 30, 250), 77)), "b.jpg")})
    assert answer.status_code == 200
    result = answer.get_json()["results"][0]
    assert result["label"] == "blue"
    # The token carries the level fitted on its cross-validated answers: the same rule
    # as a kept model's.
    level = made["estimate"]["not_sure"]["not_sure_below"]
    assert made["estimate"]["not_sure"]["answers"] == 12
    assert result["not_sure"] is (result["top"][0]["score"] < level)


def test_a_zip_works_on_the_page_too(web):
    assert trained(web, {"title": "Zip", "archive": (io.BytesIO(archive({"a": 5, "b": 5})), "p.zip")})


@pytest.mark.parametrize("data, status", [
    (photos_by_class({"red": 6}), 422),
    (photos_by_class({"red": 6, "blue": 3}), 422),
    ({**photos_by_class({"red": 6, "blue": 6}), "class": ["same", "same"]}, 422),
])
def test_bad_photos_are_refused(web, data, status):
    response = web.post("/make/train", headers=JSON, data=data)
    assert response.status_code == status and response.get_json()["error"]["message"]


@pytest.mark.parametrize("title", ["Red\nor blue", "Red \u202eeulb", "x" * 61])
def test_a_title_must_be_one_printable_line(web, title):
    """Kept, a title is shown to every visitor and written into the model's card."""
    response = web.post("/make/train", headers=JSON, data={**photos_by_class({"red": 6, "blue": 6}),
                                                           "title": title})
    assert response.status_code == 422
    assert "printable characters on one line" in response.get_json()["error"]["message"]


@pytest.mark.parametrize("name", ["r" * 1_000_000, "re\nd", "re\x00d", "../../escaped", "a/b", "..", "a\\b"])
def test_a_class_name_that_cannot_be_a_label_is_refused_before_any_photo_is_read(web, name):
    """Every photo's name starts with its class, and the token carries them all: a class
    named with a megabyte cost 2.2 s and 280 MB to sign for 57 photos; a line break would
    split labels.txt."""
    response = web.post("/make/train", headers=JSON,
                        data={**photos_by_class({"red": 6, "blue": 6}), "class": [name, "blue"]})
    assert response.status_code == 422
    message = response.get_json()["error"]["message"]
    assert "cannot be a class name: 1 to 60 printable characters, no slashes" in message


def test_classes_that_differ_only_in_case_are_refused(web):
    response = web.post("/make/train", headers=JSON,
                        data={**photos_by_class({"red": 6, "blue": 6}), "class": ["Red", "red"]})
    assert response.status_code == 422 and "differ only in case" in response.get_json()["error"]["message"]


def test_one_model_is_trained_at_a_time_on_a_host(web, app, monkeypatch):
    """However many visitors make models, training takes at most one core: a request
    waits for its turn, and past the wait gets a 503 to retry."""
    monkeypatch.setitem(app.config, "MADE_MODEL_WAIT_SECONDS", 0.3)
    with open(f"{app.instance_path}/making-a-model.lock", "a") as held:  # another worker is training
        fcntl.flock(held, fcntl.LOCK_EX)
        started = time.monotonic()
        busy = web.post("/make/train", headers=JSON, data=photos_by_class({"red": 6, "blue": 6}))
        waited = time.monotonic() - started
        fcntl.flock(held, fcntl.LOCK_UN)
    assert busy.status_code == 503 and busy.get_json()["error"]["code"] == "busy"
    assert "Retry-After" in busy.headers and waited >= 0.3
    # Its turn comes once the slot is free (other test processes train too: wait as usual).
    monkeypatch.setitem(app.config, "MADE_MODEL_WAIT_SECONDS", 30)
    assert web.post("/make/train", headers=JSON,
                    data=photos_by_class({"red": 6, "blue": 6})).status_code == 200


def test_the_pages_json_routes_answer_errors_in_json_to_any_client(web):
    response = web.post("/make/classify", data={})  # no Accept header
    assert response.status_code == 400 and response.get_json()["error"]["code"] == "bad_token"
    assert "text/html" in web.get("/make").content_type


def test_a_forged_token_is_refused(web):
    made = trained(web)
    forged = made["token"][:-4] + ("AAAA" if not made["token"].endswith("AAAA") else "BBBB")
    answer = web.post("/make/classify", headers=JSON,
                      data={"token": forged, "image": (io.BytesIO(images.jpeg()), "a.jpg")})
    assert answer.status_code == 400 and answer.get_json()["error"]["code"] == "bad_token"


def test_a_token_is_refused_once_the_networks_it_reads_change(web, app):
    """The head reads the hot dog network's features after Lite0's: without that network
    (not served, or not wanted any more) a head trained on it cannot be tried or kept."""
    made = trained(web)
    photo = {"image": (io.BytesIO(tinted((30, 30, 250), 7)), "b.jpg")}
    app.config["MADE_MODELS_EXTRA_FEATURES"] = ()
    try:
        answer = web.post("/make/classify", headers=JSON, data={"token": made["token"], **photo})
        assert answer.status_code == 410 and answer.get_json()["error"]["code"] == "token_expired"
        alone = trained(web)  # on Lite0's features alone, then
        photo = {"image": (io.BytesIO(tinted((30, 30, 250), 7)), "b.jpg")}
        answer = web.post("/make/classify", data={"token": alone["token"], **photo})
        assert answer.get_json()["results"][0]["label"] == "blue"
    finally:
        app.config["MADE_MODELS_EXTRA_FEATURES"] = ("hotdog",)


def test_the_largest_head_makes_a_token_of_a_few_hundred_kb(app):
    """20 classes on 2,560 features (Lite0's and the hot dog network's): the token the
    browser sends back with each photo to try, far under the form's limit."""
    rng = np.random.default_rng(0)
    names = [f"class{i}" for i in range(photo_archive.MAX_CLASSES)]
    head = Head(rng.normal(0, 0.05, (2560, len(names))).astype(np.float32), np.zeros(len(names), np.float32))
    trained = made_models.Trained({name: 10 for name in names}, head, Estimate(0.9, 5, [[0]], []),
                                  [f"{name}/{i}.jpg" for name in names for i in range(10)], 1.0)
    with app.test_request_context():
        token = make_page._signer().dumps(make_page._as_fields("Many", make_page.base_model(), trained))
    assert len(token) < 200_000 < app.config["MAX_FORM_MEMORY_SIZE"]


def test_only_the_admin_keeps_a_model(web, folder):
    made = trained(web)
    assert web.post("/make/keep", data={"token": made["token"], "name": "kept"}).status_code in (400, 401)
    page = web.get("/admin/login", base_url=HTTPS).get_data(as_text=True)
    login = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    assert web.post("/admin/login", base_url=HTTPS, headers=FROM_SITE,
                    data={"csrf_token": login, "password": PASSWORD}).status_code == 302
    page = web.get("/make", base_url=HTTPS).get_data(as_text=True)
    csrf = re.search(r'data-csrf="([^"]+)"', page).group(1)
    kept = web.post("/make/keep", base_url=HTTPS, headers=FROM_SITE,
                    data={"token": made["token"], "name": "kept", "csrf_token": csrf})
    assert kept.status_code == 201, kept.get_json()
    assert kept.get_json()["model"]["made"]["via"] == "the Make a model page"
    assert leftovers(folder) == ["kept"]
    again = web.post("/make/keep", base_url=HTTPS, headers={**FROM_SITE, "Accept": "application/json"},
                     data={"token": made["token"], "name": "kept", "csrf_token": csrf})
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "name_taken"
    answer = web.post("/api/v1/classify?model=kept",
                      data={"image": (io.BytesIO(tinted((250, 30, 30), 5)), "r.jpg")})
    assert answer.get_json()["results"][0]["label"] == "red"
    assert remove(web, "kept").status_code == 204
