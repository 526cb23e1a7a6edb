"""Models made through the API (issue #30): POST /api/v1/models makes one from a zip of
photos by class, served at once by every worker and after a restart; DELETE removes
it; bad archives, names and passwords get a 4xx and leave nothing behind."""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from classifier import card as model_card
from classifier import made_models, photo_archive
from classifier.batch import cli as batch_cli
from classifier.head_training import cross_validate, fit
from classifier.made_models import replace_with_copy
from classifier.model import Model
from tests import images
from tests.conftest import SHIPPED_MODELS, close_database
from webapp import create_app
from webapp.db import upgrade_database

PASSWORD = "correct horse battery staple"
#: The shipped models a made model needs: its base (imagenet) and the default (hotdog),
#: whose network's features its head reads too.
NEEDED = ("hotdog", "imagenet")


def tinted(colour: tuple[int, int, int], seed: int) -> bytes:
    """A photo-like JPEG leaning towards one colour: two colours are two easy classes."""
    pixels = images.photo_array(160, 120, seed) // 2 + np.array(colour, np.uint8) // 2
    return images.encode(Image.fromarray(pixels.astype(np.uint8)), "JPEG", quality=85)


def archive(classes: dict[str, int], *, top: str = "", extra: dict[str, bytes] | None = None) -> bytes:
    """A zip of `count` photos for each class folder (inside `top` if given)."""
    colours = [(250, 30, 30), (30, 30, 250), (30, 250, 30), (250, 250, 30)]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zipped:
        for index, (label, count) in enumerate(classes.items()):
            for i in range(count):
                zipped.writestr(f"{top}{label}/{i}.jpg", tinted(colours[index % 4], 100 * index + i))
        for name, data in (extra or {}).items():
            zipped.writestr(name, data)
    return buffer.getvalue()


def models_folder(folder: Path) -> Path:
    folder.mkdir()
    for name in NEEDED:
        (folder / name).symlink_to(SHIPPED_MODELS / name, target_is_directory=True)
    return folder


def made_app(models: Path, database: Path):
    app = create_app({"TESTING": True, "MODELS_DIR": models, "ADMIN_PASSWORD": PASSWORD,
                      "SECRET_KEY": "test secret", "REMEMBER_VARIANTS": False,
                      "SQLALCHEMY_DATABASE_URI": f"sqlite:///{database}"})
    upgrade_database(app)
    return app


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("made")
    return models_folder(root / "models"), root / "db.sqlite"


@pytest.fixture(scope="module")
def app(folders):
    app = made_app(*folders)
    yield app
    close_database(app)


@pytest.fixture()
def client(app):
    return app.test_client()


def make(client, name="fruit", photos=None, password=PASSWORD, **fields):
    data = {"name": name, "title": "Red or blue?", **fields}
    if photos is not False:
        data["archive"] = (io.BytesIO(photos or archive({"red": 6, "blue": 6})), "photos.zip")
    headers = {"Authorization": _basic(password)} if password else {}
    return client.post("/api/v1/models", data=data, headers=headers)


def remove(client, name, password=PASSWORD):
    return client.delete(f"/api/v1/models/{name}", headers={"Authorization": _basic(password)})


def _basic(password: str) -> str:
    import base64

    return "Basic " + base64.b64encode(f"tester:{password}".encode()).decode()


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name not in NEEDED)


def classify(client, model: str, data: bytes):
    return client.post(f"/api/v1/classify?model={model}",
                       data={"image": (io.BytesIO(data), "x.jpg")})


# -- the whole way: made, served everywhere, removed --------------------------------

