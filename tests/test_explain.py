"""Explanations: the class-activation map points at what the model saw.

A photo pasted into one quadrant of a plain canvas gives a map whose peak lies in
that quadrant, when the model recognises the photo's class there. Runs through the
API (`explain=true`) on the shipped hot dog model and ../shared's test hot dogs.
"""

from __future__ import annotations

import io
import shutil

import numpy as np
from PIL import Image

from classifier.explain import LAYER_SIZE, activation_map
from classifier.model import Model
from classifier.service import classify
from tests import images
from tests.conftest import SHIPPED_MODELS, require_shared

CANVAS = 448
PHOTOS = 50
GREY = (128, 128, 128)


def pasted(photo: Image.Image, quadrant: int) -> bytes:
    """The photo, shrunk to a quarter of the canvas, in quadrant 0-3 (reading order)."""
    canvas = Image.new("RGB", (CANVAS, CANVAS), GREY)
    half = CANVAS // 2
    canvas.paste(photo.convert("RGB").resize((half, half)), ((quadrant % 2) * half, (quadrant // 2) * half))
    buffer = io.BytesIO()
    canvas.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def peak_quadrant(grid: list[list[float]]) -> int:
    """Quadrant of the map's peak, read from the map as the page draws it (smoothed
    over the photo), so a peak on the grid's middle row still has a side."""
    smooth = np.asarray(Image.fromarray(np.array(grid, np.float32), "F").resize(
        (LAYER_SIZE, LAYER_SIZE), Image.Resampling.BILINEAR))
    row, column = np.unravel_index(smooth.argmax(), smooth.shape)
    return int(row >= LAYER_SIZE // 2) * 2 + int(column >= LAYER_SIZE // 2)


def test_the_map_peaks_where_the_hot_dog_is(client):
    folder = require_shared("datasets", "hotdog", "test", "hotdog")
    hits = tried = 0
    for index, path in enumerate(sorted(folder.glob("dtu_hotdog_*"))):
        if tried == PHOTOS:
            break
        quadrant = index % 4
        with Image.open(path) as photo:
            data = pasted(photo, quadrant)
        response = client.post("/api/v1/classify?model=hotdog&explain=true",
                                data={"image": (io.BytesIO(data), "pasted.jpg")})
        assert response.status_code == 200
        result = response.get_json()["results"][0]
        if result["label"] != "hotdog":
            continue  # the bar is about photos of the predicted class
        tried += 1
        explanation = result["explanation"]
        assert explanation["label"] == "hotdog"
        assert explanation["overlay"].startswith("data:image/png;base64,")
        hits += peak_quadrant(explanation["grid"]) == quadrant
    assert tried == PHOTOS, "too few pasted hot dogs were recognised"
    assert hits / tried >= 0.8


def test_the_map_is_the_class_share_of_the_score():
    """The map of each cell is its feature vector's dot product with the class's
    weights, negative parts cut, scaled to a peak of 1."""
    features = np.zeros((2, 2, 3), np.float32)
    features[0, 1] = [1, 0, 0]
    features[1, 0] = [0, 2, 0]
    kernel = np.array([[2.0, -1.0], [-1.0, 3.0], [0.0, 0.0]], np.float32)
    assert activation_map(features, kernel, 0).tolist() == [[0, 1], [0, 0]]
    assert activation_map(features, kernel, 1).tolist() == [[0, 0], [1, 0]]


def test_a_map_comes_from_the_head_the_model_answers_with(tmp_path):
    """The map is drawn with the dense layer the loaded model answers with, not with
    whatever lies on disk at the moment: a model made again under its name writes a
    new head file where the one being served was (`classifier.made_models`)."""
    directory = shutil.copytree(SHIPPED_MODELS / "hotdog", tmp_path / "hotdog")
    model = Model.from_directory(directory)
    photo = images.encode(Image.fromarray(images.photo_array(224, 224, 3)), "JPEG", quality=90)
    before = classify([model], photo, explain={"hotdog"}, overlays=False)["hotdog"].as_dict()
    with np.load(directory / "head.npz") as head:
        np.savez(directory / "head.npz", kernel=-head["kernel"], bias=head["bias"])
    after = classify([model], photo, explain={"hotdog"}, overlays=False)["hotdog"].as_dict()
    assert after["scores"] == before["scores"]
    assert after["explanation"]["grid"] == before["explanation"]["grid"]
    assert np.ptp(before["explanation"]["grid"]) > 0  # a map, not a blank
