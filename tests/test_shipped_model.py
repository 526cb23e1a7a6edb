"""The model the app serves: its files, its card, and its accuracy on ../shared.

The accuracy floors below guard the shipped model's measured level (test split
95.7 %, hot dogs against other food 93.4 %) against regressions. They are below
the product's targets of 97.0 % and 95 %, which this model does not reach yet.
"""

from __future__ import annotations

import io
import json

import pytest
from PIL import Image

from classifier import card as model_card
from classifier import intake
from classifier.engine import Model
from tests.conftest import SHIPPED_MODELS, require_shared
from training.evaluate import evaluate_folder

MODEL_DIR = SHIPPED_MODELS / "hotdog"
# All test hot dogs against the food negatives only: the case real users send.
FOOD_SUBSET = {"food": ["dtu_hotdog_*", "dtu_chilidog_*", "dtu_frankfurter_*", "dtu_food_*"]}


@pytest.fixture(scope="module")
def shipped_model():
    return Model.from_directory(MODEL_DIR)


@pytest.fixture(scope="module")
def test_split_result(shipped_model):
    folder = require_shared("datasets", "hotdog", "test")
    result, *_ = evaluate_folder(shipped_model, folder, subsets=FOOD_SUBSET)
    return result


def test_shipped_files_and_card():
    card = model_card.load(MODEL_DIR)
    model_card.validate(card)
    assert card["classes"] == ["hotdog", "not_hotdog"]
    assert (MODEL_DIR / "labels.txt").read_text().split() == card["classes"]
    assert (MODEL_DIR / "model.tflite").stat().st_size <= 4 * 1024 * 1024
    assert card["architecture"]["size_bytes"] == (MODEL_DIR / "model.tflite").stat().st_size
    assert "google-coral/test_data" in card["base_weights"]["attribution"]
    assert card["reproduce"].startswith("python -m training.train ../shared/datasets/hotdog/train")
    text = json.dumps(card)
    assert "/work/" not in text and "/home/" not in text and "/tmp/" not in text


def test_quantisation_costs_at_most_half_a_point():
    variants = {v["name"]: v for v in model_card.load(MODEL_DIR)["variants"]}
    shipped = model_card.load(MODEL_DIR)["architecture"]["variant"]
    assert variants[shipped]["accuracy"] >= variants["float32"]["accuracy"] - 0.005


def test_accuracy_on_the_test_split(test_split_result):
    assert test_split_result["n"] == 1818
    assert test_split_result["accuracy"] >= 0.955


def test_accuracy_on_hot_dogs_against_other_food(test_split_result):
    food = test_split_result["subsets"]["food"]
    assert food["n"] == 855 + 265
    assert food["accuracy"] >= 0.93


def test_card_reports_what_we_measure(test_split_result):
    recorded = model_card.load(MODEL_DIR)["metrics"]["test"]
    assert recorded["n"] == test_split_result["n"]
    assert recorded["accuracy"] == pytest.approx(test_split_result["accuracy"], abs=1e-9)
    assert recorded["confusion_matrix"] == test_split_result["confusion_matrix"]


def test_other_dishes_are_not_hot_dogs(shipped_model):
    """Food-101 dishes from the pizza set's test split (never trained on): the
    photos real users send. The floor guards the measured 98.1 %."""
    folder = require_shared("datasets", "pizza", "test")
    result, *_ = evaluate_folder(shipped_model, folder,
                                 label_map={"pizza": "not_hotdog", "not_pizza": "not_hotdog"})
    assert result["n"] == 413
    assert result["accuracy"] >= 0.97


def test_reduced_scale_jpeg_decoding_keeps_the_verdicts(shipped_model):
    """Intake lets a JPEG decode by DCT scaling to a little under the input size
    (intake.DRAFT_SLACK). Photos enlarged 1.8x land right in that case (half scale is
    0.9x the input); their verdicts must match those from a decode at full input size."""
    folder = require_shared("datasets", "hotdog", "test")
    size = shipped_model.input_size
    photos = sorted(folder.glob("*/*.jpg"))[::3]
    agree = correct_reduced = correct_full = 0
    for path in photos:
        with Image.open(path) as photo:
            enlarged = photo.convert("RGB").resize(
                (round(photo.width * 1.8), round(photo.height * 1.8)), Image.Resampling.BICUBIC)
        buffer = io.BytesIO()
        enlarged.save(buffer, "JPEG", quality=90)
        data = buffer.getvalue()
        reduced = shipped_model.predict_pixels(intake.load_pixels(data, size)).label
        full = shipped_model.predict_pixels(intake.fit_to_input(
            intake.decode_image(data, draft_size=size), size)).label
        agree += reduced == full
        correct_reduced += reduced == path.parent.name
        correct_full += full == path.parent.name
    assert len(photos) == 606
    assert agree / len(photos) >= 0.98
    assert abs(correct_reduced - correct_full) / len(photos) <= 0.01