def test_a_made_model_is_served_at_once_and_everywhere(client, folders):
    models, _ = folders
    response = make(client, description="Two tints.")
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["model"]["name"] == "fruit" and body["model"]["classes"] == ["blue", "red"]
    assert body["model"]["photos"] == {"blue": 6, "red": 6}
    assert body["model"]["made"]["by"] == "tester"
    assert body["estimate"]["accuracy"] == pytest.approx(1.0)
    assert np.sum(body["estimate"]["confusion_matrix"]["matrix"]) == 12
    assert response.headers["Location"].endswith("/models/fruit")

    card = model_card.load(models / "fruit")
    model_card.validate(card)  # the full schema, as for every shipped model
    assert card["made"]["photos"] == 12 and card["description"] == "Two tints."
    # Its head reads the hot dog network's features after Lite0's, from a hard link to
    # the served file: the registry runs the network it has loaded for both.
    assert card["files"]["extra_features"] == ["features_hotdog.tflite"]
    assert card["architecture"]["extra_features"][0]["from"].endswith("hotdog/model_int8.tflite")
    assert np.load(models / "fruit" / "head.npz")["kernel"].shape == (1280 + 1280, 2)
    assert (models / "fruit" / "features_hotdog.tflite").samefile(models / "hotdog" / "model_int8.tflite")
    served = client.application.extensions["classifier"]
    assert served.get("fruit").extras == [served.get("hotdog").network]
    assert (models / "fruit" / ".gitignore").read_text() == "*\n"
    assert leftovers(models) == ["fruit"]  # nothing half-made beside it

    # "Not sure" by the rule every model follows, fitted on the cross-validated answers.
    calibrated = card["calibration"]["variants"][served.get("fruit").runtime.variant]
    assert card["calibration"]["target"] == 0.98 and calibrated["answers"] == 12
    assert served.get("fruit").not_sure_below == calibrated["not_sure_below"]
    assert card["metrics"]["cross_validation"]["not_sure"]["given_accuracy"] == 1.0

    answer = classify(client, "fruit", tinted((250, 30, 30), 999))
    assert answer.status_code == 200 and answer.get_json()["results"][0]["label"] == "red"
    assert answer.get_json()["results"][0]["not_sure"] is (
        answer.get_json()["results"][0]["top"][0]["score"] < calibrated["not_sure_below"])
    every = client.post("/api/v1/classify?model=all&explain=true",
                        data={"image": (io.BytesIO(images.jpeg()), "x.jpg")})
    assert "explanation" in every.get_json()["results"][0]["models"]["fruit"]
    listed = {m["name"]: m for m in client.get("/api/v1/models").get_json()["models"]}
    assert listed["fruit"]["runtime"]["features_of"] == "imagenet"  # no network of its own
    assert client.get("/models/fruit").status_code == 200
    assert re.search(r'nothotdog_model_info\{file="[^"]+",model="fruit",version="[^"]+"\} 1\.0',
                     client.get("/metrics").get_data(as_text=True))

    token = answer.get_json()["results"][0]["feedback_token"]
    feedback = client.post("/api/v1/feedback", json={"token": token, "correct": False})
    assert feedback.status_code == 201  # two classes: "wrong" is the other one

    assert make(client).status_code == 409  # the name is taken now
    assert remove(client, "fruit").status_code == 204
    assert classify(client, "fruit", images.jpeg()).get_json()["error"]["code"] == "unknown_model"
    assert leftovers(models) == []
    assert re.search(r'nothotdog_model_info\{file="[^"]+",model="fruit",version="[^"]+"\} 0\.0',
                     client.get("/metrics").get_data(as_text=True))


def test_other_workers_and_restarts_see_made_and_removed_models(app, folders, tmp_path):
    models, _ = folders
    other = made_app(models, tmp_path / "other.sqlite").test_client()  # another worker
    assert make(app.test_client(), name="tints").status_code == 201
    restarted = made_app(models, tmp_path / "restarted.sqlite")
    assert "tints" in restarted.extensions["classifier"].names()
    assert restarted.extensions["classifier"].get("tints").runtime.features_of == "imagenet"
    time.sleep(1.1)  # a worker looks at the folder at most once a second
    assert classify(other, "tints", images.jpeg()).status_code == 200
    assert remove(app.test_client(), "tints").status_code == 204
    time.sleep(1.1)
    assert classify(other, "tints", images.jpeg()).status_code == 400
    assert leftovers(models) == []


