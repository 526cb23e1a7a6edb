"""Calibrated scores and the "not sure" level (classifier.calibration), on answers whose
true chances are known, and as the served models apply them."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from classifier import calibration
from classifier.model import Model
from tests.conftest import SHIPPED_MODELS


def answers(n: int, temperature: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Logits of a 3-class model that is over-sure by `temperature`: each true label is
    drawn from softmax(logits / temperature)."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 3, (n, 3))
    chances = calibration.scaled(logits, temperature)
    labels = np.array([rng.choice(3, p=p) for p in chances])
    return logits, labels


def test_the_fitted_temperature_is_the_true_one():
    logits, labels = answers(20_000, temperature=2.0)
    assert calibration.fit_temperature(logits, labels) == pytest.approx(2.0, rel=0.08)
    logits, labels = answers(20_000, temperature=0.5, seed=1)
    assert calibration.fit_temperature(logits, labels) == pytest.approx(0.5, rel=0.08)


def test_calibrated_scores_are_right_as_often_as_they_say():
    logits, labels = answers(20_000, temperature=2.0)
    probabilities = calibration.cross_validated(logits, labels)
    confidence, right = probabilities.max(axis=1), probabilities.argmax(axis=1) == labels
    for low, high in ((0.4, 0.6), (0.6, 0.8), (0.8, 0.95)):
        band = (confidence >= low) & (confidence < high)
        assert band.sum() > 500
        assert right[band].mean() == pytest.approx(confidence[band].mean(), abs=0.03)
    raw = calibration.scaled(logits, 1.0).max(axis=1)  # over-sure before calibration
    assert raw.mean() > right.mean() + 0.1


def test_the_level_gives_the_target_share_of_right_verdicts():
    logits, labels = answers(20_000, temperature=2.0)
    fitted = calibration.calibrate(logits, labels, target=0.95)
    assert 0.2 < fitted.not_sure_share < 0.9
    assert fitted.given_accuracy == pytest.approx(0.95, abs=0.01)
    # On new answers of the same kind, the level holds.
    fresh_logits, fresh_labels = answers(20_000, temperature=2.0, seed=7)
    figures = calibration.not_sure_figures(
        calibration.scaled(fresh_logits, fitted.temperature), fresh_labels, fitted.not_sure_below)
    assert figures["given_accuracy"] == pytest.approx(0.95, abs=0.01)
    assert figures["not_sure_share"] == pytest.approx(fitted.not_sure_share, abs=0.02)
    # A stricter target costs more "not sure".
    assert calibration.calibrate(logits, labels, target=0.99).not_sure_share > fitted.not_sure_share


def test_the_level_is_the_lowest_that_reaches_the_target():
    confidence = np.array([0.99, 0.97, 0.9, 0.9, 0.6, 0.5])
    level = calibration.level_for(confidence, target=0.9)
    given = confidence >= level
    assert confidence[given].mean() >= 0.9
    assert given.sum() == 4  # the two 0.9s fall on the same side; adding 0.6 drops to 0.85
    assert calibration.level_for(confidence, target=0.999) == 1.0


def test_scores_of_zero_still_have_a_logit():
    scores = np.array([[1.0, 0.0], [0.5, 0.5]])
    assert np.isfinite(calibration.logits_of(scores)).all()
    assert calibration.scaled(calibration.logits_of(scores), 0.7)[1].tolist() == [0.5, 0.5]


def test_a_served_model_applies_its_files_calibration():
    """Scores as the card's temperature makes them; the verdict unchanged; "not sure"
    below the level of the very file served."""
    model = Model.from_directory(SHIPPED_MODELS / "pizza", variant="int8")
    figures = model.card["calibration"]["variants"]["int8"]
    assert model.calibration == figures and model.not_sure_below == figures["not_sure_below"]
    raw = Model.from_directory(SHIPPED_MODELS / "pizza", variant="int8")
    raw.card = dict(raw.card, calibration={})
    buffer = io.BytesIO()
    Image.radial_gradient("L").convert("RGB").resize((300, 200)).save(buffer, "JPEG")
    served, uncalibrated = model.predict_bytes(buffer.getvalue()), raw.predict_bytes(buffer.getvalue())
    expected = calibration.scaled(calibration.logits_of(
        np.array([[uncalibrated.scores[label] for label in model.labels]])), figures["temperature"])[0]
    assert [served.scores[label] for label in model.labels] == pytest.approx(expected, abs=1e-5)
    assert served.label == uncalibrated.label
    float16 = Model.from_directory(SHIPPED_MODELS / "pizza", variant="float16")
    assert float16.calibration == model.card["calibration"]["variants"]["float16"]
