"""classifier.digits: any picture of one digit -> MNIST's 28x28 form."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw

from classifier.digits import NoDigit, load_digit, mnist_form

LIMIT = 10**8


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def drawn_one(size=(300, 200), ink=0, paper=255, box=(180, 40, 200, 170), width=12) -> Image.Image:
    """A '1' as a thick vertical stroke, off-centre, on a wide canvas."""
    image = Image.new("L", size, paper)
    ImageDraw.Draw(image).line([box[:2], box[2:]], fill=ink, width=width)
    return image


def centre_of_mass(digit: np.ndarray) -> tuple[float, float]:
    ys, xs = np.mgrid[0:28, 0:28]
    weights = digit[:, :, 0].astype(float)
    return (ys * weights).sum() / weights.sum(), (xs * weights).sum() / weights.sum()


@pytest.mark.parametrize("ink, paper", [(0, 255), (255, 0), (40, 200)])
def test_either_polarity_becomes_light_on_dark_fitted_and_centred(ink, paper):
    digit = load_digit(png(drawn_one(ink=ink, paper=paper)), max_pixels=LIMIT)
    assert digit.shape == (28, 28, 1) and digit.dtype == np.uint8
    lit = np.argwhere(digit[:, :, 0] > 40)
    height = lit[:, 0].max() - lit[:, 0].min() + 1
    assert 18 <= height <= 21  # the long side fills MNIST's 20-pixel box
    assert digit[0].max() == 0 and digit[:, 0].max() == 0  # the border stays dark
    y, x = centre_of_mass(digit)
    assert abs(y - 13.5) < 1 and abs(x - 13.5) < 1


def test_aspect_ratio_is_kept():
    wide = Image.new("L", (400, 400), 255)
    ImageDraw.Draw(wide).line([(50, 200), (350, 200)], fill=0, width=30)  # a dash
    digit = load_digit(png(wide), max_pixels=LIMIT)[:, :, 0]
    lit = np.argwhere(digit > 40)
    width = lit[:, 1].max() - lit[:, 1].min() + 1
    height = lit[:, 0].max() - lit[:, 0].min() + 1
    assert width >= 18 and height <= 4


def test_an_mnist_style_digit_stays_much_the_same():
    digit = np.zeros((28, 28), np.uint8)
    digit[4:24, 12:16] = 255  # already 20 tall and centred
    again = mnist_form(digit.astype(np.float32))[:, :, 0]
    assert np.abs(again.astype(int) - digit.astype(int)).mean() < 12


@pytest.mark.parametrize("picture", [Image.new("L", (100, 100), 255), Image.new("L", (100, 100), 0),
                                     Image.new("RGB", (100, 100), (120, 130, 140))])
def test_blank_pictures_are_a_clear_error(picture):
    with pytest.raises(NoDigit) as caught:
        load_digit(png(picture), max_pixels=LIMIT)
    assert caught.value.code == "no_digit" and "blank" in caught.value.message


def test_faint_paper_texture_is_not_a_digit():
    rng = np.random.default_rng(0)
    paper = np.clip(rng.normal(230, 6, (120, 120)), 0, 255).astype(np.uint8)
    with pytest.raises(NoDigit):
        load_digit(png(Image.fromarray(paper)), max_pixels=LIMIT)


def test_a_photo_of_a_digit_on_paper_with_noise():
    rng = np.random.default_rng(1)
    image = drawn_one(size=(640, 480), ink=60, paper=215, box=(300, 80, 330, 400), width=25)
    pixels = np.asarray(image, dtype=np.float32) + rng.normal(0, 8, (480, 640))
    photo = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).convert("RGB")
    buffer = io.BytesIO()
    photo.save(buffer, "JPEG", quality=80)
    digit = load_digit(buffer.getvalue(), max_pixels=LIMIT)[:, :, 0]
    assert digit[:4].max() < 40 and digit[-4:].max() < 40  # noise did not become ink
    assert (digit > 128).sum() > 30