def test_a_model_made_again_within_the_second_is_the_new_one_everywhere(app, folders, tmp_path,
                                                                     monkeypatch):
    """Removed and made again under its name in the same second (the clock is held
    still here), a model must still be a new version to another worker, which reloads
    only a model whose version changed."""
    models, _ = folders
    monkeypatch.setattr(model_card, "new_version", lambda: "2026-12-06.120000")
    other = made_app(models, tmp_path / "other.sqlite").test_client()  # another worker
    assert make(app.test_client(), name="twice").status_code == 201
    time.sleep(1.1)  # a worker looks at the folder at most once a second
    assert set(classify(other, "twice", images.jpeg()).get_json()["results"][0]["scores"]) == {"red", "blue"}
    assert remove(app.test_client(), "twice").status_code == 204
    assert make(app.test_client(), name="twice",
                photos=archive({"cat": 5, "dog": 5, "eel": 5})).status_code == 201
    time.sleep(1.1)
    try:
        assert set(classify(other, "twice", images.jpeg()).get_json()["results"][0]["scores"]) == {
            "cat", "dog", "eel"}
    finally:
        remove(app.test_client(), "twice")


def test_a_damaged_made_model_is_passed_over_by_starting_and_serving_workers(app, folders, tmp_path):
    """A made model's file cut short (a crash right after it was kept) stopped every
    start-up (EOFError) and failed a request a second in each serving worker."""
    models, _ = folders
    serving = made_app(models, tmp_path / "serving.sqlite").test_client()
    assert make(app.test_client(), name="damaged").status_code == 201
    (models / "damaged" / "head.npz").write_bytes(b"")
    try:
        started = made_app(models, tmp_path / "started.sqlite")
        assert "damaged" not in started.extensions["classifier"].names()
        assert classify(started.test_client(), "hotdog", images.jpeg()).status_code == 200
        time.sleep(1.1)  # the serving worker looks at the folder again
        assert classify(serving, "hotdog", images.jpeg()).status_code == 200
        assert classify(serving, "damaged", images.jpeg()).status_code == 400
    finally:
        assert remove(app.test_client(), "damaged").status_code == 204


def test_a_start_clears_what_a_dead_worker_left_midway(folders, tmp_path):
    """A worker killed while building or removing a model leaves a hidden folder with
    photos' head and links in it: the next start deletes it, but not a folder another
    worker may be building right now."""
    models, _ = folders
    abandoned, building, removing = (models / f"{made_models.BUILDING}old-1a2b3c4d",
                                     models / f"{made_models.BUILDING}new-5e6f7a8b",
                                     models / f"{made_models.REMOVING}gone-9c0d1e2f")
    for folder in (abandoned, building, removing):
        folder.mkdir()
        (folder / "head.npz").write_bytes(b"x" * 1000)
    hours_ago = time.time() - made_models.ABANDONED_AFTER_S - 60
    os.utime(abandoned, (hours_ago, hours_ago))
    os.utime(removing, (hours_ago, hours_ago))
    made_app(models, tmp_path / "started.sqlite")
    assert not abandoned.exists() and not removing.exists()
    assert (building / "head.npz").is_file()
    shutil.rmtree(building)


def test_a_made_model_loads_on_its_own_too(client, folders, tmp_path):
    """The batch command loads one model directory, without the registry's sharing."""
    models, _ = folders
    assert make(client, name="alone").status_code == 201
    try:
        model = Model.from_directory(models / "alone")
        assert model.predict_bytes(tinted((30, 30, 250), 7)).label == "blue"
        network = models / "alone" / model.runtime.file
        assert network.stat().st_size == (SHIPPED_MODELS / "imagenet" / network.name).stat().st_size
        (tmp_path / "in").mkdir()
        (tmp_path / "in" / "red.jpg").write_bytes(tinted((250, 30, 30), 8))
        assert batch_cli.main([str(tmp_path / "in"), "--model", "alone", "--models-dir", str(models),
                               "--workers", "1", "--out", str(tmp_path / "out.csv")]) == 0
        (row,) = csv.DictReader((tmp_path / "out.csv").open(newline=""))
        assert row["label"] == "red" and row["model"] == "alone"
    finally:
        assert remove(client, "alone").status_code == 204


def test_made_models_answer_the_same_after_the_hot_dog_model_is_retrained(tmp_path):
    """Retraining replaces the hot dog model's file (`made_models.replace_with_copy`):
    the made models keep the network their heads were fitted on, loaded once for all."""
    models = tmp_path / "models"
    models.mkdir()
    (models / "imagenet").symlink_to(SHIPPED_MODELS / "imagenet", target_is_directory=True)
    shutil.copytree(SHIPPED_MODELS / "hotdog", models / "hotdog")
    app = made_app(models, tmp_path / "db.sqlite")
    try:
        for name in ("first", "second"):
            assert make(app.test_client(), name=name).status_code == 201
        photo = tinted((250, 30, 30), 5)
        before = classify(app.test_client(), "first", photo).get_json()["results"][0]["scores"]
    finally:
        close_database(app)
    # "Retrained": another network of the same input size in its place (the pizza model's).
    replace_with_copy(SHIPPED_MODELS / "pizza" / "model_int8.tflite", models / "hotdog" / "model_int8.tflite")
    restarted = made_app(models, tmp_path / "restarted.sqlite")
    try:
        served = restarted.extensions["classifier"]
        first, second = served.get("first"), served.get("second")
        assert first.extras[0] is not served.get("hotdog").network
        assert second.extras == first.extras  # one copy of the old network for both
        after = classify(restarted.test_client(), "first", photo).get_json()["results"][0]["scores"]
        assert after == pytest.approx(before, abs=1e-5)
    finally:
        close_database(restarted)


def test_a_model_made_again_under_a_removed_name_is_the_new_one(client):
    assert make(client, name="again").status_code == 201
    assert remove(client, "again").status_code == 204
    # The same folder and file names, other classes: nothing of the first may be served.
    assert make(client, name="again", photos=archive({"cat": 5, "dog": 5, "eel": 5})).status_code == 201
    try:
        assert set(classify(client, "again", images.jpeg()).get_json()["results"][0]["scores"]) == {
            "cat", "dog", "eel"}
    finally:
        remove(client, "again")


# -- refused, and nothing left behind ---------------------------------------------------

@pytest.mark.parametrize("fields, status, code", [
    ({"photos": archive({"red": 5, "blue": 5}, top="mine/")}, 201, None),  # one top folder is fine
    ({"name": "Fruit"}, 400, "bad_name"),
    ({"name": "all"}, 400, "bad_name"),
    ({"name": "../up"}, 400, "bad_name"),
    ({"name": "fruit\n"}, 400, "bad_name"),
    ({"title": ""}, 400, "bad_name"),
    ({"photos": False}, 400, "missing_archive"),
    ({"name": "hotdog"}, 409, "name_taken"),
    ({"photos": b"not a zip"}, 422, "bad_archive"),
    ({"photos": archive({"red": 8})}, 422, "bad_archive"),
    ({"photos": archive({"red": 4, "blue": 6})}, 422, "bad_archive"),
    ({"photos": archive({"red": 5, "blue": 5}, extra={"red/deep/x.jpg": images.jpeg()})}, 422, "bad_archive"),
    ({"photos": archive({"red": 5, "blue": 5}, extra={"loose.jpg": images.jpeg()})}, 422, "bad_archive"),
    ({"photos": archive({"red": 5, "blue": 5}, extra={"red/cut.jpg": images.truncated(images.jpeg())})},
     422, "corrupt_image"),
    ({"photos": archive({"red": 5, "blue": 5}, extra={"red/text.jpg": b"not a photo"})},
     415, "unsupported_media_type"),
])
def test_bad_requests_get_a_clear_4xx_and_leave_nothing(client, folders, fields, status, code):
    models, _ = folders
    response = make(client, name=fields.pop("name", "fine"), **fields)
    assert response.status_code == status, response.get_json()
    if code:
        error = response.get_json()["error"]
        assert error["code"] == code and error["message"]
        assert leftovers(models) == []
    else:
        assert remove(client, "fine").status_code == 204


def test_photos_padded_to_look_large_may_cost_only_what_their_zip_weighs(client, folders):
    """Ten smooth 12 MP PNGs, each padded with 2 MB of zeros the zip squeezes out: 20 MB
    unpacked would allow all their decoding (120 units), the 0.4 MB sent allows 46."""
    smooth = images.smooth_png(4000, 3000)
    padded = smooth[:33] + images.png_chunk(b"paDd", bytes(2_000_000)) + smooth[33:]  # after IHDR
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zipped:
        for i in range(10):
            zipped.writestr(f"{'ab'[i % 2]}/{i}.png", padded)
    assert len(buffer.getvalue()) < 500_000
    response = make(client, name="padded", photos=buffer.getvalue())
    assert response.status_code == 422
    assert response.get_json()["error"]["code"] == "decoding_too_costly"
    assert leftovers(folders[0]) == []


def test_an_archive_that_unpacks_to_too_much_is_refused_before_it_is_read(monkeypatch):
    """Twelve members of 10 MB of zeros, each honestly declared and within the per-photo
    limit: a zip of about 120 KB that would be 120 MB in memory."""
    read = []
    monkeypatch.setattr(photo_archive, "read_zip_member", lambda *a: read.append(1) or b"")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zipped:
        for i in range(12):
            zipped.writestr(f"{'ab'[i % 2]}/{i}.jpg", bytes(10 * 2**20))
    assert len(buffer.getvalue()) < 200_000
    with pytest.raises(photo_archive.ArchiveError, match="unpack to more than"):
        photo_archive.class_photos(buffer.getvalue(), max_file_bytes=20 * 2**20)
    assert read == []


def test_the_archive_ignores_what_zip_tools_add():
    photos = photo_archive.class_photos(archive({"a": 5, "b": 5}, extra={
        "__MACOSX/a/._0.jpg": b"x", "a/.DS_Store": b"x", "b/notes.txt": b"x"}), max_file_bytes=10**6)
    assert {label: len(members) for label, members in photos.items()} == {"a": 5, "b": 5}


def test_too_many_classes_or_photos_are_refused(monkeypatch):
    with pytest.raises(photo_archive.ArchiveError, match="over the limit"):
        photo_archive.class_photos(archive({"a": 5, "b": 5}), max_file_bytes=100)
    monkeypatch.setattr(photo_archive, "MAX_CLASSES", 2)
    with pytest.raises(photo_archive.ArchiveError, match="at most 2"):
        photo_archive.class_photos(archive({"a": 5, "b": 5, "c": 5}), max_file_bytes=10**6)
    monkeypatch.setattr(photo_archive, "MAX_PHOTOS", 9)
    with pytest.raises(photo_archive.ArchiveError, match="at most 9"):
        photo_archive.class_photos(archive({"a": 5, "b": 5}), max_file_bytes=10**6)


@pytest.mark.parametrize("classes, words", [
    ({"Cat": 5, "cat": 5}, "differ only in case"),
    ({"caf\u00e9": 5, "cafe\u0301": 5}, "differ only in case or accents"),  # NFC and NFD
    ({" cat": 5, "dog": 5}, "no spaces at either end"),
])
def test_class_names_people_would_take_for_one_are_refused(classes, words):
    with pytest.raises(photo_archive.ArchiveError, match=words):
        photo_archive.class_photos(archive(classes), max_file_bytes=10**6)


def test_a_photo_named_twice_in_the_archive_is_refused():
    """Five entries of one photo would pass as a class of five, and leak into every fold."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zipped:
        for label in ("a", "b"):
            for _ in range(5):
                zipped.writestr(f"{label}/same.jpg", tinted((250, 30, 30), 1))
    with pytest.raises(photo_archive.ArchiveError, match="more than once"):
        photo_archive.class_photos(buffer.getvalue(), max_file_bytes=10**6)


@pytest.mark.parametrize("layout", ["plain", "end record's offset field disguised", "data prepended"])
def test_an_archive_whose_entries_carry_huge_extra_fields_is_refused_unparsed(layout):
    """Python 3.11.7's zipfile decodes extra fields in quadratic time: 20 MB of entries
    with 65 KB of empty records each took about 5 s before any check could run. The
    directory checked must be the one zipfile reads, however the archive is laid out."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zipped:
        for i in range(10):
            info = zipfile.ZipInfo(f"a/{i}.jpg")
            info.extra = b"\x99\x99\x00\x00" * 16_000  # empty records of an unknown kind
            zipped.writestr(info, b"x")
    data = bytearray(buffer.getvalue())
    if layout == "end record's offset field disguised":  # zipfile ignores it; a search may not
        data[-6:-2] = b"PK\x05\x06"
    elif layout == "data prepended":  # a self-extracting archive: zipfile finds it all the same
        data = bytearray(b"MZ" + bytes(5000)) + data
    with pytest.raises(photo_archive.ArchiveError, match="bytes of extra fields"):
        photo_archive.class_photos(bytes(data), max_file_bytes=10**6)
    with pytest.raises(photo_archive.ArchiveError, match="more than 1,000 files and folders"):
        photo_archive.class_photos(archive({"a": 5, "b": 5}, extra={
            f"b/{i}.txt": b"" for i in range(1_000)}), max_file_bytes=10**6)


def test_the_password_is_needed(client):
    assert make(client, password=None).status_code == 401
    assert "Basic" in make(client, password=None).headers["WWW-Authenticate"]
    wrong = client.post("/api/v1/models", data={"name": "x", "title": "x"},
                        headers={"Authorization": _basic("guess")},
                        environ_base={"REMOTE_ADDR": "10.9.8.7"})  # its back-off is its own
    assert wrong.status_code == 401
    assert client.delete("/api/v1/models/hotdog").status_code == 401
    cross_site = client.post("/api/v1/models", headers={"Authorization": _basic(PASSWORD),
                                                        "Sec-Fetch-Site": "cross-site"})
    assert cross_site.status_code == 403


@pytest.mark.parametrize("origin, status", [
    ("https://evil.example", 403), ("null", 403),  # another site's page, an old browser
    ("http://localhost", 400), (None, 400),  # this site's page; an API client (no archive: 400)
])
def test_a_browser_too_old_for_sec_fetch_site_is_told_by_its_origin(client, origin, status):
    """Safari before 16.4 sends no Sec-Fetch-Site: a foreign page's multipart POST needs
    no preflight and carries the admin's cached Basic credentials."""
    headers = {"Authorization": _basic(PASSWORD), **({"Origin": origin} if origin else {})}
    response = client.post("/api/v1/models", headers=headers, data={"name": "x", "title": "x"})
    assert response.status_code == status, response.get_json()


def test_shipped_models_cannot_be_removed(client, folders):
    assert remove(client, "hotdog").get_json()["error"]["code"] == "shipped_model"
    assert remove(client, "hotdog").status_code == 403
    assert remove(client, "nothing").status_code == 404
    assert (folders[0] / "hotdog" / "model_card.json").exists()


def test_the_api_document_describes_the_routes(client):
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    assert "post" in paths["/api/v1/models"] and "delete" in paths["/api/v1/models/{name}"]


# -- the fit ----------------------------------------------------------------------------

def test_fit_and_cross_validation_on_separable_features():
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 1, (3, 64))
    labels = np.repeat(np.arange(3), 8)
    features = np.abs(centres[labels][:, None, :] + rng.normal(0, 0.3, (24, 2, 64))).astype(np.float32)
    head = fit(features, labels, 3)
    assert head.kernel.shape == (64, 3) and head.bias.shape == (3,)
    assert (head.probabilities(features[:, 0]).argmax(axis=1) == labels).all()
    estimate = cross_validate(features, labels, ["a", "b", "c"])
    assert estimate.accuracy == 1.0 and estimate.wrong == [] and estimate.folds == 5
    assert np.trace(estimate.confusion) == 24
    # Every held-out answer right and sure: a level that lets them all through.
    assert estimate.calibration["answers"] == 24 and estimate.calibration["not_sure_share"] == 0.0
    assert estimate.calibration["given_accuracy"] == 1.0

